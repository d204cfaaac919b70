//! Rewriting the exits of a sync body so they leave through the body's label, where the
//! generated code sees the returned value, instead of returning past it.
//!
//! `return e` becomes `break 'label e`; `expr?` becomes a `match` that breaks with the residual.
//! Closures, async blocks and nested items keep their own `return`s and are left alone. Inside
//! the standard macros whose arguments are plain expressions (`format!`, `vec!`, `write!`,
//! `assert!`…) the arguments are rewritten too; any other macro's tokens are left as they are,
//! and a `return` hidden in its expansion is caught by the call guard instead.

use proc_macro2::{Span, TokenStream};
use quote::{quote_spanned, ToTokens};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Item, Lifetime, Macro, Token};

pub(crate) struct Rewriter<'a> {
    pub(crate) label: &'a Lifetime,
    pub(crate) krate: &'a TokenStream,
    pub(crate) changed: bool,
}

/// The standard macros whose arguments are all expressions, separated by commas: the format
/// macros (the format string is a literal expression), the assertions and `vec!`.
const EXPRESSION_MACROS: &[&str] = &[
    "format",
    "format_args",
    "print",
    "println",
    "eprint",
    "eprintln",
    "write",
    "writeln",
    "panic",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "unreachable",
    "todo",
    "unimplemented",
    "dbg",
    "vec",
];

/// A span that points where `user` does, but belongs to the generated code: errors in it are
/// shown at the user's token, and lints that skip macro output skip it.
fn at(user: Span) -> Span {
    Span::call_site().located_at(user)
}

impl Rewriter<'_> {
    /// Rewrites the arguments of a standard expression macro; other macros are left alone.
    fn rewrite_macro(&mut self, mac: &mut Macro) {
        let Some(name) = mac.path.segments.last().map(|s| s.ident.to_string()) else { return };
        if !EXPRESSION_MACROS.contains(&name.as_str()) {
            return;
        }
        // `vec![elem; n]` is the one form that is not a comma-separated list.
        let repeat = |input: ParseStream<'_>| -> syn::Result<(Expr, Token![;], Expr)> {
            Ok((input.parse()?, input.parse()?, input.parse()?))
        };
        if name == "vec" {
            if let Ok((mut elem, semi, mut n)) = repeat.parse2(mac.tokens.clone()) {
                let before = self.changed;
                self.changed = false;
                self.visit_expr_mut(&mut elem);
                self.visit_expr_mut(&mut n);
                if self.changed {
                    mac.tokens = quote_spanned!(mac.tokens.span()=> #elem #semi #n);
                }
                self.changed |= before;
                return;
            }
        }
        let Ok(mut args) =
            Punctuated::<Expr, Token![,]>::parse_terminated.parse2(mac.tokens.clone())
        else {
            return;
        };
        let before = self.changed;
        self.changed = false;
        for arg in &mut args {
            self.visit_expr_mut(arg);
        }
        if self.changed {
            mac.tokens = args.into_token_stream();
        }
        self.changed |= before;
    }
}

impl VisitMut for Rewriter<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) => {}
            Expr::Macro(m) => self.rewrite_macro(&mut m.mac),
            Expr::Return(ret) => {
                if let Some(value) = ret.expr.as_mut() {
                    self.visit_expr_mut(value);
                }
                let label = self.label;
                let span = at(ret.return_token.span);
                let new = match ret.expr.take() {
                    Some(value) => quote_spanned!(span=> break #label #value),
                    None => quote_spanned!(span=> break #label),
                };
                *expr = Expr::Verbatim(new);
                self.changed = true;
            }
            Expr::Try(t) => {
                self.visit_expr_mut(&mut t.expr);
                let (label, krate, inner) = (self.label, self.krate, &t.expr);
                // The call is the user's `?`, so errors about the value read as before; the
                // `match` around it is the expansion's, which lints leave alone.
                let user = t.question_token.span();
                let branch =
                    quote_spanned!(user=> #krate::__private::Try::__monitor_branch(#inner));
                let residual = quote_spanned!(user=>
                    #krate::__private::FromResidual::__monitor_from_residual(__monitor_r));
                let span = at(user);
                let new = quote_spanned! {span=>
                    match #branch {
                        ::core::ops::ControlFlow::Continue(__monitor_v) => __monitor_v,
                        ::core::ops::ControlFlow::Break(__monitor_r) => break #label #residual,
                    }
                };
                *expr = Expr::Verbatim(new);
                self.changed = true;
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_stmt_macro_mut(&mut self, stmt: &mut syn::StmtMacro) {
        self.rewrite_macro(&mut stmt.mac);
    }

    fn visit_item_mut(&mut self, _: &mut Item) {}
}

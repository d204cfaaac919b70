//! Rewriting the exits of a sync body so they leave through the body's label, where the
//! generated code sees the returned value, instead of returning past it.
//!
//! `return e` becomes `break 'label e`; `expr?` becomes a `match` that breaks with the residual.
//! Closures, async blocks, nested items and macro calls keep their own `return`s and are left
//! alone; a `return` hidden inside a macro's expansion is caught by the call guard instead.

use proc_macro2::{Span, TokenStream};
use quote::{quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, Item, Lifetime, Stmt};

pub(crate) struct Rewriter<'a> {
    pub(crate) label: &'a Lifetime,
    pub(crate) krate: &'a TokenStream,
    /// The function's return type, where it can be named: every value leaving the body is
    /// pinned to it, so `?` conversions and coercions infer as in the original body.
    pub(crate) ret_ty: Option<&'a TokenStream>,
    pub(crate) changed: bool,
}

impl Rewriter<'_> {
    /// `value` as the function's return type.
    pub(crate) fn pin(&self, value: TokenStream, span: Span) -> TokenStream {
        match self.ret_ty {
            Some(ty) => {
                let krate = self.krate;
                quote_spanned!(span=> #krate::__private::identity::<#ty>(#value))
            }
            None => value,
        }
    }

    /// Pins the body's tail expression, unless it may diverge (a macro call such as `todo!()`,
    /// or a loop): wrapping a diverging expression would warn of an unreachable call.
    pub(crate) fn pin_tail(&self, block: &mut Block) {
        if let Some(Stmt::Expr(tail, None)) = block.stmts.last_mut() {
            if !matches!(tail, Expr::Macro(_) | Expr::Loop(_)) {
                let span = tail.span();
                let value = std::mem::replace(tail, Expr::Verbatim(TokenStream::new()));
                *tail = Expr::Verbatim(self.pin(value.into_token_stream(), span));
            }
        }
    }
}

impl VisitMut for Rewriter<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) | Expr::Macro(_) => {}
            Expr::Return(ret) => {
                if let Some(value) = ret.expr.as_mut() {
                    self.visit_expr_mut(value);
                }
                let label = self.label;
                let span = ret.return_token.span;
                let new = match ret.expr.take() {
                    Some(value) => {
                        let value = self.pin(value.into_token_stream(), span);
                        quote_spanned!(span=> break #label #value)
                    }
                    None => quote_spanned!(span=> break #label),
                };
                *expr = Expr::Verbatim(new);
                self.changed = true;
            }
            Expr::Try(t) => {
                self.visit_expr_mut(&mut t.expr);
                let (label, krate, inner) = (self.label, self.krate, &t.expr);
                let span = t.question_token.span();
                let residual = self.pin(
                    quote_spanned!(span=>
                        #krate::__private::FromResidual::__monitor_from_residual(__monitor_r)),
                    span,
                );
                let new = quote_spanned! {span=>
                    match #krate::__private::Try::__monitor_branch(#inner) {
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

    fn visit_item_mut(&mut self, _: &mut Item) {}
}

//! Parsing `#[monitored(...)]` arguments.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Path, Token};

/// The options of one `#[monitored(...)]`.
#[derive(Default, Clone)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) category: Option<LitStr>,
    pub(crate) skip: Option<Span>,
    pub(crate) krate: Option<Path>,
}

/// Collects every error, so the user sees them all at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Sets an option once; a second time is an error pointing at the repeated key.
fn set_once<T>(slot: &mut Option<T>, value: T, key: &Path, errors: &mut Errors) {
    if slot.is_some() {
        let name = key.get_ident().map_or_else(String::new, ToString::to_string);
        errors.push(syn::Error::new_spanned(key, format!("duplicate option `{name}`")));
    } else {
        *slot = Some(value);
    }
}

fn string_value(meta: &syn::MetaNameValue, errors: &mut Errors) -> Option<LitStr> {
    match &meta.value {
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => {
            if s.value().is_empty() {
                errors.push(syn::Error::new_spanned(s, "expected a non-empty string"));
                return None;
            }
            Some(s.clone())
        }
        other => {
            let key = meta.path.get_ident().map_or_else(String::new, ToString::to_string);
            errors.push(syn::Error::new_spanned(
                other,
                format!("expected a string literal: `{key} = \"...\"`"),
            ));
            None
        }
    }
}

impl Args {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens)?;
        let mut args = Args::default();
        let mut errors = Errors::default();
        for meta in metas {
            let key = meta.path().clone();
            let ident = key.get_ident().map(ToString::to_string);
            match (ident.as_deref(), &meta) {
                (Some("name"), Meta::NameValue(nv)) => {
                    if let Some(v) = string_value(nv, &mut errors) {
                        set_once(&mut args.name, v, &key, &mut errors);
                    }
                }
                (Some("category"), Meta::NameValue(nv)) => {
                    if let Some(v) = string_value(nv, &mut errors) {
                        set_once(&mut args.category, v, &key, &mut errors);
                    }
                }
                (Some("crate"), Meta::NameValue(nv)) => match &nv.value {
                    Expr::Path(p) if p.qself.is_none() => {
                        set_once(&mut args.krate, p.path.clone(), &key, &mut errors);
                    }
                    other => errors.push(syn::Error::new_spanned(
                        other,
                        "expected a path: `crate = ::monitor_core`",
                    )),
                },
                (Some("skip"), Meta::Path(p)) => {
                    set_once(&mut args.skip, syn::spanned::Spanned::span(p), &key, &mut errors);
                }
                (Some(k @ ("name" | "category" | "crate")), _) => {
                    errors.push(syn::Error::new_spanned(&meta, format!("expected `{k} = ...`")))
                }
                (Some("skip"), _) => {
                    errors.push(syn::Error::new_spanned(&meta, "`skip` takes no value"));
                }
                _ => errors.push(syn::Error::new_spanned(
                    &key,
                    format!(
                        "unknown option `{}`; expected `name`, `category`, `skip` or `crate`",
                        quote::ToTokens::to_token_stream(&key).to_string().replace(' ', "")
                    ),
                )),
            }
        }
        errors.finish()?;
        Ok(args)
    }

    pub(crate) fn validate_for_fn(&self) -> syn::Result<()> {
        match self.skip {
            Some(span) => Err(syn::Error::new(
                span,
                "`skip` opts a method out of a #[monitored] impl block; on a function, remove \
                 the attribute instead",
            )),
            None => Ok(()),
        }
    }

    pub(crate) fn validate_for_impl(&self) -> syn::Result<()> {
        let mut errors = Errors::default();
        if let Some(name) = &self.name {
            errors.push(syn::Error::new_spanned(
                name,
                "`name` names one function; give it on a method, not on the impl block",
            ));
        }
        if let Some(span) = self.skip {
            errors.push(syn::Error::new(
                span,
                "`skip` opts a method out; to skip the whole impl block, remove the attribute",
            ));
        }
        errors.finish()
    }

    /// The options of a method inside a monitored impl block: its own, else the block's.
    pub(crate) fn inherit(&self, outer: &Args) -> Args {
        Args {
            name: self.name.clone(),
            category: self.category.clone().or_else(|| outer.category.clone()),
            skip: self.skip,
            krate: self.krate.clone().or_else(|| outer.krate.clone()),
        }
    }
}

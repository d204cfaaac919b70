//! `#[monitored]`: parse the arguments and the item, validate, expand.

mod attr;
mod expand;
mod rewrite;

use proc_macro2::TokenStream;
use quote::ToTokens;

use attr::Args;
pub(crate) use attr::Errors;

/// Expands `#[monitored(args)] item`. On any error, the errors are emitted beside the unchanged
/// item, so the user sees only what is wrong with the attribute, not follow-on errors.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(args, item.clone()) {
        Ok(tokens) => tokens,
        Err(err) => {
            let mut out = err.to_compile_error();
            out.extend(item);
            out
        }
    }
}

fn try_expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = Args::parse(args)?;
    let item: syn::Item = syn::parse2(item)?;
    match item {
        syn::Item::Fn(f) => {
            args.validate_for_fn()?;
            let ctx = expand::Ctx::new(&args);
            expand::check_fn(&f.sig)?;
            Ok(expand::function(&ctx, f.attrs, f.vis.into_token_stream(), f.sig, *f.block))
        }
        syn::Item::Impl(imp) => {
            args.validate_for_impl()?;
            expand::impl_block(&args, imp)
        }
        syn::Item::Trait(t) => Err(syn::Error::new_spanned(
            t.trait_token,
            "#[monitored] cannot be applied to a trait definition; put it on the impl block or \
             on the implementing methods",
        )),
        other => Err(syn::Error::new_spanned(
            other,
            "#[monitored] applies to functions, methods and impl blocks",
        )),
    }
}

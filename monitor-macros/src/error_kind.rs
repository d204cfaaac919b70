//! `#[derive(ErrorKind)]`.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{Attribute, Data, DeriveInput, Expr, ExprLit, Lit, LitStr};

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    match try_expand(input) {
        Ok(t) => t,
        Err(e) => e.to_compile_error(),
    }
}

/// `#[monitor(kind = "…")]` and (on the type) `#[monitor(crate = path)]`.
#[derive(Default)]
struct Opts {
    name: Option<LitStr>,
    krate: Option<syn::Path>,
}

fn opts(attrs: &[Attribute], allow_crate: bool) -> syn::Result<Opts> {
    let mut out = Opts::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("monitor")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("kind") {
                if out.name.is_some() {
                    return Err(meta.error("duplicate option `kind`"));
                }
                out.name = Some(meta.value()?.parse()?);
                Ok(())
            } else if meta.path.is_ident("crate") && allow_crate {
                if out.krate.is_some() {
                    return Err(meta.error("duplicate option `crate`"));
                }
                out.krate = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error(if allow_crate {
                    "unknown option; expected `kind = \"...\"` or `crate = path`"
                } else {
                    "unknown option; expected `kind = \"...\"`"
                }))
            }
        })?;
    }
    if let Some(name) = &out.name {
        if name.value().is_empty() {
            return Err(syn::Error::new_spanned(name, "expected a non-empty kind"));
        }
    }
    Ok(out)
}

fn lit(s: String, span: proc_macro2::Span) -> Expr {
    Expr::Lit(ExprLit { attrs: Vec::new(), lit: Lit::Str(LitStr::new(&s, span)) })
}

fn try_expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let top = opts(&input.attrs, true)?;
    let krate = top.krate.map_or_else(|| quote!(::monitor_core), |p| p.to_token_stream());
    let ident = &input.ident;
    let body = match &input.data {
        Data::Enum(e) => {
            if let Some(name) = &top.name {
                return Err(syn::Error::new_spanned(
                    name,
                    "on an enum, give `#[monitor(kind = \"...\")]` per variant",
                ));
            }
            let mut arms = Vec::new();
            for v in &e.variants {
                let o = opts(&v.attrs, false)?;
                let vi = &v.ident;
                let name = o.name.map_or_else(
                    || lit(vi.to_string(), vi.span()),
                    |n| Expr::Lit(ExprLit { attrs: Vec::new(), lit: Lit::Str(n) }),
                );
                arms.push(quote!(Self::#vi { .. } => #name,));
            }
            quote!(match *self { #(#arms)* })
        }
        Data::Struct(_) => {
            let name = top.name.map_or_else(
                || lit(ident.to_string(), ident.span()),
                |n| Expr::Lit(ExprLit { attrs: Vec::new(), lit: Lit::Str(n) }),
            );
            quote!(#name)
        }
        Data::Union(u) => {
            return Err(syn::Error::new_spanned(
                u.union_token,
                "#[derive(ErrorKind)] supports enums and structs, not unions",
            ))
        }
    };
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    Ok(quote! {
        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl #impl_g #krate::ErrorKind for #ident #ty_g #where_g {
            fn error_kind(&self) -> &'static str {
                #body
            }
        }
    })
}

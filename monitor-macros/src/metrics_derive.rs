//! `#[derive(Metrics)]`: parse the struct and its `#[metric(...)]` attributes, validate,
//! expand into a `Metrics` impl that registers every field.

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Expr, ExprLit, Fields, Lit, LitStr};

use crate::monitored::Errors;

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    match try_expand(input) {
        Ok(t) => t,
        Err(e) => e.to_compile_error(),
    }
}

#[derive(Default)]
struct FieldOpts {
    name: Option<LitStr>,
    skip: bool,
    tags: Vec<(LitStr, LitStr)>,
}

fn lit_str(e: &Expr) -> syn::Result<LitStr> {
    match e {
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Ok(s.clone()),
        other => Err(syn::Error::new_spanned(other, "expected a string literal")),
    }
}

fn field_opts(attrs: &[Attribute], errors: &mut Errors) -> FieldOpts {
    let mut out = FieldOpts::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("metric")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                if out.name.is_some() {
                    return Err(meta.error("duplicate option `name`"));
                }
                let v: LitStr = meta.value()?.parse()?;
                if v.value().is_empty() {
                    return Err(syn::Error::new_spanned(v, "expected a non-empty name"));
                }
                out.name = Some(v);
            } else if meta.path.is_ident("skip") {
                if out.skip {
                    return Err(meta.error("duplicate option `skip`"));
                }
                out.skip = true;
            } else if meta.path.is_ident("tags") {
                meta.parse_nested_meta(|tag| {
                    let key = tag
                        .path
                        .get_ident()
                        .map(ToString::to_string)
                        .ok_or_else(|| tag.error("expected `key = \"value\"`"))?;
                    let value = lit_str(&tag.value()?.parse::<Expr>()?)?;
                    out.tags.push((LitStr::new(&key, tag.path.span()), value));
                    Ok(())
                })?;
            } else {
                return Err(meta.error(
                    "unknown option; expected `name = \"...\"`, `skip` or `tags(key = \"value\")`",
                ));
            }
            Ok(())
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    out
}

fn struct_prefix(input: &DeriveInput, errors: &mut Errors) -> String {
    let mut prefix = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("metric")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("prefix") {
                if prefix.is_some() {
                    return Err(meta.error("duplicate option `prefix`"));
                }
                prefix = Some(meta.value()?.parse::<LitStr>()?.value());
                Ok(())
            } else {
                Err(meta.error("unknown option; on the struct, expected `prefix = \"...\"`"))
            }
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    prefix.unwrap_or_else(|| snake_case(&input.ident.to_string()))
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The field's doc comment, lines joined with spaces.
fn doc(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => {
                lit_str(&nv.value).ok().map(|s| s.value().trim().to_string())
            }
            _ => None,
        })
        .filter(|l| !l.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines.join(" "))
}

fn try_expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => &named.named,
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "#[derive(Metrics)] needs named fields: each field's name names its metric",
                ))
            }
        },
        Data::Enum(e) => {
            return Err(syn::Error::new_spanned(
                e.enum_token,
                "#[derive(Metrics)] applies to structs of instruments, not enums",
            ))
        }
        Data::Union(u) => {
            return Err(syn::Error::new_spanned(
                u.union_token,
                "#[derive(Metrics)] applies to structs of instruments, not unions",
            ))
        }
    };
    let mut errors = Errors::default();
    let prefix = struct_prefix(&input, &mut errors);
    let mut seen: HashMap<String, proc_macro2::Span> = HashMap::new();
    let mut inits = Vec::new();
    for field in fields {
        let Some(ident) = &field.ident else { continue };
        let opts = field_opts(&field.attrs, &mut errors);
        if opts.skip {
            inits.push(quote!(#ident: ::core::default::Default::default()));
            continue;
        }
        let name = opts.name.as_ref().map_or_else(|| ident.to_string(), LitStr::value);
        let span = opts.name.as_ref().map_or_else(|| ident.span(), LitStr::span);
        if seen.insert(name.clone(), span).is_some() {
            errors.push(syn::Error::new(span, format!("two fields register the metric `{name}`")));
            continue;
        }
        let ty = &field.ty;
        let description = match doc(&field.attrs) {
            Some(d) => quote!(::core::option::Option::Some(#d)),
            None => quote!(::core::option::Option::None),
        };
        let scope = if opts.tags.is_empty() {
            quote!(__monitor_scope)
        } else {
            let tags = opts.tags.iter().map(|(k, v)| quote!((#k, #v)));
            quote!(&__monitor_scope.with_tags(&[#(#tags),*]))
        };
        let make = quote_spanned! {ty.span()=>
            <#ty as ::monitor_core::__private::MetricField>::__monitor_make
        };
        inits.push(quote! {
            #ident: #make(#scope, &__monitor_name(#name), #description)
        });
    }
    errors.finish()?;
    let ident = &input.ident;
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    let doc_register = format!(
        "Registers every instrument of this struct in `scope`, under `{}<field>`.",
        if prefix.is_empty() { String::new() } else { format!("{prefix}.") }
    );
    Ok(quote! {
        #[automatically_derived]
        #[allow(unused_qualifications)]
        impl #impl_g ::monitor_core::Metrics for #ident #ty_g #where_g {
            fn register_as(__monitor_scope: &::monitor_core::Scope, __monitor_prefix: &str) -> Self {
                let __monitor_name = |field: &str| -> ::std::string::String {
                    if __monitor_prefix.is_empty() {
                        field.to_string()
                    } else {
                        ::std::format!("{}.{}", __monitor_prefix, field)
                    }
                };
                Self { #(#inits,)* }
            }
        }

        #[automatically_derived]
        #[allow(unused_qualifications, dead_code)]
        impl #impl_g #ident #ty_g #where_g {
            #[doc = #doc_register]
            pub fn register(scope: &::monitor_core::Scope) -> Self {
                <Self as ::monitor_core::Metrics>::register_as(scope, #prefix)
            }

            /// Registers every instrument of this struct in the scope of its module.
            pub fn register_in_module() -> Self {
                Self::register(&::monitor_core::Scope::new(::core::module_path!()))
            }
        }
    }
    .into_token_stream())
}

#[cfg(test)]
mod tests {
    #[test]
    fn snake() {
        assert_eq!(super::snake_case("HttpMetrics"), "http_metrics");
        assert_eq!(super::snake_case("Pool"), "pool");
    }
}

//! Generating the instrumented function. Nothing here fails: validation happened before.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::visit::Visit;
use syn::{Attribute, Block, ImplItem, ItemImpl, Lifetime, ReturnType, Signature, Type};

use super::attr::{Args, Errors};
use super::rewrite::Rewriter;

/// What every expansion of one attribute shares.
pub(crate) struct Ctx {
    krate: TokenStream,
    name: TokenStream,
    category: TokenStream,
}

impl Ctx {
    pub(crate) fn new(args: &Args) -> Ctx {
        let krate = match &args.krate {
            Some(path) => path.to_token_stream(),
            None => quote!(::monitor_core),
        };
        let opt = |s: &Option<syn::LitStr>| match s {
            Some(s) => quote!(::core::option::Option::Some(#s)),
            None => quote!(::core::option::Option::None),
        };
        Ctx { krate, name: opt(&args.name), category: opt(&args.category) }
    }
}

/// Rejects what cannot be monitored.
pub(crate) fn check_fn(sig: &Signature) -> syn::Result<()> {
    if let Some(c) = &sig.constness {
        return Err(syn::Error::new_spanned(
            c,
            "#[monitored] cannot be applied to a `const fn`: recording a call needs the clock \
             and shared counters, which const evaluation cannot use",
        ));
    }
    Ok(())
}

/// Whether a type can be written in a turbofish (no `impl Trait`, `!`, `_` or macro inside).
fn nameable(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type(&mut self, ty: &'ast Type) {
            match ty {
                Type::ImplTrait(_) | Type::Never(_) | Type::Infer(_) | Type::Macro(_) => {
                    self.0 = false;
                }
                _ => syn::visit::visit_type(self, ty),
            }
        }
    }
    let mut f = Finder(true);
    f.visit_type(ty);
    f.0
}

/// Whether the function returns `impl Future<…>` (its body builds a future to instrument).
fn returns_impl_future(sig: &Signature) -> bool {
    match &sig.output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::ImplTrait(it) => it.bounds.iter().any(|b| match b {
                syn::TypeParamBound::Trait(t) => {
                    t.path.segments.last().is_some_and(|s| s.ident == "Future")
                }
                _ => false,
            }),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

fn site(ctx: &Ctx, sig: &Signature) -> TokenStream {
    let Ctx { krate, name, category } = ctx;
    // file!() and line!() take the span of the function's name: its line, not the attribute's.
    let here = sig.ident.span();
    let file = quote_spanned!(here=> ::core::file!());
    let line = quote_spanned!(here=> ::core::line!());
    quote! {
        #[allow(dead_code)]
        struct __MonitorMarker;
        static __MONITOR_SITE: #krate::__private::CallSite = #krate::__private::CallSite::new(
            #name,
            ::core::any::type_name::<__MonitorMarker>,
            ::core::module_path!(),
            #file,
            #line,
            #category,
        );
        #[#krate::__private::linkme::distributed_slice(#krate::__private::CALL_SITES)]
        #[linkme(crate = #krate::__private::linkme)]
        static __MONITOR_SITE_REF: &#krate::__private::CallSite = &__MONITOR_SITE;
    }
}

fn classify(krate: &TokenStream, value: TokenStream) -> TokenStream {
    quote! {{
        #[allow(unused_imports)]
        use #krate::__private::{ViaErrorName as _, ViaTypeName as _, ViaValue as _};
        (&&&#krate::__private::Probe(#value)).__monitor_outcome()
    }}
}

/// The new body of a monitored function.
fn body(ctx: &Ctx, sig: &Signature, mut block: Block) -> TokenStream {
    let krate = &ctx.krate;
    let site = site(ctx, sig);
    let ret_ty = match &sig.output {
        ReturnType::Type(_, ty) if nameable(ty) => Some(ty.to_token_stream()),
        ReturnType::Type(..) => None,
        ReturnType::Default => Some(quote!(())),
    };
    let outcome = classify(krate, quote!(__monitor_ret));

    if sig.asyncness.is_some() {
        // The body becomes an async block; `return` and `?` keep their meaning inside it. The
        // fake return pins the block's output type for `?` conversions.
        let fake_return = ret_ty.map(|ty| {
            quote! {
                #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::let_unit_value)]
                if false {
                    let __monitor_fake: #ty = loop {};
                    return __monitor_fake;
                }
            }
        });
        return quote! {{
            #site
            #krate::__private::Instrumented::deferred(
                &__MONITOR_SITE,
                async move { #fake_return #block },
                |__monitor_ret| #outcome,
            )
            .await
        }};
    }

    if matches!(&sig.output, ReturnType::Type(_, ty) if matches!(**ty, Type::Never(_))) {
        // Never returns: the only ends are a panic or the process exiting, which the guard's
        // `Drop` (or nothing) sees; there is no value to classify.
        return quote! {{
            #site
            let mut __monitor_guard = #krate::__private::Guard::idle();
            __monitor_guard.enter(&__MONITOR_SITE);
            #block
        }};
    }

    let label = Lifetime::new("'__monitor_body", Span::call_site());
    let is_future = returns_impl_future(sig);
    // `()` needs no pinning (no `?` can produce it), and pinning it would make a diverging
    // body an unreachable call.
    let pin_ty = match &sig.output {
        ReturnType::Type(..) if !is_future => ret_ty.as_ref(),
        _ => None,
    };
    let mut rewriter = Rewriter { label: &label, krate, ret_ty: pin_ty, changed: false };
    syn::visit_mut::VisitMut::visit_block_mut(&mut rewriter, &mut block);
    rewriter.pin_tail(&mut block);
    let labelled = if rewriter.changed { quote!(#label: #block) } else { block.to_token_stream() };

    if is_future {
        return quote! {{
            #site
            let __monitor_fut = #labelled;
            #krate::__private::Instrumented::new(
                &__MONITOR_SITE,
                __monitor_fut,
                |__monitor_ret| #outcome,
            )
        }};
    }

    let outcome = classify(krate, quote!(&__monitor_ret));
    // Names the value's type before it is classified: a body that never completes leaves it
    // open, and the classification must not pick a type for it.
    let typed = ret_ty.map(|ty| quote!(let __monitor_ret: #ty = __monitor_ret;));
    quote! {{
        #site
        let mut __monitor_guard = #krate::__private::Guard::idle();
            __monitor_guard.enter(&__MONITOR_SITE);
        match #labelled {
            #[allow(unreachable_code)]
            __monitor_ret => {
                #typed
                __monitor_guard.finish(#outcome);
                __monitor_ret
            }
        }
    }}
}

/// A monitored free function or method.
pub(crate) fn function(
    ctx: &Ctx,
    attrs: Vec<Attribute>,
    vis: TokenStream,
    sig: Signature,
    block: Block,
) -> TokenStream {
    let body = body(ctx, &sig, block);
    quote! {
        #(#attrs)*
        #vis #sig #body
    }
}

/// Whether an attribute is `#[monitored]` (however the path to it is spelled).
fn is_monitored(attr: &Attribute) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == "monitored")
}

/// Every method of an impl block, each with its own options (`#[monitored(...)]` on a method
/// refines or, with `skip`, opts it out).
pub(crate) fn impl_block(outer: &Args, mut imp: ItemImpl) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    for item in &mut imp.items {
        let ImplItem::Fn(method) = item else { continue };
        let mut own = Args::default();
        let mut found = false;
        for attr in method.attrs.iter().filter(|a| is_monitored(a)) {
            if found {
                errors.push(syn::Error::new_spanned(attr, "duplicate #[monitored] attribute"));
                continue;
            }
            found = true;
            let tokens = match &attr.meta {
                syn::Meta::Path(_) => TokenStream::new(),
                syn::Meta::List(list) => list.tokens.clone(),
                syn::Meta::NameValue(nv) => {
                    errors.push(syn::Error::new_spanned(nv, "expected #[monitored(...)]"));
                    continue;
                }
            };
            match Args::parse(tokens) {
                Ok(a) => own = a,
                Err(e) => errors.push(e),
            }
        }
        method.attrs.retain(|a| !is_monitored(a));
        if own.skip.is_some() {
            continue;
        }
        if let Err(e) = check_fn(&method.sig) {
            errors.push(e);
            continue;
        }
        let args = own.inherit(outer);
        let ctx = Ctx::new(&args);
        let block = std::mem::replace(&mut method.block, syn::parse_quote!({}));
        let body = body(&ctx, &method.sig, block);
        let (attrs, vis, defaultness, sig) =
            (&method.attrs, &method.vis, &method.defaultness, &method.sig);
        // Emitted as tokens, not re-parsed: syn does not parse every expression rustc accepts
        // (a labelled block as a `match` scrutinee).
        *item = ImplItem::Verbatim(quote! {
            #(#attrs)*
            #vis #defaultness #sig #body
        });
    }
    errors.finish()?;
    Ok(imp.into_token_stream())
}

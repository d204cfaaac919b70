//! Generating the instrumented function. Nothing here fails: validation happened before.
//!
//! The user's body is kept where the compiler expects it, so it type-checks as it did: a body
//! whose value tells nothing about the outcome stays the function's tail; a body whose value
//! is classified becomes the initializer of a `let` typed with the return type, which gives its
//! tail, its `return`s and its `?`s the same expected type as the signature did. The return
//! type is spelled outside the user's block, so nothing the body declares can shadow it.

use proc_macro2::{Delimiter, Group, Ident, Literal, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::visit_mut::VisitMut;
use syn::{
    AttrStyle, Attribute, Block, Expr, GenericArgument, Generics, ImplItem, ItemImpl, Lifetime,
    PathArguments, ReturnType, Signature, Stmt, Type, TypeParamBound,
};

use super::attr::{Args, Errors};
use super::rewrite::Rewriter;

/// What every expansion of one attribute shares.
pub(crate) struct Ctx {
    krate: TokenStream,
    /// The site's `Option<&SiteLabels>`: `None` unless a name or a category is given.
    labels: TokenStream,
    /// The `Objective` of `objective(...)`, checked already, as a constant expression.
    objective: Option<TokenStream>,
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
        let objective = args.objective.map(|o| {
            let some = |t: TokenStream| quote!(::core::option::Option::Some(#t));
            let none = quote!(::core::option::Option::None);
            let success = o.success.map_or_else(
                || none.clone(),
                |p| some(Literal::f64_suffixed(p).into_token_stream()),
            );
            let latency = o.latency.map_or(none, |(ns, p)| {
                let p = Literal::f64_suffixed(p);
                some(quote!((::core::time::Duration::from_nanos(#ns), #p)))
            });
            let window = o.window_s;
            quote!(#krate::__private::Objective::__checked(
                #success,
                #latency,
                ::core::time::Duration::from_secs(#window),
            ))
        });
        let labels = if args.name.is_none() && args.category.is_none() {
            quote!(::core::option::Option::None)
        } else {
            let (name, category) = (opt(&args.name), opt(&args.category));
            quote!(::core::option::Option::Some(&#krate::__private::SiteLabels {
                name: #name,
                category: #category,
            }))
        };
        Ctx { krate, labels, objective }
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

/// `ty` as it can be written in a `let` or a turbofish: every `impl Trait`, `!` and type macro
/// becomes `_`. `None` if nothing but `_` is left.
fn spelled(ty: &Type) -> Option<TokenStream> {
    struct Opaque;
    impl VisitMut for Opaque {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            match ty {
                Type::ImplTrait(_) | Type::Never(_) | Type::Macro(_) => {
                    *ty = Type::Infer(syn::TypeInfer { underscore_token: Default::default() });
                }
                _ => syn::visit_mut::visit_type_mut(self, ty),
            }
        }
    }
    let mut ty = ty.clone();
    Opaque.visit_type_mut(&mut ty);
    match strip(&ty) {
        Type::Infer(_) => None,
        _ => Some(ty.into_token_stream()),
    }
}

/// `ty` without parentheses or invisible groups around it.
fn strip(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Paren(p) => ty = &p.elem,
            Type::Group(g) => ty = &g.elem,
            _ => return ty,
        }
    }
}

/// Types whose values never tell an error: calls returning them succeed unless they panic.
const PLAIN_TYPES: &[&str] = &[
    "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64",
    "i128", "isize", "f32", "f64", "String", "Vec", "Option", "Box",
];

/// Whether a value of `ty` cannot be an error (the outcome classifier would always answer
/// success): a unit, tuple, reference, pointer, array, `impl Trait`, `!`, a primitive or a
/// few standard types, or one of the function's own type parameters (whose `Result`-ness is
/// not visible inside a generic function).
fn valueless(ty: &Type, generics: &Generics) -> bool {
    match strip(ty) {
        Type::Tuple(_)
        | Type::Reference(_)
        | Type::Ptr(_)
        | Type::Array(_)
        | Type::Slice(_)
        | Type::ImplTrait(_)
        | Type::Never(_)
        | Type::BareFn(_)
        | Type::TraitObject(_) => true,
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else { return false };
            let name = last.ident.to_string();
            PLAIN_TYPES.contains(&name.as_str())
                || (p.path.segments.len() == 1
                    && matches!(last.arguments, PathArguments::None)
                    && generics.type_params().any(|t| t.ident == last.ident))
        }
        _ => false,
    }
}

/// How a function's value relates to its call.
enum Returns {
    /// The value tells nothing about the outcome (see [`valueless`]).
    Valueless,
    /// The value is classified; the return type as it can be spelled in a `let`.
    Value(TokenStream),
    /// The body builds a future that is the call (`impl Future<Output = X>`), with the output
    /// type `X` if the signature gives it.
    Future(Option<Type>),
    /// The same, boxed: `Pin<Box<dyn Future<Output = X>>>`; with the return type as it can be
    /// spelled in a `let`.
    Boxed(Option<Type>, Option<TokenStream>),
}

/// The `Output = X` of a `Future` bound, `Some(None)` for a `Future` bound without it, `None`
/// for a bound that is not a future.
fn future_bound(bound: &TypeParamBound) -> Option<Option<Type>> {
    let TypeParamBound::Trait(t) = bound else { return None };
    let last = t.path.segments.last()?;
    if last.ident != "Future" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return Some(None) };
    Some(args.args.iter().find_map(|a| match a {
        GenericArgument::AssocType(b) if b.ident == "Output" => Some(b.ty.clone()),
        _ => None,
    }))
}

/// The first type argument of the last segment of a path type named `name`.
fn type_arg<'t>(ty: &'t Type, name: &str, index: usize) -> Option<&'t Type> {
    let Type::Path(p) = strip(ty) else { return None };
    let last = p.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    args.args
        .iter()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .nth(index)
}

/// A boxed future's output: `Pin<Box<dyn Future<Output = X> + …>>`, or futures' `BoxFuture<'a,
/// X>` and `LocalBoxFuture<'a, X>` (what `#[async_trait]` and hand-written trait objects return).
fn boxed_future(ty: &Type) -> Option<Option<Type>> {
    if let Some(out) = type_arg(ty, "BoxFuture", 0).or_else(|| type_arg(ty, "LocalBoxFuture", 0)) {
        return Some(Some(out.clone()));
    }
    let boxed = type_arg(type_arg(ty, "Pin", 0)?, "Box", 0)?;
    let Type::TraitObject(obj) = strip(boxed) else { return None };
    obj.bounds.iter().find_map(future_bound)
}

fn returns(sig: &Signature) -> Returns {
    let ReturnType::Type(_, ty) = &sig.output else { return Returns::Valueless };
    if let Type::ImplTrait(it) = strip(ty) {
        if let Some(output) = it.bounds.iter().find_map(future_bound) {
            return Returns::Future(output);
        }
    }
    if let Some(output) = boxed_future(ty) {
        return Returns::Boxed(output, spelled(ty));
    }
    if valueless(ty, &sig.generics) {
        return Returns::Valueless;
    }
    match spelled(ty) {
        Some(ty) => Returns::Value(ty),
        None => Returns::Valueless,
    }
}

fn site(ctx: &Ctx, sig: &Signature) -> TokenStream {
    let Ctx { krate, labels, objective } = ctx;
    let objective = objective.as_ref().map(|o| linked_objective(krate, o));
    // file!() and line!() take the span of the function's name: its line, not the attribute's.
    // The module and the file as one string (see `CallSite`'s `place`).
    let here = sig.ident.span();
    let place =
        quote_spanned!(here=> ::core::concat!(::core::module_path!(), " ", ::core::file!()));
    let line = quote_spanned!(here=> ::core::line!());
    let site = linked(
        krate,
        "__MONITOR_SITE",
        &quote!(CallSite),
        &quote! {
            #krate::__private::CallSite::new(
                #labels,
                ::core::any::type_name::<__MonitorMarker>,
                #place,
                #line,
            )
        },
        "monitor_call_sites",
        &quote!(CALL_SITES),
    );
    quote! {
        #[allow(dead_code)]
        struct __MonitorMarker;
        #site
        #objective
    }
}

/// The objective of `objective(...)`, gathered by the linker like the site it names.
fn linked_objective(krate: &TokenStream, objective: &TokenStream) -> TokenStream {
    linked(
        krate,
        "__MONITOR_OBJECTIVE",
        &quote!(LinkedObjective),
        &quote!(#krate::__private::LinkedObjective::new(&__MONITOR_SITE, #objective)),
        "monitor_objectives",
        &quote!(OBJECTIVES),
    )
}

/// The targets whose linker gathers a named section between `__start_`/`__stop_` symbols
/// (monitor-core's `linked_items!` reads them there).
fn elf() -> TokenStream {
    quote! {
        any(
            target_os = "linux",
            target_os = "android",
            target_os = "fuchsia",
            target_os = "freebsd",
            target_os = "openbsd",
        )
    }
}

/// `static name: __private::ty = init;`, gathered by the linker for the runtime
/// (monitor-core's `linked_items!`): on ELF targets the static itself goes in the link section
/// `section` (one static per item: each costs the compiler about as much as the rest of the
/// expansion); elsewhere `linkme` gathers a reference to it into `__private::slice`.
fn linked(
    krate: &TokenStream,
    name: &str,
    ty: &TokenStream,
    init: &TokenStream,
    section: &str,
    slice: &TokenStream,
) -> TokenStream {
    let elf = elf();
    let reference = Ident::new(&format!("{name}_REF"), Span::call_site());
    let name = Ident::new(name, Span::call_site());
    quote! {
        #[cfg_attr(#elf, used, unsafe(link_section = #section))]
        static #name: #krate::__private::#ty = #init;
        #[cfg(not(#elf))]
        #[#krate::__private::linkme::distributed_slice(#krate::__private::#slice)]
        #[linkme(crate = #krate::__private::linkme)]
        static #reference: &#krate::__private::#ty = &#name;
    }
}

/// The outcome of the value `value` refers to.
fn classify(krate: &TokenStream, value: &TokenStream) -> TokenStream {
    quote! {{
        #[allow(unused_imports)]
        use #krate::__private::Classify as _;
        (&&&#krate::__private::Probe(#value)).__monitor_outcome()
    }}
}

/// The outcome classifier of a future whose output is `output`.
fn classifier(krate: &TokenStream, output: Option<&Type>, generics: &Generics) -> TokenStream {
    match output {
        Some(ty) if !valueless(ty, generics) => {
            let ret = Ident::new("__monitor_ret", Span::mixed_site());
            let outcome = classify(krate, &ret.to_token_stream());
            quote!(|#ret| #outcome)
        }
        _ => quote!(#krate::__private::success),
    }
}

/// The one expression of a block that is nothing else, to pass as an argument (braces around
/// an argument are linted as unnecessary); else the block.
fn as_argument(mut block: Block) -> TokenStream {
    if let [Stmt::Expr(_, None)] = block.stmts.as_slice() {
        if let Some(Stmt::Expr(e, None)) = block.stmts.pop() {
            return e.into_token_stream();
        }
    }
    block.into_token_stream()
}

/// `future` (tokens) told its output type, if the signature gives one.
fn told_output(krate: &TokenStream, output: Option<&Type>, future: TokenStream) -> TokenStream {
    match output.and_then(spelled) {
        Some(ty) => quote!(#krate::__private::with_output::<#ty, _>(#future)),
        None => future,
    }
}

/// The new body of a monitored function. `inner` are the body's inner attributes.
///
/// Its braces are the user's, so lints that look at a function as a whole see the user's
/// function and keep reporting what they did (what the expansion adds inside is marked as
/// macro output, which lints skip). The exceptions are the bodies that lints accept only in
/// one exact form, which the added statements would break: an empty body (a type parameter
/// used only in bounds, as `fn assert_send<T: Send>() {}`) and the canonical `clone` and
/// `partial_cmp` of `Copy` and `Ord` types. Their braces are the expansion's, located where
/// the user's are.
fn body(ctx: &Ctx, sig: &Signature, inner: &[Attribute], block: Block) -> TokenStream {
    let mut braces = block.brace_token.span.join();
    if block.stmts.is_empty() || sig.ident == "clone" || sig.ident == "partial_cmp" {
        braces = Span::call_site().located_at(braces);
    }
    let mut body = Group::new(Delimiter::Brace, statements(ctx, sig, inner, block));
    body.set_span(braces);
    body.into_token_stream()
}

/// What goes inside the new body's braces.
fn statements(ctx: &Ctx, sig: &Signature, inner: &[Attribute], mut block: Block) -> TokenStream {
    let krate = &ctx.krate;
    let site = site(ctx, sig);
    let guard = Ident::new("__monitor_guard", Span::mixed_site());

    if sig.asyncness.is_some() {
        // The body becomes an async block, told its output type as the signature told it;
        // `return` and `?` keep their meaning inside it.
        let output = match &sig.output {
            ReturnType::Type(_, ty) => Some((**ty).clone()),
            ReturnType::Default => Some(syn::parse_quote!(())),
        };
        let classifier = classifier(krate, output.as_ref(), &sig.generics);
        let future = told_output(krate, output.as_ref(), quote!(async move #block));
        let body = Ident::new("__monitor_body", Span::mixed_site());
        return quote! {
            #(#inner)*
            #site
            // An `async fn` may return a future; its body then yields one on purpose.
            #[allow(clippy::async_yields_async)]
            let #body = #future;
            #krate::__private::Instrumented::deferred(&__MONITOR_SITE, #body, #classifier).await
        };
    }

    let label = Lifetime::new("'__monitor_body", Span::call_site());
    match returns(sig) {
        Returns::Valueless => {
            // The call ends when the guard drops, however the body leaves: nothing to rewrite.
            // The body's items go before the guard's statements, as they stood before the
            // body's (an item is visible in all of its block wherever it stands).
            let (items, stmts): (Vec<Stmt>, Vec<Stmt>) =
                block.stmts.into_iter().partition(|s| matches!(s, Stmt::Item(_)));
            quote! {
                #(#inner)*
                #site
                #(#items)*
                let mut #guard = #krate::__private::Guard::idle();
                #guard.enter_valueless(&__MONITOR_SITE);
                #(#stmts)*
            }
        }
        Returns::Value(ty) => {
            let mut rewriter = Rewriter { label: &label, krate, changed: false };
            rewriter.visit_block_mut(&mut block);
            let labelled =
                if rewriter.changed { quote!(#label: #block) } else { block.to_token_stream() };
            let ret = Ident::new("__monitor_ret", Span::mixed_site());
            let outcome = classify(krate, &quote!(&#ret));
            quote! {
                #(#inner)*
                #site
                let mut #guard = #krate::__private::Guard::idle();
                #guard.enter(&__MONITOR_SITE);
                let #ret: #ty = #labelled;
                // Unreachable when the body diverges (`todo!()`, `process::exit`).
                #[allow(unreachable_code)]
                #guard.finish(#outcome);
                #[allow(unreachable_code)]
                #ret
            }
        }
        Returns::Boxed(output, ty) => {
            let classifier = classifier(krate, output.as_ref(), &sig.generics);
            let mut rewriter = Rewriter { label: &label, krate, changed: false };
            rewriter.visit_block_mut(&mut block);
            if !rewriter.changed {
                if let Some(tail) = boxed_in_place(krate, &mut block, output.as_ref(), &classifier)
                {
                    let stmts = block.stmts;
                    return quote! {
                        #(#inner)*
                        #site
                        #(#stmts)*
                        #tail
                    };
                }
            }
            // Any other body: its future is wrapped and boxed again.
            let labelled =
                if rewriter.changed { quote!(#label: #block) } else { block.to_token_stream() };
            let annotation = ty.map(|ty| quote!(: #ty));
            let fut = Ident::new("__monitor_fut", Span::mixed_site());
            quote! {
                #(#inner)*
                #site
                let #fut #annotation = #labelled;
                ::std::boxed::Box::pin(
                    #krate::__private::Instrumented::new(&__MONITOR_SITE, #fut, #classifier)
                )
            }
        }
        Returns::Future(output) => {
            let classifier = classifier(krate, output.as_ref(), &sig.generics);
            let mut rewriter = Rewriter { label: &label, krate, changed: false };
            rewriter.visit_block_mut(&mut block);
            let value = if rewriter.changed { quote!(#label: #block) } else { as_argument(block) };
            let future = told_output(krate, output.as_ref(), value);
            let fut = Ident::new("__monitor_fut", Span::mixed_site());
            quote! {
                #(#inner)*
                #site
                #[allow(clippy::async_yields_async)]
                let #fut = #future;
                #krate::__private::Instrumented::new(&__MONITOR_SITE, #fut, #classifier)
            }
        }
    }
}

/// For a body that ends in `Box::pin(future)` with no other exit (what `#[async_trait]`
/// writes): the tail with the future instrumented inside the same box, so the call costs no
/// second allocation. An `async` block's call starts at its first poll, as an `async fn`'s.
fn boxed_in_place(
    krate: &TokenStream,
    block: &mut Block,
    output: Option<&Type>,
    classifier: &TokenStream,
) -> Option<Expr> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = block.stmts.last() else { return None };
    let Expr::Path(func) = &*call.func else { return None };
    let mut segments = func.path.segments.iter().rev();
    let is_box_pin = segments.next().is_some_and(|s| s.ident == "pin")
        && segments.next().is_some_and(|s| s.ident == "Box");
    if !is_box_pin || call.args.len() != 1 {
        return None;
    }
    let Some(Stmt::Expr(Expr::Call(mut call), None)) = block.stmts.pop() else { return None };
    let arg = call.args.pop()?.into_value();
    let start = if matches!(arg, Expr::Async(_)) { quote!(deferred) } else { quote!(new) };
    let arg = told_output(krate, output, arg.into_token_stream());
    call.args.push(Expr::Verbatim(quote! {
        #krate::__private::Instrumented::#start(&__MONITOR_SITE, #arg, #classifier)
    }));
    Some(Expr::Call(call))
}

/// Splits a function's attributes into its outer ones and the inner ones of its body, which
/// go inside the new body.
fn split_inner(attrs: Vec<Attribute>) -> (Vec<Attribute>, Vec<Attribute>) {
    attrs.into_iter().partition(|a| matches!(a.style, AttrStyle::Outer))
}

/// A monitored free function or method.
pub(crate) fn function(
    ctx: &Ctx,
    attrs: Vec<Attribute>,
    vis: TokenStream,
    sig: Signature,
    block: Block,
) -> TokenStream {
    let (outer, inner) = split_inner(attrs);
    let body = body(ctx, &sig, &inner, block);
    quote! {
        #(#outer)*
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
        let (attrs, inner) = split_inner(std::mem::take(&mut method.attrs));
        let body = body(&ctx, &method.sig, &inner, block);
        let (vis, defaultness, sig) = (&method.vis, &method.defaultness, &method.sig);
        // Emitted as tokens, not re-parsed: syn does not parse every expression rustc accepts
        // (a labelled block as a `let` initializer in some positions).
        *item = ImplItem::Verbatim(quote! {
            #(#attrs)*
            #vis #defaultness #sig #body
        });
    }
    errors.finish()?;
    Ok(imp.into_token_stream())
}

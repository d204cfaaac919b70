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
    pub(crate) objective: Option<ObjectiveArgs>,
}

/// A checked `objective(...)`: targets in percent, durations in nanoseconds.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) struct ObjectiveArgs {
    pub(crate) success: Option<f64>,
    pub(crate) latency: Option<(u64, f64)>,
    pub(crate) window_s: u64,
}

/// The shortest and longest window, as the runtime's `Objective::window` accepts them.
const MIN_WINDOW_S: u64 = 3600;
const MAX_WINDOW_S: u64 = 366 * 86_400;

/// A duration such as `250ms`, `1.5s`, `30d`: a number and one unit of `ns`, `us` (or `µs`),
/// `ms`, `s`, `m`, `h`, `d`. In nanoseconds.
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let example = "write e.g. \"250ms\", \"2s\" or \"30d\"";
    if number.is_empty() {
        return Err(format!("`{t}` is not a duration; {example}"));
    }
    let scale: f64 = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        "" => return Err(format!("`{t}` has no unit; {example}")),
        other => {
            return Err(format!("unknown unit `{other}`; use ns, us, ms, s, m, h or d"));
        }
    };
    let value: f64 = number.parse().map_err(|_| format!("`{t}` is not a duration; {example}"))?;
    let ns = (value * scale).round();
    if !ns.is_finite() || ns >= 1e19 {
        return Err(format!("`{t}` is too long"));
    }
    // In range: checked just above.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(ns as u64)
}

fn percent_value(nv: &syn::MetaNameValue, errors: &mut Errors) -> Option<f64> {
    let value = match &nv.value {
        Expr::Lit(ExprLit { lit: Lit::Float(f), .. }) => f.base10_parse::<f64>().ok(),
        Expr::Lit(ExprLit { lit: Lit::Int(i), .. }) => i.base10_parse::<f64>().ok(),
        _ => None,
    };
    match value {
        Some(p) if p > 0.0 && p < 100.0 => Some(p),
        Some(_) => {
            errors.push(syn::Error::new_spanned(
                &nv.value,
                "a target is a percentage strictly between 0 and 100, such as 99.9",
            ));
            None
        }
        None => {
            errors.push(syn::Error::new_spanned(
                &nv.value,
                "expected a percentage as a number, such as 99.9",
            ));
            None
        }
    }
}

fn duration_value(nv: &syn::MetaNameValue, errors: &mut Errors) -> Option<(u64, Span)> {
    let s = string_value(nv, errors)?;
    match parse_duration(&s.value()) {
        Ok(ns) => Some((ns, s.span())),
        Err(why) => {
            errors.push(syn::Error::new(s.span(), why));
            None
        }
    }
}

impl ObjectiveArgs {
    fn parse(list: &syn::MetaList, outer: &mut Errors) -> Option<ObjectiveArgs> {
        let mut local = Errors::default();
        let errors = &mut local;
        let metas = match list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
            Ok(m) => m,
            Err(e) => {
                outer.push(e);
                return None;
            }
        };
        let (mut success, mut latency, mut target, mut window) = (None, None, None, None);
        let (mut latency_key, mut target_given) = (None, false);
        for meta in &metas {
            let key = meta.path().clone();
            match (key.get_ident().map(ToString::to_string).as_deref(), meta) {
                (Some("success"), Meta::NameValue(nv)) => {
                    if let Some(p) = percent_value(nv, errors) {
                        set_once(&mut success, p, &key, errors);
                    }
                }
                (Some("latency_target"), Meta::NameValue(nv)) => {
                    target_given = true;
                    if let Some(p) = percent_value(nv, errors) {
                        set_once(&mut target, p, &key, errors);
                    }
                }
                (Some("latency"), Meta::NameValue(nv)) => {
                    latency_key = Some(key.clone());
                    if let Some((ns, span)) = duration_value(nv, errors) {
                        if ns == 0 || ns >= 86_400_000_000_000 {
                            errors.push(syn::Error::new(
                                span,
                                "the latency bound must be more than zero and less than a day",
                            ));
                        } else {
                            set_once(&mut latency, ns, &key, errors);
                        }
                    }
                }
                (Some("window"), Meta::NameValue(nv)) => {
                    if let Some((ns, span)) = duration_value(nv, errors) {
                        let secs = ns / 1_000_000_000;
                        if ns % 1_000_000_000 != 0 || !(MIN_WINDOW_S..=MAX_WINDOW_S).contains(&secs)
                        {
                            errors.push(syn::Error::new(
                                span,
                                "the window must be whole seconds between 1h and 366d (30d is usual)",
                            ));
                        } else {
                            set_once(&mut window, secs, &key, errors);
                        }
                    }
                }
                (Some(k @ ("success" | "latency" | "latency_target" | "window")), _) => {
                    errors.push(syn::Error::new_spanned(meta, format!("expected `{k} = ...`")))
                }
                _ => errors.push(syn::Error::new_spanned(
                    &key,
                    "unknown objective option; expected `success`, `latency`, `latency_target` \
                     or `window`",
                )),
            }
        }
        // Given but refused counts as given: its own error says what is wrong.
        match (&latency_key, target_given) {
            (Some(key), false) => errors.push(syn::Error::new_spanned(
                key,
                "`latency` needs `latency_target`: the percentage of calls that must be this fast, \
                 such as `latency_target = 99.0`",
            )),
            (None, true) => errors.push(syn::Error::new_spanned(
                list,
                "`latency_target` needs `latency`: the bound, such as `latency = \"250ms\"`",
            )),
            _ => {}
        }
        if metas.is_empty() {
            errors.push(syn::Error::new_spanned(
                list,
                "an objective sets `success = 99.9`, `latency = \"250ms\", latency_target = 99.0`, \
                 or both",
            ));
        }
        if let Some(e) = local.0 {
            outer.push(e);
            return None;
        }
        Some(ObjectiveArgs {
            success,
            latency: latency.zip(target),
            window_s: window.unwrap_or(30 * 86_400),
        })
    }
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
                (Some("objective"), Meta::List(list)) => {
                    if let Some(o) = ObjectiveArgs::parse(list, &mut errors) {
                        set_once(&mut args.objective, o, &key, &mut errors);
                    }
                }
                (Some("objective"), _) => errors.push(syn::Error::new_spanned(
                    &meta,
                    "expected `objective(success = 99.9, latency = \"250ms\", latency_target = 99.0)`",
                )),
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
                        "unknown option `{}`; expected `name`, `category`, `objective`, `skip` or `crate`",
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
            objective: self.objective.or(outer.objective),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration(" 30d "), Ok(30 * 86_400 * 1_000_000_000));
        assert_eq!(parse_duration("2 m"), Ok(120_000_000_000));
        assert_eq!(parse_duration("750µs"), parse_duration("750us"));
        for bad in ["", "ms", "-5ms", "1.2.3s", "5", "5 parsecs", "1e30d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

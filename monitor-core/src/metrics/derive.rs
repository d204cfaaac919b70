//! What `#[derive(Metrics)]` implements: a struct of instruments registered in one call.

use super::{BoolVal, Counter, DurationVal, Event, FloatVal, IntVal, Meter, Scope, Timer};

/// A struct of instruments that registers all of them at once; implement it with
/// `#[derive(Metrics)]`.
///
/// The derive registers each field as `<prefix>.<field>` (the prefix defaults to the struct's
/// name in snake case; `#[metric(prefix = "…")]` changes it), uses a field's doc comment as its
/// description, and accepts `#[metric(name = "…")]`, `#[metric(skip)]` (the field is
/// `Default::default()`) and `#[metric(tags(key = "value", …))]` on fields. A field may itself
/// be a struct deriving `Metrics`: its fields nest under the field's name. The derive also adds
/// `register(&Scope)` and `register_in_module()`.
///
/// # Examples
///
/// ```
/// use monitor_core::{Counter, IntVal, Metrics, Scope};
///
/// #[derive(Metrics)]
/// struct Pool {
///     /// Connections handed out now.
///     in_use: Counter,
///     #[metric(name = "wait_count", tags(pool = "main"))]
///     waits: IntVal,
///     #[metric(skip)]
///     label: String,
/// }
///
/// let pool = Pool::register(&Scope::new("derive_doc"));
/// pool.in_use.inc();
/// let snap = monitor_core::registry().snapshot();
/// let m = snap.metric("derive_doc", "pool.in_use").unwrap();
/// assert_eq!(m.description.as_deref(), Some("Connections handed out now."));
/// assert!(snap.metric("derive_doc", "pool.wait_count").is_some());
/// assert!(pool.label.is_empty());
/// ```
pub trait Metrics: Sized {
    /// Creates (or finds) every instrument in `scope` under `prefix.<field>`.
    fn register_as(scope: &Scope, prefix: &str) -> Self;
}

/// What a field of a `#[derive(Metrics)]` struct can be: an instrument, or a struct deriving
/// `Metrics`. Not public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an instrument, so #[derive(Metrics)] cannot register it",
    label = "not an instrument",
    note = "fields of a #[derive(Metrics)] struct are Counter, Meter, Event, IntVal, FloatVal, \
            BoolVal, DurationVal, Timer, or structs deriving Metrics; mark others #[metric(skip)]"
)]
pub trait MetricField: Sized {
    fn __monitor_make(scope: &Scope, name: &str, description: Option<&str>) -> Self;
}

macro_rules! metric_fields {
    ($($ty:ident => $described:ident),*) => {
        $(
            impl MetricField for $ty {
                fn __monitor_make(scope: &Scope, name: &str, description: Option<&str>) -> Self {
                    scope.$described(name, description).unwrap_or_else(|_| $ty::new())
                }
            }
        )*
    };
}

metric_fields!(
    Counter => try_counter_described,
    Meter => try_meter_described,
    Event => try_event_described,
    IntVal => try_int_val_described,
    FloatVal => try_float_val_described,
    BoolVal => try_bool_val_described,
    DurationVal => try_duration_val_described,
    Timer => try_timer_described
);

impl<T: Metrics> MetricField for T {
    fn __monitor_make(scope: &Scope, name: &str, _description: Option<&str>) -> Self {
        T::register_as(scope, name)
    }
}

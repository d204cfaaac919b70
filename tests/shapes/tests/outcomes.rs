//! Every shape of `src/lib.rs`, called: each recorded the outcomes its calls had, under the
//! name of its Rust path.

use monitor_core::{registry, FunctionStats, Snapshot};

fn stats<'s>(snap: &'s Snapshot, name: &str) -> &'s FunctionStats {
    let full = format!("monitor_shapes::{name}");
    snap.function(&full)
        .or_else(|| snap.function(name))
        .unwrap_or_else(|| panic!("no function {full}"))
}

/// A shape's name, its successes and its errors by kind.
type Expected = (&'static str, u64, &'static [(&'static str, u64)]);

/// What every shape that was called recorded.
const EXPECTED: &[Expected] = &[
    ("nothing", 1, &[]),
    ("one_line", 1, &[]),
    ("generic", 1, &[]),
    ("impl_trait_arg", 1, &[]),
    ("longest", 1, &[]),
    ("first_word", 1, &[]),
    ("patterns", 1, &[]),
    ("const_generic", 1, &[]),
    ("tuple", 1, &[]),
    ("array", 1, &[]),
    ("fn_pointer", 1, &[]),
    ("cow", 1, &[]),
    ("collects", 1, &[]),
    ("into_string", 1, &[]),
    ("boxed_slice", 1, &[]),
    ("static_str", 1, &[]),
    ("recurse", 4, &[]),
    ("items_inside", 1, &[]),
    ("inner_attributes", 1, &[]),
    ("caller_line", 1, &[]),
    ("with_attributes", 1, &[]),
    ("extern_c", 1, &[]),
    ("raw_read", 1, &[]),
    ("displays", 1, &[]),
    ("key_of", 1, &[]),
    ("hash_at", 1, &[]),
    ("iter_of", 1, &[]),
    ("small_range", 1, &[("()", 1)]),
    ("small_range_string", 1, &[("String", 1)]),
    ("early", 1, &[("Negative", 1)]),
    ("parse_inferred", 1, &[("Parse", 1)]),
    ("boxed_error", 1, &[("dyn Error", 2)]),
    ("io_alias", 1, &[("NotFound", 1)]),
    ("option_q", 2, &[]),
    ("poll_q", 2, &[("Negative", 1)]),
    ("generic_error", 1, &[("ShapeError", 1)]),
    ("static_error", 1, &[("&str", 1)]),
    ("boxed_closure", 1, &[("String", 1)]),
    ("shadowed", 1, &[("String", 1)]),
    ("shadowed_alias", 1, &[]),
    // `?` inside other macros' arguments: the error's own kind, not `hidden_return`.
    ("question_in_format", 1, &[("ParseIntError", 1)]),
    ("question_in_vec", 1, &[("ParseIntError", 1)]),
    ("question_in_write", 1, &[("Parse", 1)]),
    ("question_in_assert", 1, &[("ParseIntError", 1)]),
    ("labelled_loops", 1, &[("Negative", 1)]),
    ("closures_keep_their_returns", 1, &[("ParseIntError", 1)]),
    ("let_else", 1, &[("String", 1)]),
    ("coerce", 3, &[("String", 1)]),
    ("return_tail", 1, &[]),
    ("Counter::new", 5, &[]),
    ("Counter::try_new", 0, &[("String", 1)]),
    ("Counter::get", 1, &[]),
    ("Counter::name", 2, &[]),
    ("Counter::bump", 1, &[]),
    ("Counter::entry", 1, &[]),
    ("Counter::adder", 1, &[]),
    ("Counter::pinned", 1, &[]),
    ("Counter::consume", 1, &[]),
    ("Counter::boxed", 1, &[]),
    ("Counter::shared", 1, &[]),
    ("Counter::counted", 1, &[]),
    ("Counter::into_inner", 1, &[]),
    ("Whole::one", 1, &[]),
    ("shapes::renamed", 1, &[]),
    ("Whole::fails", 1, &[("Negative", 1)]),
    ("Wrapper::get", 1, &[]),
    ("Wrapper::show", 1, &[]),
    ("Wrapper::map", 1, &[]),
    ("Store::fetch_or", 1, &[]),
    ("Whole::fetch", 2, &[]),
    ("Whole::all", 1, &[]),
    ("fetched", 1, &[]),
    ("Wrapper::fmt", 1, &[]),
    ("async_nothing", 1, &[]),
    ("async_one_line", 1, &[]),
    ("async_result", 1, &[("InvalidInput", 1)]),
    ("async_early", 1, &[("Negative", 1)]),
    ("async_ref", 1, &[]),
    ("async_small_range", 1, &[("()", 1)]),
    ("ready_later", 1, &[]),
    ("async_generic", 1, &[]),
    ("read_later", 1, &[]),
    ("Counter::async_get", 1, &[]),
    ("Counter::async_bump", 1, &[]),
    ("impl_future", 1, &[]),
    ("impl_future_result", 1, &[("Negative", 1), ("Parse", 1)]),
    ("boxed_future", 1, &[("String", 1)]),
    ("boxed_alias", 1, &[]),
    // `#[async_trait]` methods: one `Ok` and one `Err` each, told apart.
    ("Counter::call", 1, &[("Negative", 1)]),
    ("Counter::ping", 1, &[]),
    ("Whole::call", 1, &[("Negative", 1)]),
    ("Whole::ping", 1, &[]),
    ("Whole::load", 1, &[]),
];

#[test]
fn every_shape_records_its_outcomes() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let seen = monitor_shapes::exercise(&|fut| rt.block_on(fut));
    assert_eq!(seen.reported_line, seen.caller_line, "#[track_caller] sees the user's call site");

    let snap = registry().snapshot();
    let mut wrong = Vec::new();
    for &(name, success, errors) in EXPECTED {
        let f = stats(&snap, name);
        let mut want: Vec<(&str, u64)> = errors.to_vec();
        want.sort_unstable();
        if (f.success, &f.errors, f.panics, f.cancelled, f.in_flight) != (success, &want, 0, 0, 0) {
            wrong.push(format!(
                "{name}: success {} errors {:?} panics {} cancelled {} in flight {}; want \
                 success {success} errors {want:?}",
                f.success, f.errors, f.panics, f.cancelled, f.in_flight
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Never called, but known.
    for name in ["never_returns", "exits", "unreachable_tail", "todo_body"] {
        assert_eq!(stats(&snap, name).calls(), 0, "{name}");
    }
    // `skip` opts a method out.
    assert!(snap.function("monitor_shapes::Whole::skipped").is_none());
    assert_eq!(stats(&snap, "Whole::one").category, Some("db"));
    // The awaited part of an `#[async_trait]` method is inside its call.
    let call = stats(&snap, "Counter::call");
    assert_eq!(call.success_times.count + call.failure_times.count, 2);
}

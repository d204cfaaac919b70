//! Misuse of the macros gives spanned errors; valid uses compile quietly.
//!
//! The expected compiler output is pinned to stable Rust; refresh it with
//! `TRYBUILD=overwrite cargo test -p monitor-macros --test ui` and review the diff.

#[rustversion::attr(not(stable), ignore = "compiler messages are pinned to stable")]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}

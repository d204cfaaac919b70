//! 10,000 monitored functions for the benches that measure many sites (the snapshot here, the
//! renderers in `monitor-http`, which includes this file): four levels of ten modules, each
//! leaf a function `f` returning `Result`, and `call_all()` calling each once.

/// `level!(next; a b c)` makes modules `a`, `b`, `c`, each filled by `next!()`, and a
/// `call_all` that calls into each: four levels of ten give 10,000 functions `…::f`.
macro_rules! level {
    ($next:ident; $($m:ident)*) => {
        $(pub mod $m { $next!(); })*
        pub fn call_all() { $($m::call_all();)* }
    };
}
macro_rules! leaf {
    () => {
        #[::monitor_core::monitored(category = "bench")]
        pub fn f() -> Result<u32, std::io::Error> {
            Ok(std::hint::black_box(1))
        }
        pub fn call_all() {
            let _ = f();
        }
    };
}
macro_rules! l3 { () => { level!(leaf; d0 d1 d2 d3 d4 d5 d6 d7 d8 d9); }; }
macro_rules! l2 { () => { level!(l3; c0 c1 c2 c3 c4 c5 c6 c7 c8 c9); }; }
macro_rules! l1 { () => { level!(l2; b0 b1 b2 b3 b4 b5 b6 b7 b8 b9); }; }

level!(l1; a0 a1 a2 a3 a4 a5 a6 a7 a8 a9);

//! `#[monitored]` on every shape of function the issue lists, and the names they get.
#![allow(unsafe_code)] // `#[monitored] unsafe fn` is one of the shapes under test.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use monitor_core::{monitored, registry};

#[monitored]
fn free(x: u32) -> u32 {
    x + 1
}

#[monitored]
pub(crate) fn generic<T, U>(t: T, u: U) -> String
where
    T: Display,
    U: Into<String>,
{
    format!("{t}{}", u.into())
}

#[monitored]
fn impl_trait_arg(it: impl IntoIterator<Item = u32>) -> impl Display {
    it.into_iter().sum::<u32>()
}

#[monitored]
unsafe fn raw_read(p: *const u32) -> u32 {
    // SAFETY: callers pass a pointer to a live u32.
    unsafe { *p }
}

#[monitored]
fn early(x: i32) -> Result<i32, String> {
    if x < 0 {
        return Err("negative".to_string());
    }
    let parsed: i32 = "7".parse::<i32>().map_err(|e| e.to_string())?;
    for i in 0.. {
        if i == x {
            return Ok(i + parsed);
        }
    }
    unreachable!()
}

#[monitored]
fn option_q(v: &[u32]) -> Option<u32> {
    let first = v.first()?;
    Some(*first * 2)
}

#[monitored]
fn returns_unit(flag: bool) {
    if flag {
        return;
    }
    std::hint::black_box(flag);
}

struct Counter {
    n: u32,
}

impl Counter {
    #[monitored]
    fn new() -> Self {
        Counter { n: 0 }
    }

    #[monitored]
    fn get(&self) -> u32 {
        self.n
    }

    #[monitored]
    fn bump(&mut self) -> &mut u32 {
        self.n += 1;
        &mut self.n
    }

    #[monitored]
    fn into_inner(self) -> u32 {
        self.n
    }

    #[monitored]
    fn shared(self: Arc<Self>) -> u32 {
        self.n
    }

    #[monitored]
    async fn async_get(&self) -> u32 {
        self.n
    }
}

struct Whole;

#[monitored(category = "db")]
impl Whole {
    fn one(&self) -> u8 {
        1
    }

    #[monitored(name = "whole::renamed")]
    fn two(&self) -> u8 {
        2
    }

    #[monitored(skip)]
    fn skipped(&self) -> u8 {
        3
    }

    #[monitored(category = "cache")]
    async fn three(&self) -> u8 {
        3
    }
}

trait Greeter {
    fn greet(&self) -> String;
}

#[monitored]
impl Greeter for Whole {
    fn greet(&self) -> String {
        "hi".into()
    }
}

struct Gen<T>(T);

impl<T: Clone> Gen<T> {
    #[monitored]
    fn get(&self) -> T {
        self.0.clone()
    }
}

#[monitored]
async fn async_free(x: u32) -> Result<u32, std::io::Error> {
    let y = std::future::ready(x).await;
    if y == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    Ok(y)
}

#[monitored]
fn impl_future(x: u32) -> impl Future<Output = u32> {
    async move { x * 3 }
}

#[monitored]
#[track_caller]
fn caller_line() -> u32 {
    std::panic::Location::caller().line()
}

#[monitored]
fn recurse(n: u32) -> u32 {
    if n == 0 {
        0
    } else {
        1 + recurse(n - 1)
    }
}

fn count(name: &str) -> u64 {
    let snap = registry().snapshot();
    snap.function(name).unwrap_or_else(|| panic!("no function {name}")).calls()
}

#[test]
fn every_shape_runs_and_is_named() {
    assert_eq!(free(1), 2);
    assert_eq!(generic(1, "a"), "1a");
    assert_eq!(impl_trait_arg(vec![1, 2]).to_string(), "3");
    let v = 5u32;
    // SAFETY: `v` is alive.
    assert_eq!(unsafe { raw_read(&v) }, 5);
    assert_eq!(early(-1), Err("negative".into()));
    assert_eq!(early(2), Ok(9));
    assert_eq!(option_q(&[]), None);
    assert_eq!(option_q(&[4]), Some(8));
    returns_unit(true);
    returns_unit(false);
    let mut c = Counter::new();
    *c.bump() += 10;
    assert_eq!(c.get(), 11);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(c.async_get()), 11);
    assert_eq!(Arc::new(Counter { n: 4 }).shared(), 4);
    assert_eq!(c.into_inner(), 11);
    let w = Whole;
    assert_eq!(w.one() + w.two() + w.skipped() + rt.block_on(w.three()), 9);
    assert_eq!(w.greet(), "hi");
    assert_eq!(Gen(3u8).get(), 3);
    assert_eq!(Gen("s").get(), "s");
    assert_eq!(rt.block_on(async_free(2)).unwrap(), 2);
    assert!(rt.block_on(async_free(0)).is_err());
    assert_eq!(rt.block_on(impl_future(2)), 6);
    assert_eq!(recurse(4), 4);
    let line = line!() + 1;
    assert_eq!(caller_line(), line, "#[track_caller] must see the user's call site");

    let t = "test_shapes::";
    for (name, calls) in [
        ("free", 1),
        ("generic", 1),
        ("impl_trait_arg", 1),
        ("raw_read", 1),
        ("early", 2),
        ("option_q", 2),
        ("returns_unit", 2),
        ("Counter::new", 1),
        ("Counter::get", 1),
        ("Counter::bump", 1),
        ("Counter::into_inner", 1),
        ("Counter::shared", 1),
        ("Counter::async_get", 1),
        ("Whole::one", 1),
        ("Whole::three", 1),
        ("Whole::greet", 1),
        ("Gen::get", 2),
        ("async_free", 2),
        ("impl_future", 1),
        ("recurse", 5),
        ("caller_line", 1),
    ] {
        assert_eq!(count(&format!("{t}{name}")), calls, "{name}");
    }
    assert_eq!(count("whole::renamed"), 1);
    let snap = registry().snapshot();
    assert!(snap.function("test_shapes::Whole::skipped").is_none());
    assert_eq!(snap.function("test_shapes::Whole::one").unwrap().category, Some("db"));
    assert_eq!(snap.function("test_shapes::Whole::three").unwrap().category, Some("cache"));
    assert_eq!(snap.function("test_shapes::free").unwrap().module, "test_shapes");
    assert_eq!(snap.function("test_shapes::early").unwrap().error("String"), 1);
    assert_eq!(snap.function("test_shapes::async_free").unwrap().error("InvalidInput"), 1);
}

trait Shape {
    fn area(&self) -> f64;
}
struct Sq;
struct Circle;
impl Shape for Sq {
    fn area(&self) -> f64 {
        1.0
    }
}
impl Shape for Circle {
    fn area(&self) -> f64 {
        3.0
    }
}

/// Branches of different types coerce to the return type, as in the original body.
#[monitored]
fn coerce(round: bool, early: bool) -> Box<dyn Shape> {
    if early {
        return Box::new(Sq);
    }
    if round {
        Box::new(Circle)
    } else {
        Box::new(Sq)
    }
}

#[derive(Debug)]
struct MyErr;
impl From<std::num::ParseIntError> for MyErr {
    fn from(_: std::num::ParseIntError) -> Self {
        MyErr
    }
}

/// `?` converts with `From` into the declared error type.
#[monitored]
fn converts(s: &str) -> Result<u8, MyErr> {
    Ok(s.parse::<u8>()?)
}

/// A diverging body compiles without warnings (the build denies them).
#[monitored]
#[allow(dead_code)]
fn not_yet(x: u32) -> u32 {
    let _ = x;
    todo!()
}

#[monitored]
#[allow(dead_code)]
fn never_returns() -> ! {
    loop {
        std::thread::park();
    }
}

#[test]
fn coercions_and_conversions_work_as_unmonitored() {
    assert_eq!(
        coerce(true, false).area() + coerce(false, false).area() + coerce(true, true).area(),
        5.0
    );
    assert!(converts("x").is_err());
    assert_eq!(converts("9").unwrap(), 9);
    let snap = registry().snapshot();
    assert_eq!(snap.function("test_shapes::converts").unwrap().error("MyErr"), 1);
}

struct Early;

#[monitored]
impl Early {
    fn put(&self, v: u64) -> Result<u64, String> {
        if v == 0 {
            return Err("zero".into());
        }
        let parsed: u64 = "1".parse::<u64>().map_err(|e| e.to_string())?;
        Ok(v + parsed)
    }
}

#[test]
fn early_returns_in_impl_blocks() {
    assert_eq!(Early.put(0), Err("zero".into()));
    assert_eq!(Early.put(1), Ok(2));
    let snap = registry().snapshot();
    let f = snap.function("test_shapes::Early::put").unwrap();
    assert_eq!((f.success, f.error("String")), (1, 1));
}

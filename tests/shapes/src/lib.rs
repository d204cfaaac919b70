//! `#[monitored]` on every shape of function found in real crates, compiled with every warning
//! denied, clippy's default, pedantic and nursery groups denied, and the restriction lints that
//! look at what a macro generates. Without the attribute this code is clean under the same
//! lints (`bash .ci/shapes-bare` checks it), so any lint here is the expansion's.
//!
//! [`exercise`] calls every shape; `tests/outcomes.rs` checks what each call recorded.
#![deny(warnings)]
#![deny(clippy::all, clippy::pedantic, clippy::nursery)]
#![deny(
    clippy::allow_attributes_without_reason,
    clippy::absolute_paths,
    clippy::dbg_macro,
    clippy::expect_used,
    clippy::pattern_type_mismatch,
    clippy::print_stdout,
    clippy::shadow_unrelated,
    clippy::std_instead_of_alloc,
    clippy::unwrap_used,
    clippy::used_underscore_binding,
    clippy::used_underscore_items
)]
#![deny(
    unused,
    unused_qualifications,
    unused_results,
    unused_lifetimes,
    unused_import_braces,
    unused_macro_rules,
    rust_2018_idioms,
    unreachable_pub,
    single_use_lifetimes,
    trivial_casts,
    trivial_numeric_casts,
    let_underscore_drop,
    missing_debug_implementations,
    missing_copy_implementations,
    missing_docs,
    redundant_lifetimes,
    unit_bindings,
    meta_variable_misuse,
    non_ascii_idents,
    elided_lifetimes_in_paths,
    explicit_outlives_requirements,
    keyword_idents,
    unnameable_types,
    variant_size_differences
)]

extern crate alloc;

use alloc::borrow::Cow;
use alloc::rc::Rc;
use alloc::sync::Arc;
use core::fmt::{self, Display, Write as _};
use core::future::{ready, Future, Ready};
use core::num::ParseIntError;
use core::panic::Location;
use core::pin::Pin;
use core::ptr;
use core::task::Poll;
use std::collections::HashMap;
use std::error::Error;
use std::hint::black_box;
use std::{io, process, thread};

use monitor_core::{monitored, ErrorKind};

/// What a shape needs from outside so that the optimiser cannot see through it, and clippy
/// cannot suggest `const fn`.
#[allow(clippy::missing_const_for_fn, reason = "`black_box` is not const on every toolchain")]
fn opaque<T>(v: T) -> T {
    black_box(v)
}

// ---------------------------------------------------------------------------------------------
// Free functions

#[monitored]
fn nothing() {
    let _ = opaque(1);
}

#[monitored]
fn one_line(x: u32) -> u32 {
    opaque(x) + 1
}

#[monitored(objective(success = 99.95, latency = "250ms", latency_target = 99.0, window = "30d"))]
fn with_objective(x: u32) -> Result<u32, io::Error> {
    match opaque(x) {
        0 => Err(io::Error::other("zero")),
        x => Ok(x),
    }
}

#[monitored]
fn generic<T, U>(t: &T, u: U) -> String
where
    T: Display,
    U: Into<String>,
{
    format!("{t}{}", u.into())
}

#[monitored]
fn impl_trait_arg(it: impl IntoIterator<Item = u32>) -> u32 {
    it.into_iter().sum()
}

#[monitored]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if opaque(a.len()) >= b.len() {
        a
    } else {
        b
    }
}

#[monitored]
fn first_word(s: &str) -> &str {
    s.split(' ').next().unwrap_or(s)
}

#[monitored]
fn patterns((a, b): (u32, u32), mut c: u32) -> u32 {
    c += opaque(a) * b;
    c
}

#[monitored]
fn const_generic<const N: usize>(bytes: [u8; N]) -> usize {
    opaque(bytes).len() + N
}

#[monitored]
fn tuple(x: u32) -> (u32, String) {
    (opaque(x), x.to_string())
}

#[monitored]
fn array(x: u8) -> [u8; 4] {
    [opaque(x); 4]
}

#[monitored]
fn fn_pointer(double: bool) -> fn(u32) -> u32 {
    fn twice(x: u32) -> u32 {
        opaque(x) * 2
    }
    fn same(x: u32) -> u32 {
        opaque(x)
    }
    if opaque(double) {
        twice
    } else {
        same
    }
}

#[monitored]
fn cow(s: &str) -> Cow<'_, str> {
    if opaque(s).contains(' ') {
        Cow::Owned(s.replace(' ', "_"))
    } else {
        Cow::Borrowed(s)
    }
}

#[monitored]
fn collects(n: u32) -> Vec<u32> {
    (0..opaque(n)).collect()
}

#[monitored]
fn into_string(s: &str) -> String {
    opaque(s).into()
}

#[monitored]
fn boxed_slice(n: u8) -> Box<[u8]> {
    vec![opaque(n); 3].into_boxed_slice()
}

#[monitored]
fn static_str(ok: bool) -> &'static str {
    if opaque(ok) {
        "yes"
    } else {
        "no"
    }
}

#[monitored]
fn recurse(n: u32) -> u32 {
    if opaque(n) == 0 {
        0
    } else {
        1 + recurse(n - 1)
    }
}

/// Items inside the body, after statements of its own and before them.
#[monitored]
fn items_inside(x: u32) -> u32 {
    #[derive(Debug, Clone, Copy)]
    struct Local(u32);
    impl Local {
        fn get(self) -> u32 {
            opaque(self.0)
        }
    }
    const STEP: u32 = 2;
    fn helper(x: u32) -> u32 {
        opaque(x) + STEP
    }
    Local(helper(x)).get()
}

/// The body's inner attributes stay the body's.
#[monitored]
fn inner_attributes(x: u32) -> u32 {
    #![allow(clippy::identity_op, reason = "the shape under test is the inner attribute")]
    opaque(x) + 0
}

#[monitored]
#[track_caller]
fn caller_line() -> u32 {
    opaque(Location::caller().line())
}

#[monitored]
#[inline]
#[must_use]
fn with_attributes(x: u32) -> u32 {
    opaque(x)
}

#[monitored]
extern "C" fn extern_c(x: u32) -> u32 {
    opaque(x) + 2
}

/// Reads a `u32`: an `unsafe fn`, with its own lint level (the crate denies `unsafe_code`).
///
/// # Safety
/// `p` points to a live, aligned `u32`.
#[monitored]
#[allow(unsafe_code, reason = "an `unsafe fn` is one of the shapes under test")]
unsafe fn raw_read(p: *const u32) -> u32 {
    // SAFETY: the caller promises a live, aligned u32.
    unsafe { opaque(p).read() }
}

// ---------------------------------------------------------------------------------------------
// Opaque returns

#[monitored]
fn displays(x: u32) -> impl Display {
    opaque(x) * 2
}

/// Issue 13 (1): a returned closure with untyped parameters keeps the signature it gets from
/// the return type.
#[monitored]
fn key_of() -> impl Fn(&(u32, u32)) -> u32 {
    |&(k, _)| opaque(k)
}

#[monitored]
fn hash_at(entries: &[u64]) -> impl Fn(usize) -> u64 + '_ {
    move |i| opaque(entries[i])
}

#[monitored]
fn iter_of(v: &[u32]) -> impl Iterator<Item = &u32> + '_ {
    v.iter().filter(|x| opaque(**x) > 1)
}

/// Issue 13 (2): `Result<impl Trait, E>`.
#[monitored]
fn small_range(n: u32) -> Result<impl Iterator<Item = u32>, ()> {
    if opaque(n) > 100 {
        return Err(());
    }
    Ok(0..n)
}

#[monitored]
fn small_range_string(n: u32) -> Result<impl Iterator<Item = u32>, String> {
    if opaque(n) > 100 {
        return Err(format!("{n} is too many"));
    }
    Ok(0..n)
}

// ---------------------------------------------------------------------------------------------
// Results and options

#[derive(Debug, ErrorKind)]
enum ShapeError {
    Negative,
    Parse(ParseIntError),
}

impl From<ParseIntError> for ShapeError {
    fn from(e: ParseIntError) -> Self {
        Self::Parse(e)
    }
}

impl Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Negative => f.write_str("negative"),
            Self::Parse(ref e) => write!(f, "parse: {e}"),
        }
    }
}

impl Error for ShapeError {}

#[monitored]
fn early(x: i32) -> Result<i32, ShapeError> {
    if opaque(x) < 0 {
        return Err(ShapeError::Negative);
    }
    let parsed: i32 = "7".parse()?;
    for i in 0.. {
        if i == x {
            return Ok(i + parsed);
        }
    }
    unreachable!()
}

/// The target of `parse` comes from the return type.
#[monitored]
fn parse_inferred(s: &str) -> Result<u8, ShapeError> {
    Ok(opaque(s).parse()?)
}

#[monitored]
fn boxed_error(s: &str) -> Result<u32, Box<dyn Error + Send + Sync>> {
    let n: u32 = opaque(s).parse()?;
    if n == 0 {
        return Err("zero".into());
    }
    Ok(n)
}

#[monitored]
fn io_alias(fail: bool) -> io::Result<()> {
    if opaque(fail) {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    Ok(())
}

#[monitored]
fn option_q(v: &[u32]) -> Option<u32> {
    let first = v.first()?;
    Some(opaque(*first) * 2)
}

#[monitored]
fn poll_q(p: Poll<Result<u32, ShapeError>>) -> Poll<Result<u32, ShapeError>> {
    let v = opaque(p)?;
    v.map(|x| Ok(x + 1))
}

#[monitored]
fn generic_error<E: From<ParseIntError>>(s: &str) -> Result<u32, E> {
    Ok(opaque(s).parse::<u32>()?)
}

#[monitored]
fn static_error(ok: bool) -> Result<u32, &'static str> {
    if opaque(ok) {
        Ok(1)
    } else {
        Err("refused")
    }
}

/// A closure typed by the expected type of the value that holds it.
#[monitored]
fn boxed_closure(add: u32) -> Result<Box<dyn Fn(u32) -> u32>, String> {
    if opaque(add) == 0 {
        return Err("nothing to add".into());
    }
    Ok(Box::new(move |x| x + add))
}

/// Issue 13 (3): names the body declares do not change the return type.
type Answer = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Answer,
    Question,
}

#[monitored]
fn shadowed(c: Choice) -> Result<Answer, String> {
    use Choice::{Answer, Question};
    match opaque(c) {
        Answer => Ok(42),
        Question => Err("a question".into()),
    }
}

#[monitored]
fn shadowed_alias(x: u32) -> Result<Answer, String> {
    type Answer = String;
    let shown: Answer = opaque(x).to_string();
    if shown.is_empty() {
        return Err(shown);
    }
    Ok(x)
}

/// Issue 13 (4): `?` inside the arguments of other macros.
#[monitored]
fn question_in_format(s: &str) -> Result<String, ParseIntError> {
    Ok(format!("<{}>", opaque(s).parse::<u32>()?))
}

#[monitored]
fn question_in_vec(a: &str, b: &str) -> Result<Vec<u32>, ParseIntError> {
    Ok(vec![opaque(a).parse::<u32>()?, b.parse::<u32>()?])
}

#[monitored]
fn question_in_write(s: &str) -> Result<String, ShapeError> {
    let mut out = String::new();
    write!(out, "{}", opaque(s).parse::<u32>()?).map_err(|_| ShapeError::Negative)?;
    Ok(out)
}

#[monitored]
fn question_in_assert(s: &str) -> Result<u32, ParseIntError> {
    assert!(opaque(s).parse::<u32>()? < 1_000, "too large");
    Ok(1)
}

#[monitored]
fn labelled_loops(v: &[i32]) -> Result<usize, ShapeError> {
    let mut found = 0;
    'rows: for (i, x) in opaque(v).iter().enumerate() {
        if *x < 0 {
            return Err(ShapeError::Negative);
        }
        for _ in 0..*x {
            if found > 10 {
                break 'rows;
            }
            found += i;
        }
    }
    let total = 'sum: {
        if found == 0 {
            break 'sum 1;
        }
        found
    };
    Ok(total)
}

#[monitored]
fn closures_keep_their_returns(v: &[&str]) -> Result<Vec<u32>, ParseIntError> {
    let parse = |s: &str| -> Result<u32, ParseIntError> {
        if s.is_empty() {
            return Ok(0);
        }
        let n = s.parse::<u32>()?;
        Ok(n + 1)
    };
    opaque(v).iter().map(|s| parse(s)).collect()
}

#[monitored]
fn let_else(v: &[u32]) -> Result<u32, String> {
    let [first, ..] = *opaque(v) else {
        return Err("empty".into());
    };
    Ok(first)
}

trait Area {
    fn area(&self) -> f64;
}

#[derive(Debug)]
struct Square;

#[derive(Debug)]
struct Circle;

impl Area for Square {
    fn area(&self) -> f64 {
        opaque(1.0)
    }
}

impl Area for Circle {
    fn area(&self) -> f64 {
        opaque(3.0)
    }
}

/// Branches of different types coerce to the return type, as in the original body.
#[monitored]
fn coerce(round: bool, early: bool) -> Result<Box<dyn Area>, String> {
    if opaque(early) && round {
        return Err("both".into());
    }
    if early {
        return Ok(Box::new(Square));
    }
    if round {
        Ok(Box::new(Circle))
    } else {
        Ok(Box::new(Square))
    }
}

// ---------------------------------------------------------------------------------------------
// Diverging bodies (issue 13 (7)): never called, compiled without warnings.

#[monitored]
fn never_returns() -> ! {
    loop {
        thread::park();
    }
}

#[monitored]
fn exits(code: i32) -> u32 {
    process::exit(opaque(code))
}

#[monitored]
fn unreachable_tail(x: u32) -> Result<u32, String> {
    let _ = opaque(x);
    unreachable!("never called with {x}")
}

#[monitored]
#[allow(clippy::needless_return, reason = "a tail `return` is one of the shapes under test")]
fn return_tail(x: u32) -> u32 {
    return opaque(x) + 1;
}

#[monitored]
fn todo_body(x: u32) -> u32 {
    let _ = opaque(x);
    todo!()
}

// ---------------------------------------------------------------------------------------------
// Methods

#[derive(Debug, Default)]
struct Counter {
    n: u32,
    name: String,
    entries: HashMap<String, u32>,
}

impl Counter {
    #[monitored]
    fn new(name: &str) -> Self {
        Self { n: 0, name: opaque(name).to_owned(), entries: HashMap::new() }
    }

    #[monitored]
    fn try_new(name: &str) -> Result<Self, String> {
        if opaque(name).is_empty() {
            return Err("no name".into());
        }
        Ok(Self::new(name))
    }

    #[monitored]
    fn get(&self) -> u32 {
        opaque(self.n)
    }

    #[monitored]
    fn name(&self) -> &str {
        &self.name
    }

    #[monitored]
    fn bump(&mut self) -> &mut u32 {
        self.n += opaque(1);
        &mut self.n
    }

    #[monitored]
    fn entry(&mut self, key: &str) -> &mut u32 {
        self.entries.entry(opaque(key).to_owned()).or_default()
    }

    #[monitored]
    fn into_inner(self) -> u32 {
        opaque(self.n)
    }

    #[monitored]
    #[allow(clippy::boxed_local, reason = "a boxed receiver is one of the shapes under test")]
    fn boxed(self: Box<Self>) -> u32 {
        opaque(self.n)
    }

    #[monitored]
    fn shared(self: Arc<Self>) -> u32 {
        opaque(self.n)
    }

    #[monitored]
    fn counted(self: Rc<Self>) -> usize {
        opaque(Rc::strong_count(&self))
    }

    #[monitored]
    fn pinned(self: Pin<&mut Self>) -> u32 {
        opaque(self.n)
    }

    #[monitored]
    fn adder(&self) -> impl Fn(u32) -> u32 + '_ {
        move |x| opaque(x) + self.n
    }

    #[monitored]
    fn consume(mut self, by: u32) -> Self {
        self.n += opaque(by);
        self
    }
}

#[derive(Debug)]
struct Whole {
    base: u8,
}

#[monitored(category = "db")]
impl Whole {
    fn one(&self) -> u8 {
        opaque(self.base)
    }

    #[monitored(name = "shapes::renamed")]
    fn two(&self) -> u8 {
        opaque(self.base) + 1
    }

    #[monitored(skip)]
    fn skipped(&self) -> u8 {
        opaque(self.base) + 2
    }

    fn fails(&self, fail: bool) -> Result<u8, ShapeError> {
        if opaque(fail) {
            return Err(ShapeError::Negative);
        }
        Ok(self.base + 3)
    }
}

#[derive(Debug)]
struct Wrapper<T>(T);

impl<T: Clone + Display> Wrapper<T> {
    #[monitored]
    fn get(&self) -> T {
        opaque(self.0.clone())
    }

    #[monitored]
    fn show(&self) -> String {
        opaque(self.0.to_string())
    }

    #[monitored]
    fn map<U, F: FnOnce(T) -> U>(self, f: F) -> Wrapper<U> {
        Wrapper(f(opaque(self.0)))
    }
}

trait Store {
    type Item;

    fn fetch(&self, key: u32) -> Option<Self::Item>;

    /// A default method, monitored in the trait.
    #[monitored]
    fn fetch_or(&self, key: u32, or: Self::Item) -> Self::Item {
        self.fetch(key).unwrap_or(or)
    }

    fn all(&self) -> impl Iterator<Item = u32>;
}

#[monitored]
impl Store for Whole {
    type Item = String;

    fn fetch(&self, key: u32) -> Option<String> {
        (opaque(key) > 0).then(|| (key + u32::from(self.base)).to_string())
    }

    fn all(&self) -> impl Iterator<Item = u32> {
        0..opaque(u32::from(self.base) + 2)
    }
}

/// A qualified path in the return type.
#[monitored]
fn fetched<S: Store>(s: &S, key: u32) -> Option<<S as Store>::Item> {
    opaque(s).fetch(key)
}

impl<T: Display> Display for Wrapper<T> {
    #[monitored]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Async

#[monitored]
async fn async_nothing() {
    let _ = ready(opaque(1)).await;
}

#[monitored]
async fn async_one_line(x: u32) -> u32 {
    ready(x).await + 1
}

#[monitored]
async fn async_result(x: u32) -> Result<u32, io::Error> {
    let y = ready(opaque(x)).await;
    if y == 0 {
        Err(io::Error::from(io::ErrorKind::InvalidInput))?;
    }
    Ok(y)
}

#[monitored]
async fn async_early(x: u32) -> Result<u32, ShapeError> {
    if ready(opaque(x)).await == 0 {
        return Err(ShapeError::Negative);
    }
    Ok("9".parse::<u32>()? + x)
}

#[monitored]
async fn async_ref(c: &Counter) -> &str {
    ready(()).await;
    c.name()
}

/// Issue 13 (2), async.
#[monitored]
async fn async_small_range(n: u32) -> Result<impl Iterator<Item = u32>, ()> {
    if ready(opaque(n)).await > 100 {
        return Err(());
    }
    Ok(0..n)
}

/// Issue 13 (6): an `async fn` that returns a future.
#[monitored]
async fn ready_later(x: u32) -> Ready<u32> {
    ready(()).await;
    ready(x)
}

#[monitored]
async fn async_generic<T: Display + Send>(t: T) -> String {
    ready(t).await.to_string()
}

/// Reads a `u32` later: an `async unsafe fn`.
///
/// # Safety
/// None needed; the shape is what is tested.
#[monitored]
#[allow(unsafe_code, reason = "an `async unsafe fn` is one of the shapes under test")]
async unsafe fn read_later(v: &u32) -> u32 {
    ready(()).await;
    // SAFETY: `v` is a reference, so the pointer is live and aligned.
    unsafe { ptr::from_ref(opaque(v)).read() }
}

impl Counter {
    #[monitored]
    async fn async_get(&self) -> u32 {
        ready(self.n).await
    }

    #[monitored]
    async fn async_bump(&mut self) -> Result<u32, String> {
        self.n += ready(opaque(1)).await;
        if self.n > 1_000 {
            return Err("overflow".into());
        }
        Ok(self.n)
    }
}

#[monitored]
#[allow(clippy::manual_async_fn, reason = "a returned `impl Future` is the shape under test")]
fn impl_future(x: u32) -> impl Future<Output = u32> {
    async move { ready(x).await * 3 }
}

/// `?` inside the returned async block converts into the output the signature names.
#[monitored]
#[allow(clippy::manual_async_fn, reason = "a returned `impl Future` is the shape under test")]
fn impl_future_result(s: String) -> impl Future<Output = Result<u32, ShapeError>> + Send {
    async move {
        let n: u32 = ready(s).await.parse()?;
        if n == 0 {
            return Err(ShapeError::Negative);
        }
        Ok(n)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[monitored]
fn boxed_future(x: u32) -> Pin<Box<dyn Future<Output = Result<u32, String>> + Send>> {
    Box::pin(async move {
        if ready(x).await == 0 {
            return Err("zero".into());
        }
        Ok(x)
    })
}

#[monitored]
fn boxed_alias(c: &Counter) -> BoxFuture<'_, u32> {
    if c.n > 100 {
        return Box::pin(ready(0));
    }
    Box::pin(async move { ready(c.n).await })
}

/// Issue 13 (5): methods of `#[async_trait]` impls, the attribute on the method below
/// `#[async_trait]` and on the impl above it.
#[async_trait::async_trait]
trait Remote {
    async fn call(&self, x: u32) -> Result<u32, ShapeError>;
    async fn ping(&self);
}

#[async_trait::async_trait]
impl Remote for Counter {
    #[monitored]
    async fn call(&self, x: u32) -> Result<u32, ShapeError> {
        let v = ready(x).await;
        if v == 0 {
            return Err(ShapeError::Negative);
        }
        Ok(v + self.n)
    }

    #[monitored]
    async fn ping(&self) {
        ready(()).await;
    }
}

#[monitored]
#[async_trait::async_trait]
impl Remote for Whole {
    async fn call(&self, x: u32) -> Result<u32, ShapeError> {
        if ready(x).await == 0 {
            return Err(ShapeError::Negative);
        }
        Ok(x)
    }

    async fn ping(&self) {
        ready(()).await;
    }
}

/// An `async fn` in a trait impl, and a returned `impl Trait` in one.
trait Load {
    fn load(&self) -> impl Future<Output = u32> + Send;
}

impl Load for Whole {
    #[monitored]
    async fn load(&self) -> u32 {
        ready(opaque(5)).await
    }
}

// ---------------------------------------------------------------------------------------------

/// What [`exercise`] saw, for the tests to compare with what the monitor recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exercised {
    /// The line `caller_line` was called from.
    pub caller_line: u32,
    /// The line `caller_line` reported.
    pub reported_line: u32,
}

/// Calls every shape (with a few outcomes each) and returns what the tests compare; `block_on`
/// runs a future to completion.
///
/// # Panics
/// If a shape does not return what its body computes.
/// How [`exercise`] runs a future to completion.
pub type BlockOn<'a> = &'a dyn Fn(Pin<Box<dyn Future<Output = ()> + '_>>);

/// Calls every shape (with a few outcomes each) and returns what the tests compare.
///
/// # Panics
/// If a shape does not return what its body computes.
pub fn exercise(block_on: BlockOn<'_>) -> Exercised {
    let seen = exercise_plain();
    exercise_results();
    let counter = exercise_methods(block_on);
    assert_eq!(counter.into_inner(), 12);
    seen
}

fn exercise_plain() -> Exercised {
    nothing();
    assert_eq!(one_line(1), 2);
    assert_eq!(with_objective(3).ok(), Some(3));
    assert_eq!(generic(&1, "a"), "1a");
    assert_eq!(impl_trait_arg(vec![1, 2]), 3);
    assert_eq!(longest("ab", "c"), "ab");
    assert_eq!(first_word("a b"), "a");
    assert_eq!(patterns((2, 3), 1), 7);
    assert_eq!(const_generic([1, 2]), 4);
    assert_eq!(tuple(3), (3, "3".to_owned()));
    assert_eq!(array(1), [1; 4]);
    assert_eq!(fn_pointer(true)(2), 4);
    assert_eq!(cow("a b"), "a_b");
    assert_eq!(collects(3), [0, 1, 2]);
    assert_eq!(into_string("s"), "s");
    assert_eq!(&*boxed_slice(2), &[2, 2, 2]);
    assert_eq!(static_str(true), "yes");
    assert_eq!(recurse(3), 3);
    assert_eq!(items_inside(1), 3);
    assert_eq!(inner_attributes(4), 4);
    let called_from = line!() + 1;
    let reported_line = caller_line();
    assert_eq!(with_attributes(5), 5);
    assert_eq!(extern_c(1), 3);
    let five = 5u32;
    // SAFETY: `five` is alive.
    #[allow(unsafe_code, reason = "calls the `unsafe fn` shape")]
    let read = unsafe { raw_read(&raw const five) };
    assert_eq!(read, 5);

    assert_eq!(displays(2).to_string(), "4");
    assert_eq!(key_of()(&(7, 8)), 7);
    assert_eq!(hash_at(&[4, 5])(1), 5);
    assert_eq!(iter_of(&[1, 2, 3]).count(), 2);
    assert_eq!(small_range(3).map(Iterator::count), Ok(3));
    assert!(small_range(300).is_err());
    assert_eq!(small_range_string(2).map(Iterator::count), Ok(2));
    assert!(small_range_string(200).is_err());

    Exercised { caller_line: called_from, reported_line }
}

fn exercise_results() {
    assert!(matches!(early(-1), Err(ShapeError::Negative)));
    assert_eq!(early(2).ok(), Some(9));
    assert_eq!(parse_inferred("8").ok(), Some(8));
    assert!(parse_inferred("x").is_err());
    assert!(boxed_error("0").is_err());
    assert!(boxed_error("x").is_err());
    assert_eq!(boxed_error("3").ok(), Some(3));
    assert!(io_alias(true).is_err());
    assert!(io_alias(false).is_ok());
    assert_eq!(option_q(&[]), None);
    assert_eq!(option_q(&[4]), Some(8));
    assert!(matches!(poll_q(Poll::Ready(Ok(1))), Poll::Ready(Ok(2))));
    assert!(matches!(poll_q(Poll::Ready(Err(ShapeError::Negative))), Poll::Ready(Err(_))));
    assert!(poll_q(Poll::Pending).is_pending());
    assert_eq!(generic_error::<ShapeError>("4").ok(), Some(4));
    assert!(generic_error::<ShapeError>("-").is_err());
    assert_eq!(static_error(true), Ok(1));
    assert_eq!(static_error(false), Err("refused"));
    assert_eq!(boxed_closure(2).map(|f| f(1)), Ok(3));
    assert!(boxed_closure(0).is_err());
    assert_eq!(shadowed(Choice::Answer), Ok(42));
    assert!(shadowed(Choice::Question).is_err());
    assert_eq!(shadowed_alias(6), Ok(6));
    assert_eq!(question_in_format("5"), Ok("<5>".to_owned()));
    assert!(question_in_format("x").is_err());
    assert_eq!(question_in_vec("1", "2"), Ok(vec![1, 2]));
    assert!(question_in_vec("1", "y").is_err());
    assert_eq!(question_in_write("7").ok(), Some("7".to_owned()));
    assert!(question_in_write("z").is_err());
    assert_eq!(question_in_assert("3"), Ok(1));
    assert!(question_in_assert("w").is_err());
    assert_eq!(labelled_loops(&[1, 2]).ok(), Some(2));
    assert!(labelled_loops(&[-1]).is_err());
    assert_eq!(closures_keep_their_returns(&["1", ""]), Ok(vec![2, 0]));
    assert!(closures_keep_their_returns(&["q"]).is_err());
    assert_eq!(let_else(&[3]), Ok(3));
    assert!(let_else(&[]).is_err());
    assert!(coerce(true, true).is_err());
    let areas = [coerce(true, false), coerce(false, false), coerce(false, true)];
    assert!((areas.iter().flatten().map(|a| a.area()).sum::<f64>() - 5.0).abs() < 1e-9);

    let _: fn() -> ! = never_returns;
    let _: fn(i32) -> u32 = exits;
    let _: fn(u32) -> Result<u32, String> = unreachable_tail;
    assert_eq!(return_tail(1), 2);
    let _: fn(u32) -> u32 = todo_body;
}

fn exercise_methods(block_on: BlockOn<'_>) -> Counter {
    let mut counter = Counter::new("c");
    assert!(Counter::try_new("").is_err());
    *counter.bump() += 10;
    *counter.entry("k") += 1;
    assert_eq!((counter.get(), counter.name()), (11, "c"));
    assert_eq!(counter.adder()(1), 12);
    assert_eq!(Pin::new(&mut counter).pinned(), 11);
    let counter = counter.consume(1);
    assert_eq!(Box::new(Counter::new("b")).boxed(), 0);
    assert_eq!(Arc::new(Counter::new("a")).shared(), 0);
    assert_eq!(Rc::new(Counter::new("r")).counted(), 1);
    let whole = Whole { base: 1 };
    assert_eq!(whole.one() + whole.two() + whole.skipped(), 6);
    assert!(whole.fails(true).is_err());
    assert_eq!(whole.fails(false).ok(), Some(4));
    assert_eq!(Wrapper(3u8).get(), 3);
    assert_eq!(Wrapper("s").show(), "s");
    assert_eq!(Wrapper(2u8).map(|x| x * 2).0, 4);
    assert_eq!(whole.fetch_or(0, "none".to_owned()), "none");
    assert_eq!(fetched(&whole, 2).as_deref(), Some("3"));
    assert_eq!(Store::all(&whole).count(), 3);
    assert_eq!(Wrapper(1).to_string(), "[1]");

    exercise_async(block_on, &counter, &whole);
    counter
}

fn exercise_async(block_on: BlockOn<'_>, counter: &Counter, whole: &Whole) {
    block_on(Box::pin(async {
        async_nothing().await;
        assert_eq!(async_one_line(1).await, 2);
        assert!(async_result(0).await.is_err());
        assert_eq!(async_result(3).await.ok(), Some(3));
        assert!(async_early(0).await.is_err());
        assert_eq!(async_early(1).await.ok(), Some(10));
        assert_eq!(async_ref(counter).await, "c");
        assert_eq!(async_small_range(2).await.map(Iterator::count), Ok(2));
        assert!(async_small_range(200).await.is_err());
        assert_eq!(ready_later(4).await.await, 4);
        assert_eq!(async_generic(5).await, "5");
        let six = 6u32;
        // SAFETY: `six` outlives the future.
        #[allow(unsafe_code, reason = "calls the `async unsafe fn` shape")]
        let later = unsafe { read_later(&six) };
        assert_eq!(later.await, 6);
        assert_eq!(counter.async_get().await, 12);
        let mut other = Counter::new("d");
        assert_eq!(other.async_bump().await, Ok(1));
        assert_eq!(impl_future(2).await, 6);
        assert!(impl_future_result("0".to_owned()).await.is_err());
        assert!(impl_future_result("x".to_owned()).await.is_err());
        assert_eq!(impl_future_result("2".to_owned()).await.ok(), Some(2));
        assert!(boxed_future(0).await.is_err());
        assert_eq!(boxed_future(1).await, Ok(1));
        assert_eq!(boxed_alias(counter).await, 12);
        assert!(counter.call(0).await.is_err());
        assert_eq!(counter.call(1).await.ok(), Some(13));
        counter.ping().await;
        assert!(whole.call(0).await.is_err());
        assert_eq!(whole.call(2).await.ok(), Some(2));
        whole.ping().await;
        assert_eq!(whole.load().await, 5);
    }));
}

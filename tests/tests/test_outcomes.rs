//! Every call ends in exactly one outcome, and errors are counted by kind.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};

use monitor_core::{monitored, registry, ErrorKind, FunctionStats};

fn stats(name: &str) -> FunctionStats {
    registry().snapshot().function(name).cloned().unwrap_or_else(|| panic!("no function {name}"))
}

#[derive(Debug, ErrorKind)]
enum DbError {
    NotFound,
    Conflict {
        id: u32,
    },
    #[monitor(kind = "pool_exhausted")]
    Pool(#[allow(dead_code)] String),
}

#[derive(Debug, ErrorKind)]
#[monitor(kind = "quota")]
struct QuotaError;

#[derive(Debug)]
struct PlainError;

#[monitored]
fn db(i: u32) -> Result<u32, DbError> {
    match i % 4 {
        0 => Ok(i),
        1 => Err(DbError::NotFound),
        2 => Err(DbError::Conflict { id: i }),
        _ => Err(DbError::Pool("busy".into())),
    }
}

#[test]
fn error_kinds_from_derive() {
    for i in 0..8 {
        let _ = db(i);
    }
    let f = stats("test_outcomes::db");
    assert_eq!(f.success, 2);
    assert_eq!(f.errors, vec![("Conflict", 2), ("NotFound", 2), ("pool_exhausted", 2)]);
    assert_eq!(f.failure_times.count, 6);
    assert_eq!(f.success_times.count, 2);
    if let Err(DbError::Conflict { id }) = db(2) {
        assert_eq!(id, 2);
    }
}

#[monitored]
fn read(path: &str) -> io::Result<String> {
    std::fs::read_to_string(path)
}

#[monitored]
fn quota() -> Result<(), QuotaError> {
    Err(QuotaError)
}

#[monitored]
fn plain() -> Result<(), PlainError> {
    Err(PlainError)
}

type Alias<T> = Result<T, std::num::ParseIntError>;

#[monitored]
fn alias(s: &str) -> Alias<u8> {
    s.parse()
}

#[monitored]
fn boxed() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err(io::Error::from(io::ErrorKind::TimedOut))?;
    Ok(())
}

#[monitored]
fn generic_err<E: std::fmt::Debug>(e: E) -> Result<(), E> {
    Err(e)
}

#[test]
fn error_kinds_from_types() {
    let _ = read("/definitely/not/here");
    let _ = quota();
    let _ = plain();
    let _ = alias("x");
    let _ = alias("7");
    let _ = boxed();
    let _ = generic_err(PlainError);
    let _ = generic_err(io::Error::from(io::ErrorKind::BrokenPipe));
    assert_eq!(stats("test_outcomes::read").errors, vec![("NotFound", 1)]);
    assert_eq!(stats("test_outcomes::quota").errors, vec![("quota", 1)]);
    assert_eq!(stats("test_outcomes::plain").errors, vec![("PlainError", 1)]);
    let a = stats("test_outcomes::alias");
    assert_eq!((a.success, a.errors.clone()), (1, vec![("ParseIntError", 1)]));
    assert_eq!(stats("test_outcomes::boxed").errors, vec![("TimedOut", 1)]);
    // A generic error type is named by the concrete type of each call. (Inside a generic
    // function an `ErrorKind` impl is not visible: the type's name is used.)
    assert_eq!(
        stats("test_outcomes::generic_err").errors,
        vec![("PlainError", 1), ("std::io::error::Error", 1)]
    );
}

macro_rules! bail {
    ($e:expr) => {
        return Err($e)
    };
}

#[monitored]
fn hidden(fail: bool) -> Result<u8, String> {
    if fail {
        bail!("no".to_string());
    }
    Ok(1)
}

#[test]
fn return_inside_a_macro_counts_as_error() {
    assert!(hidden(true).is_err());
    assert!(hidden(false).is_ok());
    let f = stats("test_outcomes::hidden");
    assert_eq!((f.success, f.errors), (1, vec![("hidden_return", 1)]));
    assert_eq!(f.in_flight, 0);
}

#[monitored]
fn inner_panics(n: u32) -> u32 {
    if n == 3 {
        panic!("boom {n}");
    }
    n
}

#[monitored]
fn outer_calls(n: u32) -> u32 {
    inner_panics(n) + 1
}

#[test]
fn panics_cross_nested_calls_unchanged() {
    for n in 0..5 {
        let r = catch_unwind(AssertUnwindSafe(|| outer_calls(n)));
        if n == 3 {
            let payload = r.unwrap_err();
            assert_eq!(payload.downcast_ref::<String>().map(String::as_str), Some("boom 3"));
        } else {
            assert_eq!(r.unwrap(), n + 1);
        }
    }
    let inner = stats("test_outcomes::inner_panics");
    let outer = stats("test_outcomes::outer_calls");
    for f in [&inner, &outer] {
        assert_eq!((f.success, f.panics, f.in_flight), (4, 1, 0), "{}", f.name);
        assert_eq!(f.failure_times.count, 1);
    }
    assert_eq!(inner.calls_from("test_outcomes::outer_calls"), 5);
    // The span stack unwound too: a call now is an entry point again.
    assert!(monitor_core::Span::current().is_none());
}

static KINDS: [&str; 70] = {
    let mut k = [""; 70];
    let names = [
        "k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09", "k10", "k11", "k12",
        "k13", "k14", "k15", "k16", "k17", "k18", "k19", "k20", "k21", "k22", "k23", "k24", "k25",
        "k26", "k27", "k28", "k29", "k30", "k31", "k32", "k33", "k34", "k35", "k36", "k37", "k38",
        "k39", "k40", "k41", "k42", "k43", "k44", "k45", "k46", "k47", "k48", "k49", "k50", "k51",
        "k52", "k53", "k54", "k55", "k56", "k57", "k58", "k59", "k60", "k61", "k62", "k63", "k64",
        "k65", "k66", "k67", "k68", "k69",
    ];
    let mut i = 0;
    while i < 70 {
        k[i] = names[i];
        i += 1;
    }
    k
};

#[derive(Debug)]
struct Dynamic(usize);

impl ErrorKind for Dynamic {
    fn error_kind(&self) -> &'static str {
        KINDS[self.0]
    }
}

#[monitored]
fn many_kinds(i: usize) -> Result<(), Dynamic> {
    Err(Dynamic(i))
}

#[test]
fn error_kinds_are_bounded() {
    for i in 0..70 {
        let _ = many_kinds(i);
    }
    let f = stats("test_outcomes::many_kinds");
    assert_eq!(f.errors.len(), 65);
    assert_eq!(f.error("other"), 6);
    assert_eq!(f.error("k00"), 1);
    assert_eq!(f.errors_total(), 70);
}

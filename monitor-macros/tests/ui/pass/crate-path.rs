//! `crate = path` points the generated code at a renamed `monitor_core`.
extern crate monitor_core as mon;

#[mon::monitored(crate = mon)]
fn work() -> u8 {
    1
}

struct S;

#[mon::monitored(crate = mon, category = "db")]
impl S {
    fn m(&self) -> u8 {
        2
    }
}

#[derive(Debug, mon::ErrorKind)]
#[monitor(crate = mon)]
enum E {
    A,
}

fn main() {
    assert_eq!(work() + S.m(), 3);
    assert_eq!(mon::ErrorKind::error_kind(&E::A), "A");
    assert!(mon::registry().sites().any(|s| s.name().ends_with("::S::m") && s.category() == Some("db")));
}

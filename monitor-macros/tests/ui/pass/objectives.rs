//! Objectives on functions, methods and impl blocks, inherited by the block's methods.
#![deny(warnings)]

use monitor_core::monitored;

#[monitored(objective(success = 99.9, latency = "250ms", latency_target = 99.0, window = "30d"))]
fn checkout() -> Result<(), std::fmt::Error> {
    Ok(())
}

#[monitored(objective(latency = "1.5s", latency_target = 95))]
async fn slow_report() {}

struct Store;

#[monitored(objective(success = 99.5, window = "7d"))]
impl Store {
    fn get(&self) -> u32 {
        1
    }

    #[monitored(objective(success = 90.0))]
    fn scan(&self) -> u32 {
        2
    }
}

fn main() {
    let _ = checkout();
    drop(slow_report());
    let s = Store;
    assert_eq!(s.get() + s.scan(), 3);
    let names: Vec<String> = monitor_core::objectives().into_iter().map(|o| o.name).collect();
    assert_eq!(names.len(), 4, "{names:?}");
}

use monitor_core::monitored;

#[monitored(level = "info")]
fn work() {}

fn main() {
    work();
}

use monitor_core::monitored;

#[monitored(name = "a", name = "b")]
fn work() {}

fn main() {
    work();
}

use monitor_core::monitored;

#[monitored(category = "")]
fn work() {}

fn main() {
    work();
}

use monitor_core::monitored;

#[monitored(skip)]
fn work() {}

fn main() {
    work();
}

use monitor_core::monitored;

#[monitored(name = 5, category = sql)]
fn work() {}

fn main() {
    work();
}

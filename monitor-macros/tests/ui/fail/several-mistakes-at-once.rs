use monitor_core::monitored;

#[monitored(nmae = "x", category = "a", category = "b", skip = true)]
fn work() {}

fn main() {
    work();
}

use monitor_core::monitored;

struct Service;

#[monitored(name = "service")]
impl Service {
    fn call(&self) {}
}

fn main() {
    Service.call();
}

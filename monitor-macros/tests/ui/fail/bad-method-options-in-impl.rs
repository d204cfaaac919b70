use monitor_core::monitored;

struct Service;

#[monitored]
impl Service {
    #[monitored(label = "x")]
    fn call(&self) {}

    #[monitored]
    const fn id(&self) -> u8 {
        1
    }
}

fn main() {
    Service.call();
}

use monitor_core::monitored;

#[monitored]
trait Handler {
    fn handle(&self);
}

fn main() {}

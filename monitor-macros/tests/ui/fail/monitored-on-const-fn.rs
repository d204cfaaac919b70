use monitor_core::monitored;

#[monitored]
const fn answer() -> u32 {
    42
}

fn main() {
    let _ = answer();
}

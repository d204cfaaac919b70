use monitor_core::{Counter, Metrics};

#[derive(Metrics)]
struct Stats {
    requests: Counter,
    label: String,
}

fn main() {}

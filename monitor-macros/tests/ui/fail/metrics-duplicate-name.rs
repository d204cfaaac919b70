use monitor_core::{Counter, Metrics};

#[derive(Metrics)]
struct Stats {
    requests: Counter,
    #[metric(name = "requests")]
    other: Counter,
    #[metric(label = "x", skip, skip)]
    third: Counter,
}

fn main() {}

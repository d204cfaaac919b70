use monitor_core::Metrics;

#[derive(Metrics)]
enum Stats {
    A,
}

fn main() {}

use monitor_core::{Counter, Metrics};

#[derive(Metrics)]
struct Pair(Counter, Counter);

fn main() {}

use monitor_core::monitored;

#[monitored(objective(success = 100))]
fn all_must_succeed() {}

#[monitored(objective(success = "99.9"))]
fn target_as_a_string() {}

#[monitored(objective(latency = "250 parsecs", latency_target = 99.0))]
fn unknown_unit() {}

#[monitored(objective(latency = "250", latency_target = 99.0))]
fn no_unit() {}

#[monitored(objective(latency = "250ms"))]
fn latency_without_target() {}

#[monitored(objective(success = 99.9, window = "5m"))]
fn window_too_short() {}

#[monitored(objective())]
fn empty_objective() {}

#[monitored(objective(succes = 99.9))]
fn misspelt() {}

#[monitored(objective = "99.9")]
fn not_a_list() {}

fn main() {}

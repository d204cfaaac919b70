use std::ops::ControlFlow;

use monitor_core::monitored;

#[monitored]
fn step(flow: ControlFlow<u8, u8>) -> ControlFlow<u8, u8> {
    let v = flow?;
    ControlFlow::Continue(v)
}

fn main() {
    let _ = step(ControlFlow::Continue(1));
}

//! Monitored code compiles without warnings under the strictest common lint settings.
#![deny(warnings, unused, unused_qualifications, rust_2018_idioms)]
// The expansion registers each site in a link section; a crate that forbids unsafe code can
// still use the attribute.
#![forbid(unsafe_code)]

use monitor_core::monitored;

#[monitored]
fn unfinished() -> u32 {
    todo!()
}

#[monitored]
fn always_panics() {
    panic!("no")
}

#[monitored]
fn early(x: u8) -> Result<u8, std::num::TryFromIntError> {
    if x == 0 {
        return Ok(0);
    }
    let y = u8::try_from(u32::from(x) * 2)?;
    Ok(y)
}

#[monitored]
async fn later() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {
    let _ = early(3);
    let _ = later();
    if std::env::args().count() > 100 {
        let _ = unfinished();
        always_panics();
    }
}

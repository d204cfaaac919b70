//! Renderers: pure functions from a [`Snapshot`](monitor_core::Snapshot) to text in each format.

pub(crate) mod dot;
pub(crate) mod expvar;
pub(crate) mod function;
pub(crate) mod graph;
pub(crate) mod history;
pub(crate) mod html;
pub(crate) mod in_flight;
pub(crate) mod json;
pub(crate) mod prometheus;
pub(crate) mod series;
pub(crate) mod slo;
pub(crate) mod stats;
pub(crate) mod text;
pub(crate) mod trace;
pub(crate) mod util;
pub(crate) mod writer;

/// A text written a part at a time, so a response can send each part as soon as it is written
/// instead of holding the whole text (see [`crate::Body`]).
pub(crate) trait Parts: Send {
    /// Appends the next parts to `out`, stopping after the one that takes `out` to `min` bytes
    /// or more. Returns whether anything may remain to write; once it returns false, the text
    /// is complete.
    fn write(&mut self, out: &mut String, min: usize) -> bool;
}

/// What `writer` writes, part by part, with `min` bytes asked for each part. Checks what every
/// writer promises: each part but the last reaches `min`, and nothing comes after the end.
#[cfg(test)]
pub(crate) fn in_parts(mut writer: impl Parts, min: usize) -> Vec<String> {
    let mut parts = Vec::new();
    loop {
        let mut part = String::new();
        let more = writer.write(&mut part, min);
        parts.push(part);
        if !more {
            break;
        }
    }
    // The last part may be short, even empty: what remained after the one before wrote nothing.
    let full = &parts[..parts.len() - 1];
    assert!(full.iter().all(|p| p.len() >= min), "a part short of {min} bytes");
    let mut after = String::new();
    assert!(!writer.write(&mut after, min) && after.is_empty(), "a part after the end");
    parts
}

/// Known traffic for the renderers' tests, made once per test binary: `render::tests_ok` 20
/// successes, and a function named `tests "fail"` plus a newline with 20 `Other` errors.
#[cfg(test)]
pub(crate) fn traffic() -> monitor_core::Snapshot {
    #[monitor_core::monitored]
    fn tests_ok(i: u64) -> Result<u64, std::io::Error> {
        Ok(i)
    }
    #[monitor_core::monitored(name = "tests \"fail\"\n")]
    fn tests_fail() -> Result<(), std::io::Error> {
        Err(std::io::Error::other("no"))
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for i in 0..20 {
            let _ = tests_ok(i);
            let _ = tests_fail();
        }
    });
    monitor_core::registry().snapshot()
}

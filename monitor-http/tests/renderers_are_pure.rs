//! Renderers are pure: each is a function of the snapshot (or span list) it is given and writes
//! to the string it is handed. None reads the registry, the clock, the file system or the
//! network, takes a lock, or reaches into the server, the router or the exporters. That is what
//! lets one snapshot feed every view of a page, lets views be rendered on any thread, and keeps
//! their tests exact. This test reads the sources of `src/render/` and fails on any of those.

use std::fs;
use std::path::Path;

/// What a renderer must not name, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("registry()", "takes a snapshot of its own: render the one given"),
    ("Instant::now", "reads the clock: the snapshot carries the times"),
    ("SystemTime::now", "reads the clock: the snapshot carries the times"),
    ("std::fs", "reads files: a sampler reads them into the snapshot"),
    ("std::net", "touches the network"),
    ("std::thread", "starts or sleeps threads"),
    ("tokio", "depends on a runtime"),
    ("Mutex", "takes a lock"),
    ("RwLock", "takes a lock"),
    ("std::env::var", "depends on the environment"),
    ("crate::server", "reaches up into the server"),
    ("crate::routes", "reaches up into the router"),
    ("crate::export", "reaches into the exporters"),
    ("trace::in_flight(", "reads live spans: take them as an argument"),
];

/// The code of a file, without doc comments (their examples take snapshots) and without its
/// `#[cfg(test)]` tail (tests make traffic).
fn code_of(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
        .filter(|l| !l.trim_start().starts_with("///") && !l.trim_start().starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn renderers_name_nothing_impure() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/render");
    let mut found = Vec::new();
    let mut files = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        files += 1;
        let code = code_of(&fs::read_to_string(&path).unwrap());
        for (needle, why) in FORBIDDEN {
            if code.contains(needle) {
                found.push(format!("{}: `{needle}` {why}", path.display()));
            }
        }
    }
    assert!(files >= 10, "read only {files} renderer files from {}", dir.display());
    assert!(found.is_empty(), "renderers must stay pure:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_a_violation() {
    let bad = "fn write(out: &mut String) {\n    let s = monitor_core::registry().snapshot();\n}\n";
    let code = code_of(bad);
    assert!(FORBIDDEN.iter().any(|(needle, _)| code.contains(needle)));
    let doc_only = "/// ```\n/// monitor_core::registry().snapshot();\n/// ```\nfn f() {}\n";
    assert!(!FORBIDDEN.iter().any(|(needle, _)| code_of(doc_only).contains(needle)));
}

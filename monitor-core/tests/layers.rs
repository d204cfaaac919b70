//! monitor-core reads downward: every module belongs to a layer, and a module uses only
//! modules of lower layers (or of its own). This test reads the sources and fails on an
//! import that runs back up; ARCHITECTURE.md explains the layers.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// The layers, from the ground up. A module may use the modules of its own layer only where
/// the pair is listed in [`SIDEWAYS`].
const LAYERS: &[&[&str]] = &[
    // Base: depends on nothing in the crate.
    &["ids", "clock", "histogram", "error", "alloc", "outcome", "gauges", "collector", "polls"],
    // The plain data model every view reads.
    &["snapshot"],
    // Monitored calls as `tracing` spans (feature `tracing`), over the ids.
    &["tracing_spans"],
    // General counters over the histogram.
    &["counters"],
    // Instruments.
    &["metrics"],
    &["users"],
    // A site's statistics, then the sites themselves and their table.
    &["state"],
    &["site"],
    // A running call's context.
    &["context"],
    // Recording traces.
    &["record"],
    // The hot path: the current span, then the call.
    &["span"],
    &["call"],
    // The public faces.
    &["trace"],
    &["registry"],
    &["history", "process", "recorder", "tokio_runtime"],
    // Objectives: their counts over time, from snapshots and the process's start.
    &["objective"],
    &["private", "lib"],
];

/// Modules of one layer that may use each other's items one way.
const SIDEWAYS: &[(&str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// What the crate root re-exports (`pub use metrics::{Scope, …}`): the name and the module it
/// comes from, so that `crate::Scope` counts as a use of `metrics`.
fn root_names(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let text = lib.replace('\n', " ");
    let mut rest = text.as_str();
    while let Some(i) = rest.find("pub use ") {
        rest = &rest[i + "pub use ".len()..];
        let stmt = rest.split(';').next().unwrap_or("");
        let Some((module, names)) = stmt.split_once("::") else { continue };
        let names = names.trim().trim_start_matches('{').trim_end_matches('}');
        for n in names.split(',') {
            let n = n.split(" as ").last().unwrap_or(n).trim();
            let n = n.rsplit("::").next().unwrap_or(n);
            if !n.is_empty() {
                out.insert(n.to_string(), module.trim().to_string());
            }
        }
    }
    out
}

/// The module a source file belongs to: its file or folder name under `src/`.
fn module_of(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap_or(path);
    let first = rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned());
    first.unwrap_or_default().trim_end_matches(".rs").to_string()
}

/// The crate modules `text` names in code (`crate::x::…`, `use crate::{x, …}`), comments and
/// doc tests left out.
fn uses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let names: Vec<&str> = if let Some(inner) = rest.strip_prefix('{') {
                inner.split('}').next().unwrap_or("").split(',').collect()
            } else {
                vec![rest]
            };
            for n in names {
                let n = n.trim();
                let end = n.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(n.len());
                if end > 0 {
                    out.push(n[..end].to_string());
                }
            }
        }
    }
    out
}

#[test]
fn no_import_runs_back_up() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let roots = root_names(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(file, &src);
        let Some(mine) = layer_of(&module) else {
            panic!("{} is in no layer: add `{module}` to LAYERS", file.display());
        };
        let text = fs::read_to_string(file).unwrap();
        // A file's tests may use anything.
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        for used in uses(code) {
            let used = roots.get(&used).cloned().unwrap_or(used);
            let Some(theirs) = layer_of(&used) else { continue };
            let upward = theirs > mine;
            let sideways = theirs == mine
                && used != module
                && !SIDEWAYS.contains(&(module.as_str(), used.as_str()));
            if upward || sideways {
                wrong
                    .entry(file.strip_prefix(&src).unwrap().display().to_string())
                    .or_default()
                    .push(used);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that run back up (file: modules of a higher layer it uses): {wrong:#?}"
    );
}

/// The modules a monitored call runs through after its site's first call.
const HOT_PATH: &[&str] =
    &["call", "state", "span", "context", "counters", "histogram", "clock", "outcome", "error"];

/// What would make a call wait on another thread.
const LOCKS: &[&str] = &["Mutex", "RwLock", "Condvar", ".lock()", "Barrier", "park("];

/// The hot path takes no lock: none of its modules names a lock type (outside tests). Their
/// `OnceLock`s are initialized on a site's first call, or a kind's first error, and only read
/// after; allocation is held by `tests/tests/test_hot_path.rs` in the workspace.
#[test]
fn the_hot_path_names_no_lock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for module in HOT_PATH {
        let file = src.join(format!("{module}.rs"));
        let text = fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        for lock in LOCKS {
            let hits = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//") && l.contains(lock))
                .count();
            if hits > 0 {
                found.push(format!("{module}.rs names `{lock}` {hits} times"));
            }
        }
    }
    assert!(found.is_empty(), "locks on the hot path: {found:#?}");
}

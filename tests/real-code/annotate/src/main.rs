//! `monitor-annotate DIR…`: puts `#[::monitor_core::monitored]` on every function with a body
//! in every `.rs` file under each `DIR` — free functions, methods, trait default methods,
//! nested functions — except `const fn`s, which cannot be monitored. The attribute goes on the
//! line where the function starts, before its visibility, so every line keeps its number.
//! Prints how many functions it annotated, per file and in all.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::{fs, io};

use proc_macro2::{LineColumn, Span};
use syn::spanned::Spanned;
use syn::visit::Visit;

const ATTRIBUTE: &str = "#[::monitor_core::monitored] ";

/// Where each function to annotate starts.
#[derive(Default)]
struct Finder {
    starts: Vec<LineColumn>,
}

impl Finder {
    fn found(&mut self, vis: &syn::Visibility, first: Span, sig: &syn::Signature) {
        if sig.constness.is_some() {
            return;
        }
        let start = match vis {
            syn::Visibility::Inherited => first,
            other => other.span(),
        };
        self.starts.push(start.start());
    }
}

/// The first token of a signature: `async`, `unsafe`, `extern` or `fn`.
fn sig_start(sig: &syn::Signature) -> Span {
    if let Some(t) = &sig.asyncness {
        t.span
    } else if let Some(t) = &sig.unsafety {
        t.span
    } else if let Some(abi) = &sig.abi {
        abi.extern_token.span
    } else {
        sig.fn_token.span
    }
}

impl<'ast> Visit<'ast> for Finder {
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.found(&f.vis, sig_start(&f.sig), &f.sig);
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        let first = f.defaultness.map_or_else(|| sig_start(&f.sig), |d| d.span);
        self.found(&f.vis, first, &f.sig);
        syn::visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if f.default.is_some() {
            self.found(&syn::Visibility::Inherited, sig_start(&f.sig), &f.sig);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

/// The byte offset of a line and column (in characters) in `text`.
fn offset(text: &str, at: LineColumn) -> Option<usize> {
    let line_start =
        if at.line == 1 { 0 } else { text.match_indices('\n').nth(at.line - 2)?.0 + 1 };
    let line = &text[line_start..];
    let column = line.char_indices().nth(at.column).map_or(line.len(), |(i, _)| i);
    Some(line_start + column)
}

fn annotate(path: &Path) -> Result<usize, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = syn::parse_file(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut finder = Finder::default();
    finder.visit_file(&file);
    let mut offsets = finder
        .starts
        .iter()
        .map(|&at| offset(&text, at).ok_or_else(|| format!("{}: bad span", path.display())))
        .collect::<Result<Vec<_>, _>>()?;
    offsets.sort_unstable();
    offsets.dedup();
    let mut out = String::with_capacity(text.len() + offsets.len() * ATTRIBUTE.len());
    let mut last = 0;
    for &at in &offsets {
        out.push_str(&text[last..at]);
        out.push_str(ATTRIBUTE);
        last = at;
    }
    out.push_str(&text[last..]);
    fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(offsets.len())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        eprintln!("usage: monitor-annotate DIR...");
        return ExitCode::from(2);
    }
    let mut files = Vec::new();
    for dir in &dirs {
        if let Err(e) = rust_files(dir, &mut files) {
            eprintln!("monitor-annotate: {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    files.sort();
    let mut total = 0;
    for file in &files {
        match annotate(file) {
            Ok(n) => {
                println!("{n:6} {}", file.display());
                total += n;
            }
            Err(e) => {
                eprintln!("monitor-annotate: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{total:6} functions annotated in {} files", files.len());
    ExitCode::SUCCESS
}

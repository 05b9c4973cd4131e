//! `include/gemini_rotator.h` is generated from `src/ffi` by cbindgen (pinned in Cargo.toml),
//! here and only here: regenerate it with
//!
//! ```sh
//! GR_UPDATE_HEADER=1 cargo test --release --test header
//! ```
//!
//! and commit it. Without `GR_UPDATE_HEADER` (as in CI) the test fails when the committed file
//! differs from what the sources generate, naming the first line that differs.

use gemini_rotator::ffi::error::gr_status;
use std::path::{Path, PathBuf};

const UPDATE: &str = "GR_UPDATE_HEADER";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn committed_path() -> PathBuf {
    root().join("include").join("gemini_rotator.h")
}

/// The header as the current sources and cbindgen.toml generate it.
fn generate() -> String {
    let config = cbindgen::Config::from_file(root().join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    // Only the FFI module (and the modules it declares): the C API is what src/ffi exports,
    // and nothing elsewhere in the crate can leak into the header.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root().join("src").join("ffi").join("mod.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("cbindgen writes UTF-8")
}

#[test]
fn committed_header_is_what_the_sources_generate() {
    let fresh = generate();
    let path = committed_path();
    if std::env::var_os(UPDATE).is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("include/gemini_rotator.h is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).expect("include/gemini_rotator.h is committed");
    if committed == fresh {
        return;
    }
    let (line, want, have) = first_difference(&fresh, &committed);
    panic!(
        "include/gemini_rotator.h is stale: line {line} should be\n  {want}\nbut is\n  {have}\n\
         Regenerate it with `{UPDATE}=1 cargo test --release --test header` and commit it."
    );
}

/// The first line (1-based) where two texts differ, and that line of each ("<end of file>" past
/// the end).
fn first_difference(want: &str, have: &str) -> (usize, String, String) {
    let (mut w, mut h) = (want.lines(), have.lines());
    for n in 1.. {
        match (w.next(), h.next()) {
            (Some(a), Some(b)) if a == b => continue,
            (None, None) => break,
            (a, b) => {
                let show = |l: Option<&str>| l.unwrap_or("<end of file>").to_string();
                return (n, show(a), show(b));
            }
        }
    }
    // Same lines, different line endings or final newline.
    (
        want.lines().count() + 1,
        "<a final newline>".into(),
        "<none>".into(),
    )
}

/// Every `#[no_mangle]` function defined under src/ffi, found by reading the sources, so the
/// list cannot go stale.
fn exported_functions() -> Vec<String> {
    let mut names = Vec::new();
    let mut files = vec![root().join("src").join("ffi")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
            continue;
        }
        if path.extension().is_some_and(|e| e == "rs") {
            names.extend(no_mangle_functions(&path));
        }
    }
    names.sort();
    names
}

fn no_mangle_functions(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut names = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != "#[no_mangle]" {
            continue;
        }
        let signature = lines.next().unwrap_or_default();
        let name = signature
            .split("fn ")
            .nth(1)
            .and_then(|rest| rest.split('(').next())
            .unwrap_or_else(|| panic!("{}: `#[no_mangle]` before {signature:?}", path.display()));
        names.push(name.trim().to_string());
    }
    names
}

/// The functions the header declares (`name(` right after a return type at a line's start).
fn declared_functions(header: &str) -> Vec<String> {
    let mut names: Vec<String> = header
        .lines()
        .filter(|l| !l.starts_with("//") && !l.starts_with(' ') && !l.starts_with('#'))
        .filter_map(|l| {
            let open = l.find('(')?;
            let name = l[..open].rsplit([' ', '*']).next()?;
            name.starts_with("gr_").then(|| name.to_string())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn header_declares_exactly_the_exported_functions() {
    let exported = exported_functions();
    assert!(
        exported.len() >= 20,
        "found only {exported:?} under src/ffi"
    );
    let header = generate();
    assert_eq!(declared_functions(&header), exported);
    assert!(header.contains("DO NOT EDIT"));
}

#[test]
fn header_enum_has_every_status_with_its_number() {
    let header = generate();
    let enumerators: Vec<(String, i32)> = header
        .lines()
        .filter_map(|l| {
            let (name, value) = l.trim().strip_suffix(',')?.split_once(" = ")?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .filter(|(name, _)| name.starts_with("GR_"))
        .collect();
    let statuses: Vec<(String, i32)> = gr_status::ALL
        .iter()
        .map(|s| (s.name().to_str().unwrap().to_string(), *s as i32))
        .collect();
    assert_eq!(enumerators, statuses);
}

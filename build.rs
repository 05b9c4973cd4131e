//! Generates the C header with cbindgen (pinned in Cargo.toml).
//!
//! The header is written to OUT_DIR on every build. Outside CI it is also copied to
//! `include/gemini_rotator.h` when it changed, so a developer's build keeps the committed header
//! current; in CI (`CI` set) the committed file is left alone and `tests/header.rs` fails if it
//! differs from what this build generated.

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("gemini_rotator.h");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=CI");

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    bindings.write_to_file(&out);

    if std::env::var_os("CI").is_none() {
        let committed = crate_dir.join("include").join("gemini_rotator.h");
        let fresh = std::fs::read(&out).unwrap();
        if std::fs::read(&committed).ok().as_deref() != Some(fresh.as_slice()) {
            std::fs::create_dir_all(committed.parent().unwrap()).unwrap();
            std::fs::write(&committed, fresh).unwrap();
        }
    }
}

//! The committed C header must be exactly what this build's cbindgen generated.

#[test]
fn committed_header_is_fresh() {
    let generated = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/gemini_rotator.h"))
        .expect("build.rs writes the header to OUT_DIR");
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/include/gemini_rotator.h"
    ))
    .expect("include/gemini_rotator.h is committed");
    assert!(
        generated == committed,
        "include/gemini_rotator.h is stale: rebuild outside CI (cargo build) and commit it"
    );
}

#[test]
fn header_declares_every_exported_function() {
    let header = include_str!("../include/gemini_rotator.h");
    for f in [
        "gr_version",
        "gr_pool_new",
        "gr_pool_free",
        "gr_generate",
        "gr_stats_json",
        "gr_key_fingerprint",
        "gr_free",
        "gr_error_status",
        "gr_error_message",
        "gr_error_retry_after_ms",
        "gr_error_http_status",
        "gr_error_rpc_status",
        "gr_error_free",
        "gr_status_name",
    ] {
        assert!(
            header.contains(&format!("{f}(")),
            "{f} missing from the header"
        );
    }
    assert!(header.contains("DO NOT EDIT"));
}

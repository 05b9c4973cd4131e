//! The command line as a user meets it: help for each command, and clear errors.

use std::process::{Command, Output};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gemini-rotator"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the CLI runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn every_command_has_help() {
    for command in ["demo", "generate", "stats", "emulator"] {
        let out = run(&[command, "--help"], &[]);
        let (stdout, _) = text(&out);
        assert!(out.status.success(), "{command} --help");
        assert!(
            stdout.starts_with(&format!("Usage: gemini-rotator {command}")),
            "{stdout}"
        );
    }
    let out = run(&["help"], &[]);
    assert!(out.status.success() && text(&out).0.contains("Commands:"));
}

#[test]
fn bad_usage_and_bad_configuration_are_named() {
    let out = run(&["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("unknown command \"frobnicate\""));

    let out = run(&["generate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("generate needs a prompt"));

    let out = run(&["generate", "hi"], &[]);
    assert!(
        text(&out)
            .1
            .contains("GEMINI_FREE_KEYS: no API keys configured"),
        "{:?}",
        text(&out)
    );

    let out = run(
        &["stats"],
        &[
            ("GEMINI_FREE_KEYS", "a-secret-key"),
            ("GEMINI_FREE_RATE_LIMIT", "fast"),
            ("GEMINI_ROTATOR_STATE", "memory"),
        ],
    );
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("GEMINI_FREE_RATE_LIMIT: not a number: \"fast\""),
        "{stderr}"
    );
    assert!(!stderr.contains("a-secret-key"));
}

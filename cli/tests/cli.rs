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

#[test]
fn enable_takes_a_disabled_key_back_host_wide() {
    use gemini_emulator::{Emulator, EmulatorConfig, Fault, FaultKind, KeySpec};
    use gemini_rotator::{CallOptions, Config, Pool};

    let pid = std::process::id();
    let (key, other) = (
        format!("cli-enable-{pid}"),
        format!("cli-enable-other-{pid}"),
    );
    let emu = Emulator::start(EmulatorConfig::with_keys(vec![
        KeySpec::new(key.clone(), "k"),
        KeySpec::new(other.clone(), "o"),
    ]))
    .unwrap();
    emu.add_fault(
        Fault::new(FaultKind::ServiceDisabled)
            .for_label("k")
            .times(1),
    );
    let state = std::env::temp_dir().join(format!("gemini-rotator-cli-enable-{pid}.state"));
    let config = serde_json::json!({
        "free_keys": [key, other], "base_url": emu.base_url(),
        "state": format!("shm:{}", state.display()),
    })
    .to_string();
    let body = r#"{"contents":[{"parts":[{"text":"hi"}]}]}"#;
    let pool = Pool::new(Config::from_json(&config).unwrap()).unwrap();
    pool.generate(body, &CallOptions::default()).unwrap(); // k: SERVICE_DISABLED, then o serves
    let fp = gemini_rotator::key::fingerprint(&key);
    let disabled = |p: &Pool| {
        let s: serde_json::Value =
            serde_json::from_str(&gemini_rotator::metrics::snapshot_json(p).unwrap()).unwrap();
        s["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["fingerprint"] == fp.as_str())
            .unwrap()["disabled"]
            .clone()
    };
    assert_eq!(disabled(&pool), "SERVICE_DISABLED");

    let env = [("GEMINI_ROTATOR_STATE", format!("shm:{}", state.display()))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = run(&["enable", &fp], &env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("it was disabled: SERVICE_DISABLED"),
        "{stdout}"
    );
    assert_eq!(
        disabled(&pool),
        serde_json::Value::Null,
        "the flag is cleared in the shared file"
    );

    // A pool made now uses the key again.
    let fresh = Pool::new(Config::from_json(&config).unwrap()).unwrap();
    let served: Vec<_> = (0..2)
        .map(|_| {
            fresh
                .generate(body, &CallOptions::default())
                .unwrap()
                .key_fingerprint
        })
        .collect();
    assert!(served.contains(&fp), "{served:?}");

    let out = run(&["enable", "000000000000"], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("no key with fingerprint"));
    let _ = std::fs::remove_file(&state);
}

#[test]
fn stats_show_each_key_and_model_of_the_shared_state() {
    use gemini_emulator::{Emulator, EmulatorConfig, KeySpec};

    let pid = std::process::id();
    let key = format!("cli-stats-{pid}");
    let emu = Emulator::start(EmulatorConfig::with_keys(vec![KeySpec::new(
        key.clone(),
        "k",
    )]))
    .unwrap();
    let state = std::env::temp_dir().join(format!("gemini-rotator-cli-table-{pid}.state"));
    let state = format!("shm:{}", state.display());
    let base_url = emu.base_url();
    let env = [
        ("GEMINI_FREE_KEYS", key.as_str()),
        ("GEMINI_FREE_DAILY_LIMIT", "20"),
        ("GEMINI_ROTATOR_STATE", state.as_str()),
        ("GEMINI_BASE_URL", base_url.as_str()),
    ];
    let out = run(&["generate", "hello"], &env);
    assert!(out.status.success(), "{:?}", text(&out));
    let out = run(&["stats"], &env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let fp = gemini_rotator::key::fingerprint(&key);
    let row = stdout
        .lines()
        .find(|l| l.contains(&fp) && l.contains("gemini-3.6-flash"))
        .unwrap_or_else(|| panic!("no model row in\n{stdout}"));
    assert!(row.contains("1/20"), "one of 20 today: {row}");
    assert!(
        stdout.contains("Model gemini-3.6-flash: 19 requests left today"),
        "{stdout}"
    );
    assert!(!stdout.contains(&key));
    let _ = std::fs::remove_file(state.trim_start_matches("shm:"));
}

//! The `gemini-emulator` binary, as C, Go and Python tests start it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{client, prompt, MODEL};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_gemini-emulator");

/// Reads the announcement line and returns the base URL.
fn listening_url(stdout: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    url.to_string()
}

/// Waits for the child to exit, killing it after `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the emulator did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn prints_the_listening_line_serves_and_exits_on_stdin_eof() {
    let dir = std::env::temp_dir().join(format!("gemini-emulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        r#"{"keys":[{"key":"secret","label":"a","limit":1,"window_ms":60000}]}"#,
    )
    .unwrap();

    let mut child = spawn(&["--config", config.to_str().unwrap(), "--exit-on-stdin-eof"]);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let url = listening_url(&mut stdout);

    let http = client();
    let send = || {
        http.post(format!("{url}/v1beta/models/{MODEL}:generateContent"))
            .header("x-goog-api-key", "secret")
            .json(&prompt("hi"))
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(send(), 200);
    assert_eq!(send(), 429);
    let stats: Value = http
        .get(format!("{url}/_emulator/stats"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stats["keys"]["a"]["rate_limited"], 1);

    // Closing stdin stops it, and nothing else was printed.
    drop(child.stdin.take());
    let status = wait_exit(&mut child, Duration::from_secs(5));
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reads_the_config_from_stdin() {
    let mut child = spawn(&["--config", "-"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            br#"{"keys":[{"key":"k","label":"only","project":"p","daily_limit":3}],
                 "clock":"2026-07-04T12:00:00-07:00"}"#,
        )
        .unwrap();
    drop(stdin);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let url = listening_url(&mut stdout);
    let stats: Value = client()
        .get(format!("{url}/_emulator/stats"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stats["keys"]["only"]["project"], "p", "{stats}");
    let clock: Value = client()
        .get(format!("{url}/_emulator/clock"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(clock["pacific_date"], "2026-07-04", "{clock}");
    terminate(&mut child);
}

/// Stops a child that does not watch stdin: SIGTERM on Unix.
fn terminate(child: &mut Child) {
    #[cfg(unix)]
    {
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = wait_exit(child, Duration::from_secs(5));
        assert!(status.success(), "SIGTERM should be a clean exit: {status}");
    }
    #[cfg(not(unix))]
    {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[test]
fn bad_arguments_and_configs_exit_2_with_a_message() {
    let dir = std::env::temp_dir().join(format!("gemini-emulator-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"keys":[{"key":"k"}]}"#).unwrap();
    let missing = dir.join("missing.json");

    let bad_clock = dir.join("bad-clock.json");
    std::fs::write(&bad_clock, r#"{"keys":[],"clock":"noon"}"#).unwrap();
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["--bogus"], "--bogus"),
        (vec!["--port", "seventy"], "seventy"),
        (vec!["--config", bad.to_str().unwrap()], "label"),
        (vec!["--config", missing.to_str().unwrap()], "missing.json"),
        (vec!["--config", bad_clock.to_str().unwrap()], "`clock`"),
    ];
    for (args, expected) in cases {
        let output = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_prints_usage() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("Usage: gemini-emulator"));
    assert!(text.contains("--exit-on-stdin-eof"));
}

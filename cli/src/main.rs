//! `gemini-rotator`: the command-line face of the library.
//!
//! - `demo`: drives the library against the built-in Gemini emulator on loopback (no keys, no
//!   internet) and shows what happened.
//! - `generate "prompt"`: one request through the pool configured in the environment.
//! - `stats`: the statistics of the pool configured in the environment (`--json`).
//! - `emulator`: runs the Gemini emulator on loopback.

mod demo;

use gemini_rotator::clock::SystemClock;
use gemini_rotator::store::{Enabled, Store};
use gemini_rotator::{gemini, metrics, CallOptions, Pool};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str = "\
Usage: gemini-rotator <command> [options]

Commands:
  demo                 Run a demo workload against the built-in Gemini emulator (no API keys,
                       no network: loopback only) and print per-key counts, paid fallbacks and
                       exhaustion errors.
  generate PROMPT      Send one request through the pool configured in the environment
                       (GEMINI_FREE_KEYS, GEMINI_PAID_KEY, ...) and print the answer's text.
                       Options: --model NAME, --max-wait-ms N, --json (print the whole response).
  stats                Print the live statistics of the pool configured in the environment,
                       across every process on the host that shares its state file.
                       Options: --json, --prometheus, --all (every key in the state file).
  enable FINGERPRINT   Take a disabled key back into service on the whole host (after you
                       fixed what disabled it, e.g. enabled the API in its project).
  emulator             Run the Gemini emulator on 127.0.0.1. Options: --config FILE.json,
                       --port N.
  help                 Print this help; COMMAND --help prints a command's.

Configuration is read from the environment; see the README for every variable.
";

fn main() -> ExitCode {
    // Like any Unix filter: a closed pipe (`gemini-rotator stats | head`) ends the program
    // quietly instead of making a print fail.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        return match command_help(command) {
            Some(help) => {
                print!("{help}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "gemini-rotator: unknown command {command:?}\nTry 'gemini-rotator help'."
                );
                ExitCode::from(2)
            }
        };
    }
    let result = match command.as_str() {
        "demo" => demo::run(rest),
        "generate" => generate(rest),
        "stats" => stats(rest),
        "emulator" => emulator(rest),
        "enable" => enable(rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(Usage(format!("unknown command {other:?}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Usage(message)) => {
            eprintln!("gemini-rotator: {message}\nTry 'gemini-rotator help'.");
            ExitCode::from(2)
        }
    }
}

/// The help of one command (`gemini-rotator COMMAND --help`).
fn command_help(command: &str) -> Option<&'static str> {
    Some(match command {
        "demo" => {
            "\
Usage: gemini-rotator demo

Starts the built-in Gemini emulator on 127.0.0.1 with 3 free keys and a paid key (limits
enforced by the emulator too), sends 8 threads x 40 requests through the library twice (first
failing at once when every key is full, then waiting up to 5 s for a key), and prints what
happened: outcomes, per-key statistics, paid fallbacks, and how many 429s the emulator had to
answer (0: the library never exceeded a limit). No API keys, no network beyond loopback.
"
        }
        "generate" => {
            "\
Usage: gemini-rotator generate [--model NAME] [--max-wait-ms N] [--json] PROMPT

Sends one generateContent request with PROMPT as the user's text through the pool configured in
the environment (GEMINI_FREE_KEYS, GEMINI_PAID_KEY, GEMINI_*_RATE_LIMIT, GEMINI_BASE_URL,
GEMINI_MODEL, GEMINI_ROTATOR_STATE, ...), and prints the answer's text (stderr: the key's
fingerprint and the attempts). --json prints the whole response. --max-wait-ms waits that long
for a key when every key is at its limit.
"
        }
        "stats" => {
            "\
Usage: gemini-rotator stats [--json | --prometheus] [--all]

Prints the live statistics of the pool configured in the environment: per key (fingerprint,
tier) its limit, use of the current window, admissions, successes, refusals, upstream 429s,
server errors, retries, cooldown and disabled state; pool-wide requests, paid fallbacks,
exhaustion and latency. With shared state (GEMINI_ROTATOR_STATE=shm, the default) the figures
cover every process on the host. --json: the JSON snapshot; --prometheus: the Prometheus text
format; --all: every key in the state file, whichever pool registered it.
"
        }
        "emulator" => {
            "\
Usage: gemini-rotator emulator [--config FILE.json] [--port N]

Runs the Gemini API emulator on 127.0.0.1 (port N, default: chosen by the system) and prints
`listening on http://127.0.0.1:PORT`. FILE.json: {\"keys\": [{\"key\": \"...\", \"label\": \"...\",
\"limit\": N, \"window_ms\": N}], \"faults\": [...]}; see emulator/README.md. Runs until killed.
"
        }
        "enable" => {
            "\
Usage: gemini-rotator enable FINGERPRINT

Clears the disabled flag (and any cooldown) of the key with this fingerprint in the host's
shared state file (GEMINI_ROTATOR_STATE), for every process: a key disabled as invalid, leaked,
suspended or with its API disabled stays disabled until then. Running pools look at a key they
found disabled again every 10 s.
"
        }
        "help" => USAGE,
        _ => return None,
    })
}

/// A failure to report: its message (the command exits with status 2).
pub struct Usage(pub String);

impl From<gemini_rotator::Error> for Usage {
    fn from(e: gemini_rotator::Error) -> Usage {
        Usage(e.to_string())
    }
}

/// Takes `--name VALUE` out of `args`.
pub fn option(args: &[String], name: &str) -> Result<Option<String>, Usage> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .cloned()
            .map(Some)
            .ok_or_else(|| Usage(format!("{name} needs a value"))),
    }
}

fn generate(args: &[String]) -> Result<(), Usage> {
    let mut prompt = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--model" | "--max-wait-ms" => i += 2,
            "--json" => i += 1,
            a if a.starts_with("--") => return Err(Usage(format!("unknown option {a:?}"))),
            a => {
                if prompt.replace(a.to_string()).is_some() {
                    return Err(Usage("give one prompt (quote it)".into()));
                }
                i += 1;
            }
        }
    }
    let prompt = prompt.ok_or_else(|| Usage("generate needs a prompt".into()))?;
    let max_wait_ms = match option(args, "--max-wait-ms")? {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| Usage(format!("--max-wait-ms: not a whole number: {v:?}")))?,
    };
    let pool = Pool::from_env()?;
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": prompt}]}]});
    let options = CallOptions {
        model: option(args, "--model")?,
        max_wait_ms,
        timeout_ms: None,
    };
    let response = pool.generate(&body.to_string(), &options)?;
    if args.iter().any(|a| a == "--json") {
        // The answer as received, byte for byte.
        let mut out = std::io::stdout().lock();
        out.write_all(&response.body)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| Usage(format!("cannot write the answer: {e}")))?;
    } else {
        let value: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|e| Usage(format!("the service's answer is not JSON: {e}")))?;
        println!("{}", gemini::response_text(&value));
        eprintln!(
            "(key {}, {} attempt(s))",
            response.key_fingerprint, response.attempts
        );
    }
    Ok(())
}

fn stats(args: &[String]) -> Result<(), Usage> {
    for a in args {
        if !["--json", "--prometheus", "--all"].contains(&a.as_str()) {
            return Err(Usage(format!("stats: unknown option {a:?}")));
        }
    }
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--all") {
        return stats_all(has("--json"));
    }
    let pool = Pool::from_env()?;
    let snapshot = metrics::snapshot(&pool)?;
    if has("--json") {
        println!("{}", metrics::snapshot_json(&pool)?);
    } else if has("--prometheus") {
        print!("{}", metrics::prometheus(&snapshot));
    } else {
        print!("{}", demo::stats_table(&snapshot));
    }
    Ok(())
}

/// Every key in the host's state file, whichever pool or process registered it.
fn stats_all(json: bool) -> Result<(), Usage> {
    let store = shared_store("stats --all")?;
    let now = store.now();
    let at = gemini_rotator::store::Moment::of(now, gemini_rotator::clock::unix_now_secs());
    let quotas = store.all_quotas(&at)?;
    let keys: Vec<_> = store
        .all_keys()?
        .iter()
        .map(|k| {
            let models = quotas
                .iter()
                .filter(|q| q.group == k.snapshot.group)
                .map(|q| metrics::key_model_stats(q, now))
                .collect();
            let group = gemini_rotator::key::hex(&k.snapshot.group);
            metrics::key_stats(k.fingerprint.clone(), group, &k.snapshot, models)
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string(&keys).unwrap_or_default());
    } else {
        println!(
            "State {} ({} keys, {} KiB of records)",
            store.describe().trim_start_matches("shm:"),
            keys.len(),
            store.used_bytes().unwrap_or(0) / 1024
        );
        print!("{}", demo::key_table(&keys));
    }
    Ok(())
}

/// The host's shared state, where GEMINI_ROTATOR_STATE names it (a file, or Redis), for
/// commands that work on every key in it rather than on one pool's.
fn shared_store(what: &str) -> Result<Arc<dyn Store>, Usage> {
    let location = gemini_rotator::Config::state_from_env()?;
    if location == gemini_rotator::config::StateLocation::Memory {
        return Err(Usage(format!(
            "{what} works on shared state (a file or Redis); GEMINI_ROTATOR_STATE is \"memory\""
        )));
    }
    Ok(gemini_rotator::store::open(
        &location,
        Arc::new(SystemClock),
    )?)
}

/// Takes a disabled (or cooling) key back into service, host-wide.
fn enable(args: &[String]) -> Result<(), Usage> {
    let [fingerprint] = args else {
        return Err(Usage(
            "enable takes one key fingerprint (see `gemini-rotator stats`)".into(),
        ));
    };
    let store = shared_store("enable")?;
    match store.enable(fingerprint)? {
        Enabled::NoSuchKey => {
            return Err(Usage(format!(
                "no key with fingerprint {fingerprint:?} in {}",
                store.describe().trim_start_matches("shm:")
            )))
        }
        Enabled::Enabled { was: Some(reason) } => println!(
            "key {fingerprint} enabled (it was disabled: {})",
            reason.as_str()
        ),
        Enabled::Enabled { was: None } => {
            println!("key {fingerprint} was not disabled; its cooldown, if any, is cleared")
        }
    }
    println!("running pools take it back within 10 s");
    Ok(())
}

fn emulator(args: &[String]) -> Result<(), Usage> {
    let config = match option(args, "--config")? {
        None => gemini_emulator::EmulatorConfig::default(),
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Usage(format!("--config {path}: {e}")))?;
            gemini_emulator::EmulatorConfig::from_json(&text)
                .map_err(|e| Usage(format!("--config {path}: {e}")))?
        }
    };
    let port = match option(args, "--port")? {
        None => 0,
        Some(p) => p
            .parse()
            .map_err(|_| Usage(format!("--port: not a port number: {p:?}")))?,
    };
    let emu = gemini_emulator::Emulator::start_on_port(config, port)
        .map_err(|e| Usage(format!("cannot start the emulator: {e}")))?;
    println!("listening on {}", emu.base_url());
    loop {
        std::thread::park();
    }
}

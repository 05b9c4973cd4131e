//! `gemini-emulator`: the emulator as a process, for tests written in C, Go and Python.
//!
//! Prints exactly one line, `listening on http://127.0.0.1:PORT`, then serves until it gets
//! SIGTERM or SIGINT, or (with `--exit-on-stdin-eof`) until its standard input closes.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use gemini_emulator::{Emulator, EmulatorConfig};
use tokio::sync::oneshot;

const USAGE: &str = "\
Usage: gemini-emulator [--config FILE.json] [--port N] [--exit-on-stdin-eof]

A Gemini API emulator on 127.0.0.1, for tests. Prints `listening on http://127.0.0.1:PORT`
once it accepts connections, then serves until SIGTERM or SIGINT.

Options:
  --config FILE        JSON configuration (`-` reads it from standard input).
                       Default: no keys.
  --port N             Port to listen on. Default: 0, chosen by the system.
  --exit-on-stdin-eof  Also exit when standard input reaches end of file, so that a test
                       harness that dies never leaves the emulator running.
  -h, --help           Print this help.
  -V, --version        Print the version.

Configuration example:
  {\"keys\": [{\"key\": \"secret-a\", \"label\": \"a\", \"project\": \"p1\", \"limit\": 10,
              \"window_ms\": 60000, \"daily_limit\": 20, \"token_limit\": 250000}],
   \"models\": {\"gemini-3-pro\": {\"limit\": 0}},
   \"faults\": [{\"kind\": \"http503\", \"label\": \"a\", \"count\": 1}],
   \"record_bodies\": false}
";

/// What the command line asked for.
#[derive(Debug, Default)]
struct Options {
    config: Option<String>,
    port: u16,
    exit_on_stdin_eof: bool,
}

/// What the command line asks the program to do.
#[derive(Debug)]
enum Parsed {
    Serve(Options),
    Help,
    Version,
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Serve(options)) => options,
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("gemini-emulator {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(message) => return usage_error(&message),
    };
    let config = match load_config(options.config.as_deref()) {
        Ok(config) => config,
        Err(message) => return usage_error(&message),
    };
    match run(config, &options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gemini-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Bad arguments or configuration: say what is wrong and exit with status 2.
fn usage_error(message: &str) -> ExitCode {
    eprintln!("gemini-emulator: {message}\nTry 'gemini-emulator --help' for more information.");
    ExitCode::from(2)
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--name value` and `--name=value`.
        let (name, inline_value) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value)),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline_value
                .map(str::to_string)
                .or_else(|| args.next())
                .ok_or_else(|| format!("option '{name}' needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--config" => options.config = Some(value("--config")?),
            "--port" => {
                let text = value("--port")?;
                options.port = text
                    .parse()
                    .map_err(|_| format!("invalid port '{text}': expected a number 0-65535"))?;
            }
            "--exit-on-stdin-eof" if inline_value.is_none() => options.exit_on_stdin_eof = true,
            _ => return Err(format!("unknown argument '{arg}'")),
        }
    }
    if options.exit_on_stdin_eof && options.config.as_deref() == Some("-") {
        return Err(
            "'--config -' reads standard input, so it cannot be combined with \
                    '--exit-on-stdin-eof'"
                .into(),
        );
    }
    Ok(Parsed::Serve(options))
}

/// Reads the configuration file (`-` for standard input); no file means no keys.
fn load_config(path: Option<&str>) -> Result<EmulatorConfig, String> {
    let Some(path) = path else {
        return Ok(EmulatorConfig::default());
    };
    let text = if path == "-" {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the configuration from standard input: {e}"))?;
        text
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file '{path}': {e}"))?
    };
    let name = if path == "-" { "<stdin>" } else { path };
    EmulatorConfig::from_json(&text).map_err(|e| format!("bad config file '{name}': {e}"))
}

/// Starts the emulator, announces it, and serves until told to stop.
fn run(config: EmulatorConfig, options: &Options) -> io::Result<()> {
    // A small runtime of its own, only to wait for signals and standard input.
    let waiter = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Register the signal handlers before announcing, so no signal can be missed.
    let stop = waiter.block_on(async { StopSignals::register() })?;
    let stdin_eof = options.exit_on_stdin_eof.then(watch_stdin);

    let emulator = Emulator::start_on_port(config, options.port)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen: {e}")))?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {}", emulator.base_url())?;
    stdout.flush()?;
    drop(stdout);

    waiter.block_on(stop.wait(stdin_eof));
    drop(emulator);
    Ok(())
}

/// Reports when standard input reaches end of file (or fails).
fn watch_stdin() -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buffer = [0u8; 4096];
        while matches!(stdin.read(&mut buffer), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    rx
}

/// SIGINT, and on Unix SIGTERM.
struct StopSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn register() -> io::Result<StopSignals> {
        Ok(StopSignals {
            #[cfg(unix)]
            terminate: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    /// Waits for SIGINT, SIGTERM or end of standard input (when watched).
    async fn wait(mut self, stdin_eof: Option<oneshot::Receiver<()>>) {
        let stdin_eof = async {
            match stdin_eof {
                Some(eof) => {
                    let _ = eof.await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(unix)]
        let terminate = self.terminate.recv();
        #[cfg(not(unix))]
        let terminate = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate => {}
            _ = stdin_eof => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_options() {
        let Ok(Parsed::Serve(options)) =
            parse(&["--config", "c.json", "--port=8080", "--exit-on-stdin-eof"])
        else {
            panic!("expected options");
        };
        assert_eq!(options.config.as_deref(), Some("c.json"));
        assert_eq!(options.port, 8080);
        assert!(options.exit_on_stdin_eof);
        assert!(matches!(parse(&["--help"]), Ok(Parsed::Help)));
    }

    #[test]
    fn names_bad_arguments() {
        assert!(parse(&["--port", "x"]).unwrap_err().contains("'x'"));
        assert!(parse(&["--port"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--nope"]).unwrap_err().contains("'--nope'"));
        assert!(parse(&["--config", "-", "--exit-on-stdin-eof"]).is_err());
    }
}

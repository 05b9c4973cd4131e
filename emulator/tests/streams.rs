//! streamGenerateContent: SSE and JSON-array framing, events that really stream, and every
//! stream fault. A raw HTTP/1.1 client on a TCP socket sees exactly what goes over the wire,
//! chunk by chunk, with the time each piece arrived.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::prompt;
use gemini_emulator::{Emulator, EmulatorConfig, Fault, FaultKind, KeySpec, StreamConfig};
use serde_json::{json, Value};

const MODEL: &str = "gemini-3.6-flash";

/// What a raw client saw of one answer.
struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    /// Each body chunk, with the time since the request was sent.
    chunks: Vec<(Duration, Vec<u8>)>,
    /// The chunked body ended with its terminating chunk (not a dropped connection).
    terminated: bool,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body(&self) -> String {
        let bytes: Vec<u8> = self.chunks.iter().flat_map(|(_, c)| c.clone()).collect();
        String::from_utf8(bytes).unwrap()
    }

    /// The SSE events' JSON, checking the framing on the way.
    fn events(&self, separator: &str) -> Vec<Value> {
        let body = self.body();
        assert!(body.is_empty() || body.ends_with(separator), "{body:?}");
        body.split(separator)
            .filter(|event| !event.is_empty())
            .map(|event| {
                let data = event
                    .strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("{event:?}"));
                assert!(!data.contains('\n'), "one line per event: {data:?}");
                serde_json::from_str(data).unwrap()
            })
            .collect()
    }
}

/// POSTs `body` to `path` with key "key-a" and reads the answer as it arrives, giving up
/// reading after `read_limit`.
fn send(emulator: &Emulator, path: &str, body: &Value, read_limit: Duration) -> Seen {
    let mut socket = TcpStream::connect(("127.0.0.1", emulator.port())).unwrap();
    socket.set_read_timeout(Some(read_limit)).unwrap();
    let body = body.to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nx-goog-api-key: key-a\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let started = Instant::now();
    socket.write_all(head.as_bytes()).unwrap();
    socket.write_all(body.as_bytes()).unwrap();
    let mut reader = BufReader::new(socket);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(": ").unwrap();
        headers.push((name.to_string(), value.to_string()));
    }
    let mut seen = Seen {
        status,
        headers,
        chunks: Vec::new(),
        terminated: false,
    };
    if let Some(length) = seen.header("content-length") {
        let mut whole = vec![0; length.parse().unwrap()];
        reader.read_exact(&mut whole).unwrap();
        seen.chunks.push((started.elapsed(), whole));
        seen.terminated = true;
        return seen;
    }
    assert_eq!(seen.header("transfer-encoding"), Some("chunked"));
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return seen, // Dropped, or still stalled at the read limit.
            Ok(_) => {}
        }
        let size = usize::from_str_radix(line.trim_end(), 16).unwrap();
        if size == 0 {
            seen.terminated = true;
            return seen;
        }
        let mut chunk = vec![0; size + 2];
        if reader.read_exact(&mut chunk).is_err() {
            return seen;
        }
        chunk.truncate(size);
        seen.chunks.push((started.elapsed(), chunk));
    }
}

fn sse_path(version: &str) -> String {
    format!("/{version}/models/{MODEL}:streamGenerateContent?alt=sse")
}

fn emulator_with(stream: StreamConfig) -> Emulator {
    let mut config = EmulatorConfig::with_keys(vec![KeySpec::new("key-a", "a")]);
    config.stream = stream;
    Emulator::start(config).unwrap()
}

fn text_of(event: &Value) -> &str {
    event["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap()
}

const LONG: Duration = Duration::from_secs(10);

#[test]
fn sse_events_join_to_the_answer_with_running_usage_and_one_finish_reason() {
    let emulator = emulator_with(StreamConfig::default());
    for version in ["v1", "v1beta"] {
        let seen = send(
            &emulator,
            &sse_path(version),
            &prompt("three little words"),
            LONG,
        );
        assert_eq!(seen.status, 200);
        assert_eq!(seen.header("content-type"), Some("text/event-stream"));
        assert!(seen.terminated);
        let events = seen.events("\n\n");
        assert_eq!(events.len(), 4);
        let text: String = events.iter().map(text_of).collect();
        assert_eq!(text, "echo: three little words");
        let finish: Vec<bool> = events
            .iter()
            .map(|e| e["candidates"][0].get("finishReason").is_some())
            .collect();
        assert_eq!(finish, [false, false, false, true]);
        assert_eq!(events[3]["candidates"][0]["finishReason"], "STOP");
        let running: Vec<u64> = events
            .iter()
            .map(|e| e["usageMetadata"]["candidatesTokenCount"].as_u64().unwrap())
            .collect();
        assert_eq!(running, [1, 2, 3, 4]);
        assert!(events
            .iter()
            .all(|e| e["usageMetadata"]["promptTokenCount"] == 3));
        assert!(events
            .iter()
            .all(|e| e["responseId"] == events[0]["responseId"]));
    }
    let log = emulator.log();
    assert_eq!(log[0].method, "streamGenerateContent");
    let stream = log[0].stream.clone().unwrap();
    assert_eq!(
        (stream.events, stream.end.as_deref()),
        (4, Some("complete"))
    );
    assert_eq!(log[0].tokens, Some(3));
    assert_eq!(emulator.stats().open_streams, 0);
}

#[test]
fn events_are_flushed_as_they_are_produced() {
    let emulator = emulator_with(StreamConfig {
        gap_ms: 150,
        crlf: true,
    });
    let seen = send(&emulator, &sse_path("v1beta"), &prompt("a b c"), LONG);
    let events = seen.events("\r\n\r\n");
    assert_eq!(events.len(), 4);
    // Each event came in its own chunk, a gap apart: the first long before the last.
    assert_eq!(seen.chunks.len(), 4);
    let first = seen.chunks[0].0;
    let last = seen.chunks[3].0;
    assert!(
        last - first >= Duration::from_millis(440),
        "{first:?} .. {last:?}"
    );
    for pair in seen.chunks.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= Duration::from_millis(145),
            "{:?}",
            pair[1].0 - pair[0].0
        );
    }
}

#[test]
fn a_fault_shapes_one_stream_gaps_and_crlf() {
    let emulator = emulator_with(StreamConfig::default());
    emulator.add_fault(
        Fault::new(FaultKind::Delay)
            .with_gap_ms(60)
            .with_crlf()
            .times(1),
    );
    let seen = send(&emulator, &sse_path("v1beta"), &prompt("a b"), LONG);
    assert_eq!(seen.events("\r\n\r\n").len(), 3);
    assert!(seen.chunks[2].0 - seen.chunks[0].0 >= Duration::from_millis(115));
    // The next one is back to the defaults.
    let seen = send(&emulator, &sse_path("v1beta"), &prompt("a b"), LONG);
    assert_eq!(seen.events("\n\n").len(), 3);
}

#[test]
fn without_alt_sse_the_answer_is_a_streamed_json_array() {
    let emulator = emulator_with(StreamConfig {
        gap_ms: 50,
        crlf: false,
    });
    let path = format!("/v1beta/models/{MODEL}:streamGenerateContent");
    let seen = send(&emulator, &path, &prompt("x y"), LONG);
    assert_eq!(seen.status, 200);
    assert_eq!(
        seen.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    assert!(seen.chunks.len() >= 3, "streamed, not whole");
    let array: Vec<Value> = serde_json::from_str(&seen.body()).unwrap();
    let text: String = array.iter().map(text_of).collect();
    assert_eq!(text, "echo: x y");
    assert_eq!(array[2]["candidates"][0]["finishReason"], "STOP");

    let bad = format!("{path}?alt=proto");
    let seen = send(&emulator, &bad, &prompt("x"), LONG);
    assert_eq!(seen.status, 400);
    let error: Value = serde_json::from_str(&seen.body()).unwrap();
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("'alt'"));
}

#[test]
fn thoughts_stream_first() {
    let emulator = emulator_with(StreamConfig::default());
    let mut body = prompt("hi");
    body["generationConfig"] = json!({ "thinkingConfig": { "includeThoughts": true } });
    let events = send(&emulator, &sse_path("v1beta"), &body, LONG).events("\n\n");
    assert_eq!(
        events[0]["candidates"][0]["content"]["parts"][0]["thought"],
        true
    );
    assert_eq!(events[0]["usageMetadata"]["thoughtsTokenCount"], 3);
    assert!(events[1]["candidates"][0]["content"]["parts"][0]
        .get("thought")
        .is_none());
}

#[test]
fn a_safety_block_streams_as_one_event() {
    let emulator = emulator_with(StreamConfig::default());
    emulator.add_fault(Fault::new(FaultKind::SafetyBlock).times(1));
    let seen = send(&emulator, &sse_path("v1beta"), &prompt("a b"), LONG);
    assert_eq!(seen.status, 200);
    let events = seen.events("\n\n");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["promptFeedback"]["blockReason"], "SAFETY");
    assert!(events[0].get("candidates").is_none());
    let stream = emulator.log()[0].stream.clone().unwrap();
    assert_eq!(stream.end.as_deref(), Some("complete"));
}

#[test]
fn a_mid_stream_error_is_a_bare_pretty_json_object_after_the_events() {
    let emulator = emulator_with(StreamConfig::default());
    emulator.add_fault(
        Fault::new(FaultKind::StreamErrorMid)
            .after_events(2)
            .times(1),
    );
    let seen = send(
        &emulator,
        &sse_path("v1beta"),
        &prompt("one two three"),
        LONG,
    );
    assert_eq!(seen.status, 200);
    let body = seen.body();
    let (events, error) = body.split_at(body.find("{\n").expect("a pretty-printed object"));
    let events: Vec<&str> = events.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.starts_with("data: ")));
    assert!(!error.starts_with("data:"));
    let error: Value = serde_json::from_str(error).unwrap();
    assert_eq!(error["error"]["code"], 503);
    assert_eq!(error["error"]["status"], "UNAVAILABLE");
    assert!(seen.terminated);

    emulator.add_fault(
        Fault::new(FaultKind::StreamErrorMid)
            .with_error(FaultKind::Http500)
            .times(1),
    );
    let body = send(&emulator, &sse_path("v1beta"), &prompt("one two"), LONG).body();
    let error: Value = serde_json::from_str(&body[body.find("{\n").unwrap()..]).unwrap();
    assert_eq!(error["error"]["status"], "INTERNAL");
    let log = emulator.log();
    assert_eq!(log[0].fault.as_deref(), Some("stream_error_mid"));
    let stream = log[0].stream.clone().unwrap();
    assert_eq!((stream.events, stream.end.as_deref()), (2, Some("error")));
}

#[test]
fn cut_dropped_and_empty_streams() {
    let emulator = emulator_with(StreamConfig::default());
    // Cut: ends cleanly without the finishReason event.
    emulator.add_fault(Fault::new(FaultKind::StreamCut).after_events(99).times(1));
    let seen = send(&emulator, &sse_path("v1beta"), &prompt("a b c"), LONG);
    assert!(seen.terminated);
    let events = seen.events("\n\n");
    assert_eq!(events.len(), 3, "all but the last");
    assert!(events
        .iter()
        .all(|e| e["candidates"][0].get("finishReason").is_none()));
    // Dropped: the connection goes away mid-body.
    emulator.add_fault(Fault::new(FaultKind::StreamDrop).times(1));
    let seen = send(&emulator, &sse_path("v1beta"), &prompt("a b c"), LONG);
    assert!(!seen.terminated);
    assert_eq!(seen.events("\n\n").len(), 1);
    // Empty: a 200 with no events at all.
    emulator.add_fault(Fault::new(FaultKind::StreamEmpty).times(1));
    let seen = send(&emulator, &sse_path("v1beta"), &prompt("a b c"), LONG);
    assert_eq!(
        (seen.status, seen.body().as_str(), seen.terminated),
        (200, "", true)
    );
    let ends: Vec<Option<String>> = emulator
        .log()
        .into_iter()
        .map(|e| e.stream.unwrap().end)
        .collect();
    let expected = ["cut", "dropped", "empty"].map(|s| Some(s.to_string()));
    assert_eq!(ends, expected);
}

#[test]
fn stalls_before_the_first_event_and_mid_stream() {
    let emulator = emulator_with(StreamConfig::default());
    emulator.add_fault(
        Fault::new(FaultKind::StreamStallFirst)
            .with_stall_ms(300)
            .times(1),
    );
    let seen = send(&emulator, &sse_path("v1beta"), &prompt("a b"), LONG);
    assert!(
        seen.chunks[0].0 >= Duration::from_millis(300),
        "{:?}",
        seen.chunks[0].0
    );
    assert_eq!(seen.events("\n\n").len(), 3);

    emulator.add_fault(
        Fault::new(FaultKind::StreamStallMid)
            .with_stall_ms(300)
            .times(1),
    );
    let seen = send(&emulator, &sse_path("v1beta"), &prompt("a b"), LONG);
    assert!(seen.chunks[1].0 - seen.chunks[0].0 >= Duration::from_millis(295));
    assert_eq!(seen.events("\n\n").len(), 3);
}

#[test]
fn a_stall_without_end_lasts_until_the_client_goes_away_and_is_seen_to() {
    let emulator = emulator_with(StreamConfig::default());
    emulator.add_fault(Fault::new(FaultKind::StreamStallFirst).times(1));
    let seen = std::thread::scope(|scope| {
        let client = scope.spawn(|| {
            send(
                &emulator,
                &sse_path("v1beta"),
                &prompt("a b"),
                Duration::from_millis(1500),
            )
        });
        // While the client waits, the stream is open (stalled).
        let mut seen_open = false;
        while !client.is_finished() && !seen_open {
            seen_open = emulator.stats().open_streams == 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(seen_open, "the stalled stream never showed as open");
        client.join().unwrap()
    });
    // The head came, no event did.
    assert_eq!(seen.status, 200);
    assert!(seen.chunks.is_empty());
    // `send` closed the socket when it gave up: the emulator notices and ends the stream.
    let deadline = Instant::now() + Duration::from_secs(5);
    while emulator.stats().open_streams > 0 {
        assert!(
            Instant::now() < deadline,
            "the stream was never seen to close"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let stream = emulator.log()[0].stream.clone().unwrap();
    assert_eq!(
        (stream.events, stream.end.as_deref()),
        (0, Some("client_closed"))
    );
}

#[test]
fn errors_before_the_stream_are_plain_json_sometimes_labelled_event_stream() {
    let emulator = emulator_with(StreamConfig::default());
    emulator.add_fault(Fault::new(FaultKind::QuotaMinute).times(1));
    let seen = send(&emulator, &sse_path("v1beta"), &prompt("x"), LONG);
    assert_eq!(seen.status, 429);
    assert_eq!(
        seen.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    let error: Value = serde_json::from_str(&seen.body()).unwrap();
    assert_eq!(error["error"]["status"], "RESOURCE_EXHAUSTED");

    emulator.add_fault(Fault::new(FaultKind::Http503).as_event_stream().times(1));
    let seen = send(&emulator, &sse_path("v1beta"), &prompt("x"), LONG);
    assert_eq!(seen.status, 503);
    assert_eq!(seen.header("content-type"), Some("text/event-stream"));
    let body = seen.body();
    assert!(!body.starts_with("data:"));
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], 503);
    // Stream faults never touch other methods.
    emulator.add_fault(Fault::new(FaultKind::StreamCut));
    let (status, _) = common::call(&emulator, "key-a", MODEL, "generateContent", &prompt("x"));
    assert_eq!(status, 200);
}

#[test]
fn dropping_the_emulator_ends_a_stream_stalled_forever() {
    let emulator = emulator_with(StreamConfig::default());
    emulator.add_fault(Fault::new(FaultKind::StreamStallMid));
    let port = emulator.port();
    let reader = std::thread::spawn(move || {
        let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let body = prompt("a b").to_string();
        write!(
            socket,
            "POST {} HTTP/1.1\r\nHost: x\r\nx-goog-api-key: key-a\r\nContent-Length: {}\r\n\r\n{body}",
            sse_path("v1"),
            body.len()
        )
        .unwrap();
        let mut all = Vec::new();
        let _ = socket.read_to_end(&mut all);
        String::from_utf8_lossy(&all).into_owned()
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while emulator.stats().open_streams == 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    drop(emulator);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let seen = reader.join().unwrap();
    assert!(
        seen.contains("data: "),
        "the first event came before the stall: {seen}"
    );
}

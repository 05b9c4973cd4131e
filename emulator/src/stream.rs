//! Writing a `streamGenerateContent` answer event by event, with the faults that shape it.
//!
//! The answer's head goes out at once; a task then writes each event into the body as it is
//! produced (chunked transfer encoding), so a client sees the first event long before the
//! last when events are spaced out. The task notices a client that goes away, even during a
//! stall, and stops.

use std::time::Duration;

use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;
use tokio::sync::mpsc;

use crate::api::fault_error;
use crate::config::ModelLimits;
use crate::faults::{AppliedFault, FaultKind};
use crate::http::{Body, StreamAborted, JSON};
use crate::responses::GenerateContentResponse;
use crate::state::{Shared, StreamTicket};

/// How events are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `alt=sse`: `data: <event JSON>` and a blank line per event.
    Sse,
    /// No `alt`: one JSON array, its elements written as they are produced.
    JsonArray,
}

/// What the writing task needs, decided before the answer starts.
struct Plan {
    events: Vec<String>,
    framing: Framing,
    separator: &'static str,
    gap: Duration,
    fault: Option<AppliedFault>,
}

/// The 200 answer of an admitted stream, written by a task of its own.
pub fn respond(
    shared: &Shared,
    events: Vec<GenerateContentResponse>,
    framing: Framing,
    fault: Option<AppliedFault>,
    ticket: StreamTicket,
) -> Response<Body> {
    let defaults = shared.stream_config();
    let crlf = fault.as_ref().and_then(|f| f.crlf).unwrap_or(defaults.crlf);
    let gap_ms = fault
        .as_ref()
        .and_then(|f| f.gap_ms)
        .unwrap_or(defaults.gap_ms);
    let plan = Plan {
        events: events
            .iter()
            .map(|event| serde_json::to_string(event).expect("answers always serialize"))
            .collect(),
        framing,
        separator: if crlf { "\r\n\r\n" } else { "\n\n" },
        gap: Duration::from_millis(gap_ms),
        fault,
    };
    let (tx, body) = Body::channel();
    tokio::spawn(write(plan, tx, ticket));
    let content_type = match framing {
        Framing::Sse => "text/event-stream",
        Framing::JsonArray => JSON,
    };
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

type Sender = mpsc::Sender<Result<Bytes, StreamAborted>>;

/// Writes the events, applying the fault. Each state change is recorded before the bytes
/// that reveal it are written, so a client that has read them finds the log up to date.
async fn write(plan: Plan, tx: Sender, mut ticket: StreamTicket) {
    let kind = plan.fault.as_ref().map(|f| f.kind);
    let stall = plan
        .fault
        .as_ref()
        .and_then(|f| f.stall_ms)
        .map(Duration::from_millis);
    // Faults that show mid-stream always come before the last event (the one with
    // finishReason), whatever `after_events` says.
    let last = plan.events.len().saturating_sub(1);
    let after = plan
        .fault
        .as_ref()
        .and_then(|f| f.after_events)
        .map_or(1, |n| n as usize)
        .min(last);

    if kind == Some(FaultKind::StreamEmpty) {
        ticket.end("empty");
        return;
    }
    if kind == Some(FaultKind::StreamStallFirst) && !pause(&tx, stall).await {
        ticket.end("client_closed");
        return;
    }
    for (i, event) in plan.events.iter().enumerate() {
        if i == after {
            match kind {
                Some(FaultKind::StreamStallMid) if !pause(&tx, stall).await => {
                    ticket.end("client_closed");
                    return;
                }
                Some(FaultKind::StreamErrorMid) => {
                    let fault = plan.fault.as_ref().expect("a kind comes from a fault");
                    let mut error_fault = fault.clone();
                    error_fault.kind = fault.error.unwrap_or(FaultKind::Http503);
                    let error = fault_error(&error_fault, &ModelLimits::default(), "", "");
                    // A bare, pretty-printed error object, as the real service sends one.
                    let value: serde_json::Value =
                        serde_json::from_str(&error.body()).expect("error bodies are JSON");
                    let text = serde_json::to_string_pretty(&value).expect("values serialize");
                    ticket.end("error");
                    let _ = tx.send(Ok(Bytes::from(format!("{text}\n")))).await;
                    return;
                }
                Some(FaultKind::StreamCut) => {
                    ticket.end("cut");
                    return;
                }
                Some(FaultKind::StreamDrop) => {
                    ticket.end("dropped");
                    let _ = tx.send(Err(StreamAborted)).await;
                    return;
                }
                _ => {}
            }
        }
        if i > 0 && !plan.gap.is_zero() && !pause(&tx, Some(plan.gap)).await {
            ticket.end("client_closed");
            return;
        }
        let piece = match (plan.framing, i) {
            (Framing::Sse, _) => format!("data: {event}{}", plan.separator),
            (Framing::JsonArray, 0) => format!("[{event}"),
            (Framing::JsonArray, _) => format!(",\r\n{event}"),
        };
        let ends = i == last && plan.framing == Framing::Sse;
        ticket.sent();
        if ends {
            ticket.end("complete");
        }
        if tx.send(Ok(Bytes::from(piece))).await.is_err() {
            ticket.end("client_closed");
            return;
        }
    }
    if plan.framing == Framing::JsonArray {
        ticket.end("complete");
        let _ = tx.send(Ok(Bytes::from_static(b"]"))).await;
    }
}

/// Waits `duration` (`None`: until the client goes away); false if the client went away.
async fn pause(tx: &Sender, duration: Option<Duration>) -> bool {
    let wait = async {
        match duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = wait => true,
        _ = tx.closed() => false,
    }
}

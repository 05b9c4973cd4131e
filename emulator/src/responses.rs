//! The successful (HTTP 200) `generateContent` answers, whole or as stream events, with
//! fields in the real service's order.

use serde::Serialize;
use serde_json::{json, Value};

use crate::request::{count_tokens, count_words, Prompt};

/// The thought summary a thinking answer starts with.
const THOUGHT: &str = "(thinking about it)";

/// A `GenerateContentResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    candidates: Vec<Candidate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_feedback: Option<Value>,
    usage_metadata: UsageMetadata,
    model_version: String,
    response_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Debug, Serialize)]
struct Content {
    parts: Vec<Part>,
    role: &'static str,
}

#[derive(Debug, Serialize)]
struct Part {
    text: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    thought: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates_token_count: Option<u64>,
    total_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    thoughts_token_count: Option<u64>,
}

/// A normal answer: the last user text echoed back, with word counts as token counts.
pub fn echo(prompt: &Prompt, model: &str, response_id: u64) -> GenerateContentResponse {
    let answer = format!("echo: {}", prompt.last_text);
    let candidates_tokens = count_tokens(&answer);
    let mut parts = Vec::with_capacity(2);
    let mut thoughts_token_count = None;
    if prompt.include_thoughts {
        parts.push(Part {
            text: THOUGHT.to_string(),
            thought: true,
        });
        thoughts_token_count = Some(count_tokens(THOUGHT));
    }
    parts.push(Part {
        text: answer,
        thought: false,
    });
    GenerateContentResponse {
        candidates: vec![Candidate {
            content: Content {
                parts,
                role: "model",
            },
            finish_reason: Some("STOP"),
            index: 0,
        }],
        prompt_feedback: None,
        usage_metadata: UsageMetadata {
            prompt_token_count: prompt.prompt_tokens,
            candidates_token_count: Some(candidates_tokens),
            // As in the real service, the total includes the thinking.
            total_token_count: prompt.prompt_tokens
                + candidates_tokens
                + thoughts_token_count.unwrap_or(0),
            thoughts_token_count,
        },
        model_version: model.to_string(),
        response_id: format!("emu-{response_id}"),
    }
}

/// The events of a streamed answer: the thought first (when asked for), then the answer a
/// word at a time, so that the texts join to the whole answer's text. Every event carries the
/// running usage; only the last carries `finishReason`.
pub fn stream_events(
    prompt: &Prompt,
    model: &str,
    response_id: u64,
) -> Vec<GenerateContentResponse> {
    let answer = format!("echo: {}", prompt.last_text);
    let mut pieces: Vec<(String, bool)> = Vec::new();
    if prompt.include_thoughts {
        pieces.push((THOUGHT.to_string(), true));
    }
    // Each piece is a word with the whitespace after it; leading whitespace joins the first.
    let mut piece = String::new();
    let mut in_gap = false;
    for c in answer.chars() {
        if in_gap && !c.is_whitespace() {
            pieces.push((std::mem::take(&mut piece), false));
        }
        in_gap = c.is_whitespace() && !piece.trim().is_empty();
        piece.push(c);
    }
    pieces.push((piece, false));

    let thoughts_token_count = prompt.include_thoughts.then(|| count_tokens(THOUGHT));
    let mut so_far = String::new();
    let last = pieces.len() - 1;
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, (text, thought))| {
            if !thought {
                so_far.push_str(&text);
            }
            let candidates_tokens = (!so_far.is_empty()).then(|| count_words(&so_far).max(1));
            GenerateContentResponse {
                candidates: vec![Candidate {
                    content: Content {
                        parts: vec![Part { text, thought }],
                        role: "model",
                    },
                    finish_reason: (i == last).then_some("STOP"),
                    index: 0,
                }],
                prompt_feedback: None,
                usage_metadata: UsageMetadata {
                    prompt_token_count: prompt.prompt_tokens,
                    candidates_token_count: candidates_tokens,
                    total_token_count: prompt.prompt_tokens
                        + candidates_tokens.unwrap_or(0)
                        + thoughts_token_count.unwrap_or(0),
                    thoughts_token_count,
                },
                model_version: model.to_string(),
                response_id: format!("emu-{response_id}"),
            }
        })
        .collect()
}

/// A prompt blocked for safety: still HTTP 200, with no candidates.
pub fn safety_block(prompt_tokens: u64, model: &str, response_id: u64) -> GenerateContentResponse {
    let rating = |category: &str, probability: &str| json!({ "category": category, "probability": probability });
    GenerateContentResponse {
        candidates: Vec::new(),
        prompt_feedback: Some(json!({
            "blockReason": "SAFETY",
            "safetyRatings": [
                rating("HARM_CATEGORY_SEXUALLY_EXPLICIT", "NEGLIGIBLE"),
                rating("HARM_CATEGORY_HATE_SPEECH", "NEGLIGIBLE"),
                rating("HARM_CATEGORY_HARASSMENT", "NEGLIGIBLE"),
                rating("HARM_CATEGORY_DANGEROUS_CONTENT", "HIGH"),
            ],
        })),
        usage_metadata: UsageMetadata {
            prompt_token_count: prompt_tokens,
            candidates_token_count: None,
            total_token_count: prompt_tokens,
            thoughts_token_count: None,
        },
        model_version: model.to_string(),
        response_id: format!("emu-{response_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(text: &str, include_thoughts: bool) -> Prompt {
        Prompt {
            last_text: text.into(),
            prompt_tokens: 2,
            include_thoughts,
        }
    }

    #[test]
    fn echo_shape_and_order() {
        let text = serde_json::to_string(&echo(&prompt("hi there", false), "m", 7)).unwrap();
        assert_eq!(
            text,
            r#"{"candidates":[{"content":{"parts":[{"text":"echo: hi there"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":3,"totalTokenCount":5},"modelVersion":"m","responseId":"emu-7"}"#
        );
    }

    #[test]
    fn thoughts_come_first() {
        let body = serde_json::to_value(echo(&prompt("x", true), "m", 1)).unwrap();
        let parts = body["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap();
        assert_eq!(parts[0]["thought"], true);
        assert_eq!(parts[1]["text"], "echo: x");
        assert!(parts[1].get("thought").is_none());
        assert_eq!(body["usageMetadata"]["thoughtsTokenCount"], 3);
        assert_eq!(body["usageMetadata"]["totalTokenCount"], 2 + 2 + 3);
    }

    #[test]
    fn stream_events_join_to_the_answer() {
        let events = stream_events(&prompt("  hello  big world ", true), "m", 3);
        let values: Vec<Value> = events
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect();
        assert_eq!(
            values[0]["candidates"][0]["content"]["parts"][0]["thought"],
            true
        );
        let text: String = values[1..]
            .iter()
            .map(|v| {
                v["candidates"][0]["content"]["parts"][0]["text"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(text, "echo:   hello  big world ");
        assert_eq!(values.len(), 5);
        let finishes: Vec<bool> = values
            .iter()
            .map(|v| v["candidates"][0].get("finishReason").is_some())
            .collect();
        assert_eq!(finishes, [false, false, false, false, true]);
        let last = &values[4]["usageMetadata"];
        assert_eq!(last["candidatesTokenCount"], 4);
        assert_eq!(last["totalTokenCount"], 2 + 4 + 3);
        assert_eq!(values[2]["usageMetadata"]["candidatesTokenCount"], 2);
    }

    #[test]
    fn safety_block_has_no_candidates() {
        let body = serde_json::to_value(safety_block(4, "m", 2)).unwrap();
        assert!(body.get("candidates").is_none());
        assert_eq!(body["promptFeedback"]["blockReason"], "SAFETY");
        assert_eq!(body["usageMetadata"]["totalTokenCount"], 4);
    }
}

//! `embedContent` and `batchEmbedContents`: request validation and deterministic vectors.
//!
//! A vector depends only on the text (the text parts of `content`, joined) and `taskType`:
//! the same input always gives the same vector, different inputs different ones, and a
//! shorter `outputDimensionality` gives a prefix of the longer vector (as truncating a
//! Matryoshka embedding does). Values lie in [-1, 1).

use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::request::count_words;

/// The dimension when `outputDimensionality` is absent, and the largest one accepted.
pub const DEFAULT_DIMENSIONS: u32 = 3072;
/// The most requests one `batchEmbedContents` call may carry.
pub const MAX_BATCH: usize = 100;

const TASK_TYPES: &[&str] = &[
    "TASK_TYPE_UNSPECIFIED",
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
];

/// One validated embedding request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbedRequest {
    text: String,
    task_type: String,
    dimensions: u32,
    /// Input tokens, by the emulator's rule (words, at least 1).
    pub tokens: u64,
}

/// Validates an `embedContent` body for `model`.
pub fn parse_embed(body: &[u8], model: &str) -> Result<EmbedRequest, ApiError> {
    let request = crate::request::json_object(body)?;
    embed_request(&request, model, "")
}

/// Validates a `batchEmbedContents` body for `model`.
pub fn parse_batch(body: &[u8], model: &str) -> Result<Vec<EmbedRequest>, ApiError> {
    let request = crate::request::json_object(body)?;
    let requests = match request.get("requests") {
        Some(Value::Array(requests)) if !requests.is_empty() => requests,
        None | Some(Value::Null) | Some(Value::Array(_)) => {
            return Err(ApiError::invalid_request(
                "requests",
                "* BatchEmbedContentsRequest.requests: requests is not specified\n",
            ))
        }
        Some(other) => return Err(invalid("requests", other)),
    };
    if requests.len() > MAX_BATCH {
        return Err(ApiError::invalid_request(
            "requests",
            format!(
                "* BatchEmbedContentsRequest.requests: at most {MAX_BATCH} requests can be in \
                 one batch, got {}\n",
                requests.len()
            ),
        ));
    }
    requests
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = format!("requests[{i}].");
            match item {
                Value::Object(item) => embed_request(item, model, &field),
                other => Err(invalid(&format!("requests[{i}]"), other)),
            }
        })
        .collect()
}

/// `{"embedding": {"values": [...]}}`
pub fn embed_answer(request: &EmbedRequest) -> Value {
    json!({ "embedding": { "values": vector(request) } })
}

/// `{"embeddings": [{"values": [...]}, ...]}`
pub fn batch_answer(requests: &[EmbedRequest]) -> Value {
    let embeddings: Vec<Value> = requests
        .iter()
        .map(|r| json!({ "values": vector(r) }))
        .collect();
    json!({ "embeddings": embeddings })
}

/// One `EmbedContentRequest`; `prefix` places its fields inside a batch ("requests[2].").
fn embed_request(
    request: &Map<String, Value>,
    model: &str,
    prefix: &str,
) -> Result<EmbedRequest, ApiError> {
    if let Some(named) = request.get("model") {
        let expected = format!("models/{model}");
        if named.as_str() != Some(expected.as_str()) {
            return Err(ApiError::invalid_request(
                &format!("{prefix}model"),
                format!(
                    "* {prefix}model: the model of each request must be the model of the \
                     call, {expected:?}; got {named}\n"
                ),
            ));
        }
    }
    let field = format!("{prefix}content");
    let parts = match request.get("content") {
        Some(Value::Object(content)) => match content.get("parts") {
            Some(Value::Array(parts)) if !parts.is_empty() => parts,
            _ => {
                return Err(ApiError::invalid_request(
                    &format!("{field}.parts"),
                    format!("* {field}.parts: content.parts must not be empty\n"),
                ))
            }
        },
        None | Some(Value::Null) => {
            return Err(ApiError::invalid_request(
                &field,
                format!("* {field}: content is not specified\n"),
            ))
        }
        Some(other) => return Err(invalid(&field, other)),
    };
    let text: String = parts
        .iter()
        .filter_map(|part| part.get("text")?.as_str())
        .collect::<Vec<_>>()
        .join("");

    let task_type = match request.get("taskType") {
        None | Some(Value::Null) => "TASK_TYPE_UNSPECIFIED".to_string(),
        Some(Value::String(t)) if TASK_TYPES.contains(&t.as_str()) => t.clone(),
        Some(other) => {
            return Err(ApiError::invalid_request(
                &format!("{prefix}task_type"),
                format!(
                    "Invalid value at '{prefix}task_type' \
                     (type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType), {other}"
                ),
            ))
        }
    };
    let dimensions = match request.get("outputDimensionality") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(value) => match value.as_u64() {
            Some(n @ 1..) if n <= u64::from(DEFAULT_DIMENSIONS) => n as u32,
            _ => {
                return Err(ApiError::invalid_request(
                    &format!("{prefix}output_dimensionality"),
                    format!(
                        "* {prefix}output_dimensionality: must be an integer from 1 to \
                         {DEFAULT_DIMENSIONS}, got {value}\n"
                    ),
                ))
            }
        },
    };
    Ok(EmbedRequest {
        tokens: count_words(&text).max(1),
        text,
        task_type,
        dimensions,
    })
}

fn invalid(field: &str, value: &Value) -> ApiError {
    ApiError::invalid_request(
        field,
        format!("Invalid value at '{field}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), {value}"),
    )
}

/// The vector of one request: a splitmix64 sequence seeded by an FNV-1a hash of the input.
fn vector(request: &EmbedRequest) -> Vec<f64> {
    let mut seed = 0xcbf2_9ce4_8422_2325u64;
    for byte in request
        .task_type
        .bytes()
        .chain([0])
        .chain(request.text.bytes())
    {
        seed = (seed ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..request.dimensions)
        .map(|_| {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            // 24 random bits: exactly representable, and short in JSON.
            ((z >> 40) as f64) / f64::from(1u32 << 23) - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embed(body: &str) -> Result<EmbedRequest, ApiError> {
        parse_embed(body.as_bytes(), "gemini-embedding-001")
    }

    #[test]
    fn vectors_are_deterministic_and_truncate_to_prefixes() {
        let a = embed(r#"{"content":{"parts":[{"text":"hello world"}]}}"#).unwrap();
        let b = embed(r#"{"content":{"parts":[{"text":"hello world"}]},"outputDimensionality":8}"#)
            .unwrap();
        let c =
            embed(r#"{"content":{"parts":[{"text":"other"}]},"taskType":"CLUSTERING"}"#).unwrap();
        let (va, vb, vc) = (vector(&a), vector(&b), vector(&c));
        assert_eq!(va.len(), 3072);
        assert_eq!(vb, va[..8]);
        assert_ne!(vc[..8], va[..8]);
        assert!(va.iter().all(|v| (-1.0..1.0).contains(v)));
        assert_eq!(a.tokens, 2);
    }

    #[test]
    fn names_what_is_wrong() {
        for (body, field) in [
            (r#"{}"#, "content is not specified"),
            (r#"{"content":{"parts":[]}}"#, "content.parts"),
            (
                r#"{"content":{"parts":[{"text":"x"}]},"taskType":"NOPE"}"#,
                "task_type",
            ),
            (
                r#"{"content":{"parts":[{"text":"x"}]},"outputDimensionality":0}"#,
                "output_dimensionality",
            ),
            (
                r#"{"content":{"parts":[{"text":"x"}]},"model":"models/other"}"#,
                "model",
            ),
        ] {
            let message = embed(body).unwrap_err().message;
            assert!(message.contains(field), "{body}: {message}");
        }
        let batch = |body: &str| parse_batch(body.as_bytes(), "e").map_err(|e| e.message);
        assert!(batch(r#"{"requests":[]}"#)
            .unwrap_err()
            .contains("requests is not specified"));
        assert!(
            batch(r#"{"requests":[{"content":{"parts":[{"text":"x"}]}},{}]}"#)
                .unwrap_err()
                .contains("requests[1].content")
        );
        let many = format!(
            r#"{{"requests":[{}]}}"#,
            vec![r#"{"content":{"parts":[{"text":"x"}]}}"#; 101].join(",")
        );
        assert!(batch(&many).unwrap_err().contains("at most 100"));
    }
}

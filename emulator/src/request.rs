//! Reading `generateContent` and `countTokens` request bodies: validation, the token count,
//! and the few things the emulator's answer depends on.
//!
//! The token rule, the same for every endpoint: a text's tokens are its whitespace-separated
//! words; a request's input tokens are the words of every text part of `contents` and of
//! `systemInstruction`, at least 1. Other parts (inline data, function calls) count nothing.

use serde_json::{Map, Value};

use crate::errors::ApiError;

/// What the emulator takes from a valid request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    /// The text parts of the last entry of `contents`, joined with "".
    pub last_text: String,
    /// The request's input tokens (see the module documentation).
    pub prompt_tokens: u64,
    /// `generationConfig.thinkingConfig.includeThoughts` was true.
    pub include_thoughts: bool,
}

/// Token count of a text as the emulator counts it: its words, but at least 1.
pub fn count_tokens(text: &str) -> u64 {
    count_words(text).max(1)
}

/// The whitespace-separated words of a text.
pub fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// A request body as the JSON object every method takes, refused as the real service refuses
/// it; an empty body reads as an empty request (which then lacks what the method needs).
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid_request(
            "",
            "Invalid JSON payload received. Root element must be a message.",
        )),
        Err(e) => Err(ApiError::invalid_request(
            "",
            format!("Invalid JSON payload received. {e}."),
        )),
    }
}

/// Validates a request body the way the real service would, naming what is wrong.
pub fn parse_prompt(body: &[u8]) -> Result<Prompt, ApiError> {
    let request = json_object(body)?;

    let contents = match request.get("contents") {
        None | Some(Value::Null) => return Err(contents_not_specified()),
        Some(Value::Array(contents)) if contents.is_empty() => return Err(contents_not_specified()),
        Some(Value::Array(contents)) => contents,
        Some(other) => return Err(invalid_content("contents", other)),
    };

    let mut words = system_instruction_words(&request)?;
    let mut last_text = String::new();
    for (index, content) in contents.iter().enumerate() {
        let field = format!("contents[{index}]");
        let Value::Object(content) = content else {
            return Err(invalid_content(&field, content));
        };
        let parts = match content.get("parts") {
            Some(Value::Array(parts)) if !parts.is_empty() => parts,
            _ => {
                let field = format!("{field}.parts");
                return Err(ApiError::invalid_request(
                    &field,
                    format!(
                        "* GenerateContentRequest.{field}: contents.parts must not be empty.\n"
                    ),
                ));
            }
        };
        last_text.clear();
        for text in parts.iter().filter_map(|part| part.get("text")?.as_str()) {
            words += text.split_whitespace().count() as u64;
            last_text.push_str(text);
        }
    }

    let include_thoughts = request
        .get("generationConfig")
        .and_then(|config| config.get("thinkingConfig"))
        .and_then(|thinking| thinking.get("includeThoughts"))
        .and_then(Value::as_bool)
        .unwrap_or(false);

    Ok(Prompt {
        last_text,
        prompt_tokens: words.max(1),
        include_thoughts,
    })
}

/// Words in the text parts of `systemInstruction`, checking its shape.
fn system_instruction_words(request: &serde_json::Map<String, Value>) -> Result<u64, ApiError> {
    let parts = match request.get("systemInstruction") {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::Object(instruction)) => instruction.get("parts"),
        Some(other) => return Err(invalid_content("system_instruction", other)),
    };
    match parts {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .filter_map(|part| part.get("text")?.as_str())
            .map(|text| text.split_whitespace().count() as u64)
            .sum()),
        Some(other) => Err(invalid_content("system_instruction.parts", other)),
    }
}

/// Validates a `countTokens` body (`contents`, or a whole `generateContentRequest`) and
/// counts its input tokens with the same rule as `generateContent`.
pub fn parse_count_tokens(body: &[u8]) -> Result<u64, ApiError> {
    let request: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_request("", format!("Invalid JSON payload received. {e}."))
    })?;
    match request.get("generateContentRequest") {
        Some(inner @ Value::Object(_)) => {
            if request.get("contents").is_some() {
                return Err(ApiError::invalid_request(
                    "contents",
                    "* CountTokensRequest: give either `contents` or `generateContentRequest`, \
                     not both\n",
                ));
            }
            let inner = serde_json::to_vec(inner).expect("values serialize");
            Ok(parse_prompt(&inner)?.prompt_tokens)
        }
        Some(other) => Err(invalid_content("generate_content_request", other)),
        None => Ok(parse_prompt(body)?.prompt_tokens),
    }
}

fn contents_not_specified() -> ApiError {
    ApiError::invalid_request(
        "contents",
        "* GenerateContentRequest.contents: contents is not specified\n",
    )
}

fn invalid_content(field: &str, value: &Value) -> ApiError {
    ApiError::invalid_request(
        field,
        format!(
            "Invalid value at '{field}' \
             (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), {value}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> String {
        parse_prompt(body.as_bytes()).unwrap_err().message
    }

    #[test]
    fn takes_the_last_entry_text_and_counts_all_words() {
        let prompt = parse_prompt(
            br#"{"contents":[
                {"role":"user","parts":[{"text":"one two"}]},
                {"role":"model","parts":[{"text":"three"}]},
                {"role":"user","parts":[{"text":"Hello "},{"inlineData":{}},{"text":"world"}]}
            ],"generationConfig":{"thinkingConfig":{"includeThoughts":true}}}"#,
        )
        .unwrap();
        assert_eq!(prompt.last_text, "Hello world");
        assert_eq!(prompt.prompt_tokens, 5);
        assert!(prompt.include_thoughts);
    }

    #[test]
    fn names_what_is_wrong() {
        assert!(message("{nope").starts_with("Invalid JSON payload received."));
        assert!(message("[1]").contains("Root element must be a message"));
        assert!(message("").contains("contents is not specified"));
        assert!(message(r#"{"contents":[]}"#).contains("contents is not specified"));
        assert!(message(r#"{"contents":"hi"}"#).contains("Invalid value at 'contents'"));
        assert!(message(r#"{"contents":[3]}"#).contains("'contents[0]'"));
        assert!(message(r#"{"contents":[{"role":"user"}]}"#).contains("contents[0].parts"));
    }

    #[test]
    fn system_instruction_counts_and_count_tokens_accepts_both_shapes() {
        let body = br#"{"systemInstruction":{"parts":[{"text":"be very brief"}]},
                        "contents":[{"parts":[{"text":"hi there"}]}]}"#;
        assert_eq!(parse_prompt(body).unwrap().prompt_tokens, 5);
        assert_eq!(parse_count_tokens(body).unwrap(), 5);
        let wrapped = br#"{"generateContentRequest":{"model":"models/m",
                           "contents":[{"parts":[{"text":"a b c"}]}]}}"#;
        assert_eq!(parse_count_tokens(wrapped).unwrap(), 3);
        assert!(parse_count_tokens(br#"{"generateContentRequest":3}"#).is_err());
        assert!(parse_count_tokens(b"{}")
            .unwrap_err()
            .message
            .contains("contents"));
        assert!(parse_prompt(
            br#"{"systemInstruction":"x","contents":[{"parts":[{"text":"a"}]}]}"#
        )
        .unwrap_err()
        .message
        .contains("system_instruction"));
    }

    #[test]
    fn token_counts_are_at_least_one() {
        assert_eq!(count_tokens(""), 1);
        assert_eq!(count_tokens("echo: a b"), 3);
        let prompt = parse_prompt(br#"{"contents":[{"parts":[{"text":""}]}]}"#).unwrap();
        assert_eq!(prompt.prompt_tokens, 1);
    }
}

//! `GET /{version}/models` (paginated) and `GET /{version}/models/{model}`.
//!
//! The catalog is a few current models plus every model the configuration names in `models`.
//! Any model that is not retired can be called, listed or not, so `models.get` answers for any
//! such name.

use serde_json::{json, Value};

use crate::errors::ApiError;
use crate::method::{is_embedding_model, Method};

/// Listed even when the configuration names no model.
const BUILT_IN: &[&str] = &[
    "gemini-3.6-flash",
    "gemini-3.5-flash",
    "gemini-3.1-flash-lite",
    "gemini-3-flash",
    "gemini-3-pro",
    "gemini-embedding-001",
];
/// `pageSize` when absent or 0, and its maximum (larger values are clamped, as the service does).
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;
const PAGE_TOKEN_PREFIX: &str = "emu-page-";

/// Every listed model name, built-in ones first, each once.
pub fn catalog<'a>(configured: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut names: Vec<String> = BUILT_IN.iter().map(|m| m.to_string()).collect();
    for name in configured {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// One `Model` resource.
pub fn model_resource(model: &str) -> Value {
    let embedding = is_embedding_model(model);
    let methods: &[Method] = if embedding {
        &[
            Method::EmbedContent,
            Method::BatchEmbedContents,
            Method::CountTokens,
        ]
    } else {
        &[
            Method::GenerateContent,
            Method::StreamGenerateContent,
            Method::CountTokens,
        ]
    };
    let methods: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
    json!({
        "name": format!("models/{model}"),
        "version": "001",
        "displayName": model,
        "description": format!("{model}, as served by gemini-emulator"),
        "inputTokenLimit": if embedding { 2048 } else { 1_048_576 },
        "outputTokenLimit": if embedding { 1 } else { 65_536 },
        "supportedGenerationMethods": methods,
    })
}

/// One page of the list, for the query's `pageSize` and `pageToken`.
pub fn list_page(
    names: &[String],
    page_size: Option<&str>,
    page_token: Option<&str>,
) -> Result<Value, ApiError> {
    let size = match page_size.filter(|s| !s.is_empty()) {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => match text.parse::<usize>() {
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(n) => n.min(MAX_PAGE_SIZE),
            Err(_) => {
                return Err(ApiError::invalid_request(
                    "page_size",
                    format!("Invalid value at 'page_size' (TYPE_INT32), \"{text}\""),
                ))
            }
        },
    };
    let start = match page_token.filter(|s| !s.is_empty()) {
        None => 0,
        Some(token) => token
            .strip_prefix(PAGE_TOKEN_PREFIX)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n > 0 && n < names.len())
            .ok_or_else(|| {
                ApiError::invalid_request(
                    "page_token",
                    format!("Invalid page_token {token:?}: use a nextPageToken of an earlier page"),
                )
            })?,
    };
    let end = (start + size).min(names.len());
    let models: Vec<Value> = names[start..end]
        .iter()
        .map(|m| model_resource(m))
        .collect();
    let mut page = json!({ "models": models });
    if end < names.len() {
        page["nextPageToken"] = Value::String(format!("{PAGE_TOKEN_PREFIX}{end}"));
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_the_catalog_once() {
        let names = catalog([String::from("extra"), String::from("gemini-3-pro")].iter());
        assert_eq!(names.len(), BUILT_IN.len() + 1);
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = list_page(&names, Some("4"), token.as_deref()).unwrap();
            for model in page["models"].as_array().unwrap() {
                seen.push(model["name"].as_str().unwrap().to_string());
            }
            match page.get("nextPageToken") {
                Some(next) => token = Some(next.as_str().unwrap().to_string()),
                None => break,
            }
        }
        let expected: Vec<String> = names.iter().map(|n| format!("models/{n}")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn bad_page_arguments_are_named() {
        let names = catalog(std::iter::empty());
        assert!(list_page(&names, Some("x"), None)
            .unwrap_err()
            .message
            .contains("page_size"));
        assert!(list_page(&names, None, Some("zzz"))
            .unwrap_err()
            .message
            .contains("page_token"));
        assert!(list_page(&names, None, Some("emu-page-99")).is_err());
        let all = list_page(&names, Some("0"), None).unwrap();
        assert!(all.get("nextPageToken").is_none());
    }

    #[test]
    fn embedding_models_say_what_they_serve() {
        let model = model_resource("gemini-embedding-001");
        assert_eq!(model["supportedGenerationMethods"][0], "embedContent");
        assert_eq!(model_resource("m")["name"], "models/m");
    }
}

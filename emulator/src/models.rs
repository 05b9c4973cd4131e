//! `GET /{version}/models` (paginated) and `GET /{version}/models/{model}`.
//!
//! The catalog is a few current models plus every model the configuration names in `models`.
//! Any model that is not retired can be called, listed or not, so `models.get` answers for any
//! such name.

use serde_json::{json, Value};

use crate::errors::ApiError;
use crate::method::{is_embedding_model, Method};
use crate::paging::Paging;

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
const MODELS_PAGING: Paging = Paging {
    field: "models",
    default_size: 50,
    max_size: 1000,
};

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

/// One page of the catalog.
pub fn list_page(
    names: &[String],
    page_size: Option<&str>,
    page_token: Option<&str>,
) -> Result<Value, ApiError> {
    let models = names.iter().map(|m| model_resource(m)).collect();
    MODELS_PAGING.page(models, page_size, page_token)
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

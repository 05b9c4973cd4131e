//! List pages the way the service pages every list (`pageSize`, `pageToken`,
//! `nextPageToken`): models, files and cached contents alike.

use serde_json::{json, Value};

use crate::errors::ApiError;

/// The opaque `nextPageToken` the emulator hands out: a prefix and an offset.
const PAGE_TOKEN_PREFIX: &str = "emu-page-";

/// How a list pages: its field in the answer, and its default and largest page sizes.
#[derive(Clone, Copy, Debug)]
pub struct Paging {
    pub field: &'static str,
    pub default_size: usize,
    pub max_size: usize,
}

impl Paging {
    /// The page of `items` that `page_size` and `page_token` ask for, with a `nextPageToken`
    /// when more follow. A bad size or a token this list never gave is a 400 naming it.
    pub fn page(
        &self,
        items: Vec<Value>,
        page_size: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<Value, ApiError> {
        let size = match page_size.filter(|s| !s.is_empty()) {
            None => self.default_size,
            Some(text) => match text.parse::<usize>() {
                Ok(0) => self.default_size,
                Ok(n) => n.min(self.max_size),
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
                .filter(|&n| n > 0 && n < items.len())
                .ok_or_else(|| {
                    ApiError::invalid_request(
                        "page_token",
                        format!(
                            "Invalid page_token {token:?}: use a nextPageToken of an earlier page"
                        ),
                    )
                })?,
        };
        let end = (start + size).min(items.len());
        let more = end < items.len();
        let items: Vec<Value> = items.into_iter().skip(start).take(end - start).collect();
        let mut page = json!({});
        if !items.is_empty() {
            page[self.field] = Value::Array(items);
        }
        if more {
            page["nextPageToken"] = Value::String(format!("{PAGE_TOKEN_PREFIX}{end}"));
        }
        Ok(page)
    }
}

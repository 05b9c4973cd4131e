//! The cachedContents API: `POST /{v}/cachedContents`, `GET /{v}/cachedContents[/{id}]`,
//! `PATCH /{v}/cachedContents/{id}` (the expiry: `ttl` or `expireTime`) and
//! `DELETE /{v}/cachedContents/{id}`.
//!
//! A cached content counts its tokens by the emulator's rule (the words of every text part
//! of `contents` and `systemInstruction`, at least 1), may name only its own project's files,
//! and serves model calls of its own model only.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Map, Value};

use crate::api::{self, ResourceRequest};
use crate::errors::{parse_duration, ApiError};
use crate::http::{error_response, json_response, query_param, Body, CloseConnection};
use crate::method::{is_retired, Method};
use crate::pacific::parse_rfc3339;
use crate::paging::Paging;
use crate::request::count_words;
use crate::resources::{refs_in, ResourceRef, DEFAULT_CACHE_TTL_MS};
use crate::state::Shared;

const CACHES_PAGING: Paging = Paging {
    field: "cachedContents",
    default_size: 10,
    max_size: 1000,
};

/// Answers a cachedContents request of `method`; `id` is the path's, when it names one.
pub async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    version: &'static str,
    method: Method,
    id: Option<String>,
) -> Result<Response<Body>, CloseConnection> {
    let resource = id.as_ref().map(|id| format!("cachedContents/{id}"));
    let mut request =
        match api::admit_resource(&shared, request, version, method, resource, || None).await {
            Ok(request) => request,
            Err(answer) => return answer,
        };
    let answer = match (method, id) {
        (Method::CreateCachedContent, _) => create(&shared, &mut request, version),
        (Method::ListCachedContents, _) => list(&shared, &request),
        (Method::PatchCachedContent, Some(id)) => patch(&shared, &request, &id),
        (Method::DeleteCachedContent, Some(id)) => shared.with_resources(|resources, now_ms| {
            resources
                .delete_cache(&id, &request.owner.project, now_ms)
                .map(|()| json!({}))
        }),
        (_, Some(id)) => shared.with_resources(|resources, now_ms| {
            let cached = resources.cache(&id, &request.owner.project, now_ms)?;
            Ok(cached.to_json())
        }),
        (_, None) => Err(ApiError::internal()),
    };
    let response = match answer {
        Ok(body) => json_response(200, &body),
        Err(error) => error_response(&error),
    };
    Ok(api::finish(request.pending, response))
}

/// `POST /{v}/cachedContents`.
fn create(
    shared: &Shared,
    request: &mut ResourceRequest,
    version: &'static str,
) -> Result<Value, ApiError> {
    let body = crate::request::json_object(&request.body)?;
    let model = match body.get("model") {
        Some(Value::String(model)) if !model.is_empty() => {
            model.strip_prefix("models/").unwrap_or(model).to_string()
        }
        None | Some(Value::Null) => {
            return Err(ApiError::invalid_request(
                "cached_content.model",
                "* CachedContent.model: model is required\n",
            ))
        }
        Some(other) => return Err(invalid_field("model", "TYPE_STRING", other)),
    };
    if is_retired(&model) || !Method::GenerateContent.served_by(&model) {
        return Err(ApiError::model_not_found(
            version,
            &model,
            "createCachedContent",
        ));
    }
    let tokens = count_tokens(&body)?;
    let display_name = match body.get("displayName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(other) => return Err(invalid_field("displayName", "TYPE_STRING", other)),
    };
    let files: Vec<ResourceRef> = refs_in(&request.body)
        .into_iter()
        .filter(|reference| matches!(reference, ResourceRef::File(_)))
        .collect();
    let owner = request.owner.clone();
    let cached = shared.with_resources(|resources, now_ms| {
        let expire_ms = expiry(&body, now_ms)?.unwrap_or(now_ms + DEFAULT_CACHE_TTL_MS);
        resources.check_refs(&files, &owner.project, &model, now_ms)?;
        let model = format!("models/{model}");
        Ok(resources.create_cache(owner, model, display_name, tokens, expire_ms, now_ms))
    })?;
    request
        .pending
        .name_resource(format!("cachedContents/{}", cached.id));
    Ok(cached.to_json())
}

/// `PATCH /{v}/cachedContents/{id}`: a new `ttl` or `expireTime`.
fn patch(shared: &Shared, request: &ResourceRequest, id: &str) -> Result<Value, ApiError> {
    let body = crate::request::json_object(&request.body)?;
    if let Some(mask) = query_param(request.query.as_deref(), "updateMask") {
        if let Some(field) = mask
            .split(',')
            .map(str::trim)
            .find(|f| !matches!(*f, "ttl" | "expireTime" | "expire_time" | ""))
        {
            return Err(ApiError::invalid_request(
                "update_mask",
                format!("Field '{field}' cannot be updated: only ttl or expireTime can"),
            ));
        }
    }
    shared.with_resources(|resources, now_ms| {
        let Some(expire_ms) = expiry(&body, now_ms)? else {
            return Err(ApiError::invalid_request(
                "cached_content",
                "* UpdateCachedContentRequest: give the new expiry as ttl or expireTime\n",
            ));
        };
        let cached = resources.cache(id, &request.owner.project, now_ms)?;
        cached.expire_ms = expire_ms;
        cached.update_ms = now_ms;
        Ok(cached.to_json())
    })
}

/// `GET /{v}/cachedContents`: the key's project's cached contents, oldest first.
fn list(shared: &Shared, request: &ResourceRequest) -> Result<Value, ApiError> {
    let caches: Vec<Value> = shared.with_resources(|resources, now_ms| {
        resources
            .caches_of(&request.owner.project, now_ms)
            .into_iter()
            .map(|cached| cached.to_json())
            .collect()
    });
    let query = request.query.as_deref();
    let page_size = query_param(query, "pageSize");
    let page_token = query_param(query, "pageToken");
    CACHES_PAGING.page(caches, page_size.as_deref(), page_token.as_deref())
}

/// The expiry a body asks for (`ttl: "300s"` or `expireTime: RFC 3339`), if it asks.
fn expiry(body: &Map<String, Value>, now_ms: i64) -> Result<Option<i64>, ApiError> {
    let field = |name: &str| body.get(name).filter(|v| !v.is_null());
    match (field("ttl"), field("expireTime")) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(ApiError::invalid_request(
            "expiration",
            "* CachedContent: give either ttl or expireTime, not both\n",
        )),
        (Some(ttl), None) => {
            let seconds = ttl
                .as_str()
                .and_then(parse_duration)
                .filter(|&s| s > 0.0)
                .ok_or_else(|| {
                    invalid_field("ttl", "type.googleapis.com/google.protobuf.Duration", ttl)
                })?;
            Ok(Some(now_ms + (seconds * 1000.0).ceil() as i64))
        }
        (None, Some(expire)) => {
            let at = expire
                .as_str()
                .ok_or_else(|| {
                    invalid_field(
                        "expireTime",
                        "type.googleapis.com/google.protobuf.Timestamp",
                        expire,
                    )
                })
                .and_then(|text| {
                    parse_rfc3339(text).map_err(|e| ApiError::invalid_request("expire_time", e))
                })?;
            if at <= now_ms {
                return Err(ApiError::invalid_request(
                    "expire_time",
                    format!("* CachedContent.expire_time: {expire} is in the past\n"),
                ));
            }
            Ok(Some(at))
        }
    }
}

/// The tokens of a cached content: words of the text parts of `contents` and
/// `systemInstruction`, at least 1. Something to cache is required.
fn count_tokens(body: &Map<String, Value>) -> Result<u64, ApiError> {
    let contents = match body.get("contents") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(contents)) => contents.as_slice(),
        Some(other) => {
            return Err(invalid_field(
                "contents",
                "type.googleapis.com/google.ai.generativelanguage.v1beta.Content",
                other,
            ))
        }
    };
    let instruction = body.get("systemInstruction").filter(|v| !v.is_null());
    if contents.is_empty() && instruction.is_none() {
        return Err(ApiError::invalid_request(
            "contents",
            "* CachedContent: contents or system_instruction is required\n",
        ));
    }
    let mut words = 0;
    for content in contents.iter().chain(instruction) {
        let parts = content.get("parts").and_then(Value::as_array);
        for text in parts
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("text")?.as_str())
        {
            words += count_words(text);
        }
    }
    Ok(words.max(1))
}

fn invalid_field(field: &str, kind: &str, value: &Value) -> ApiError {
    ApiError::invalid_request(
        field,
        format!("Invalid value at '{field}' ({kind}), {value}"),
    )
}

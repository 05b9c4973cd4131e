//! The Files API: the resumable upload both SDKs use for `files.upload`
//! (`POST /upload/{v}/files` to start, then the `x-goog-upload-url` it answers), and
//! `GET /{v}/files[/{id}]`, `DELETE /{v}/files/{id}`.
//!
//! The protocol, as the service speaks it: the start carries `x-goog-upload-protocol:
//! resumable`, `x-goog-upload-command: start`, optionally `x-goog-upload-header-content-length`
//! and `-content-type`, and a body `{"file": {displayName, mimeType, name}}`; it answers 200
//! with `x-goog-upload-url` and `x-goog-upload-status: active` and no body. Each request on the
//! upload URL carries `x-goog-upload-command` (`upload`, `upload, finalize`, `finalize`,
//! `query`, `cancel`) and, with `upload`, `x-goog-upload-offset` (the bytes received so far);
//! every answer says `x-goog-upload-status` (`active`, `final`, `cancelled`), errors included,
//! because both SDKs retry a chunk whose answer lacks it. The finalizing answer carries the
//! file: `{"file": {...}}`.

use std::sync::Arc;

use hyper::header::{HeaderMap, HeaderValue};
use hyper::Response;
use serde_json::{json, Value};

use crate::api::{self, ResourceRequest};
use crate::errors::ApiError;
use crate::http::{error_response, json_response, query_param, Body, CloseConnection};
use crate::method::Method;
use crate::paging::Paging;
use crate::resources::{UploadRefusal, UploadStart, UploadStep};
use crate::state::Shared;

const FILES_PAGING: Paging = Paging {
    field: "files",
    default_size: 10,
    max_size: 100,
};

/// The chunk size both SDKs use; the service advertises it as the granularity.
const CHUNK_GRANULARITY: &str = "8388608";

/// What a files request is about.
#[derive(Debug, PartialEq, Eq)]
pub enum FileTarget {
    /// `/upload/{v}/files`, with `upload_id` once started.
    Upload(Option<String>),
    /// `/{v}/files`.
    List,
    /// `/{v}/files/{id}`.
    File(String),
}

/// Answers a files request of `method` (already checked to fit the HTTP method and path).
pub async fn handle(
    shared: Arc<Shared>,
    request: hyper::Request<hyper::body::Incoming>,
    version: &'static str,
    method: Method,
    target: FileTarget,
) -> Result<Response<Body>, CloseConnection> {
    let resource = match &target {
        FileTarget::File(id) => Some(format!("files/{id}")),
        _ => None,
    };
    // An upload URL is its own credential: a request on it without a key is the session
    // owner's (a key, when sent, must be of the owner's project).
    let session_owner = || match &target {
        FileTarget::Upload(Some(upload_id)) => {
            shared.with_resources(|resources, _| resources.upload_owner(upload_id))
        }
        _ => None,
    };
    let admitted =
        api::admit_resource(&shared, request, version, method, resource, session_owner).await;
    let mut request = match admitted {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    let response = match target {
        FileTarget::Upload(None) => start(&shared, &mut request, version),
        FileTarget::Upload(Some(upload_id)) => upload(&shared, &mut request, &upload_id),
        FileTarget::List => list(&shared, &request),
        FileTarget::File(id) => {
            let project = &request.owner.project;
            let answer = shared.with_resources(|resources, now_ms| {
                if method == Method::DeleteFile {
                    resources
                        .delete_file(&id, project, now_ms)
                        .map(|()| json!({}))
                } else {
                    let file = resources.file(&id, project, now_ms)?;
                    Ok(file.to_json(shared.base_url()))
                }
            });
            match answer {
                Ok(body) => json_response(200, &body),
                Err(error) => error_response(&error),
            }
        }
    };
    Ok(api::finish(request.pending, response))
}

/// `POST /upload/{v}/files` with `x-goog-upload-command: start`.
fn start(shared: &Shared, request: &mut ResourceRequest, version: &'static str) -> Response<Body> {
    let start = match parse_start(&request.headers, &request.body) {
        Ok(start) => start,
        Err(error) => return error_response(&error),
    };
    let owner = request.owner.clone();
    let started = shared
        .with_resources(|resources, now_ms| resources.start_upload(owner, version, start, now_ms));
    let (upload_id, file_id) = match started {
        Ok(started) => started,
        Err(error) => return error_response(&error),
    };
    request.pending.name_resource(format!("files/{file_id}"));
    let url = format!(
        "{}/upload/{version}/files?upload_id={upload_id}&upload_protocol=resumable",
        shared.base_url()
    );
    let mut response = Response::new(Body::whole(""));
    let headers = response.headers_mut();
    set(headers, "x-goog-upload-status", "active");
    set(headers, "x-goog-upload-url", &url);
    set(headers, "x-goog-upload-control-url", &url);
    set(
        headers,
        "x-goog-upload-chunk-granularity",
        CHUNK_GRANULARITY,
    );
    response
}

/// Reads the headers and body of a start, naming what is missing or wrong.
fn parse_start(headers: &HeaderMap, body: &[u8]) -> Result<UploadStart, ApiError> {
    match header(headers, "x-goog-upload-protocol") {
        Some(protocol) if protocol.eq_ignore_ascii_case("resumable") => {}
        Some(other) => {
            return Err(ApiError::bad_upload(format!(
                "x-goog-upload-protocol: '{other}' is not served; use 'resumable'"
            )))
        }
        None => {
            return Err(ApiError::bad_upload(
                "x-goog-upload-protocol is required (resumable) to upload to /upload/.../files",
            ))
        }
    }
    match header(headers, "x-goog-upload-command") {
        Some(command) if command.trim().eq_ignore_ascii_case("start") => {}
        Some(other) => {
            return Err(ApiError::bad_upload(format!(
                "x-goog-upload-command: '{other}' without an upload_id; start an upload with \
                 'start'"
            )))
        }
        None => {
            return Err(ApiError::bad_upload(
                "x-goog-upload-command is required ('start' to start an upload)",
            ))
        }
    }
    let declared_size = match header(headers, "x-goog-upload-header-content-length") {
        None => None,
        Some(text) => Some(text.trim().parse::<u64>().map_err(|_| {
            ApiError::bad_upload(format!(
                "x-goog-upload-header-content-length: '{text}' is not a byte count"
            ))
        })?),
    };
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::invalid_request("", format!("Invalid JSON payload received. {e}."))
        })?
    };
    let file = match request.get("file") {
        None | Some(Value::Null) => json!({}),
        Some(file @ Value::Object(_)) => file.clone(),
        Some(other) => {
            return Err(ApiError::invalid_request(
                "file",
                format!("Invalid value at 'file' (type.googleapis.com/google.ai.generativelanguage.v1beta.File), {other}"),
            ))
        }
    };
    let text = |field: &str| -> Result<Option<String>, ApiError> {
        match file.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(ApiError::invalid_request(
                &format!("file.{field}"),
                format!("Invalid value at 'file.{field}' (TYPE_STRING), {other}"),
            )),
        }
    };
    let file_id = text("name")?.map(|name| match name.strip_prefix("files/") {
        Some(id) => id.to_string(),
        None => name,
    });
    let mime_type = header(headers, "x-goog-upload-header-content-type")
        .map(str::to_string)
        .or(text("mimeType")?)
        .filter(|mime| !mime.is_empty())
        .ok_or_else(|| {
            ApiError::bad_upload(
                "the file's MIME type is required: x-goog-upload-header-content-type or \
                 file.mimeType",
            )
        })?;
    Ok(UploadStart {
        file_id,
        display_name: text("displayName")?,
        mime_type,
        declared_size,
    })
}

/// A request on an upload URL.
fn upload(shared: &Shared, request: &mut ResourceRequest, upload_id: &str) -> Response<Body> {
    let project = Arc::clone(&request.owner.project);
    // Name the file in the log, and refuse a stranger before reading any header.
    let file_id =
        shared.with_resources(|resources, _| resources.upload_file_id(upload_id, &project));
    match file_id {
        Ok(file_id) => request.pending.name_resource(format!("files/{file_id}")),
        Err(error) => return upload_error(error, "final", None),
    }
    let Some(command) = header(&request.headers, "x-goog-upload-command") else {
        let error = ApiError::bad_upload(
            "x-goog-upload-command is required on an upload URL (upload, 'upload, finalize', \
             finalize, query or cancel)",
        );
        return upload_error(error, "active", None);
    };
    let commands: Vec<String> = command
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
    let offset = match header(&request.headers, "x-goog-upload-offset") {
        None => None,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(offset) => Some(offset),
            Err(_) => {
                let error = ApiError::bad_upload(format!(
                    "x-goog-upload-offset: '{text}' is not a byte offset"
                ));
                return upload_error(error, "active", None);
            }
        },
    };
    let body = &request.body;
    let step = shared.with_resources(|resources, now_ms| {
        resources.upload(upload_id, &project, &commands, offset, body, now_ms)
    });
    match step {
        Ok(UploadStep::Active(received)) => {
            let mut response = Response::new(Body::whole(""));
            set(response.headers_mut(), "x-goog-upload-status", "active");
            let received = received.to_string();
            set(
                response.headers_mut(),
                "x-goog-upload-size-received",
                &received,
            );
            response
        }
        Ok(UploadStep::Final(file)) => {
            let mut response =
                json_response(200, &json!({ "file": file.to_json(shared.base_url()) }));
            set(response.headers_mut(), "x-goog-upload-status", "final");
            response
        }
        Ok(UploadStep::Cancelled) => {
            let mut response = Response::new(Body::whole(""));
            set(response.headers_mut(), "x-goog-upload-status", "cancelled");
            response
        }
        Err(UploadRefusal {
            error,
            session_open,
            received,
        }) => upload_error(
            error,
            if session_open { "active" } else { "final" },
            received,
        ),
    }
}

/// An error on an upload URL, with the upload status the SDKs wait for.
fn upload_error(error: ApiError, status: &str, received: Option<u64>) -> Response<Body> {
    let mut response = error_response(&error);
    set(response.headers_mut(), "x-goog-upload-status", status);
    if let Some(received) = received {
        set(
            response.headers_mut(),
            "x-goog-upload-size-received",
            &received.to_string(),
        );
    }
    response
}

/// `GET /{v}/files`: the key's project's files, oldest first.
fn list(shared: &Shared, request: &ResourceRequest) -> Response<Body> {
    let project = &request.owner.project;
    let files: Vec<Value> = shared.with_resources(|resources, now_ms| {
        let base = shared.base_url();
        resources
            .files_of(project, now_ms)
            .into_iter()
            .map(|file| file.to_json(base))
            .collect()
    });
    let query = request.query.as_deref();
    let page_size = query_param(query, "pageSize");
    let page_token = query_param(query, "pageToken");
    match FILES_PAGING.page(files, page_size.as_deref(), page_token.as_deref()) {
        Ok(page) => json_response(200, &page),
        Err(error) => error_response(&error),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

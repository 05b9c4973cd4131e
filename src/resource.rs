//! Requests as an SDK builds them (google-genai, go-genai), read for what the pool needs: the
//! API version and what the path asks for (a model method, the models list, or a resource tied
//! to a project: a file, a cached content, an operation), and the resource names a request
//! refers to or an answer creates. Pure functions of the bytes; the pool acts on them
//! (`pool/forward.rs`, `pool/resource.rs`).
//!
//! The pin rule: a resource lives in the project of the key that made it. So when an answer
//! creates one, its name is pinned to the serving key's quota group (an upload session to the
//! exact key that started it), and a request that names a pinned resource is served only by
//! keys of that group.

use crate::error::Error;
use crate::method::Method;
use serde_json::Value;

/// How long a pin lasts when the answer names no expiry: the service keeps files 48 hours.
pub const DEFAULT_PIN_TTL_MS: u64 = 48 * 3_600_000;

/// The prefix of an upload session's pin name (`upload:{upload_id}`).
pub const UPLOAD_PIN_PREFIX: &str = "upload:";

/// A forwarded request's URL path, read: the API version, whether it is an upload
/// (`/upload/{version}/...`), what follows the version, and the query without `key=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub version: String,
    pub upload: bool,
    /// After `/{version}/`, without the query (`models/m:generateContent`, `files/abc`).
    pub rest: String,
    /// The query parameters as sent (not decoded), `key=` dropped.
    pub query: Vec<String>,
}

/// What a forwarded request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST models/{model}:{method}`: a model call under the model's limits.
    Model { model: String, method: Method },
    /// `GET models` or `GET models/{model}`: on one key, no admission, no pin.
    Models,
    /// A resource request (files, uploads, cached contents, operations, batches): on one key,
    /// no admission; `name` is the resource the path names, if it names one.
    Resource { name: Option<String> },
}

/// Whether `s` is an API version: `v` and digits, then letters and digits (`v1`, `v1beta`,
/// `v1alpha`, `v2beta3`).
fn is_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0
        && rest[digits..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn bad_path(path: &str, why: &str) -> Error {
    Error::invalid("path", format!("{path:?}: {why}"))
}

impl Target {
    /// Reads `path` (the URL's path and query as the SDK built it, or a whole URL): anything
    /// before `/{version}/` or `/upload/{version}/` is dropped (a base URL's own prefix).
    pub fn parse(path: &str) -> Result<Target, Error> {
        let (path_only, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let segments: Vec<&str> = path_only.split('/').collect();
        let at = segments
            .iter()
            .position(|s| is_version(s))
            .filter(|&i| i + 1 < segments.len())
            .ok_or_else(|| bad_path(path, "names no API version (/v1beta/..., /v1/...)"))?;
        let rest = segments[at + 1..].join("/");
        if rest.is_empty() {
            return Err(bad_path(path, "names nothing after the API version"));
        }
        if rest.split('/').any(|s| s == ".." || s == ".") {
            return Err(bad_path(path, "has a relative segment"));
        }
        let query = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty() && !p.starts_with("key=") && *p != "key")
            .map(str::to_string)
            .collect();
        Ok(Target {
            version: segments[at].to_string(),
            upload: at > 0 && segments[at - 1] == "upload",
            rest,
            query,
        })
    }

    /// The path and query to send, on the pool's base URL (`key=` dropped); with `alt=sse`
    /// forced when `sse`.
    pub fn path_and_query(&self, sse: bool) -> String {
        let mut s = String::new();
        if self.upload {
            s.push_str("/upload");
        }
        s.push('/');
        s.push_str(&self.version);
        s.push('/');
        s.push_str(&self.rest);
        let mut query: Vec<&str> = self
            .query
            .iter()
            .map(String::as_str)
            .filter(|p| !(sse && p.starts_with("alt=")))
            .collect();
        if sse {
            query.push("alt=sse");
        }
        if !query.is_empty() {
            s.push('?');
            s.push_str(&query.join("&"));
        }
        s
    }

    /// The value of query parameter `name`, as sent.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find_map(|p| p.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
    }

    /// What the request asks for; `GR_ERR_INVALID_ARGUMENT` naming the method and path for
    /// anything the pool does not forward.
    pub fn route(&self, http_method: &str, path: &str) -> Result<Route, Error> {
        let refuse = |why: &str| Error::invalid("path", format!("{http_method} {path}: {why}"));
        let first = self.rest.split(['/', ':']).next().unwrap_or("");
        if self.upload {
            return match first {
                "files" => Ok(Route::Resource {
                    name: self
                        .query_value("upload_id")
                        .map(|id| format!("{UPLOAD_PIN_PREFIX}{id}")),
                }),
                _ => Err(refuse("only files are uploaded")),
            };
        }
        match first {
            "models" => {
                let after = &self.rest["models".len()..];
                if after.is_empty() || (!after.contains(':') && after.matches('/').count() == 1)
                {
                    if http_method != "GET" {
                        return Err(refuse("the models list and a model's entry are read with GET"));
                    }
                    return Ok(Route::Models);
                }
                if after.contains("/operations/") {
                    return Ok(Route::Resource {
                        name: Some(resource_name(&self.rest)),
                    });
                }
                let Some((model, method)) = after[1..].split_once(':') else {
                    return Err(refuse("not a model method"));
                };
                let method = Method::parse(method).map_err(|_| {
                    refuse(&format!(
                        "the pool forwards generateContent, streamGenerateContent, countTokens, embedContent and batchEmbedContents, not {method:?}"
                    ))
                })?;
                if http_method != "POST" {
                    return Err(refuse("a model method is a POST"));
                }
                if model.is_empty() || model.contains('/') {
                    return Err(refuse("no model before the method"));
                }
                Ok(Route::Model {
                    model: model.to_string(),
                    method,
                })
            }
            "files" | "cachedContents" | "operations" | "batches" => Ok(Route::Resource {
                name: self
                    .rest
                    .contains('/')
                    .then(|| resource_name(&self.rest)),
            }),
            _ => Err(refuse(
                "the pool forwards model methods, models, files, uploads, cachedContents, operations and batches",
            )),
        }
    }
}

/// The resource a path names: its collection and id, without a custom method (`:download`,
/// `:cancel`). Operations keep their whole path (`models/m/operations/x`).
fn resource_name(rest: &str) -> String {
    let name = rest.split(':').next().unwrap_or(rest);
    if name.contains("operations/") {
        return name.to_string();
    }
    let mut parts = name.splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(kind), Some(id)) => format!("{kind}/{id}"),
        _ => name.to_string(),
    }
}

/// The resources a request body refers to (`cachedContent: "cachedContents/X"`, a
/// `fileData.fileUri` or `file_uri` ending in `files/X`), found by a byte search first, so a
/// body that names none costs one pass and no parse.
pub fn names_in_body(body: &[u8]) -> Vec<String> {
    let mentions = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    if !mentions(b"files/") && !mentions(b"cachedContents/") {
        return Vec::new();
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    collect_names(&value, &mut names);
    names.sort();
    names.dedup();
    names
}

fn collect_names(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (field, v) in map {
                if let Value::String(s) = v {
                    match field.as_str() {
                        "cachedContent" | "cached_content" => {
                            if let Some(at) = s.find("cachedContents/") {
                                names.push(resource_name(&s[at..]));
                            }
                        }
                        "fileUri" | "file_uri" => {
                            if let Some(at) = s.rfind("files/") {
                                names.push(resource_name(&s[at..]));
                            }
                        }
                        _ => {}
                    }
                } else {
                    collect_names(v, names);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_names(v, names)),
        _ => {}
    }
}

/// A resource an answer created: its name, and how long its pin should last (the answer's
/// `expireTime` for a cached content, else [`DEFAULT_PIN_TTL_MS`]), given the wall clock now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub name: String,
    pub ttl_ms: u64,
}

/// Whether `name` is a resource tied to a project.
pub fn is_resource_name(name: &str) -> bool {
    ["files/", "cachedContents/", "operations/", "batches/"]
        .iter()
        .any(|p| name.starts_with(p))
        || name.contains("/operations/")
}

/// The resource an answer names (`name`, or `file.name` of an upload's answer), if the
/// answer is a JSON object naming one.
pub fn created(answer: &[u8], unix_ms: u64) -> Option<Created> {
    let value: Value = serde_json::from_slice(answer).ok()?;
    let object = value
        .get("file")
        .filter(|f| f.is_object())
        .unwrap_or(&value);
    let name = object.get("name")?.as_str()?;
    if !is_resource_name(name) {
        return None;
    }
    let ttl_ms = object
        .get("expireTime")
        .and_then(Value::as_str)
        .filter(|_| name.starts_with("cachedContents/"))
        .and_then(parse_rfc3339_ms)
        .map(|at| at.saturating_sub(unix_ms).max(1))
        .unwrap_or(DEFAULT_PIN_TTL_MS);
    Some(Created {
        name: name.to_string(),
        ttl_ms,
    })
}

/// The `upload_id` of an upload URL (the `x-goog-upload-url` a start answer names).
pub fn upload_id(upload_url: &str) -> Option<&str> {
    let query = upload_url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|p| p.strip_prefix("upload_id="))
        .filter(|id| !id.is_empty())
}

/// An RFC 3339 UTC time (`2026-12-02T03:04:05.678Z`, or with `+00:00`) in Unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        millis = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = crate::clock::days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    u64::try_from(secs * 1000 + millis).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Result<Route, Error> {
        Target::parse(path)?.route(method, path)
    }

    #[test]
    fn the_version_is_kept_and_a_base_prefix_and_the_key_are_dropped() {
        let t = Target::parse("/proxy/v1/models/m:generateContent?key=secret&x=1").unwrap();
        assert_eq!((t.version.as_str(), t.upload), ("v1", false));
        assert_eq!(t.path_and_query(false), "/v1/models/m:generateContent?x=1");
        assert_eq!(
            t.path_and_query(true),
            "/v1/models/m:generateContent?x=1&alt=sse"
        );
        let up =
            Target::parse("/upload/v1beta/files?upload_id=abc&upload_protocol=resumable").unwrap();
        assert!(up.upload);
        assert_eq!(
            up.path_and_query(false),
            "/upload/v1beta/files?upload_id=abc&upload_protocol=resumable"
        );
        assert!(Target::parse("/models/m:generateContent").is_err());
        assert!(Target::parse("/v1beta/").is_err());
        assert!(Target::parse("/v1beta/files/../models").is_err());
    }

    #[test]
    fn every_path_kind_routes() {
        assert_eq!(
            route("POST", "/v1beta/models/gemini-3-flash:countTokens").unwrap(),
            Route::Model {
                model: "gemini-3-flash".into(),
                method: Method::CountTokens
            }
        );
        assert_eq!(route("GET", "/v1/models").unwrap(), Route::Models);
        assert_eq!(
            route("GET", "/v1/models/gemini-3-flash").unwrap(),
            Route::Models
        );
        assert_eq!(
            route("GET", "/v1beta/files/abc").unwrap(),
            Route::Resource {
                name: Some("files/abc".into())
            }
        );
        assert_eq!(
            route("GET", "/v1beta/files").unwrap(),
            Route::Resource { name: None }
        );
        assert_eq!(
            route("POST", "/upload/v1beta/files?upload_id=u1").unwrap(),
            Route::Resource {
                name: Some("upload:u1".into())
            }
        );
        assert_eq!(
            route("POST", "/v1beta/batches/b1:cancel").unwrap(),
            Route::Resource {
                name: Some("batches/b1".into())
            }
        );
        assert_eq!(
            route("GET", "/v1beta/models/m/operations/op1").unwrap(),
            Route::Resource {
                name: Some("models/m/operations/op1".into())
            }
        );
        let e = route("POST", "/v1beta/tunedModels/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("POST /v1beta/tunedModels/x"), "{e}");
        let e = route("POST", "/v1beta/models/m:predict")
            .unwrap_err()
            .to_string();
        assert!(e.contains("predict"), "{e}");
        assert!(route("GET", "/v1beta/models/m:generateContent").is_err());
    }

    #[test]
    fn names_in_bodies_and_answers() {
        let body = br#"{"cachedContent":"cachedContents/c1","contents":[{"parts":[
            {"fileData":{"fileUri":"https://x/v1beta/files/f1","mimeType":"text/plain"}},
            {"file_data":{"file_uri":"files/f2"}}]}]}"#;
        assert_eq!(
            names_in_body(body),
            ["cachedContents/c1", "files/f1", "files/f2"]
        );
        assert!(names_in_body(br#"{"contents":[]}"#).is_empty());
        let now = parse_rfc3339_ms("2026-12-02T00:00:00Z").unwrap();
        assert_eq!(
            created(br#"{"file":{"name":"files/f1"}}"#, now),
            Some(Created {
                name: "files/f1".into(),
                ttl_ms: DEFAULT_PIN_TTL_MS
            })
        );
        assert_eq!(
            created(
                br#"{"name":"cachedContents/c1","expireTime":"2026-12-02T01:00:00.5Z"}"#,
                now
            ),
            Some(Created {
                name: "cachedContents/c1".into(),
                ttl_ms: 3_600_500
            })
        );
        assert_eq!(created(br#"{"name":"models/m"}"#, now), None);
        assert_eq!(
            upload_id("http://h/upload/v1beta/files?upload_id=XY&upload_protocol=resumable"),
            Some("XY")
        );
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01+01:00"), None);
        assert_eq!(parse_rfc3339_ms("1970-01-02T00:00:00Z"), Some(86_400_000));
    }
}

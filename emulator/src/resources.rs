//! The resources tied to a project, as the service keeps them: uploaded files, the upload
//! sessions that make them, and cached contents.
//!
//! Each belongs to the project of the key that made it. Any key of that project may use it;
//! a key of another project is told, as by the service, that it does not exist or is not
//! its to see. Files live 48 hours, cached contents until their `expireTime`, both by the
//! emulator's wall clock; an expired one is gone. Every function here takes the wall-clock
//! time as an argument: the HTTP handlers (`files.rs`, `caches.rs`) act on what it decides.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::errors::ApiError;
use crate::fingerprint::hex;
use crate::pacific::format_utc;

/// How long an uploaded file lives, as in the service.
pub const FILE_LIFETIME_MS: i64 = 48 * 3_600_000;
/// The lifetime of a cached content created without `ttl` or `expireTime`.
pub const DEFAULT_CACHE_TTL_MS: i64 = 3_600_000;

/// Who made a resource: the key's label and project.
#[derive(Clone, Debug)]
pub struct Owner {
    pub label: Arc<str>,
    pub project: Arc<str>,
}

/// An uploaded file (`files/{id}`).
#[derive(Clone, Debug)]
pub struct FileRecord {
    pub id: String,
    pub owner: Owner,
    /// The API version of the upload, which its `uri` names.
    pub version: &'static str,
    pub display_name: Option<String>,
    pub mime_type: String,
    pub size: u64,
    pub sha256: [u8; 32],
    pub create_ms: i64,
    pub expire_ms: i64,
    seq: u64,
}

impl FileRecord {
    /// The `File` resource as the service shows it; `base` is the emulator's base URL.
    pub fn to_json(&self, base: &str) -> Value {
        let mut file = json!({
            "name": format!("files/{}", self.id),
            "mimeType": self.mime_type,
            "sizeBytes": self.size.to_string(),
            "createTime": format_utc(self.create_ms),
            "updateTime": format_utc(self.create_ms),
            "expirationTime": format_utc(self.expire_ms),
            // The service sends the base64 of the hex digest.
            "sha256Hash": base64(hex(&self.sha256).as_bytes()),
            "uri": format!("{base}/{}/files/{}", self.version, self.id),
            "state": "ACTIVE",
            "source": "UPLOADED",
        });
        if let Some(display_name) = &self.display_name {
            file["displayName"] = Value::String(display_name.clone());
        }
        file
    }
}

/// A resumable upload between `start` and `finalize`.
#[derive(Clone, Debug)]
pub struct UploadSession {
    pub upload_id: String,
    /// The id the file will get.
    pub file_id: String,
    pub owner: Owner,
    pub version: &'static str,
    pub display_name: Option<String>,
    pub mime_type: String,
    /// `x-goog-upload-header-content-length`, when the start gave it.
    pub declared_size: Option<u64>,
    pub received: u64,
    hasher: Sha256,
}

/// A cached content (`cachedContents/{id}`).
#[derive(Clone, Debug)]
pub struct CachedRecord {
    pub id: String,
    pub owner: Owner,
    /// `models/{model}`.
    pub model: String,
    pub display_name: Option<String>,
    pub tokens: u64,
    pub create_ms: i64,
    pub update_ms: i64,
    pub expire_ms: i64,
    seq: u64,
}

impl CachedRecord {
    /// The `CachedContent` resource as the service shows it (without the contents, as the
    /// service's get and list do).
    pub fn to_json(&self) -> Value {
        let mut cached = json!({
            "name": format!("cachedContents/{}", self.id),
            "model": self.model,
            "createTime": format_utc(self.create_ms),
            "updateTime": format_utc(self.update_ms),
            "expireTime": format_utc(self.expire_ms),
            "usageMetadata": { "totalTokenCount": self.tokens },
        });
        if let Some(display_name) = &self.display_name {
            cached["displayName"] = Value::String(display_name.clone());
        }
        cached
    }
}

/// A resource a model call names in its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceRef {
    /// `fileData.fileUri` (or `file_uri`) ending in `files/{id}`.
    File(String),
    /// `cachedContent` (or `cached_content`): `cachedContents/{id}`.
    CachedContent(String),
}

impl ResourceRef {
    /// The resource's name: `files/{id}` or `cachedContents/{id}`.
    pub fn name(&self) -> String {
        match self {
            ResourceRef::File(id) => format!("files/{id}"),
            ResourceRef::CachedContent(id) => format!("cachedContents/{id}"),
        }
    }
}

/// One live resource, as `GET /_emulator/resources` and [`crate::Emulator::resources`] show
/// it. Keys appear by label only.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct ResourceView {
    /// `files/{id}`, `cachedContents/{id}`, or `uploads/{upload_id}` for an open upload.
    pub name: String,
    /// The project it belongs to.
    pub project: String,
    /// The label of the key that made it.
    pub label: String,
    /// RFC 3339; `null` for an upload session.
    pub expire_time: Option<String>,
    /// Bytes of a file (received so far, for an upload); tokens of a cached content.
    pub size: u64,
}

/// Live resources of one project.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub files: u64,
    pub cached_contents: u64,
    pub upload_sessions: u64,
}

/// Every file, upload session and cached content.
#[derive(Debug, Default)]
pub struct Resources {
    files: BTreeMap<String, FileRecord>,
    uploads: HashMap<String, UploadSession>,
    caches: BTreeMap<String, CachedRecord>,
    /// Creation order, which lists follow.
    next_seq: u64,
    /// Feeds the ids; seeded per emulator so that two emulators never hand out the same name.
    next_id: u64,
}

/// What a start asks for, once its headers and body are read.
#[derive(Debug)]
pub struct UploadStart {
    /// A `file.name` the caller chose (the id, without `files/`).
    pub file_id: Option<String>,
    pub display_name: Option<String>,
    pub mime_type: String,
    pub declared_size: Option<u64>,
}

/// How an upload request ended.
#[derive(Debug)]
pub enum UploadStep {
    /// The bytes were taken; the session stays open with this many bytes received.
    Active(u64),
    /// Finalized: the file.
    Final(FileRecord),
    /// Cancelled: the session is gone.
    Cancelled,
}

/// An upload request refused: the error, and whether the session stays usable (its answer
/// says `x-goog-upload-status: active`) or not (`final`).
#[derive(Debug)]
pub struct UploadRefusal {
    pub error: ApiError,
    pub session_open: bool,
    pub received: Option<u64>,
}

impl Resources {
    /// No resources; ids start from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Resources {
            next_id: seed,
            ..Resources::default()
        }
    }

    /// Forgets everything but where the ids are (a name is never handed out twice).
    pub fn clear(&mut self) {
        *self = Resources::with_seed(self.next_id);
    }

    /// Drops what has expired by `now_ms`.
    fn purge(&mut self, now_ms: i64) {
        self.files.retain(|_, file| file.expire_ms > now_ms);
        self.caches.retain(|_, cached| cached.expire_ms > now_ms);
    }

    /// A fresh id of `len` lowercase letters and digits.
    fn fresh_id(&mut self, len: usize) -> String {
        const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut id = String::with_capacity(len);
        while id.len() < len {
            self.next_id += 1;
            let mut x = splitmix64(self.next_id);
            for _ in 0..8 {
                if id.len() == len {
                    break;
                }
                id.push(ALPHABET[(x % 36) as usize] as char);
                x /= 36;
            }
        }
        id
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    // ----- Uploads -----

    /// Opens an upload session; returns its `upload_id` and the file's id. Fails when the
    /// chosen name is invalid or taken.
    pub fn start_upload(
        &mut self,
        owner: Owner,
        version: &'static str,
        start: UploadStart,
        now_ms: i64,
    ) -> Result<(String, String), ApiError> {
        self.purge(now_ms);
        let file_id = match start.file_id {
            Some(id) => {
                check_file_id(&id)?;
                let taken =
                    self.files.contains_key(&id) || self.uploads.values().any(|u| u.file_id == id);
                if taken {
                    return Err(ApiError::file_exists(&format!("files/{id}")));
                }
                id
            }
            None => loop {
                let id = self.fresh_id(12);
                if !self.files.contains_key(&id) {
                    break id;
                }
            },
        };
        let upload_id = format!("emu-{}", self.fresh_id(24));
        let session = UploadSession {
            upload_id: upload_id.clone(),
            file_id: file_id.clone(),
            owner,
            version,
            display_name: start.display_name,
            mime_type: start.mime_type,
            declared_size: start.declared_size,
            received: 0,
            hasher: Sha256::new(),
        };
        self.uploads.insert(upload_id.clone(), session);
        Ok((upload_id, file_id))
    }

    /// Who opened the upload session `upload_id`, if it is open.
    pub fn upload_owner(&self, upload_id: &str) -> Option<Owner> {
        Some(self.uploads.get(upload_id)?.owner.clone())
    }

    /// The file id of an open session that `project` may use.
    pub fn upload_file_id(&self, upload_id: &str, project: &str) -> Result<String, ApiError> {
        let session = self
            .uploads
            .get(upload_id)
            .ok_or_else(|| ApiError::upload_not_found(upload_id))?;
        if &*session.owner.project != project {
            return Err(ApiError::file_denied(&session.file_id));
        }
        Ok(session.file_id.clone())
    }

    /// Applies one request on an upload URL. `commands` is `x-goog-upload-command` split on
    /// commas; `offset` is `x-goog-upload-offset` (required with `upload`).
    pub fn upload(
        &mut self,
        upload_id: &str,
        project: &str,
        commands: &[&str],
        offset: Option<u64>,
        bytes: &[u8],
        now_ms: i64,
    ) -> Result<UploadStep, UploadRefusal> {
        let closed = |error: ApiError| UploadRefusal {
            error,
            session_open: false,
            received: None,
        };
        self.upload_file_id(upload_id, project).map_err(closed)?;
        let session = self.uploads.get_mut(upload_id).expect("checked above");
        let open = |error: ApiError, received: u64| UploadRefusal {
            error,
            session_open: true,
            received: Some(received),
        };
        let has = |name: &str| commands.contains(&name);
        if let Some(unknown) = commands
            .iter()
            .find(|c| !matches!(**c, "upload" | "finalize" | "query" | "cancel"))
        {
            let error = ApiError::bad_upload(format!(
                "x-goog-upload-command: unknown command '{unknown}' (expected upload, \
                 finalize, query or cancel)"
            ));
            return Err(open(error, session.received));
        }
        if has("cancel") {
            self.uploads.remove(upload_id);
            return Ok(UploadStep::Cancelled);
        }
        if has("query") {
            return Ok(UploadStep::Active(session.received));
        }
        if has("upload") {
            let Some(offset) = offset else {
                let error = ApiError::bad_upload(
                    "x-goog-upload-offset is required with x-goog-upload-command: upload",
                );
                return Err(open(error, session.received));
            };
            if offset != session.received {
                let error = ApiError::bad_upload(format!(
                    "x-goog-upload-offset is {offset}, but the session has received {} bytes: \
                     send from offset {}",
                    session.received, session.received
                ));
                return Err(open(error, session.received));
            }
            let after = session.received + bytes.len() as u64;
            if let Some(declared) = session.declared_size.filter(|&d| after > d) {
                let error = ApiError::bad_upload(format!(
                    "the upload would hold {after} bytes, more than the {declared} of \
                     x-goog-upload-header-content-length"
                ));
                return Err(open(error, session.received));
            }
            session.hasher.update(bytes);
            session.received = after;
        } else if !bytes.is_empty() {
            let error = ApiError::bad_upload(
                "bytes sent without x-goog-upload-command: upload; they were not taken",
            );
            return Err(open(error, session.received));
        }
        if !has("finalize") {
            return Ok(UploadStep::Active(session.received));
        }
        if let Some(declared) = session.declared_size.filter(|&d| d != session.received) {
            let error = ApiError::bad_upload(format!(
                "finalize after {} bytes, but x-goog-upload-header-content-length declared \
                 {declared}",
                session.received
            ));
            return Err(open(error, session.received));
        }
        let session = self.uploads.remove(upload_id).expect("checked above");
        let file = FileRecord {
            id: session.file_id,
            owner: session.owner,
            version: session.version,
            display_name: session.display_name,
            mime_type: session.mime_type,
            size: session.received,
            sha256: session.hasher.finalize().into(),
            create_ms: now_ms,
            expire_ms: now_ms + FILE_LIFETIME_MS,
            seq: self.next_seq(),
        };
        self.files.insert(file.id.clone(), file.clone());
        Ok(UploadStep::Final(file))
    }

    // ----- Files -----

    /// The file `id`, if it is live and `project`'s.
    pub fn file(&mut self, id: &str, project: &str, now_ms: i64) -> Result<&FileRecord, ApiError> {
        self.purge(now_ms);
        match self.files.get(id) {
            Some(file) if &*file.owner.project == project => Ok(file),
            _ => Err(ApiError::file_denied(id)),
        }
    }

    /// Deletes the file `id` when it is live and `project`'s.
    pub fn delete_file(&mut self, id: &str, project: &str, now_ms: i64) -> Result<(), ApiError> {
        self.file(id, project, now_ms)?;
        self.files.remove(id);
        Ok(())
    }

    /// `project`'s live files, oldest first.
    pub fn files_of(&mut self, project: &str, now_ms: i64) -> Vec<&FileRecord> {
        self.purge(now_ms);
        let mut files: Vec<&FileRecord> = self
            .files
            .values()
            .filter(|file| &*file.owner.project == project)
            .collect();
        files.sort_by_key(|file| file.seq);
        files
    }

    // ----- Cached contents -----

    /// Stores a new cached content and returns it.
    pub fn create_cache(
        &mut self,
        owner: Owner,
        model: String,
        display_name: Option<String>,
        tokens: u64,
        expire_ms: i64,
        now_ms: i64,
    ) -> CachedRecord {
        self.purge(now_ms);
        let id = loop {
            let id = self.fresh_id(16);
            if !self.caches.contains_key(&id) {
                break id;
            }
        };
        let seq = self.next_seq();
        let cached = CachedRecord {
            id: id.clone(),
            owner,
            model,
            display_name,
            tokens,
            create_ms: now_ms,
            update_ms: now_ms,
            expire_ms,
            seq,
        };
        self.caches.insert(id, cached.clone());
        cached
    }

    /// The cached content `id`, if it is live and `project`'s.
    pub fn cache(
        &mut self,
        id: &str,
        project: &str,
        now_ms: i64,
    ) -> Result<&mut CachedRecord, ApiError> {
        self.purge(now_ms);
        match self.caches.get_mut(id) {
            Some(cached) if &*cached.owner.project == project => Ok(cached),
            _ => Err(ApiError::cached_content_denied()),
        }
    }

    /// Deletes the cached content `id` when it is live and `project`'s.
    pub fn delete_cache(&mut self, id: &str, project: &str, now_ms: i64) -> Result<(), ApiError> {
        self.cache(id, project, now_ms)?;
        self.caches.remove(id);
        Ok(())
    }

    /// `project`'s live cached contents, oldest first.
    pub fn caches_of(&mut self, project: &str, now_ms: i64) -> Vec<&CachedRecord> {
        self.purge(now_ms);
        let mut caches: Vec<&CachedRecord> = self
            .caches
            .values()
            .filter(|cached| &*cached.owner.project == project)
            .collect();
        caches.sort_by_key(|cached| cached.seq);
        caches
    }

    // ----- Checks and views -----

    /// Checks the resources a call on `model` by a key of `project` names: each must be live
    /// and the project's, and a cached content must be made for `model`.
    pub fn check_refs(
        &mut self,
        refs: &[ResourceRef],
        project: &str,
        model: &str,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        for reference in refs {
            match reference {
                ResourceRef::File(id) => {
                    self.file(id, project, now_ms)?;
                }
                ResourceRef::CachedContent(id) => {
                    let cached = self.cache(id, project, now_ms)?;
                    if cached.model.strip_prefix("models/") != Some(model) {
                        return Err(ApiError::cached_content_model(model, &cached.model));
                    }
                }
            }
        }
        Ok(())
    }

    /// Live resources per project.
    pub fn counts(&mut self, now_ms: i64) -> BTreeMap<String, Counts> {
        self.purge(now_ms);
        let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
        for file in self.files.values() {
            counts
                .entry(file.owner.project.to_string())
                .or_default()
                .files += 1;
        }
        for cached in self.caches.values() {
            let entry = counts.entry(cached.owner.project.to_string()).or_default();
            entry.cached_contents += 1;
        }
        for session in self.uploads.values() {
            let entry = counts.entry(session.owner.project.to_string()).or_default();
            entry.upload_sessions += 1;
        }
        counts
    }

    /// Every live resource: files and cached contents in creation order, then open uploads.
    pub fn views(&mut self, now_ms: i64) -> Vec<ResourceView> {
        self.purge(now_ms);
        let mut made: Vec<(u64, ResourceView)> = Vec::new();
        for file in self.files.values() {
            let view = ResourceView {
                name: format!("files/{}", file.id),
                project: file.owner.project.to_string(),
                label: file.owner.label.to_string(),
                expire_time: Some(format_utc(file.expire_ms)),
                size: file.size,
            };
            made.push((file.seq, view));
        }
        for cached in self.caches.values() {
            let view = ResourceView {
                name: format!("cachedContents/{}", cached.id),
                project: cached.owner.project.to_string(),
                label: cached.owner.label.to_string(),
                expire_time: Some(format_utc(cached.expire_ms)),
                size: cached.tokens,
            };
            made.push((cached.seq, view));
        }
        made.sort_by_key(|(seq, _)| *seq);
        let mut views: Vec<ResourceView> = made.into_iter().map(|(_, view)| view).collect();
        let mut uploads: Vec<&UploadSession> = self.uploads.values().collect();
        uploads.sort_by(|a, b| a.upload_id.cmp(&b.upload_id));
        views.extend(uploads.into_iter().map(|session| ResourceView {
            name: format!("uploads/{}", session.upload_id),
            project: session.owner.project.to_string(),
            label: session.owner.label.to_string(),
            expire_time: None,
            size: session.received,
        }));
        views
    }
}

/// The resources a model call's body names: every `cachedContent` / `cached_content` string
/// and every `fileUri` / `file_uri` naming `files/{id}`, at any depth (so both `countTokens`
/// shapes are covered). Bodies that mention neither are not parsed again.
pub fn refs_in(body: &[u8]) -> Vec<ResourceRef> {
    let mentions = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    let any = [
        &b"cachedContent"[..],
        b"cached_content",
        b"fileUri",
        b"file_uri",
    ]
    .iter()
    .any(|needle| mentions(needle));
    if !any {
        return Vec::new();
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let mut refs = Vec::new();
    collect_refs(&value, &mut refs);
    refs.dedup();
    refs
}

fn collect_refs(value: &Value, refs: &mut Vec<ResourceRef>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("cachedContent" | "cached_content", Value::String(name)) => {
                        let id = name.rsplit("cachedContents/").next().unwrap_or(name);
                        refs.push(ResourceRef::CachedContent(id.to_string()));
                    }
                    ("fileUri" | "file_uri", Value::String(uri)) => {
                        if let Some(id) = file_id_in_uri(uri) {
                            refs.push(ResourceRef::File(id));
                        }
                    }
                    _ => collect_refs(value, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

/// The id of a file URI (`{base}/v1beta/files/abc`, or `files/abc`); `None` for URIs that
/// name no uploaded file (a web or storage URL).
fn file_id_in_uri(uri: &str) -> Option<String> {
    let at = uri.rfind("files/")?;
    if at > 0 && !uri[..at].ends_with('/') {
        return None;
    }
    let id: String = uri[at + "files/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (!id.is_empty()).then_some(id)
}

/// A file id the caller chose: 1 to 40 lowercase letters, digits or dashes, not starting or
/// ending with a dash.
fn check_file_id(id: &str) -> Result<(), ApiError> {
    let valid = !id.is_empty()
        && id.len() <= 40
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_request(
            "file.name",
            format!(
                "Invalid file name 'files/{id}': the id must be 1 to 40 lowercase letters, \
                 digits or dashes, and not start or end with a dash"
            ),
        ))
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(project: &str) -> Owner {
        Owner {
            label: Arc::from("k"),
            project: Arc::from(project),
        }
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn finds_references_at_any_depth() {
        let body = br#"{"generateContentRequest":{"cachedContent":"cachedContents/c1",
            "contents":[{"parts":[{"fileData":{"fileUri":"http://h/v1beta/files/abc-1"}},
            {"file_data":{"file_uri":"files/def"}},{"fileData":{"fileUri":"gs://b/profiles/x"}}]}]}}"#;
        assert_eq!(
            refs_in(body),
            [
                ResourceRef::CachedContent("c1".into()),
                ResourceRef::File("abc-1".into()),
                ResourceRef::File("def".into()),
            ]
        );
        assert!(refs_in(br#"{"contents":[{"parts":[{"text":"hi"}]}]}"#).is_empty());
    }

    #[test]
    fn uploads_check_offsets_and_sizes() {
        let mut resources = Resources::default();
        let start = UploadStart {
            file_id: None,
            display_name: None,
            mime_type: "text/plain".into(),
            declared_size: Some(5),
        };
        let (upload, file_id) = resources
            .start_upload(owner("p"), "v1beta", start, 0)
            .unwrap();
        let step = resources.upload(&upload, "p", &["upload"], Some(0), b"abc", 0);
        assert!(matches!(step, Ok(UploadStep::Active(3))));
        let wrong = resources.upload(&upload, "p", &["upload"], Some(0), b"de", 0);
        let wrong = wrong.unwrap_err();
        assert!(wrong.session_open && wrong.error.message.contains("received 3 bytes"));
        let other = resources.upload(&upload, "q", &["upload"], Some(3), b"de", 0);
        assert_eq!(other.unwrap_err().error.code, 403);
        let step = resources.upload(&upload, "p", &["upload", "finalize"], Some(3), b"de", 10);
        let Ok(UploadStep::Final(file)) = step else {
            panic!("not final: {step:?}")
        };
        assert_eq!((file.id.as_str(), file.size), (file_id.as_str(), 5));
        assert!(resources.file(&file_id, "q", 10).is_err());
        assert!(resources.file(&file_id, "p", 10).is_ok());
        assert!(resources
            .file(&file_id, "p", 10 + FILE_LIFETIME_MS)
            .is_err());
    }
}

//! Quota groups: Google applies limits per Cloud project, so keys of one project share them. A key
//! entry names its project as `PROJECT:KEY` (or, in JSON, `{"key": ..., "project": ...}`); a key
//! without one is a group of its own.
//!
//! Errors here name an entry by its position, never by its text: a malformed entry may be a key
//! with a stray ':' (so its "project" part is a piece of the key).

use super::source::Raw;
use crate::key::ApiKey;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

/// The longest project name accepted (Google's project ids have at most 30 characters; a
/// label of the user's own may be longer).
const MAX_PROJECT_LEN: usize = 64;

/// A key as configured, with the project it belongs to.
#[derive(Clone, Debug)]
pub(super) struct KeyEntry {
    pub key: ApiKey,
    pub project: Option<String>,
}

/// A quota group's stable identity: the project's name, or `key:` and the key's stored identity
/// (32 hex digits, starting with its fingerprint) for a key without a project. A project name
/// cannot contain ':', so the two never collide; no key appears in either.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(String);

impl GroupId {
    pub(super) fn of(key: &ApiKey, project: Option<&str>) -> GroupId {
        match project {
            Some(p) => GroupId(p.to_string()),
            None => GroupId(format!("key:{}", crate::key::hex(key.id()))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the group is a project (rather than a key alone).
    pub fn is_project(&self) -> bool {
        !self.0.contains(':')
    }

    /// A fixed-size identity for stores that keep records of fixed size (16 bytes of SHA-256
    /// over a domain-separated id, as key identities are).
    pub fn digest(&self) -> [u8; 16] {
        let mut hasher = Sha256::new();
        hasher.update(b"gemini-rotator/group/v1\0");
        hasher.update(self.0.as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&hasher.finalize()[..16]);
        id
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A project name: letters, digits, '-', '_' and '.', 1 to [`MAX_PROJECT_LEN`] characters.
/// The name is not echoed in the error, in case it is part of a key.
pub fn validate_project(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the project name is empty".into());
    }
    if name.len() > MAX_PROJECT_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!(
            "the project name is not one (letters, digits, '-', '_' and '.' only, at most \
             {MAX_PROJECT_LEN}; the text is not shown, in case it is part of a key)"
        ));
    }
    Ok(())
}

/// One entry: `KEY`, `PROJECT:KEY` (split at the first ':', each part trimmed) or a JSON object
/// `{"key": "KEY", "project": "PROJECT"}` (whose key is taken whole, ':' included). `None` for
/// a blank string. The error is the reason, for the caller to prefix with the entry's name.
pub(super) fn entry(raw: &Raw) -> Result<Option<(String, Option<String>)>, String> {
    match raw {
        Raw::Text(t) => {
            let t = t.trim();
            if t.is_empty() {
                return Ok(None);
            }
            match t.split_once(':') {
                None => Ok(Some((t.to_string(), None))),
                Some((project, key)) => {
                    let (project, key) = (project.trim(), key.trim());
                    if project.is_empty() {
                        return Err(
                            "the project before ':' is empty (write KEY or PROJECT:KEY)".into()
                        );
                    }
                    validate_project(project)?;
                    if key.is_empty() {
                        return Err("the key after 'PROJECT:' is empty".into());
                    }
                    Ok(Some((key.to_string(), Some(project.to_string()))))
                }
            }
        }
        Raw::Object(o) => {
            if o.keys().any(|f| f != "key" && f != "project") {
                // The field's name is not shown: it could be a key written as a name.
                return Err("an object entry has only the fields `key` and `project`".into());
            }
            let key = match o.get("key") {
                Some(Value::String(k)) if !k.trim().is_empty() => k.trim().to_string(),
                Some(Value::String(_)) => return Err("its `key` is empty".into()),
                None | Some(Value::Null) => return Err("an object entry needs a `key`".into()),
                Some(_) => return Err("its `key` must be a string".into()),
            };
            let project = match o.get("project") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) => {
                    let p = p.trim();
                    validate_project(p).map_err(|r| format!("its `project`: {r}"))?;
                    Some(p.to_string())
                }
                Some(_) => return Err("its `project` must be a string".into()),
            };
            Ok(Some((key, project)))
        }
        Raw::Number(_) => Err("must be a string, got a number".into()),
        Raw::List(_) => Err("must be a string, got an array".into()),
    }
}

/// The projects of the keys that name one, by key identity. A project has one tier, so the paid
/// key's project may not also be a free key's.
pub(super) fn projects(
    src: &dyn super::source::Source,
    free: &[KeyEntry],
    paid: Option<&KeyEntry>,
) -> Result<std::collections::HashMap<crate::key::KeyId, String>, crate::error::Error> {
    use super::settings::PAID_KEY;
    if let Some(KeyEntry {
        key,
        project: Some(project),
    }) = paid
    {
        if free.iter().any(|e| e.project.as_ref() == Some(project)) {
            return Err(crate::error::Error::config(
                src.name(&PAID_KEY),
                format!(
                    "the paid key (fingerprint {}) is in project {project}, which free keys are \
                     in too: a project has one tier, so its keys share one set of limits",
                    key.fingerprint()
                ),
            ));
        }
    }
    Ok(free
        .iter()
        .chain(paid)
        .filter_map(|e| Some((*e.key.id(), e.project.clone()?)))
        .collect())
}

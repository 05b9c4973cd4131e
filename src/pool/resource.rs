//! The pin rule in the pool: which keys may serve a request that names resources (a
//! [`Scope`]), pinning what an answer creates, and choosing among the allowed keys only.
//!
//! A resource (file, cached content, operation) lives in the project of the key that made
//! it, so its name is pinned to that key's quota group in the store (an upload session to the
//! exact key); a request naming a pinned resource may only use those keys. A request naming
//! none is every key's, and pays nothing for this: `only` is `None` and admission takes its
//! usual path.

use super::attempt::Happened;
use super::models::ModelRef;
use super::select::NoKey;
use super::{Lease, Pool, PoolKey};
use crate::error::Error;
use crate::gemini::Verdict;
use crate::http::DEFAULT_API_VERSION;
use crate::store::{PinTarget, Refusal};

/// Where a call is sent: the API version, the keys it may use, and the resources it names
/// that the store has no pin for (found by asking each group, see `forward.rs`).
pub(crate) struct Scope<'a> {
    pub version: &'a str,
    /// Per key of the pool (free keys, then the paid key): whether it may serve; `None`: all.
    pub only: Option<Vec<bool>>,
    /// Every resource the request names.
    pub names: Vec<String>,
    /// Those of `names` that no pin says where they live.
    pub unpinned: Vec<String>,
}

impl Scope<'static> {
    /// `v1beta`, every key: `gr_generate`, `gr_call`, `gr_stream_open`.
    pub const DEFAULT: Scope<'static> = Scope {
        version: DEFAULT_API_VERSION,
        only: None,
        names: Vec::new(),
        unpinned: Vec::new(),
    };
}

/// Whether an error body speaks of one of `names` (its name, its id, or the kind of resource
/// it is): the service's "You do not have permission to access the File X or it may not
/// exist", "CachedContent not found (or permission denied)".
fn quotes_any(names: &[String], body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    if lower.contains("api key") {
        return false;
    }
    names.iter().any(|name| {
        let (kind, id) = name.split_once('/').unwrap_or(("", name));
        let kind = match kind {
            "files" => "file",
            "cachedContents" => "cachedcontent",
            "operations" => "operation",
            "batches" => "batch",
            _ => "\0",
        };
        text.contains(name.as_str())
            || (!id.is_empty() && text.contains(id))
            || lower.contains(kind)
    })
}

impl Scope<'_> {
    /// An answer that speaks of a resource the request names (a 403 PERMISSION_DENIED or 404
    /// NOT_FOUND about it) is about the resource (elsewhere, expired, deleted), not about the
    /// key: the caller's answer, nothing against the key.
    pub(crate) fn judge(&self, happened: Happened) -> Happened {
        if self.names.is_empty() || !self.about(&self.names, &happened) {
            return happened;
        }
        match happened {
            Happened::Answered {
                status,
                body,
                error,
                ..
            } => Happened::Answered {
                status,
                body,
                error,
                verdict: Verdict::Caller,
            },
            other => other,
        }
    }

    fn about(&self, names: &[String], happened: &Happened) -> bool {
        let Happened::Answered { status, body, .. } = happened else {
            return false;
        };
        matches!(status, 403 | 404) && quotes_any(names, body)
    }

    /// The answer says a resource the store has no pin for is not there (for this key's
    /// project): other groups may have it.
    pub(crate) fn about_unpinned(&self, happened: &Happened) -> bool {
        !self.unpinned.is_empty() && self.about(&self.unpinned, happened)
    }

    /// The same for an error the call returned.
    pub(crate) fn unpinned_not_found(&self, e: &Error) -> bool {
        match e {
            Error::Api(api) => {
                !self.unpinned.is_empty()
                    && matches!(api.http_status, 403 | 404)
                    && quotes_any(&self.unpinned, &api.body)
            }
            _ => false,
        }
    }
}

impl Pool {
    /// The keys (by position) a pin target allows.
    pub(crate) fn allowed_by(&self, target: PinTarget) -> Vec<bool> {
        self.keys()
            .map(|k| match target {
                PinTarget::Group(g) => k.group.digest() == g,
                PinTarget::Key(id) => *k.key.id() == id,
            })
            .collect()
    }

    /// The scope of a request in API `version` naming `names`: only the keys every pinned
    /// name allows. A pin no key of this pool can serve is an error that says so.
    pub(crate) fn scope_for<'a>(
        &self,
        version: &'a str,
        names: &[String],
    ) -> Result<Scope<'a>, Error> {
        let mut scope = Scope {
            version,
            only: None,
            names: names.to_vec(),
            unpinned: Vec::new(),
        };
        if names.is_empty() {
            return Ok(scope);
        }
        let pins = self.store.pins();
        let now = self.store.now();
        for name in names {
            let Some(target) = pins.lookup(name, now)? else {
                scope.unpinned.push(name.clone());
                continue;
            };
            let allowed = self.allowed_by(target);
            scope.only = Some(match scope.only.take() {
                None => allowed,
                Some(prev) => prev.iter().zip(&allowed).map(|(a, b)| *a && *b).collect(),
            });
            if !scope.only.as_ref().is_some_and(|o| o.contains(&true)) {
                return Err(Error::NoUsableKeys {
                    detail: format!(
                        "{name} was made with a key of another project (quota group) than this pool's keys that may serve the request"
                    ),
                    last_answer: None,
                });
            }
        }
        Ok(scope)
    }

    /// Pins `name` to `key`'s group (or the key itself) for `ttl_ms`.
    pub(crate) fn pin(&self, name: &str, target: PinTarget, ttl_ms: u64) -> Result<(), Error> {
        let until = self.store.now().saturating_add(ttl_ms);
        self.store.pins().pin(name, target, until)
    }

    pub(crate) fn group_of(key: &PoolKey) -> PinTarget {
        PinTarget::Group(key.group.digest())
    }

    /// As `acquire`, on the keys `only` allows: free keys in round-robin from the shared
    /// cursor, then the paid key. Off the usual path: only requests that name a pinned
    /// resource come here.
    pub(super) fn acquire_only<'p>(
        &'p self,
        now: u64,
        model: &ModelRef<'p>,
        tokens: u64,
        only: &[bool],
    ) -> Result<Lease<'p>, NoKey> {
        let at = self.moment(now);
        let tokens = if model.counts_tokens { tokens } else { 0 };
        let k = self.free.len();
        let start = if k > 0 {
            (self.record.next_cursor().map_err(NoKey::Store)? % k as u64) as usize
        } else {
            0
        };
        let order = (0..k)
            .map(|i| (start + i) % k)
            .chain((self.paid.is_some()).then_some(k));
        let mut earliest = u64::MAX;
        let mut in_service = false;
        for index in order.filter(|&i| only.get(i) == Some(&true)) {
            let key = if index < k {
                &self.free[index]
            } else {
                self.paid.as_ref().expect("the paid key's position")
            };
            match self.try_key(index, key, model, &at, tokens) {
                Ok(ticket) => return Ok(self.lease(key, index, model, ticket)),
                Err(Refusal::Until(ready)) => {
                    in_service = true;
                    earliest = earliest.min(ready)
                }
                Err(Refusal::Unavailable(ready)) => earliest = earliest.min(ready),
                Err(Refusal::Disabled(_)) => {}
                Err(Refusal::Store(e)) => return Err(NoKey::Store(e)),
            }
        }
        if earliest == u64::MAX {
            return Err(NoKey::AllDisabled);
        }
        if !in_service {
            return Err(NoKey::Unavailable(earliest));
        }
        Err(NoKey::Until(earliest))
    }
}

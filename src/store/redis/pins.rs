//! Pins on Redis: one string per pin, `{prefix}pin:{<name>}` = the target (kind and id, in
//! hex: a quota group's digest or a key's stored identity, never a key), set with `SET ... EX` (whole seconds, rounded up)
//! so that Redis itself expires it. One round trip per pin, lookup or unpin.

use super::Shared;
use crate::error::Error;
use crate::key::hex;
use crate::store::{PinRecord, PinTarget};
use std::sync::Arc;

pub(super) struct RedisPins {
    pub(super) shared: Arc<Shared>,
}

impl RedisPins {
    fn name(&self, name: &str) -> String {
        format!("{}pin:{{{name}}}", self.shared.target.prefix)
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (s.len() % 2 == 0)
        .then(|| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
}

impl PinRecord for RedisPins {
    fn pin(&self, name: &str, target: PinTarget, expires_at: u64) -> Result<(), Error> {
        // Store times are this host's; Redis counts the rest of the pin's life itself.
        let ttl_secs = expires_at
            .saturating_sub(self.shared.clock.now_ms())
            .div_ceil(1000)
            .max(1);
        let key = self.name(name);
        let value = hex(&target.to_bytes());
        self.shared.run(|c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("EX")
                .arg(ttl_secs)
                .query::<()>(c)
        })
    }

    fn lookup(&self, name: &str, _now: u64) -> Result<Option<PinTarget>, Error> {
        let key = self.name(name);
        let value: Option<String> = self.shared.run(|c| redis::cmd("GET").arg(&key).query(c))?;
        Ok(value
            .as_deref()
            .and_then(unhex)
            .and_then(|b| PinTarget::from_bytes(&b)))
    }

    fn unpin(&self, name: &str) -> Result<(), Error> {
        let key = self.name(name);
        self.shared
            .run(|c| redis::cmd("DEL").arg(&key).query::<()>(c))
    }
}

//! The names of the store's Redis keys. Every one starts with the configured prefix, and the
//! keys of one record share a hash tag (`{...}`: the record's digest), so that a script that
//! touches them all runs on one Redis Cluster slot. Names hold digests only: a key record is
//! named by its `KeyId` (a digest of the API key), a pool by its id; never a key itself.

use crate::key::{hex, KeyId};

/// The words of a quota record's header at the start of its ring string (`record.lua`'s
/// `FIELDS`); the last one is the high-water mark.
pub const HEADER_WORDS: u64 = 19;

/// The names under one prefix.
#[derive(Clone, Debug)]
pub struct Names {
    prefix: String,
}

/// The Redis keys of one (quota group, model) record.
#[derive(Clone, Debug)]
pub struct QuotaNames {
    /// A hash of what is read rarely: tier, group, model, capacity streak, fallbacks, birth.
    pub meta: String,
    /// A string of signed 64-bit `BITFIELD` words: first [`HEADER_WORDS`], the header the hot
    /// scripts read in one command (limits configured and in force, the rings' heads, the
    /// day's count, cooldown, availability, quarantine, the high-water mark: `record.lua`
    /// names them), then the rate ring's slots: 0 free, `t > 0` a request that finished at
    /// server time `t`, `-t` one in flight since `t`.
    pub rate: String,
    /// The input tokens' ring, slots as the rate ring's.
    pub tokens: String,
}

impl Names {
    pub fn new(prefix: &str) -> Names {
        Names {
            prefix: prefix.to_string(),
        }
    }

    /// A key record's hash: tier, group, disabled reason, counters.
    pub fn key(&self, id: &KeyId) -> String {
        format!("{}key:{{{}}}", self.prefix, hex(id))
    }

    pub fn quota(&self, id: &[u8; 16]) -> QuotaNames {
        let base = format!("{}quota:{{{}}}", self.prefix, hex(id));
        QuotaNames {
            rate: format!("{base}:rate"),
            tokens: format!("{base}:tokens"),
            meta: base,
        }
    }

    pub fn pool(&self, id: &[u8; 16]) -> String {
        format!("{}pool:{{{}}}", self.prefix, hex(id))
    }

    /// A pool's round-robin cursor: a counter (`cursor`).
    pub fn cursor(&self, id: &[u8; 16]) -> String {
        format!("{}:cursor", self.pool(id))
    }

    /// The generation marker: the server time at which this Redis (under this prefix) was
    /// first used since it last lost its data.
    pub fn epoch(&self) -> String {
        format!("{}epoch", self.prefix)
    }

    /// A `SCAN` pattern for every key record's hash (the prefix has no glob characters: see
    /// the prefix setting's check).
    pub fn key_pattern(&self) -> String {
        format!("{}key:{{*}}", self.prefix)
    }

    /// A `SCAN` pattern for every quota record's hash.
    pub fn quota_pattern(&self) -> String {
        format!("{}quota:{{*}}", self.prefix)
    }
}

/// The record's id from its hash's name (the hex in the hash tag).
pub fn id_of(meta: &str) -> Option<KeyId> {
    let hex = meta.rsplit_once('{')?.1.strip_suffix('}')?;
    if hex.len() != 32 {
        return None;
    }
    let mut id: KeyId = [0; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_records_names_share_a_hash_tag_under_the_prefix() {
        let names = Names::new("p:");
        let id = crate::key::key_id("secret");
        let k = names.key(&id);
        assert!(k.starts_with("p:key:{"));
        assert_eq!(id_of(&k), Some(id));
        assert!(!k.contains("secret"));
        let q = names.quota(&id);
        assert!(q.meta.starts_with("p:quota:{"));
        assert!(q.rate.starts_with(&q.meta) && q.tokens.starts_with(&q.meta));
    }

    #[test]
    fn the_header_words_are_the_fields_record_lua_names() {
        let lua = include_str!("record.lua");
        let list = lua.split("local FIELDS = {").nth(1).unwrap();
        let list = &list[..list.find('}').unwrap()];
        let fields: Vec<&str> = list
            .split(',')
            .map(|f| f.trim().trim_matches('\''))
            .collect();
        assert_eq!(fields.len() as u64, HEADER_WORDS);
        assert_eq!(fields.last(), Some(&"hwm"));
    }
}

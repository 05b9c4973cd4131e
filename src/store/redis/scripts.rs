//! The server-side scripts: each operation on a record is one script, so one round trip,
//! atomic on the server. Each is sent by its SHA1 (`EVALSHA`) and, when the server does not
//! know it (`NOSCRIPT`: after a restart or `SCRIPT FLUSH`; nothing ran), once more in full
//! (`redis::Script` does both). What they share (`record.lua`: the quota record's header
//! words, the server's time with its high-water mark, counter folding, the slot rule) is
//! prepended to each.

use once_cell::sync::Lazy;
use redis::Script;

macro_rules! script {
    ($file:literal) => {
        Lazy::new(|| Script::new(concat!(include_str!("record.lua"), include_str!($file))))
    };
}

/// Admission on a quota record: the three quotas, all or nothing.
pub static ADMIT: Lazy<Script> = script!("admit.lua");
/// Completion: stamps the admission's slots, corrects the token reservation.
pub static COMPLETE: Lazy<Script> = script!("complete.lua");
/// Registration: creates a quota record (held back after a loss of data) or checks its limits.
pub static REGISTER: Lazy<Script> = script!("register.lua");
/// The generation marker, and the server's time.
pub static EPOCH: Lazy<Script> = script!("epoch.lua");
/// A quota record's rare writes: cooldown, unavailability, lowered limits, streak, fallbacks.
pub static QUOTA_OPS: Lazy<Script> = script!("quota_ops.lua");
/// A quota record's snapshot.
pub static READ: Lazy<Script> = script!("read.lua");
/// A key record: register, disable, enable, read (with its counters folded in).
pub static KEY: Lazy<Script> = script!("key.lua");
/// A pool's counters: add, and read back.
pub static POOL: Lazy<Script> = script!("pool.lua");

//! Why a key is out of service: disabled for good (until an operator enables it) or cooling
//! down after a 429. These are domain words, shared by the wire format (what an answer means),
//! the pool (what it does about it), the stores (which keep them) and the statistics.
//!
//! Their numbers are stored in the shared state file: never reuse or renumber one.

/// Why a key is cooling down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CooldownCause {
    None = 0,
    /// A per-minute (or unspecified) quota: back after `retryDelay`.
    PerMinute = 1,
    /// A per-day quota: back after midnight Pacific time.
    PerDay = 2,
    /// A 429 without quota details (the service's capacity, not the key's quota): a short
    /// backoff that grows with repeats.
    Capacity = 3,
}

impl CooldownCause {
    pub fn from_word(w: u64) -> CooldownCause {
        match w {
            1 => CooldownCause::PerMinute,
            2 => CooldownCause::PerDay,
            3 => CooldownCause::Capacity,
            _ => CooldownCause::None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CooldownCause::None => "none",
            CooldownCause::PerMinute => "per_minute",
            CooldownCause::PerDay => "per_day",
            CooldownCause::Capacity => "capacity",
        }
    }
}

/// Why a key was disabled (0 in the word: it is not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisabledReason {
    ApiKeyInvalid = 1,
    Leaked = 2,
    ConsumerSuspended = 3,
    ServiceDisabled = 4,
    PermissionDenied = 5,
}

impl DisabledReason {
    pub fn from_word(w: u64) -> Option<DisabledReason> {
        Some(match w {
            1 => DisabledReason::ApiKeyInvalid,
            2 => DisabledReason::Leaked,
            3 => DisabledReason::ConsumerSuspended,
            4 => DisabledReason::ServiceDisabled,
            5 => DisabledReason::PermissionDenied,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::ApiKeyInvalid => "API_KEY_INVALID",
            DisabledReason::Leaked => "LEAKED",
            DisabledReason::ConsumerSuspended => "CONSUMER_SUSPENDED",
            DisabledReason::ServiceDisabled => "SERVICE_DISABLED",
            DisabledReason::PermissionDenied => "PERMISSION_DENIED",
        }
    }
}

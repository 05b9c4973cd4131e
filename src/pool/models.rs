//! A pool's state per model: for each key, its quota group's record of that model, and this
//! process's hints about them. A pool does not know every model up front, so the records of a
//! model are found (or made) the first time a call uses it, and kept.
//!
//! The pool's default model is a plain field, read with no lock at all; other models sit in a
//! map behind a read-write lock, read-locked for a lookup per call (written once per model).

use super::Pool;
use crate::config::Config;
use crate::error::Error;
use crate::key::Tier;
use crate::quota::{Limits, Quota};
use crate::store::group::QuotaCell;
use crate::store::{quota_id, InUse, QuotaRecord, QuotaSpec};
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, RwLock};

/// One model's records and hints, per key of the pool (free keys, then the paid key).
pub struct ModelState {
    /// The model, without `models/`.
    pub model: String,
    /// Per key: its quota group's record of the model (keys of one group share it).
    pub(crate) quotas: Box<[Arc<dyn QuotaRecord>]>,
    /// Per key: the same record's words when the store keeps them here (memory, shared
    /// memory), for admission and completion without a dynamic call.
    pub(crate) cells: Box<[Option<QuotaCell>]>,
    /// Per key: when this process may next ask it for this model (see `select`). Never later
    /// than the record could really admit: cooldowns and window records only move forward.
    pub(crate) hints: Box<[AtomicU64]>,
    /// Per key: whether its group had the model unavailable when this process last asked.
    pub(crate) seen_unavailable: Box<[AtomicBool]>,
    /// Whether the model has a token limit for any key (else no estimate is made).
    pub(crate) counts_tokens: bool,
    _in_use: Vec<Arc<InUse>>,
}

/// A model's state, borrowed (the default model) or shared (any other); cheap to clone.
#[derive(Clone)]
pub enum ModelRef<'p> {
    Default(&'p ModelState),
    Other(Arc<ModelState>),
}

impl Deref for ModelRef<'_> {
    type Target = ModelState;
    fn deref(&self) -> &ModelState {
        match self {
            ModelRef::Default(m) => m,
            ModelRef::Other(m) => m,
        }
    }
}

/// The models a pool has used.
pub(crate) struct Models {
    pub default: ModelState,
    /// Written once per model; a lock because the map changes shape when it is.
    pub others: RwLock<HashMap<String, Arc<ModelState>>>,
}

/// The three limits a key's tier has for `model`, as quotas.
pub(crate) fn limits_of(config: &Config, model: &str, tier: Tier) -> Limits {
    let l = config.limits(model, tier);
    Limits {
        rate: Quota::requests_per_window(l.rate, config.window_ms),
        daily: l.daily.map(Quota::requests_per_day),
        tokens: l
            .tokens
            .map(|t| Quota::tokens_per_window(t, config.window_ms)),
    }
}

impl ModelState {
    /// Finds (or makes) the records of `model` for every key of the pool.
    pub(crate) fn open(
        pool_config: &Config,
        store: &dyn crate::store::Store,
        keys: &[&super::PoolKey],
        model: &str,
    ) -> Result<ModelState, Error> {
        let mut quotas: Vec<Arc<dyn QuotaRecord>> = Vec::with_capacity(keys.len());
        let mut in_use = Vec::new();
        let mut by_group: HashMap<[u8; 16], Arc<dyn QuotaRecord>> = HashMap::new();
        let mut counts_tokens = false;
        for key in keys {
            let group = key.group.digest();
            let limits = limits_of(pool_config, model, key.tier);
            counts_tokens |= limits.tokens.is_some();
            if let Some(record) = by_group.get(&group) {
                quotas.push(record.clone());
                continue;
            }
            let tier_field =
                |field: &str| pool_config.setting_name(&format!("{}_{field}", key.tier.as_str()));
            let handle = store.quota(&QuotaSpec {
                id: quota_id(&group, model),
                group,
                group_name: key.group.to_string(),
                model: model.to_string(),
                tier: key.tier,
                limits,
                max_inflight_ms: pool_config.timeout_ms,
                limit_setting: tier_field("rate_limit"),
                window_setting: pool_config.setting_name("window_ms"),
            })?;
            by_group.insert(group, handle.record.clone());
            quotas.push(handle.record);
            in_use.push(handle.in_use);
        }
        let n = quotas.len();
        let cells = quotas.iter().map(|q| q.cell().cloned()).collect();
        Ok(ModelState {
            model: model.to_string(),
            cells,
            quotas: quotas.into_boxed_slice(),
            hints: (0..n).map(|_| AtomicU64::new(0)).collect(),
            seen_unavailable: (0..n).map(|_| AtomicBool::new(false)).collect(),
            counts_tokens,
            _in_use: in_use,
        })
    }
}

impl Pool {
    /// The state of `model` (without `models/`), made on first use.
    pub(crate) fn model_state(&self, model: &str) -> Result<ModelRef<'_>, Error> {
        if model == self.models.default.model {
            return Ok(ModelRef::Default(&self.models.default));
        }
        let read = self.models.others.read().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = read.get(model) {
            return Ok(ModelRef::Other(m.clone()));
        }
        drop(read);
        let mut write = self
            .models
            .others
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(m) = write.get(model) {
            return Ok(ModelRef::Other(m.clone()));
        }
        let keys: Vec<_> = self.keys().collect();
        let state = Arc::new(ModelState::open(&self.config, &*self.store, &keys, model)?);
        write.insert(model.to_string(), state.clone());
        Ok(ModelRef::Other(state))
    }

    /// Every model the pool has used, the default first.
    pub fn models_used(&self) -> Vec<ModelRef<'_>> {
        let mut list = vec![ModelRef::Default(&self.models.default)];
        let read = self.models.others.read().unwrap_or_else(|e| e.into_inner());
        let mut others: Vec<_> = read.values().cloned().collect();
        others.sort_by(|a, b| a.model.cmp(&b.model));
        list.extend(others.into_iter().map(ModelRef::Other));
        list
    }
}

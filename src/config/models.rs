//! Per-model limits and fallbacks: the `models` field of the JSON configuration and the config
//! file, `{"MODEL": {"free_daily_limit": 20, ..., "fallback": ["MODEL2"]}}`.
//!
//! A model's limits are the global settings' rows (same names, same ranges, same reader), read
//! from the model's object; a limit a model does not set is the global one. A fallback model need
//! not be listed (it then has the global limits), but the fallbacks may not form a cycle: a call
//! falls back from model to model, and a cycle would send it round forever.

use super::parse;
use super::settings::{Setting, MODELS, MODEL_LIMITS};
use super::settings::{
    FREE_DAILY_LIMIT, FREE_RATE_LIMIT, FREE_TOKEN_LIMIT, PAID_DAILY_LIMIT, PAID_RATE_LIMIT,
    PAID_TOKEN_LIMIT,
};
use super::source::{kind, Json, Raw, Source};
use super::validate_model;
use crate::error::Error;
use crate::key::Tier;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// A model's field that is not a limit.
const FALLBACK: &str = "fallback";

/// What a model of `models` sets for one tier; `None` is the global setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    pub rate: Option<u64>,
    pub daily: Option<u64>,
    pub tokens: Option<u64>,
}

/// One model's entry of `models`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelConfig {
    pub free: LimitOverrides,
    pub paid: LimitOverrides,
    /// The models to serve a call with, in order, when no key can serve this one (without
    /// `models/`).
    pub fallback: Vec<String>,
}

impl ModelConfig {
    pub fn tier(&self, tier: Tier) -> &LimitOverrides {
        match tier {
            Tier::Free => &self.free,
            Tier::Paid => &self.paid,
        }
    }
}

/// The limits in force for one model and tier: the model's own, else the global ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelLimits {
    /// Requests per window.
    pub rate: u64,
    /// Requests per Pacific day; `None`: no daily limit.
    pub daily: Option<u64>,
    /// Input tokens per window; `None`: no token limit.
    pub tokens: Option<u64>,
}

impl ModelLimits {
    /// `overrides` over `global`.
    pub fn resolve(global: ModelLimits, overrides: &LimitOverrides) -> ModelLimits {
        ModelLimits {
            rate: overrides.rate.unwrap_or(global.rate),
            daily: overrides.daily.or(global.daily),
            tokens: overrides.tokens.or(global.tokens),
        }
    }
}

/// A model name as the configuration keys it: trimmed, without `models/`.
pub(super) fn normalize(model: &str) -> &str {
    let name = model.trim();
    name.strip_prefix("models/").unwrap_or(name)
}

/// Reads the [`MODELS`] row.
pub(super) fn read(src: &dyn Source) -> Result<BTreeMap<String, ModelConfig>, Error> {
    let s: &Setting = &MODELS;
    let map = match src.get(s)? {
        None => return Ok(BTreeMap::new()),
        Some(Raw::Object(map)) => map,
        Some(_) => {
            return Err(Error::config(
                src.name(s),
                "must be an object: model name to its limits",
            ))
        }
    };
    let place = src.json_place();
    let field = s.json.unwrap_or("models");
    let mut models = BTreeMap::new();
    // The name each model is written under, for errors found after reading them all.
    let mut written: HashMap<String, String> = HashMap::new();
    for (name, value) in map {
        let at = format!("{field}.{name:?}");
        let model = validate_model(&name).map_err(|r| Error::config(place.field(&at), r))?;
        if let Some(first) = written.get(&model) {
            return Err(Error::config(
                place.field(&at),
                format!("names the same model as `{field}.{first:?}`"),
            ));
        }
        let Value::Object(fields) = value else {
            return Err(Error::config(
                place.field(&at),
                format!("must be an object of limits, got {}", kind(&value)),
            ));
        };
        let known = |f: &str| f == FALLBACK || MODEL_LIMITS.iter().any(|s| s.json == Some(f));
        if let Some(unknown) = fields.keys().find(|f| !known(f)) {
            let names: Vec<_> = MODEL_LIMITS
                .iter()
                .filter_map(|s| s.json)
                .chain([FALLBACK])
                .collect();
            return Err(Error::config(
                place.field(&format!("{at}.{unknown}")),
                format!("unknown field (known fields: {})", names.join(", ")),
            ));
        }
        let obj = Json {
            map: fields,
            place: place.clone(),
            prefix: format!("{at}."),
        };
        let limit = |s: &Setting| parse::count_or_unset(&obj, s);
        let config = ModelConfig {
            free: LimitOverrides {
                rate: limit(&FREE_RATE_LIMIT)?,
                daily: limit(&FREE_DAILY_LIMIT)?,
                tokens: limit(&FREE_TOKEN_LIMIT)?,
            },
            paid: LimitOverrides {
                rate: limit(&PAID_RATE_LIMIT)?,
                daily: limit(&PAID_DAILY_LIMIT)?,
                tokens: limit(&PAID_TOKEN_LIMIT)?,
            },
            fallback: fallback(&obj, &model)?,
        };
        written.insert(model.clone(), name);
        models.insert(model, config);
    }
    if let Some((model, cycle)) = find_cycle(&models) {
        let at = format!("{field}.{:?}.{FALLBACK}", written[&model]);
        return Err(Error::config(
            place.field(&at),
            format!("the fallbacks form a cycle: {}", cycle.join(" → ")),
        ));
    }
    Ok(models)
}

/// A model's `fallback`: model names, each once, not the model itself.
fn fallback(obj: &Json, model: &str) -> Result<Vec<String>, Error> {
    let name = || obj.field_name(FALLBACK);
    let items = match obj.map.get(FALLBACK) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(Error::config(
                name(),
                format!("must be an array of model names, got {}", kind(other)),
            ))
        }
    };
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let entry = |r: String| Error::config(name(), format!("entry {}: {r}", i + 1));
        let Value::String(text) = item else {
            return Err(entry(format!("must be a model name, got {}", kind(item))));
        };
        let fallback = validate_model(text).map_err(entry)?;
        if fallback == model {
            return Err(entry(format!("{model} cannot fall back to itself")));
        }
        if out.contains(&fallback) {
            return Err(entry(format!("{fallback} is listed twice")));
        }
        out.push(fallback);
    }
    Ok(out)
}

/// A cycle of fallbacks, if any: the model whose fallback closes it, and the cycle written from
/// its first model back to it (`a → b → a`).
fn find_cycle(models: &BTreeMap<String, ModelConfig>) -> Option<(String, Vec<String>)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath,
        Done,
    }
    fn visit<'a>(
        model: &'a str,
        models: &'a BTreeMap<String, ModelConfig>,
        marks: &mut HashMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<(String, Vec<String>)> {
        match marks.get(model) {
            Some(Mark::Done) => return None,
            Some(Mark::OnPath) => {
                let start = path.iter().position(|m| *m == model).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|m| m.to_string()).collect();
                cycle.push(model.to_string());
                let closing = path.last().map_or(model, |m| m).to_string();
                return Some((closing, cycle));
            }
            None => {}
        }
        let Some(config) = models.get(model) else {
            return None; // Not listed: it has no fallbacks.
        };
        marks.insert(model, Mark::OnPath);
        path.push(model);
        for next in &config.fallback {
            if let Some(found) = visit(next, models, marks, path) {
                return Some(found);
            }
        }
        path.pop();
        marks.insert(model, Mark::Done);
        None
    }
    let mut marks = HashMap::new();
    for model in models.keys() {
        let mut path = Vec::new();
        if let Some(found) = visit(model, models, &mut marks, &mut path) {
            return Some(found);
        }
    }
    None
}

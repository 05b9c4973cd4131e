//! What is generated from the table of settings: the README's Configuration table and
//! `bindings/settings.json`, the machine-readable table the Go and Python tests hold their
//! configuration types to.
//!
//! Both files are committed (a reader of the README or of a binding needs no build); tests here
//! fail when either is stale and say how to regenerate it, so the table stays the one place a
//! setting is written.

use super::settings::{DefaultValue, Kind, Setting, SETTINGS};
use serde_json::{json, Value};

/// The command that rewrites the generated files, named by the staleness tests.
pub const REGENERATE: &str =
    "GR_REGENERATE=1 cargo test --release -p gemini-rotator --lib config::docs";

/// The lines around the generated table in README.md.
pub const README_BEGIN: &str =
    "<!-- BEGIN settings table: generated from src/config/settings.rs, do not edit -->";
pub const README_END: &str = "<!-- END settings table -->";

/// The README's Configuration table, one row per setting.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| Variable | JSON field | Meaning | Values | Default |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let name = |n: Option<&str>| n.map_or("—".to_string(), |n| format!("`{n}`"));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            name(s.env),
            name(s.json),
            s.doc,
            s.kind.values(),
            match s.default {
                DefaultValue::Unset(what) => what.to_string(),
                DefaultValue::Count(n) => n.to_string(),
                DefaultValue::Text(t) => format!("`{t}`"),
            }
        ));
    }
    out
}

/// `bindings/settings.json`: every row, with its default as a JSON value (`null`: unset).
pub fn settings_json() -> String {
    let rows: Vec<Value> = SETTINGS.iter().map(|s| row_json(s)).collect();
    let mut text = serde_json::to_string_pretty(&Value::Array(rows)).expect("plain JSON values");
    text.push('\n');
    text
}

fn row_json(s: &Setting) -> Value {
    let (kind, min, max) = match s.kind {
        Kind::Keys => ("keys", None, None),
        Kind::Key => ("key", None, None),
        Kind::Count { min, max } => ("count", Some(min), Some(max)),
        Kind::Url => ("url", None, None),
        Kind::Model => ("model", None, None),
        Kind::State => ("state", None, None),
        Kind::RedisPrefix => ("redis_prefix", None, None),
        Kind::OnFailure => ("on_failure", None, None),
        Kind::PemFile => ("pem_file", None, None),
        Kind::LogLevel => ("log_level", None, None),
        Kind::File => ("file", None, None),
        Kind::Models => ("models", None, None),
    };
    let default = match s.default {
        DefaultValue::Unset(_) => Value::Null,
        DefaultValue::Count(n) => json!(n),
        DefaultValue::Text(t) => json!(t),
    };
    json!({
        "env": s.env,
        "json": s.json,
        "kind": kind,
        "min": min,
        "max": max,
        "default": default,
        "doc": s.doc,
    })
}

/// `readme` with the text between the markers replaced by `table`; `None` without the markers.
pub fn splice_readme(readme: &str, table: &str) -> Option<String> {
    let begin = readme.find(README_BEGIN)? + README_BEGIN.len();
    let end = begin + readme[begin..].find(README_END)?;
    Some(format!("{}\n{}{}", &readme[..begin], table, &readme[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn repo_file(path: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
    }

    /// Compares `path` with `expected`; with GR_REGENERATE=1, writes it instead.
    fn check_generated(path: &str, expected: &str) {
        let file = repo_file(path);
        if std::env::var_os("GR_REGENERATE").is_some_and(|v| v == "1") {
            std::fs::write(&file, expected).unwrap_or_else(|e| panic!("writing {path}: {e}"));
            return;
        }
        let committed =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        assert!(
            committed == expected,
            "{path} is stale: the table of settings (src/config/settings.rs) changed. \
             Regenerate it with `{REGENERATE}` and commit the result."
        );
    }

    #[test]
    fn readme_settings_table_is_generated_from_the_table() {
        let readme = std::fs::read_to_string(repo_file("README.md")).expect("README.md");
        let spliced = splice_readme(&readme, &markdown_table()).unwrap_or_else(|| {
            panic!("README.md lacks the lines {README_BEGIN:?} and {README_END:?}")
        });
        check_generated("README.md", &spliced);
    }

    #[test]
    fn bindings_settings_json_is_generated_from_the_table() {
        check_generated("bindings/settings.json", &settings_json());
    }

    #[test]
    fn the_markdown_table_has_a_row_per_setting_with_its_names_and_default() {
        let table = markdown_table();
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(rows.len(), SETTINGS.len());
        assert!(rows.contains(
            &"| `GEMINI_FREE_RATE_LIMIT` | `free_rate_limit` | Requests per window per free quota \
              group (a project, or a key without one) and model | 1 to 1000000 | 60 |"
        ));
        for row in rows {
            // A `|` inside a doc would split its cell.
            assert_eq!(row.matches('|').count(), 6, "{row}");
        }
    }

    #[test]
    fn splicing_replaces_only_the_text_between_the_markers() {
        let readme = format!("intro\n{README_BEGIN}\nold table\n{README_END}\nafter\n");
        assert_eq!(
            splice_readme(&readme, "new\n").unwrap(),
            format!("intro\n{README_BEGIN}\nnew\n{README_END}\nafter\n")
        );
        assert_eq!(splice_readme("no markers", "new\n"), None);
    }

    #[test]
    fn the_json_dump_carries_names_range_and_default() {
        let rows: Vec<Value> = serde_json::from_str(&settings_json()).unwrap();
        let window = rows
            .iter()
            .find(|r| r["json"] == "window_ms")
            .expect("window_ms");
        assert_eq!(window["env"], "GEMINI_RATE_WINDOW_MS");
        assert_eq!(
            (
                &window["kind"],
                &window["min"],
                &window["max"],
                &window["default"]
            ),
            (
                &json!("count"),
                &json!(1),
                &json!(604_800_000u64),
                &json!(60_000)
            )
        );
        let paid = rows.iter().find(|r| r["json"] == "paid_key").unwrap();
        assert_eq!(paid["default"], Value::Null);
    }
}

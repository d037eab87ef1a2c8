//! The model catalog (`--model-info FILE`): what the page shows about each served model, after
//! FastChat's `model_registry.py`: a recognisable name with a link, the organization, the
//! licence and a short description. A TOML file keyed by the served name:
//!
//! ```toml
//! [models."smollm2-135m"]
//! display_name = "SmolLM2-135M-Instruct"
//! organization = "Hugging Face"
//! license = "Apache 2.0"
//! link = "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct"
//! description = "A 135M-parameter instruction-tuned model, small enough for any CPU"
//! ```
//!
//! Only `display_name` is required. Models not in the file have no info: the page shows
//! their served name.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use toml::Spanned;

use crate::error::ControllerError;

/// The keys an entry may have, with the longest value (in characters) each may hold: the
/// text lands on a public page, so a runaway value is refused rather than cut.
const KEYS: [(&str, usize); 5] = [
    ("display_name", 100),
    ("organization", 100),
    ("license", 100),
    ("link", 500),
    ("description", 500),
];

/// What the catalog says about one model; every text is plain text (the page never reads it
/// as HTML), `link` an `http(s)://` URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// The recognisable full name, e.g. `SmolLM2-135M-Instruct`.
    pub display_name: String,
    /// Who made it.
    pub organization: Option<String>,
    /// Its licence, e.g. `Apache 2.0`.
    pub license: Option<String>,
    /// Where to read about it.
    pub link: Option<String>,
    /// One sentence about it.
    pub description: Option<String>,
}

/// The catalog: info by served model name. Empty when no file is given.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    models: HashMap<String, ModelInfo>,
}

/// The file as TOML reads it, with positions so that errors can name their line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    models: BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Catalog {
    /// Reads and checks a catalog file; any fault is a configuration error naming the file,
    /// and the line when there is one.
    pub fn load(path: &Path) -> Result<Self, ControllerError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ControllerError::Config(format!(
                "{}: cannot read the model catalog: {e}",
                path.display()
            ))
        })?;
        Self::parse(&text).map_err(|(line, why)| {
            ControllerError::Config(match line {
                Some(line) => format!("{}:{line}: {why}", path.display()),
                None => format!("{}: {why}", path.display()),
            })
        })
    }

    /// Parses catalog text; the error is the line (when known) and what is wrong there.
    pub fn parse(text: &str) -> Result<Self, (Option<usize>, String)> {
        let file: CatalogFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            (line, e.message().trim_end().to_string())
        })?;
        let mut models = HashMap::new();
        for (name, fields) in file.models {
            let at = |s: &std::ops::Range<usize>| Some(line_of(text, s.start));
            let model = name.get_ref();
            if model.trim().is_empty() {
                return Err((at(&name.span()), "a model has an empty name".into()));
            }
            let mut info = ModelInfo::default();
            for (key, value) in &fields {
                let Some(&(_, max)) = KEYS.iter().find(|(k, _)| k == key.get_ref()) else {
                    let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                    return Err((
                        at(&key.span()),
                        format!(
                            "model '{model}': unknown key '{}' (known keys: {})",
                            key.get_ref(),
                            known.join(", ")
                        ),
                    ));
                };
                let value_text = checked(model, key.get_ref(), value.get_ref(), max)
                    .map_err(|why| (at(&value.span()), why))?;
                let slot = match key.get_ref().as_str() {
                    "display_name" => {
                        info.display_name = value_text;
                        continue;
                    }
                    "organization" => &mut info.organization,
                    "license" => &mut info.license,
                    "link" => &mut info.link,
                    _ => &mut info.description,
                };
                *slot = Some(value_text);
            }
            if info.display_name.is_empty() {
                return Err((
                    at(&name.span()),
                    format!("model '{model}': display_name is missing"),
                ));
            }
            models.insert(model.clone(), info);
        }
        Ok(Self { models })
    }

    /// What the catalog says about `model`, if anything.
    pub fn get(&self, model: &str) -> Option<&ModelInfo> {
        self.models.get(model)
    }

    /// How many models it describes.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether it describes no model.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// `model`'s info as JSON, `null` when the catalog does not have it.
    pub fn info_json(&self, model: &str) -> Value {
        self.get(model).map_or(Value::Null, |i| json!(i))
    }

    /// Adds `info` to every row object (`{"model": NAME, ...}`) whose model the catalog has.
    pub fn annotate_rows(&self, rows: &mut [Value]) {
        for row in rows {
            let info = row["model"]
                .as_str()
                .and_then(|m| self.get(m))
                .map(|i| json!(i));
            if let (Some(info), Some(obj)) = (info, row.as_object_mut()) {
                obj.insert("info".into(), info);
            }
        }
    }

    /// The `/api/leaderboard` body with `info` added to the rows of `models`.
    pub fn annotate_leaderboard(&self, mut body: Value) -> Value {
        if let Some(rows) = body["models"].as_array_mut() {
            self.annotate_rows(rows);
        }
        body
    }
}

/// One value, checked: a non-empty string of one line within `max` characters; a link must
/// be an absolute http(s) URL.
fn checked(model: &str, key: &str, value: &toml::Value, max: usize) -> Result<String, String> {
    let what = format!("model '{model}': {key}");
    let Some(s) = value.as_str() else {
        return Err(format!("{what} must be a string, not {}", value.type_str()));
    };
    if s.trim().is_empty() {
        return Err(format!("{what} is empty (leave the key out instead)"));
    }
    let chars = s.chars().count();
    if chars > max {
        return Err(format!(
            "{what} is {chars} characters long; at most {max} are shown"
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!(
            "{what} must be one line of text, without control characters"
        ));
    }
    if key == "link" {
        let url = reqwest::Url::parse(s).map_err(|e| format!("{what} '{s}' is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "{what} '{s}' must be an http:// or https:// URL with a host"
            ));
        }
    }
    Ok(s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[models."smollm2-135m"]
display_name = "SmolLM2-135M-Instruct"
organization = "Hugging Face"
license = "Apache 2.0"
link = "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct"
description = "A 135M-parameter instruction-tuned model, small enough for any CPU"

[models.tiny]
display_name = "Tiny <b>model</b>"
"#;

    fn error(text: &str) -> (Option<usize>, String) {
        Catalog::parse(text).expect_err("the catalog was accepted")
    }

    #[test]
    fn a_good_catalog_loads_and_annotates_rows() {
        let c = Catalog::parse(GOOD).unwrap();
        assert_eq!(c.len(), 2);
        let s = c.get("smollm2-135m").unwrap();
        assert_eq!(s.organization.as_deref(), Some("Hugging Face"));
        assert_eq!(s.license.as_deref(), Some("Apache 2.0"));
        // Only display_name is required; markup is kept as the text it is.
        let t = c.get("tiny").unwrap();
        assert_eq!(t.display_name, "Tiny <b>model</b>");
        assert_eq!(t.link, None);
        let body = c.annotate_leaderboard(json!({"models": [
            {"model": "tiny", "bt": 1000.0}, {"model": "unknown", "bt": 990.0}
        ]}));
        assert_eq!(
            body["models"][0]["info"]["display_name"],
            "Tiny <b>model</b>"
        );
        assert_eq!(body["models"][0]["info"]["license"], Value::Null);
        assert!(body["models"][1].get("info").is_none(), "{body}");
        assert_eq!(c.info_json("unknown"), Value::Null);
        assert!(Catalog::parse("").unwrap().is_empty());
    }

    #[test]
    fn an_unknown_key_is_refused_naming_the_key_the_model_and_the_line() {
        let (line, why) = error("[models.\"m\"]\ndisplay_name = \"M\"\nlicence = \"MIT\"\n");
        assert_eq!(line, Some(3), "{why}");
        assert!(
            why.contains("model 'm'") && why.contains("'licence'"),
            "{why}"
        );
        assert!(why.contains("license"), "the known keys are listed: {why}");
        // A typo in the top-level table too.
        let (line, why) = error("[model.m]\ndisplay_name = \"M\"\n");
        assert_eq!(line, Some(1), "{why}");
        assert!(why.contains("model"), "{why}");
    }

    #[test]
    fn a_link_must_be_http_or_https() {
        for link in [
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "ftp://example.com/model",
            "huggingface.co/HuggingFaceTB",
            "file:///etc/passwd",
        ] {
            let (line, why) = error(&format!(
                "[models.m]\ndisplay_name = \"M\"\nlink = \"{link}\"\n"
            ));
            assert_eq!(line, Some(3), "{link}: {why}");
            assert!(why.contains("model 'm': link"), "{link}: {why}");
        }
        let ok = Catalog::parse("[models.m]\ndisplay_name = \"M\"\nlink = \"http://h/x\"\n");
        assert_eq!(
            ok.unwrap().get("m").unwrap().link.as_deref(),
            Some("http://h/x")
        );
    }

    #[test]
    fn values_are_bounded_one_line_non_empty_strings() {
        let long = "x".repeat(501);
        let (line, why) = error(&format!(
            "[models.m]\ndisplay_name = \"M\"\n\ndescription = \"{long}\"\n"
        ));
        assert_eq!(line, Some(4), "{why}");
        assert!(
            why.contains("501 characters") && why.contains("at most 500"),
            "{why}"
        );
        let (_, why) = error(&format!(
            "[models.m]\ndisplay_name = \"{}\"\n",
            "y".repeat(101)
        ));
        assert!(why.contains("at most 100"), "{why}");
        let (_, why) = error("[models.m]\ndisplay_name = \"M\"\nlicense = 2\n");
        assert!(why.contains("must be a string"), "{why}");
        let (_, why) = error("[models.m]\ndisplay_name = \"  \"\n");
        assert!(why.contains("is empty"), "{why}");
        let (_, why) =
            error("[models.m]\ndisplay_name = \"M\"\ndescription = \"\"\"two\nlines\"\"\"\n");
        assert!(why.contains("one line"), "{why}");
        let (line, why) = error("[models.m]\norganization = \"O\"\n");
        assert_eq!(line, Some(1), "{why}");
        assert!(why.contains("model 'm': display_name is missing"), "{why}");
    }

    #[test]
    fn bad_toml_names_its_line_and_a_file_its_path() {
        let (line, why) =
            error("[models.m]\ndisplay_name = \"M\"\norganization = \"unterminated\n");
        assert_eq!(line, Some(3), "{why}");
        let (line, _) =
            error("[models.m]\ndisplay_name = \"M\"\n[models.m]\ndisplay_name = \"N\"\n");
        assert!(line.is_some());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("models.toml");
        std::fs::write(&path, "[models.m]\n\ndisplay_name = [1\n").unwrap();
        let e = Catalog::load(&path).unwrap_err().to_string();
        assert!(e.contains(&format!("{}:3:", path.display())), "{e}");
        let missing = dir.path().join("nope.toml");
        let e = Catalog::load(&missing).unwrap_err().to_string();
        assert!(e.contains("nope.toml") && e.contains("cannot read"), "{e}");
    }
}

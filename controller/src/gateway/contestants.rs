//! API-hosted contestants: OpenAI-compatible endpoints served as models (DESIGN.md §10).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::error::ControllerError;

/// One entry of the endpoints file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The model name clients ask this controller for.
    pub name: String,
    /// Base URL of the OpenAI-compatible API, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model id at the remote (default: `name`).
    pub model: Option<String>,
    /// Environment variable holding the remote's API key.
    pub api_key_env: Option<String>,
    /// Only for arena battles, not offered on the API.
    #[serde(default)]
    pub battle_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointsFile {
    #[serde(alias = "endpoint")]
    endpoints: Vec<EndpointConfig>,
}

/// An endpoint ready to call.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Served name here.
    pub name: String,
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// Model id at the remote.
    pub model: String,
    /// Bearer key, from the named environment variable.
    pub api_key: Option<String>,
    /// Only for battles.
    pub battle_only: bool,
}

/// Endpoints by served name.
pub type Endpoints = HashMap<String, Arc<Endpoint>>;

fn bad(path: &Path, msg: impl std::fmt::Display) -> ControllerError {
    ControllerError::Config(format!("{}: {msg}", path.display()))
}

/// Reads a TOML (`[[endpoint]]` tables) or JSON (`{"endpoints": [...]}`) file; API keys come
/// from the environment variables it names, which must be set.
pub fn load(path: &Path) -> Result<Endpoints, ControllerError> {
    let text = std::fs::read_to_string(path).map_err(|e| bad(path, e))?;
    let file: EndpointsFile = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| bad(path, e))?
    } else {
        toml::from_str(&text).map_err(|e| bad(path, e))?
    };
    let mut out = Endpoints::new();
    for c in file.endpoints {
        if c.name.trim().is_empty() {
            return Err(bad(path, "an endpoint has an empty name"));
        }
        if !(c.base_url.starts_with("http://") || c.base_url.starts_with("https://")) {
            return Err(bad(
                path,
                format!(
                    "endpoint '{}': base_url must start with http:// or https://",
                    c.name
                ),
            ));
        }
        let api_key = match &c.api_key_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                bad(
                    path,
                    format!(
                        "endpoint '{}': environment variable {var} (its API key) is not set",
                        c.name
                    ),
                )
            })?),
            None => None,
        };
        let endpoint = Endpoint {
            base_url: c.base_url.trim_end_matches('/').to_string(),
            model: c.model.clone().unwrap_or_else(|| c.name.clone()),
            api_key,
            battle_only: c.battle_only,
            name: c.name.clone(),
        };
        if out.insert(c.name.clone(), Arc::new(endpoint)).is_some() {
            return Err(bad(path, format!("endpoint '{}' is listed twice", c.name)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn toml_and_json_files_load() {
        std::env::set_var("ARENA_TEST_KEY_1", "sk-1");
        let (_d, p) = write(
            "e.toml",
            "[[endpoint]]\nname = \"gpt\"\nbase_url = \"https://api.example.com/v1/\"\nmodel = \"gpt-4o\"\napi_key_env = \"ARENA_TEST_KEY_1\"\n\n[[endpoint]]\nname = \"other\"\nbase_url = \"http://10.0.0.1:8080/v1\"\nbattle_only = true\n",
        );
        let e = load(&p).unwrap();
        assert_eq!(e["gpt"].base_url, "https://api.example.com/v1");
        assert_eq!(e["gpt"].model, "gpt-4o");
        assert_eq!(e["gpt"].api_key.as_deref(), Some("sk-1"));
        assert_eq!(e["other"].model, "other");
        assert!(e["other"].battle_only);
        let (_d, p) = write(
            "e.json",
            r#"{"endpoints": [{"name": "x", "base_url": "http://h/v1"}]}"#,
        );
        assert_eq!(load(&p).unwrap().len(), 1);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        for (name, text, needle) in [
            ("a.toml", "[[endpoint]]\nname = \"x\"\nbase_url = \"ftp://h\"\n", "http://"),
            ("b.toml", "[[endpoint]]\nname = \"x\"\nbase_url = \"http://h\"\napi_key_env = \"ARENA_NO_SUCH_VAR_9\"\n", "ARENA_NO_SUCH_VAR_9"),
            ("c.toml", "[[endpoint]]\nname = \"x\"\nbase_url = \"http://h\"\nurl = \"typo\"\n", "url"),
            ("d.toml", "[[endpoint]]\nname = \"x\"\nbase_url = \"http://h\"\n[[endpoint]]\nname = \"x\"\nbase_url = \"http://h\"\n", "twice"),
            ("e.json", "{not json", "e.json"),
        ] {
            let (_d, p) = write(name, text);
            let e = load(&p).unwrap_err().to_string();
            assert!(e.contains(needle), "{name}: {e}");
        }
        assert!(load(Path::new("/nonexistent/endpoints.toml")).is_err());
    }
}

//! Moderation of user input: a list of pluggable checks run on every user message in every
//! mode, before any model sees it. Local rules (regular expressions from a file) and an
//! optional OpenAI-compatible `/v1/moderations` endpoint ship here.

use std::path::Path;
use std::time::Duration;

use crate::error::ControllerError;

/// Why a check refused an input.
#[derive(Debug, Clone, PartialEq)]
pub struct Flagged {
    /// Which check refused it: `local` or `remote`.
    pub source: &'static str,
    /// What it matched, for the record and the person refused.
    pub reason: String,
}

/// One moderation check.
#[tonic::async_trait]
pub trait ModerationCheck: Send + Sync {
    /// Some(flag) when `text` must be refused; Err when the check itself failed.
    async fn check(&self, text: &str) -> Result<Option<Flagged>, String>;
}

/// Regular expressions (one per line, `#` comments), matched case-insensitively.
pub struct LocalRules {
    rules: Vec<regex::Regex>,
}

impl LocalRules {
    /// Reads the rules file; a bad pattern names its line.
    pub fn load(path: &Path) -> Result<Self, ControllerError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ControllerError::Config(format!(
                "cannot read moderation rules {}: {e}",
                path.display()
            ))
        })?;
        Self::parse(&text).map_err(|e| {
            ControllerError::Config(format!("moderation rules {}: {e}", path.display()))
        })
    }

    /// Parses rules text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rules = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .map(|(n, l)| {
                regex::RegexBuilder::new(l)
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| format!("line {n}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }
}

#[tonic::async_trait]
impl ModerationCheck for LocalRules {
    async fn check(&self, text: &str) -> Result<Option<Flagged>, String> {
        Ok(self
            .rules
            .iter()
            .find(|r| r.is_match(text))
            .map(|r| Flagged {
                source: "local",
                reason: format!("matches the local moderation rule '{}'", r.as_str()),
            }))
    }
}

/// An OpenAI-compatible moderation endpoint: POST `{"input": text}` to the URL, refuse when
/// `results[0].flagged`.
pub struct RemoteModeration {
    url: String,
    api_key: Option<String>,
    http: reqwest::Client,
}

impl RemoteModeration {
    /// A check against `url` (the full `/v1/moderations` URL).
    pub fn new(url: String, api_key: Option<String>, http: reqwest::Client) -> Self {
        Self { url, api_key, http }
    }
}

#[tonic::async_trait]
impl ModerationCheck for RemoteModeration {
    async fn check(&self, text: &str) -> Result<Option<Flagged>, String> {
        let mut req = self
            .http
            .post(&self.url)
            .timeout(Duration::from_secs(10))
            .json(&serde_json::json!({"input": text}));
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("it answered {}", resp.status()));
        }
        let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
        let result = &body["results"][0];
        let flagged = result["flagged"]
            .as_bool()
            .ok_or("its answer has no results[0].flagged")?;
        if !flagged {
            return Ok(None);
        }
        let mut categories: Vec<String> = result["categories"]
            .as_object()
            .map(|c| {
                c.iter()
                    .filter(|(_, v)| v.as_bool() == Some(true))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        categories.sort();
        Ok(Some(Flagged {
            source: "remote",
            reason: if categories.is_empty() {
                "flagged by the moderation service".into()
            } else {
                format!(
                    "flagged by the moderation service: {}",
                    categories.join(", ")
                )
            },
        }))
    }
}

/// Every configured check, run in order; the first flag wins.
#[derive(Default)]
pub struct Moderation {
    checks: Vec<Box<dyn ModerationCheck>>,
}

impl Moderation {
    /// Adds a check.
    pub fn with(mut self, check: Box<dyn ModerationCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Some(flag) when any check refuses `text`. A check that fails refuses too (closed, not
    /// open): an unchecked input never reaches a model.
    pub async fn check(&self, text: &str) -> Result<Option<Flagged>, String> {
        for c in &self.checks {
            if let Some(flag) = c.check(text).await? {
                return Ok(Some(flag));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_rules_match_case_insensitively_and_bad_rules_name_their_line() {
        let rules = LocalRules::parse("# comment\n\nforbidden[- ]?word\n").unwrap();
        let m = Moderation::default().with(Box::new(rules));
        let flag = m.check("a FORBIDDEN word here").await.unwrap().unwrap();
        assert_eq!(flag.source, "local");
        assert!(flag.reason.contains("forbidden"));
        assert_eq!(m.check("all fine").await.unwrap(), None);
        let e = LocalRules::parse("ok\n(unclosed").err().unwrap();
        assert!(e.starts_with("line 2"), "{e}");
    }
}

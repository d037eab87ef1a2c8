//! The terms of use a public arena shows before the first message: their text (from
//! `--terms FILE`, or a default after chat.lmsys.org's), their version, and the cookie the page
//! sets once a browser has accepted them, read when a battle or a chat begins so that the
//! accepted version is stored with its conversations.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::ArenaState;
use crate::error::ControllerError;

/// The cookie the page sets when its user accepts the terms: `arena_terms=<version>`.
pub const COOKIE_NAME: &str = "arena_terms";

/// The terms shown when no `--terms` file is given.
pub const DEFAULT_TERMS: &str = "\
This service is a research preview. It has only limited safety measures and may produce \
offensive content; do not rely on its answers.

You must not use it for any illegal, harmful, violent, racist or sexual purposes.

Your conversations and votes are stored, and may be published for research under a Creative \
Commons license (CC-BY). Please do not enter private or personal information.";

/// The terms of use and their version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    /// The text, shown as plain text (blank lines separate paragraphs).
    pub text: String,
    /// The first 16 hex digits of the SHA-256 of `text`: a new text asks every browser again.
    pub version: String,
}

impl Default for Terms {
    fn default() -> Self {
        Self::new(DEFAULT_TERMS)
    }
}

impl Terms {
    /// Terms with this text. Surrounding blank space is dropped first, so that a file saved
    /// with or without a final newline has one version.
    pub fn new(text: &str) -> Self {
        let text = text.trim().to_string();
        let digest = Sha256::digest(text.as_bytes());
        let version = crate::ids::hex(&digest[..8]);
        Self { text, version }
    }

    /// The terms in `path` (UTF-8 text), or the default ones when there is no path. A file
    /// that cannot be read, or holds only blank space, is an error naming it: a public arena
    /// must not start with terms other than its operator's.
    pub fn load(path: Option<&Path>) -> Result<Self, ControllerError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            ControllerError::Config(format!(
                "cannot read the terms of use (--terms) {}: {e}",
                path.display()
            ))
        })?;
        if text.trim().is_empty() {
            return Err(ControllerError::Config(format!(
                "the terms of use (--terms) {} are empty",
                path.display()
            )));
        }
        Ok(Self::new(&text))
    }

    /// The version the request's cookie accepted, when it is this one.
    pub fn accepted_by(&self, parts: &Parts) -> Option<String> {
        parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name.trim() == COOKIE_NAME && value.trim() == self.version)
            .then(|| self.version.clone())
    }
}

/// The version of the terms the client accepted, when its cookie names the current one; None
/// otherwise (an API client, or terms changed since): the conversation then stores NULL.
pub struct AcceptedTerms(pub Option<String>);

impl FromRequestParts<Arc<ArenaState>> for AcceptedTerms {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ArenaState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(AcceptedTerms(state.terms.accepted_by(parts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(cookies: &[&str]) -> Parts {
        let mut r = Request::builder();
        for c in cookies {
            r = r.header(COOKIE, *c);
        }
        r.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_version_is_the_hash_of_the_trimmed_text() {
        let t = Terms::new("Be nice.\n");
        assert_eq!(t.text, "Be nice.");
        assert_eq!(t.version.len(), 16);
        assert!(t.version.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(t, Terms::new("  Be nice."));
        assert_ne!(t.version, Terms::new("Be kind.").version);
        assert_ne!(Terms::default().version, t.version);
    }

    #[test]
    fn the_default_says_what_chat_lmsys_org_said() {
        let text = Terms::default().text.to_lowercase();
        for needle in [
            "research preview",
            "illegal, harmful, violent, racist or sexual",
            "offensive",
            "creative commons",
            "private",
        ] {
            assert!(text.contains(needle), "{needle}");
        }
    }

    #[test]
    fn only_a_cookie_naming_the_current_version_accepts() {
        let t = Terms::new("Be nice.");
        let v = t.version.clone();
        assert_eq!(t.accepted_by(&parts(&[])), None);
        assert_eq!(
            t.accepted_by(&parts(&[&format!("arena_terms={v}")])),
            Some(v.clone())
        );
        assert_eq!(
            t.accepted_by(&parts(&[&format!("theme=dark; arena_terms={v}; x=1")])),
            Some(v.clone())
        );
        // Cookies split over several headers (HTTP/2).
        assert_eq!(
            t.accepted_by(&parts(&["theme=dark", &format!("arena_terms={v}")])),
            Some(v.clone())
        );
        assert_eq!(
            t.accepted_by(&parts(&["arena_terms=0000000000000000"])),
            None
        );
        assert_eq!(t.accepted_by(&parts(&[&format!("other={v}")])), None);
        assert_eq!(t.accepted_by(&parts(&[&format!("arena_terms={v}x")])), None);
    }

    #[test]
    fn a_missing_or_empty_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("terms.txt");
        let e = Terms::load(Some(&missing)).unwrap_err().to_string();
        assert!(e.contains(&missing.display().to_string()), "{e}");
        assert!(e.contains("terms of use"), "{e}");
        std::fs::write(&missing, "\n  \n").unwrap();
        let e = Terms::load(Some(&missing)).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        std::fs::write(&missing, "Our terms.\n").unwrap();
        assert_eq!(
            Terms::load(Some(&missing)).unwrap(),
            Terms::new("Our terms.")
        );
        assert_eq!(Terms::load(None).unwrap(), Terms::default());
    }
}

//! How many anonymous votes each rule kept off the leaderboard, as `/api/leaderboard` reports
//! them (`excluded`) and as `arena leaderboard` prints them on stderr.

use arena_store::{ArenaStore, ExcludedVotes};
use serde_json::{json, Value};

use crate::error::ControllerError;

/// The `excluded` field of `/api/leaderboard`: `[{"rule", "label", "votes"}]`, most first.
pub async fn excluded_json(store: &dyn ArenaStore) -> Result<Value, ControllerError> {
    let counts = store.excluded_votes().await?;
    Ok(Value::Array(
        counts
            .iter()
            .map(|c| json!({"rule": c.rule, "label": c.label(), "votes": c.votes}))
            .collect(),
    ))
}

/// "Not counted: 3 votes (too fast 2, identity leak 1)"; None when no vote was excluded.
pub fn summary(counts: &[ExcludedVotes]) -> Option<String> {
    let total: i64 = counts.iter().map(|c| c.votes).sum();
    if total == 0 {
        return None;
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|c| format!("{} {}", c.label(), c.votes))
        .collect();
    let noun = if total == 1 { "vote" } else { "votes" };
    Some(format!(
        "Not counted: {total} {noun} ({})",
        parts.join(", ")
    ))
}

/// The summary line of the store at `url`, for `arena leaderboard` to print on stderr.
pub async fn cli_summary(url: &str) -> Result<Option<String>, ControllerError> {
    let store = arena_store::connect(url).await?;
    Ok(summary(&store.excluded_votes().await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(rule: &str, votes: i64) -> ExcludedVotes {
        ExcludedVotes {
            rule: rule.into(),
            votes,
        }
    }

    #[test]
    fn the_summary_names_each_rule_with_its_count() {
        assert_eq!(summary(&[]), None);
        assert_eq!(
            summary(&[count("too_fast", 2), count("identity_leak", 1)]).as_deref(),
            Some("Not counted: 3 votes (too fast 2, identity leak 1)")
        );
        assert_eq!(
            summary(&[count("same_side_streak", 1)]).as_deref(),
            Some("Not counted: 1 vote (same-side streak 1)")
        );
        assert_eq!(
            summary(&[count("other", 4)]).as_deref(),
            Some("Not counted: 4 votes (other reasons 4)")
        );
    }
}

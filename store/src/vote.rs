//! What a vote judged: whether both answers to its turn are complete, and their style
//! (`conv_metadata`), read from the battle's rows inside the vote's transaction so that no
//! regeneration slips in between.

use arena_ratings::metadata::{conv_metadata, AnswerSide};

use crate::{COMPLETE, GENERATING};

/// A message of a battle's conversation as the vote reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct VoteRow {
    /// Its conversation.
    pub conversation_id: String,
    /// User turn, from 1.
    pub turn: i64,
    /// `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
    /// Generated tokens, when the model said.
    pub completion_tokens: Option<i64>,
    /// Prompt tokens, when the model said.
    pub prompt_tokens: Option<i64>,
    /// How an answer ended.
    pub finish_reason: Option<String>,
    /// Replaced by a regeneration.
    pub superseded: bool,
    /// When it ended (Unix ms); None while generating or when it ended before ends were
    /// recorded.
    pub finished_ms: Option<i64>,
}

/// The columns of `VoteRow`, for its SELECT.
pub(crate) const VOTE_ROW_COLUMNS: &str = "conversation_id, turn, role, content, \
     completion_tokens, prompt_tokens, finish_reason, superseded, finished_ms";

/// Why a vote on `turn` cannot be stored, from the rows of the battle's two conversations;
/// `None` when it can.
pub(crate) fn refusal(turn: i64, conversations: [&str; 2], rows: &[VoteRow]) -> Option<String> {
    for (side, conversation) in ["A", "B"].into_iter().zip(conversations) {
        let mine = || {
            rows.iter()
                .filter(move |r| r.conversation_id == conversation)
        };
        let last_turn = mine().filter(|r| r.role == "user").map(|r| r.turn).max();
        if last_turn != Some(turn) {
            return Some(format!("turn {turn} is not the battle's latest turn"));
        }
        let answer = mine().rfind(|r| r.role == "assistant" && !r.superseded && r.turn == turn);
        match answer.and_then(|r| r.finish_reason.as_deref()) {
            Some(f) if COMPLETE.contains(&f) => {}
            Some(GENERATING) => return Some(format!("answer {side} is still being generated")),
            Some(f) => return Some(format!("answer {side} did not complete ({f})")),
            None => return Some(format!("answer {side} is missing")),
        }
    }
    None
}

/// The `conv_metadata` of the answers a vote on `turn` judged: each side's current answers
/// (superseded ones left out) with their summed token counts, null when any is unknown.
pub(crate) fn judged_metadata(turn: i64, conversations: [&str; 2], rows: &[VoteRow]) -> String {
    let side = |conversation: &str| {
        let answers: Vec<&VoteRow> = rows
            .iter()
            .filter(|r| r.conversation_id == conversation && r.role == "assistant" && !r.superseded)
            .collect();
        let tokens = answers.iter().try_fold(0u64, |sum, r| {
            r.completion_tokens
                .and_then(|t| u64::try_from(t).ok())
                .map(|t| sum + t)
        });
        AnswerSide {
            answers: answers.iter().map(|r| r.content.as_str()).collect(),
            tokens,
            context_tokens: answers
                .last()
                .and_then(|r| r.prompt_tokens)
                .and_then(|t| u64::try_from(t).ok()),
        }
    };
    let turns = u64::try_from(turn).unwrap_or(0);
    conv_metadata(&side(conversations[0]), &side(conversations[1]), turns).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(conversation: &str, turn: i64, role: &str, text: &str, tokens: Option<i64>) -> VoteRow {
        VoteRow {
            conversation_id: conversation.into(),
            turn,
            role: role.into(),
            content: text.into(),
            completion_tokens: tokens,
            prompt_tokens: tokens.map(|t| t + 100),
            finish_reason: (role == "assistant").then(|| "stop".into()),
            superseded: false,
            finished_ms: None,
        }
    }

    #[test]
    fn metadata_sums_current_answers_and_skips_superseded_ones() {
        let mut old = row("a", 2, "assistant", "# Old\n# Old", Some(500));
        old.superseded = true;
        let rows = vec![
            row("a", 1, "user", "# not an answer", None),
            row("a", 1, "assistant", "- one", Some(3)),
            row("a", 2, "user", "more", None),
            old,
            row("a", 2, "assistant", "# New", Some(4)),
            row("b", 1, "user", "q", None),
            row("b", 1, "assistant", "plain", Some(9)),
            row("b", 2, "user", "more", None),
            row("b", 2, "assistant", "**x**", None),
        ];
        assert_eq!(refusal(2, ["a", "b"], &rows), None);
        let meta: serde_json::Value =
            serde_json::from_str(&judged_metadata(2, ["a", "b"], &rows)).unwrap();
        assert_eq!(meta["sum_assistant_a_tokens"], 7);
        assert_eq!(meta["context_a_tokens"], 104);
        assert_eq!(meta["header_count_a"]["h1"], 1);
        assert_eq!(meta["list_count_a"]["unordered"], 1);
        // One answer of B has no count: its total is unknown, not 9.
        assert_eq!(meta["sum_assistant_b_tokens"], serde_json::Value::Null);
        assert_eq!(meta["bold_count_b"]["**"], 1);
        assert_eq!(meta["turns"], 2);
    }
}

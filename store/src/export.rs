//! `arena export`: the store's votes and conversations as JSON lines, streamed row by row so
//! a large table never sits in memory.

use std::io::Write;

use serde_json::{json, Value};

use crate::{ArenaStore, ExportBattle, ExportConversation, ExportFilter, StoreError};

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One vote per line in the public Chatbot Arena dataset's columns.
    ChatbotArena,
    /// One conversation per line in ShareGPT's shape, for fine-tuning.
    ShareGpt,
}

arena_ratings::from_words!(
    Format,
    "export format",
    "chatbot-arena" => ChatbotArena,
    "sharegpt" => ShareGpt,
);

fn messages(conversation: &[(String, String)]) -> Value {
    conversation
        .iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

/// A vote in the dataset's columns: `question_id, model_a, model_b, winner, judge,
/// conversation_a, conversation_b, turn, anony, language, tstamp, openai_moderation,
/// conv_metadata`, and two of the arena's own: `categories` (the tags the leaderboard's
/// categories use) and `pair_probability` (for inverse-propensity weighting). The language is
/// the dataset's capitalised name of the one told at vote time; it, the moderation scores
/// (not measured here), `conv_metadata` and `pair_probability` are null where not known.
pub fn chatbot_arena_row(b: &ExportBattle) -> Value {
    json!({
        "question_id": b.battle_id,
        "model_a": b.model_a,
        "model_b": b.model_b,
        "winner": b.winner,
        "judge": format!("arena_user_{}", b.voter_hash),
        "conversation_a": messages(&b.conversation_a),
        "conversation_b": messages(&b.conversation_b),
        "turn": b.turn,
        "anony": b.anonymous,
        "language": arena_ratings::category::language_of(&b.categories).map(capitalised),
        "tstamp": b.tstamp_ms as f64 / 1000.0,
        "openai_moderation": null,
        "conv_metadata": b
            .conv_metadata
            .as_deref()
            .and_then(|m| serde_json::from_str::<Value>(m).ok()),
        "categories": b.categories,
        "pair_probability": b.pair_probability,
    })
}

/// `english` as the dataset writes it, `English`.
fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A conversation in ShareGPT's shape: `{"id", "model", "conversations": [{"from", "value"}]}`.
pub fn sharegpt_row(c: &ExportConversation) -> Value {
    let turns: Vec<Value> = c
        .messages
        .iter()
        .map(|(role, content)| {
            let from = if role == "user" { "human" } else { "gpt" };
            json!({"from": from, "value": content})
        })
        .collect();
    json!({"id": c.id, "model": c.model, "conversations": turns})
}

fn write_line(out: &mut (dyn Write + Send), v: &Value) -> Result<(), StoreError> {
    serde_json::to_writer(&mut *out, v).map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes the export to `out`, one JSON object per line; returns the rows written. `filter`
/// says which votes and conversations are left out.
pub async fn export(
    store: &dyn ArenaStore,
    format: Format,
    filter: ExportFilter,
    out: &mut (dyn Write + Send),
) -> Result<u64, StoreError> {
    let n = match format {
        Format::ChatbotArena => {
            store
                .export_battles(filter, &mut |b| write_line(out, &chatbot_arena_row(&b)))
                .await?
        }
        Format::ShareGpt => {
            store
                .export_conversations(filter, &mut |c| write_line(out, &sharegpt_row(&c)))
                .await?
        }
    };
    out.flush()?;
    Ok(n)
}

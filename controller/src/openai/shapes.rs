//! Response bodies of the chat and text completion endpoints, typed so that each streamed
//! chunk is serialised straight into its event without building a JSON tree, with OpenAI's
//! key order.

use serde::Serialize;

use super::logprobs::{ChatLogprobs, TextLogprobs};
use super::types::Usage;

/// A whole response or one streamed chunk.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    /// Response id (the same in every chunk).
    pub id: &'a str,
    /// "chat.completion", "chat.completion.chunk" or "text_completion".
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// Served model name.
    pub model: &'a str,
    /// The choices (a chunk carries one; the usage chunk none).
    pub choices: Vec<Choice<'a>>,
    /// Token counts (whole responses, and the last chunk when asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One choice, in the shape of its endpoint.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Choice<'a> {
    /// A whole chat answer.
    Message {
        /// Which of the `n` choices.
        index: u32,
        /// The answer.
        message: Message<'a>,
        /// Per-token log-probabilities when asked for, else null.
        logprobs: Option<ChatLogprobs>,
        /// "stop" or "length".
        finish_reason: &'a str,
    },
    /// A chat chunk.
    Delta {
        /// Which of the `n` choices.
        index: u32,
        /// What changed.
        delta: Delta<'a>,
        /// The chunk's tokens when asked for, else null.
        logprobs: Option<ChatLogprobs>,
        /// Set on the choice's last chunk.
        finish_reason: Option<&'a str>,
    },
    /// Completion text, whole or a chunk of it.
    Text {
        /// Which of the `n` choices.
        index: u32,
        /// The text.
        text: &'a str,
        /// The tokens when asked for, else null.
        logprobs: Option<TextLogprobs>,
        /// Set on the choice's last chunk, or the whole response.
        finish_reason: Option<&'a str>,
    },
}

/// A whole chat answer.
#[derive(Debug, Serialize)]
pub struct Message<'a> {
    /// "assistant".
    pub role: &'static str,
    /// The text.
    pub content: &'a str,
}

/// A chat chunk's change: the role first, then text, then nothing with the finish reason.
#[derive(Debug, Default, Serialize)]
pub struct Delta<'a> {
    /// "assistant", in the opening chunk only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// New text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
}

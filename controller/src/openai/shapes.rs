//! Response bodies of the OpenAI-compatible API, typed so that each streamed chunk is
//! serialised straight into its event without building a JSON tree, with OpenAI's key order.

use serde::Serialize;

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
    /// One choice, or none in the usage chunk.
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
        /// Always 0 (n = 1).
        index: u32,
        /// The answer.
        message: Message<'a>,
        /// "stop" or "length".
        finish_reason: &'a str,
    },
    /// A chat chunk.
    Delta {
        /// Always 0 (n = 1).
        index: u32,
        /// What changed.
        delta: Delta<'a>,
        /// Set on the last chunk.
        finish_reason: Option<&'a str>,
    },
    /// Completion text, whole or a chunk of it.
    Text {
        /// Always 0 (n = 1).
        index: u32,
        /// The text.
        text: &'a str,
        /// Not supported: always null.
        logprobs: Option<()>,
        /// Set on the last chunk, or the whole response.
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

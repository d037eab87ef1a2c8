//! Request bodies of the OpenAI-compatible API.

use serde::{Deserialize, Serialize};

/// One chat message.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatMessage {
    /// "system", "user" or "assistant".
    pub role: String,
    /// The text.
    pub content: String,
}

/// One string or a list of strings (`stop`, `prompt`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The strings as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with token usage.
    #[serde(default)]
    pub include_usage: bool,
}

/// Sampling and streaming fields shared by both completion endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CommonParams {
    /// Sampling temperature in [0, 2] (default 1).
    pub temperature: Option<f32>,
    /// Nucleus mass in [0, 1].
    pub top_p: Option<f32>,
    /// New tokens at most.
    pub max_tokens: Option<u32>,
    /// Newer name of `max_tokens` (chat).
    pub max_completion_tokens: Option<u32>,
    /// Stop strings.
    pub stop: Option<OneOrMany>,
    /// Seed for reproducible sampling.
    pub seed: Option<u64>,
    /// Choices to generate; only 1 is supported.
    pub n: Option<u32>,
    /// Stream as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// Not supported when non-zero.
    pub presence_penalty: Option<f32>,
    /// Not supported when non-zero.
    pub frequency_penalty: Option<f32>,
    /// Caller's id, ignored.
    pub user: Option<String>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletionRequest {
    /// Served model name.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Sampling and streaming.
    #[serde(flatten)]
    pub common: CommonParams,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// Served model name.
    pub model: String,
    /// The raw prompt (a list must hold exactly one string).
    pub prompt: OneOrMany,
    /// Echoing the prompt is not supported.
    pub echo: Option<bool>,
    /// Log-probabilities are not supported.
    pub logprobs: Option<serde_json::Value>,
    /// Sampling and streaming.
    #[serde(flatten)]
    pub common: CommonParams,
}

/// Token counts.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Usage {
    /// Prompt tokens after the template.
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
    /// Their sum.
    pub total_tokens: u32,
}

/// `GET /v1/models` entry.
#[derive(Debug, Serialize)]
pub struct Model {
    /// Served name.
    pub id: String,
    /// "model".
    pub object: &'static str,
    /// Unix seconds (0: unknown).
    pub created: u64,
    /// "arena".
    pub owned_by: &'static str,
}

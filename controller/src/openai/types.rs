//! Request and response bodies of the OpenAI-compatible API.

use serde::{Deserialize, Serialize};

/// One chat message.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatMessage {
    /// "system", "user" or "assistant".
    pub role: String,
    /// The text.
    pub content: String,
}

/// `stop`: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with token usage.
    #[serde(default)]
    pub include_usage: bool,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletionRequest {
    /// Served model name.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature in [0, 2].
    pub temperature: Option<f32>,
    /// Nucleus mass in [0, 1].
    pub top_p: Option<f32>,
    /// New tokens at most.
    pub max_tokens: Option<u32>,
    /// Newer name of `max_tokens`.
    pub max_completion_tokens: Option<u32>,
    /// Stop strings.
    pub stop: Option<Stop>,
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

/// A non-streamed choice.
#[derive(Debug, Serialize)]
pub struct Choice {
    /// Always 0.
    pub index: u32,
    /// The answer.
    pub message: ChatMessage,
    /// "stop" or "length".
    pub finish_reason: &'static str,
}

/// The non-streamed response.
#[derive(Debug, Serialize)]
pub struct ChatCompletion {
    /// `chatcmpl-...`.
    pub id: String,
    /// "chat.completion".
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// Served model name.
    pub model: String,
    /// One choice.
    pub choices: Vec<Choice>,
    /// Token counts.
    pub usage: Usage,
}

/// The delta of a streamed chunk.
#[derive(Debug, Serialize, Default)]
pub struct Delta {
    /// "assistant" on the first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// New text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// A streamed choice.
#[derive(Debug, Serialize)]
pub struct ChunkChoice {
    /// Always 0.
    pub index: u32,
    /// What is new.
    pub delta: Delta,
    /// Set on the last content chunk.
    pub finish_reason: Option<&'static str>,
}

/// One SSE chunk.
#[derive(Debug, Serialize)]
pub struct ChatCompletionChunk {
    /// Same id for every chunk of a response.
    pub id: String,
    /// "chat.completion.chunk".
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// Served model name.
    pub model: String,
    /// One choice, or none on the usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// Only on the usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
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

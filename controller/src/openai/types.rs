//! Small response types of the OpenAI-compatible API. Request bodies are read field by field
//! (see `fields`), so that every error names the client's field.

use serde::Serialize;

/// Token counts.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens after the template (counted once however many choices).
    pub prompt_tokens: u32,
    /// Generated tokens, all choices together.
    pub completion_tokens: u32,
    /// Their sum.
    pub total_tokens: u32,
    /// How many prompt tokens the worker's prefix cache served (OpenAI's field), when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// OpenAI's `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq, Eq)]
pub struct PromptTokensDetails {
    /// Prompt tokens not prefilled: their keys and values came from the prefix cache.
    pub cached_tokens: u32,
}

impl Usage {
    /// The usage of `n` choices of one prompt: its tokens once, every choice's output.
    pub fn of_choices(prompt_tokens: u32, completions: impl IntoIterator<Item = u32>) -> Self {
        let completion_tokens = completions.into_iter().sum();
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: None,
        }
    }

    /// The same, saying that `cached` prompt tokens came from the prefix cache (nothing is
    /// said of none).
    pub fn with_cached(mut self, cached: u32) -> Self {
        self.prompt_tokens_details = (cached > 0).then_some(PromptTokensDetails {
            cached_tokens: cached,
        });
        self
    }

    /// Prompt tokens the prefix cache served.
    pub fn cached_tokens(&self) -> u32 {
        self.prompt_tokens_details.map_or(0, |d| d.cached_tokens)
    }
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

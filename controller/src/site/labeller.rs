//! The optional hard-prompt labeller: after a vote, an OpenAI-compatible model judges the
//! battle's first prompt on LMArena's seven criteria, and a prompt meeting at least six is
//! tagged `hard_prompt`. It runs in the background: the vote never waits for it, and a
//! labeller that is down or busy leaves the vote untagged (logged), never refused.

use std::sync::Arc;
use std::time::Duration;

use arena_eval::client::{ChatClient, ChatRequest, Message, RetryPolicy};
use arena_ratings::category::{
    hard_prompt_message, is_hard, parse_criteria, HARD_PROMPT, HARD_PROMPT_SYSTEM,
};
use arena_store::ArenaStore;
use tokio::sync::Semaphore;

use crate::error::ControllerError;

/// Labelling calls in flight at once; votes beyond them go unlabelled rather than queue
/// without bound behind a slow labeller.
const MAX_IN_FLIGHT: usize = 8;

/// The longest prompt sent, in characters: the criteria are about the task, not its bulk.
const MAX_PROMPT_CHARS: usize = 16_000;

/// A labeller at an OpenAI-compatible endpoint.
pub struct Labeller {
    client: ChatClient,
    model: String,
    slots: Arc<Semaphore>,
}

impl Labeller {
    /// A labeller calling `model` at `base_url` (e.g. `https://api.openai.com/v1`).
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<String>,
    ) -> Result<Self, ControllerError> {
        if model.trim().is_empty() {
            return Err(ControllerError::Config(
                "--hard-prompt-labeller needs --hard-prompt-model, the labeller's model name"
                    .into(),
            ));
        }
        let retry = RetryPolicy {
            attempts: 3,
            ..RetryPolicy::default()
        };
        let client = ChatClient::new(base_url, api_key, Duration::from_secs(60), retry)
            .map_err(|e| ControllerError::Config(format!("--hard-prompt-labeller: {e}")))?;
        Ok(Self {
            client,
            model: model.to_string(),
            slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// The criteria the labeller finds in `prompt`, or why there are none.
    pub async fn criteria(&self, prompt: &str) -> Result<[bool; 7], String> {
        let prompt: String = prompt.chars().take(MAX_PROMPT_CHARS).collect();
        let messages = [
            Message::new("system", HARD_PROMPT_SYSTEM),
            Message::new("user", hard_prompt_message(&prompt)),
        ];
        let reply = self
            .client
            .chat(&ChatRequest {
                model: &self.model,
                messages: &messages,
                temperature: 0.0,
                max_tokens: Some(64),
                logprobs: false,
                top_logprobs: None,
                // Every call opens with the same system prompt.
                user: Some("arena-labeller"),
            })
            .await
            .map_err(|e| e.to_string())?;
        parse_criteria(&reply.content).ok_or_else(|| {
            format!(
                "the labeller's answer lists no criteria: {:?}",
                reply.content.chars().take(200).collect::<String>()
            )
        })
    }

    /// Labels vote `vote_id`'s first prompt in the background, tagging it `hard_prompt` in
    /// `store` when it meets the threshold.
    pub fn spawn(&self, store: Arc<dyn ArenaStore>, vote_id: String, prompt: String) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!("hard-prompt labeller busy: vote {vote_id} left unlabelled");
            return;
        };
        let client = Self {
            client: self.client.clone(),
            model: self.model.clone(),
            slots: self.slots.clone(),
        };
        tokio::spawn(async move {
            let _slot = slot;
            match client.criteria(&prompt).await {
                Ok(met) if is_hard(&met) => {
                    if let Err(e) = store
                        .add_vote_categories(&vote_id, &[HARD_PROMPT.to_string()])
                        .await
                    {
                        tracing::warn!("hard-prompt labeller: vote {vote_id}: {e}");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("hard-prompt labeller: vote {vote_id}: {e}"),
            }
        });
    }
}

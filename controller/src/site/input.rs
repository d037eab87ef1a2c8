//! What a user turn carries and the checks it passes before any model sees it: sampling
//! ranges, the message's length, and moderation (a refusal is recorded).

use arena_proto::v1::SamplingParams;
use arena_store::NewFlag;
use serde::Deserialize;

use super::{store_error, ArenaState, Client};
use crate::error::ApiError;
use crate::ids::random_id;

/// Sampling fields a turn may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    /// 0 to 2; 0 is greedy.
    pub temperature: Option<f32>,
    /// 0 to 1.
    pub top_p: Option<f32>,
    /// 1 to the configured maximum.
    pub max_tokens: Option<u32>,
}

/// The body of a turn: the message and the sampling fields (serde cannot deny unknown
/// fields through a flattened struct, so they are repeated here).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnBody {
    /// The user's message.
    pub text: String,
    /// See [`Sampling`].
    pub temperature: Option<f32>,
    /// See [`Sampling`].
    pub top_p: Option<f32>,
    /// See [`Sampling`].
    pub max_tokens: Option<u32>,
}

impl TurnBody {
    /// Its sampling fields.
    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
        }
    }
}

impl ArenaState {
    /// The worker's sampling parameters, each field checked and named when out of range.
    pub(super) fn sampling(&self, s: &Sampling) -> Result<SamplingParams, ApiError> {
        let d = &self.settings;
        let temperature = s.temperature.unwrap_or(d.default_temperature);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::invalid_param(
                "temperature",
                format!("'temperature' must be between 0 and 2, got {temperature}"),
            ));
        }
        let top_p = s.top_p.unwrap_or(d.default_top_p);
        if !(0.0..=1.0).contains(&top_p) {
            return Err(ApiError::invalid_param(
                "top_p",
                format!("'top_p' must be between 0 and 1, got {top_p}"),
            ));
        }
        let max_tokens = s.max_tokens.unwrap_or(d.default_max_tokens);
        if max_tokens == 0 || max_tokens > d.default_max_tokens.max(1) {
            return Err(ApiError::invalid_param(
                "max_tokens",
                format!(
                    "'max_tokens' must be between 1 and {}, got {max_tokens}",
                    d.default_max_tokens
                ),
            ));
        }
        Ok(SamplingParams {
            temperature: Some(temperature),
            top_p: Some(top_p),
            max_new_tokens: Some(max_tokens),
            ..Default::default()
        })
    }

    /// Refuses an empty or over-long message, and one that moderation flags (recording it).
    pub(super) async fn check_input(
        &self,
        text: &str,
        client: &Client,
        battle_id: Option<&str>,
        conversation_id: Option<&str>,
    ) -> Result<(), ApiError> {
        if text.trim().is_empty() {
            return Err(ApiError::invalid_param("text", "the message is empty"));
        }
        let chars = text.chars().count();
        let limit = self.settings.max_message_chars;
        if chars > limit {
            return Err(ApiError {
                code: "message_too_long",
                ..ApiError::invalid_param(
                    "text",
                    format!(
                        "the message is {chars} characters long; the limit is {limit}: shorten it"
                    ),
                )
            });
        }
        let flag = self.moderation.check(text).await.map_err(|e| {
            ApiError::unavailable(format!(
                "the moderation check failed, so the message was not sent: {e}"
            ))
        })?;
        if let Some(flag) = flag {
            self.store
                .add_flag(&NewFlag {
                    id: random_id("f_"),
                    conversation_id: conversation_id.map(str::to_string),
                    battle_id: battle_id.map(str::to_string),
                    content: text.to_string(),
                    reason: flag.reason.clone(),
                    source: flag.source.to_string(),
                    client_hash: client.hash.clone(),
                })
                .await
                .map_err(store_error)?;
            return Err(ApiError {
                code: "flagged",
                ..ApiError::invalid_param(
                    "text",
                    format!(
                        "your message was refused by moderation ({}) and was not sent to any model",
                        flag.reason
                    ),
                )
            });
        }
        Ok(())
    }
}

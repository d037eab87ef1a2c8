//! `POST /v1/chat/completions`.

use std::sync::Arc;

use arena_proto::v1::{generate_request, ChatMessage, GenerateRequest, Messages};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::response::Response;
use axum::Json;

use super::params::sampling;
use super::respond::{self, Flavor};
use super::types::ChatCompletionRequest;
use super::ApiState;
use crate::error::ApiError;
use crate::ids::random_id;

/// Checks the request and turns it into the worker's `GenerateRequest`.
fn validate(req: &ChatCompletionRequest) -> Result<GenerateRequest, ApiError> {
    let params = sampling(&req.model, &req.common, None)?;
    if req.messages.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "'messages' must hold at least one message",
        ));
    }
    if let Some(m) = req
        .messages
        .iter()
        .find(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
    {
        return Err(ApiError::invalid_param(
            "messages",
            format!(
                "unsupported role '{}' (use system, user or assistant)",
                m.role
            ),
        ));
    }
    let messages = req
        .messages
        .iter()
        .map(|m| ChatMessage {
            role: m.role.clone(),
            content: m.content.clone(),
        })
        .collect();
    Ok(GenerateRequest {
        request_id: random_id("chatcmpl-"),
        model: req.model.clone(),
        input: Some(generate_request::Input::Chat(Messages { messages })),
        params: Some(params),
        system_message: None,
        return_tokens: false,
    })
}

/// The handler.
pub async fn chat_completions(
    State(state): State<Arc<ApiState>>,
    body: Result<Json<ChatCompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::from_json_rejection(&e))?;
    let generate = validate(&req)?;
    respond::serve(&state, generate, Flavor::Chat, &req.common).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(messages: serde_json::Value) -> ChatCompletionRequest {
        serde_json::from_value(serde_json::json!({"model": "m", "messages": messages})).unwrap()
    }

    #[test]
    fn messages_are_checked() {
        assert_eq!(
            validate(&req(serde_json::json!([])))
                .unwrap_err()
                .param
                .as_deref(),
            Some("messages")
        );
        let e = validate(&req(serde_json::json!([{"role": "robot", "content": "x"}]))).unwrap_err();
        assert!(e.message.contains("robot"));
        assert!(validate(&req(serde_json::json!([{"role": "user", "content": "x"}]))).is_ok());
    }
}

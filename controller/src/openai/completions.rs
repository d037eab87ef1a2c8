//! `POST /v1/completions`: a raw prompt, no conversation template.

use std::sync::Arc;

use arena_proto::v1::{generate_request, GenerateRequest};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::response::Response;
use axum::Json;

use super::params::sampling;
use super::respond::{self, Flavor};
use super::types::CompletionRequest;
use super::ApiState;
use crate::error::ApiError;
use crate::ids::random_id;

/// OpenAI's default `max_tokens` for this endpoint.
const DEFAULT_MAX_TOKENS: u32 = 16;

fn validate(req: CompletionRequest) -> Result<GenerateRequest, ApiError> {
    let params = sampling(&req.model, &req.common, Some(DEFAULT_MAX_TOKENS))?;
    if req.echo == Some(true) {
        return Err(ApiError::invalid_param("echo", "'echo' is not supported"));
    }
    if req.logprobs.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid_param(
            "logprobs",
            "'logprobs' is not supported",
        ));
    }
    let mut prompts = req.prompt.into_vec();
    if prompts.len() != 1 {
        return Err(ApiError::invalid_param(
            "prompt",
            "exactly one prompt per request is supported",
        ));
    }
    Ok(GenerateRequest {
        request_id: random_id("cmpl-"),
        model: req.model,
        input: Some(generate_request::Input::Prompt(prompts.remove(0))),
        params: Some(params),
        system_message: None,
        return_tokens: false,
    })
}

/// The handler.
pub async fn completions(
    State(state): State<Arc<ApiState>>,
    body: Result<Json<CompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::from_json_rejection(&e))?;
    let common = req.common.clone();
    let generate = validate(req)?;
    respond::serve(&state, generate, Flavor::Text, &common).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: serde_json::Value) -> CompletionRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn unsupported_fields_are_named() {
        for (v, param) in [
            (
                serde_json::json!({"model": "m", "prompt": "x", "echo": true}),
                "echo",
            ),
            (
                serde_json::json!({"model": "m", "prompt": "x", "logprobs": 2}),
                "logprobs",
            ),
            (
                serde_json::json!({"model": "m", "prompt": ["a", "b"]}),
                "prompt",
            ),
        ] {
            assert_eq!(validate(req(v)).unwrap_err().param.as_deref(), Some(param));
        }
        let g = validate(req(serde_json::json!({"model": "m", "prompt": ["only"]}))).unwrap();
        assert_eq!(g.params.unwrap().max_new_tokens, Some(DEFAULT_MAX_TOKENS));
    }
}

//! `POST /v1/completions`: a raw prompt, no conversation template.

use std::sync::Arc;

use arena_proto::v1::generate_request;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde_json::Value;

use super::fields::{int_in, kind, wrong_shape, Fields};
use super::params::{common, model, MAX_TOP_LOGPROBS};
use super::respond::{self, Flavor, Plan};
use super::ApiState;
use crate::error::ApiError;

/// OpenAI's default `max_tokens` for this endpoint.
const DEFAULT_MAX_TOKENS: u32 = 16;

/// The prompt: one string, or a list holding exactly one string.
fn prompt(v: Option<Value>) -> Result<String, ApiError> {
    let one = |v: Value| match v {
        Value::String(s) => Ok(s),
        Value::Number(_) | Value::Array(_) => Err(ApiError::unsupported_param(
            "prompt",
            "token-id prompts are not supported: send text",
        )),
        other => Err(wrong_shape(
            "prompt",
            format!("'prompt' must be a string, got {}", kind(&other)),
        )),
    };
    match v {
        None => Err(wrong_shape("prompt", "missing field `prompt`")),
        Some(Value::Array(mut items)) if items.len() == 1 => one(items.remove(0)),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Err(
            ApiError::unsupported_param("prompt", "exactly one prompt per request is supported"),
        ),
        Some(v) => one(v),
    }
}

fn plan(body: Value) -> Result<Plan, ApiError> {
    let mut f = Fields::new(body, "")?;
    let model = model(&mut f)?;
    let prompt = prompt(f.raw("prompt"))?;
    let common = common(&mut f, Some(DEFAULT_MAX_TOKENS))?;
    let logprobs = int_in(&mut f, "logprobs", 0, i64::from(MAX_TOP_LOGPROBS))?;
    f.only_noop("echo", |v| v == false, "the prompt is not echoed")?;
    f.only_noop(
        "suffix",
        |v| v.as_str().is_some_and(str::is_empty),
        "there is no insertion mode",
    )?;
    let n = common.n;
    f.only_noop(
        "best_of",
        |v| v.as_u64() == Some(u64::from(n)),
        "choices are not ranked: leave it unset or equal to 'n'",
    )?;
    f.finish()?;
    let input = generate_request::Input::Prompt(prompt);
    let names = ("prompt", "logprobs");
    Ok(Plan::completion(
        "cmpl-", model, input, common, logprobs, names,
    ))
}

/// The handler.
pub async fn completions(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::from_json_rejection(&e))?;
    let mut plan = plan(body)?;
    plan.session_from(&headers);
    respond::serve(&state, plan, Flavor::Text).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unsupported_fields_are_named() {
        for (v, param) in [
            (json!({"model": "m", "prompt": "x", "echo": true}), "echo"),
            (
                json!({"model": "m", "prompt": "x", "suffix": "y"}),
                "suffix",
            ),
            (
                json!({"model": "m", "prompt": "x", "best_of": 3}),
                "best_of",
            ),
            (json!({"model": "m", "prompt": ["a", "b"]}), "prompt"),
            (json!({"model": "m", "prompt": [1, 2]}), "prompt"),
            (
                json!({"model": "m", "prompt": "x", "logprobs": 21}),
                "logprobs",
            ),
            (
                json!({"model": "m", "prompt": "x", "top_logprobs": 2}),
                "top_logprobs",
            ),
        ] {
            let e = plan(v.clone()).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{v}");
            assert_eq!(e.param.as_deref(), Some(param), "{v}");
        }
        let e = plan(json!({"model": "m"})).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.param.as_deref()),
            (422, Some("prompt"))
        );
    }

    #[test]
    fn a_plan_has_defaults_and_logprobs() {
        let p = plan(
            json!({"model": "m", "prompt": ["only"], "echo": false, "best_of": 2, "n": 2,
            "logprobs": 2, "suffix": null}),
        )
        .unwrap();
        assert_eq!(
            p.generate.params.unwrap().max_new_tokens,
            Some(DEFAULT_MAX_TOKENS)
        );
        assert_eq!((p.n, p.logprobs), (2, Some(2)));
        assert_eq!(p.names.top_logprobs, "logprobs");
        let p = plan(json!({"model": "m", "prompt": "x", "logprobs": 0})).unwrap();
        assert_eq!(p.logprobs, Some(0));
    }
}

//! `POST /v1/chat/completions`.

use std::sync::Arc;

use arena_proto::v1::{generate_request, Messages};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde_json::Value;

use super::fields::Fields;
use super::messages::chat_messages;
use super::params::{chat_logprobs, common, model};
use super::respond::{self, Flavor, Plan};
use super::ApiState;
use crate::error::ApiError;

/// Fields that only ask for what the server does anyway, in the value that says so.
fn noop_fields(f: &mut Fields) -> Result<(), ApiError> {
    f.only_noop(
        "response_format",
        |v| {
            v.get("type").is_some_and(|t| t == "text")
                && v.as_object().is_some_and(|o| o.len() == 1)
        },
        "only plain text answers ({\"type\": \"text\"})",
    )?;
    f.only_noop(
        "tools",
        |v| v.as_array().is_some_and(Vec::is_empty),
        "this server has no tool calling",
    )?;
    f.only_noop(
        "tool_choice",
        |v| v == "none",
        "this server has no tool calling",
    )?;
    f.only_noop(
        "modalities",
        |v| v == &serde_json::json!(["text"]),
        "only text output",
    )?;
    f.only_noop("store", |v| v == false, "completions are not stored")?;
    Ok(())
}

/// Checks the request and plans its generations.
fn plan(body: Value) -> Result<Plan, ApiError> {
    let mut f = Fields::new(body, "")?;
    let model = model(&mut f)?;
    let messages = match f.raw("messages") {
        Some(v) => chat_messages(v)?,
        None => {
            return Err(super::fields::wrong_shape(
                "messages",
                "missing field `messages`",
            ))
        }
    };
    let common = common(&mut f, None)?;
    let logprobs = chat_logprobs(&mut f)?;
    noop_fields(&mut f)?;
    f.finish()?;
    let input = generate_request::Input::Chat(Messages { messages });
    let names = ("messages", "top_logprobs");
    Ok(Plan::completion(
        "chatcmpl-",
        model,
        input,
        common,
        logprobs,
        names,
    ))
}

/// The handler.
pub async fn chat_completions(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::from_json_rejection(&e))?;
    let mut plan = plan(body)?;
    plan.session_from(&headers);
    respond::serve(&state, plan, Flavor::Chat).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(extra: Value) -> Result<Plan, ApiError> {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        plan(body)
    }

    #[test]
    fn unsupported_and_unknown_fields_are_refused_by_name() {
        for (extra, param) in [
            (
                json!({"response_format": {"type": "json_object"}}),
                "response_format",
            ),
            (
                json!({"tools": [{"type": "function", "function": {"name": "f"}}]}),
                "tools",
            ),
            (json!({"tool_choice": "auto"}), "tool_choice"),
            (json!({"logit_bias": {"1": 5}}), "logit_bias"),
            (json!({"parallel_tool_calls": true}), "parallel_tool_calls"),
            (json!({"functions": [{"name": "f"}]}), "functions"),
            (json!({"store": true}), "store"),
            (json!({"top_k": 3}), "top_k"),
            (json!({"made_up": 1}), "made_up"),
        ] {
            let e = chat(extra.clone()).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{extra}");
            assert_eq!(e.code, "unsupported_parameter", "{extra}");
            assert_eq!(e.param.as_deref(), Some(param), "{extra}");
        }
    }

    #[test]
    fn defaults_and_supported_fields_pass() {
        let p = chat(
            json!({"response_format": {"type": "text"}, "tools": [], "tool_choice": "none",
            "store": false, "user": "u", "seed": 1, "stop": ["\n"], "presence_penalty": 0,
            "frequency_penalty": 0, "stream_options": {"include_usage": true}, "stream": true,
            "n": 2, "logprobs": true, "top_logprobs": 3, "max_completion_tokens": 9,
            "modalities": ["text"], "metadata": null}),
        )
        .unwrap();
        assert_eq!((p.n, p.stream, p.include_usage), (2, true, true));
        assert_eq!(p.logprobs, Some(3));
        assert_eq!(p.names.max_tokens, "max_completion_tokens");
        assert_eq!(p.generate.params.unwrap().max_new_tokens, Some(9));
        let p = chat(json!({})).unwrap();
        assert_eq!((p.n, p.logprobs, p.stream), (1, None, false));
    }

    #[test]
    fn model_and_messages_are_required() {
        let e = plan(json!({"messages": [{"role": "user", "content": "x"}]})).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.param.as_deref()),
            (422, Some("model"))
        );
        let e = plan(json!({"model": "m"})).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.param.as_deref()),
            (422, Some("messages"))
        );
        let e = plan(json!({"model": " ", "messages": []})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"));
    }
}

//! `POST /v1/responses`, text only: `input` as a string or message items, `instructions` as
//! the system message, `max_output_tokens`, `temperature`, `top_p`, `stream`. Anything that
//! asks for more (tools, reasoning, stored state, images) is refused, naming the field.

use std::sync::Arc;

use arena_proto::v1::{generate_request, Messages};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::fields::{wrong_shape, Fields};
use super::messages::response_input;
use super::params::{max_tokens, model, streaming, temperature_top_p};
use super::respond::{self, generation, Names, Plan};
use super::responses_stream;
use super::types::Usage;
use super::{now_secs, ApiState};
use crate::error::ApiError;
use crate::ids::random_id;

/// What a response object repeats of its request, and its ids.
#[derive(Debug, Clone)]
pub struct Meta {
    /// `resp_...`.
    pub id: String,
    /// The output message's id, `msg_...`.
    pub message_id: String,
    /// Served model name.
    pub model: String,
    /// Unix seconds.
    pub created_at: u64,
    /// As requested.
    pub instructions: Option<String>,
    /// As requested.
    pub max_output_tokens: Option<u32>,
    /// As used.
    pub temperature: f32,
    /// As used.
    pub top_p: f32,
}

/// How a response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Created, no output yet.
    InProgress,
    /// Ended by the model.
    Completed,
    /// Ended at `max_output_tokens`.
    Incomplete,
    /// Broke off.
    Failed,
}

impl Status {
    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Incomplete => "incomplete",
            Self::Failed => "failed",
        }
    }

    /// The status of a finished generation ("stop" or "length").
    pub fn of_finish(finish: &str) -> Self {
        if finish == "length" {
            Self::Incomplete
        } else {
            Self::Completed
        }
    }
}

impl Meta {
    /// The output text part.
    pub fn part(text: &str) -> Value {
        json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    }

    /// The output message item; no content while it is in progress.
    pub fn item(&self, status: Status, text: Option<&str>) -> Value {
        let item_status = match status {
            Status::Incomplete => "incomplete",
            Status::InProgress => "in_progress",
            _ => "completed",
        };
        json!({
            "id": self.message_id,
            "type": "message",
            "status": item_status,
            "role": "assistant",
            "content": text.map(Self::part).into_iter().collect::<Vec<_>>(),
        })
    }

    /// The response object: `text` is the output so far (none while in progress), `error` the
    /// reason of a failure.
    pub fn object(
        &self,
        status: Status,
        text: Option<&str>,
        usage: Option<Usage>,
        error: Option<&str>,
    ) -> Value {
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status.name(),
            "error": error.map(|message| json!({"code": "server_error", "message": message})),
            "incomplete_details": (status == Status::Incomplete)
                .then(|| json!({"reason": "max_output_tokens"})),
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "model": self.model,
            "output": text.map(|t| self.item(status, Some(t))).into_iter().collect::<Vec<_>>(),
            "parallel_tool_calls": false,
            "previous_response_id": null,
            "store": false,
            "temperature": self.temperature,
            "text": {"format": {"type": "text"}},
            "tool_choice": "none",
            "tools": [],
            "top_p": self.top_p,
            "truncation": "disabled",
            "usage": usage.map(|u| json!({
                "input_tokens": u.prompt_tokens,
                "input_tokens_details": {"cached_tokens": u.cached_tokens()},
                "output_tokens": u.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": u.total_tokens,
            })),
            "user": null,
            "metadata": {},
        })
    }
}

/// Fields accepted only in the value that asks for nothing more than plain text generation.
fn noop_fields(f: &mut Fields) -> Result<(), ApiError> {
    let empty_list = |v: &Value| v.as_array().is_some_and(Vec::is_empty);
    let no_tools = "this server has no tools";
    f.only_noop("tools", empty_list, no_tools)?;
    f.only_noop("tool_choice", |v| v == "none", no_tools)?;
    f.only_noop("parallel_tool_calls", |v| v == false, no_tools)?;
    f.only_noop("include", empty_list, "there is nothing extra to include")?;
    f.only_noop("store", |v| v == false, "responses are not stored")?;
    f.only_noop(
        "background",
        |v| v == false,
        "responses run in the foreground",
    )?;
    f.only_noop(
        "metadata",
        |v| v.as_object().is_some_and(|m| m.is_empty()),
        "responses are not stored",
    )?;
    f.only_noop(
        "text",
        |v| v == &json!({"format": {"type": "text"}}),
        "only plain text output ({\"format\": {\"type\": \"text\"}})",
    )?;
    f.only_noop(
        "truncation",
        |v| v == "disabled",
        "input is never truncated",
    )?;
    Ok(())
}

/// Checks the request: the plan of its generation, and what its response repeats.
fn plan(body: Value) -> Result<(Plan, Meta), ApiError> {
    let mut f = Fields::new(body, "")?;
    let model = model(&mut f)?;
    let instructions: Option<String> = f.take("instructions")?;
    let input = f
        .raw("input")
        .ok_or_else(|| wrong_shape("input", "missing field `input`"))?;
    let messages = response_input(input, instructions.clone())?;
    let mut sampling = temperature_top_p(&mut f)?;
    let (max_output_tokens, _) = max_tokens(&mut f, &["max_output_tokens"])?;
    sampling.max_new_tokens = max_output_tokens;
    let (stream, _) = streaming(&mut f)?;
    // The caller's id for abuse tracking: nothing to do with it here.
    f.take::<String>("user")?;
    noop_fields(&mut f)?;
    f.finish()?;
    let meta = Meta {
        id: random_id("resp_"),
        message_id: random_id("msg_"),
        model: model.clone(),
        created_at: now_secs(),
        instructions,
        max_output_tokens,
        temperature: sampling.temperature.unwrap_or(1.0),
        top_p: sampling.top_p.unwrap_or(1.0),
    };
    let plan = Plan {
        generate: generation(
            meta.id.clone(),
            model,
            generate_request::Input::Chat(Messages { messages }),
            sampling,
        ),
        n: 1,
        stream,
        include_usage: false,
        logprobs: None,
        session: None,
        names: Names {
            max_tokens: "max_output_tokens",
            input: "input",
            top_logprobs: "top_logprobs",
        },
    };
    Ok((plan, meta))
}

/// The handler.
pub async fn responses(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::from_json_rejection(&e))?;
    let (mut plan, meta) = plan(body)?;
    plan.session_from(&headers);
    let started = respond::start(&state, &plan).await?;
    let metrics = state.gateway.metrics.clone();
    if plan.stream {
        return Ok(responses_stream::sse(started, meta, metrics));
    }
    let done = respond::collect_all(started, &meta.model, &metrics).await?;
    let usage = respond::usage_of(&done);
    let (text, status) = done.first().map_or(("", Status::Completed), |c| {
        (c.text.as_str(), Status::of_finish(c.finish))
    });
    Ok(Json(meta.object(status, Some(text), Some(usage), None)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_request_is_planned() {
        let (p, meta) = plan(
            json!({"model": "m", "input": "hi", "instructions": "Be brief.",
            "max_output_tokens": 5, "temperature": 0, "stream": true, "store": false,
            "tools": [], "text": {"format": {"type": "text"}}, "user": "u"}),
        )
        .unwrap();
        assert!(p.stream);
        assert_eq!(p.generate.params.as_ref().unwrap().max_new_tokens, Some(5));
        let Some(generate_request::Input::Chat(m)) = &p.generate.input else {
            panic!("not chat");
        };
        assert_eq!(m.messages.len(), 2);
        assert_eq!(meta.instructions.as_deref(), Some("Be brief."));
        let o = meta.object(
            Status::Incomplete,
            Some("hey"),
            Some(Usage::of_choices(4, [5])),
            None,
        );
        assert_eq!(o["output"][0]["content"][0]["text"], "hey");
        assert_eq!(o["usage"]["input_tokens"], 4);
        assert_eq!(o["usage"]["output_tokens"], 5);
        assert_eq!(o["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(o["status"], "incomplete");
        assert_eq!(
            meta.object(Status::InProgress, None, None, None)["output"],
            json!([])
        );
    }

    #[test]
    fn what_is_not_text_generation_is_refused_by_name() {
        for (extra, param) in [
            (json!({"tools": [{"type": "web_search"}]}), "tools"),
            (json!({"tool_choice": "auto"}), "tool_choice"),
            (
                json!({"previous_response_id": "resp_1"}),
                "previous_response_id",
            ),
            (json!({"reasoning": {"effort": "low"}}), "reasoning"),
            (json!({"store": true}), "store"),
            (json!({"text": {"format": {"type": "json_object"}}}), "text"),
            (json!({"top_logprobs": 2}), "top_logprobs"),
            (json!({"max_output_tokens": 0}), "max_output_tokens"),
            (
                json!({"input": [{"type": "function_call_output", "output": "x"}]}),
                "input[0].type",
            ),
        ] {
            let mut body = json!({"model": "m", "input": "hi"});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let e = plan(body).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{extra}");
            assert_eq!(e.param.as_deref(), Some(param), "{extra}");
        }
        let e = plan(json!({"model": "m"})).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.param.as_deref()),
            (422, Some("input"))
        );
    }
}

//! `POST /v1/chat/completions`, streamed and not.

use std::convert::Infallible;
use std::sync::Arc;

use arena_proto::v1::{
    generate_request, FinishReason, GenerateRequest, GenerateResponse, Messages, SamplingParams,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio_stream::wrappers::ReceiverStream;

use super::types::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage, Choice, ChunkChoice,
    Delta, Stop, Usage,
};
use super::upstream::{self, Started};
use super::{now_secs, ApiState};
use crate::error::ApiError;

/// Checks the request and turns it into the worker's `GenerateRequest`.
fn validate(req: &ChatCompletionRequest) -> Result<GenerateRequest, ApiError> {
    if req.model.trim().is_empty() {
        return Err(ApiError::invalid_param("model", "'model' is required"));
    }
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
    if req.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid_param("n", "only n = 1 is supported"));
    }
    for (name, v) in [
        ("presence_penalty", req.presence_penalty),
        ("frequency_penalty", req.frequency_penalty),
    ] {
        if v.is_some_and(|v| v != 0.0) {
            return Err(ApiError::invalid_param(
                name,
                format!("'{name}' is not supported; leave it unset or 0"),
            ));
        }
    }
    let in_range = |name: &str, v: Option<f32>, lo: f32, hi: f32| match v {
        Some(x) if !(lo..=hi).contains(&x) => Err(ApiError::invalid_param(
            name,
            format!("'{name}' must be between {lo} and {hi}, got {x}"),
        )),
        _ => Ok(()),
    };
    in_range("temperature", req.temperature, 0.0, 2.0)?;
    in_range("top_p", req.top_p, 0.0, 1.0)?;
    let max_tokens = req.max_completion_tokens.or(req.max_tokens);
    if max_tokens == Some(0) {
        return Err(ApiError::invalid_param(
            "max_tokens",
            "'max_tokens' must be at least 1",
        ));
    }
    let stop = match &req.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s.clone()],
        Some(Stop::Many(v)) => v.clone(),
    };
    Ok(GenerateRequest {
        request_id: format!("chatcmpl-{:016x}", rand::random::<u64>()),
        model: req.model.clone(),
        input: Some(generate_request::Input::Chat(Messages {
            messages: req
                .messages
                .iter()
                .map(|m| arena_proto::v1::ChatMessage {
                    role: m.role.clone(),
                    content: m.content.clone(),
                })
                .collect(),
        })),
        params: Some(SamplingParams {
            // OpenAI's default temperature is 1.
            temperature: Some(req.temperature.unwrap_or(1.0)),
            top_p: req.top_p,
            max_new_tokens: max_tokens,
            stop,
            seed: req.seed,
            ..Default::default()
        }),
        system_message: None,
        return_tokens: false,
    })
}

fn finish_reason(m: &GenerateResponse) -> Option<&'static str> {
    match FinishReason::try_from(m.finish_reason).ok()? {
        FinishReason::Stop => Some("stop"),
        FinishReason::Length => Some("length"),
        _ => None,
    }
}

fn usage(m: &GenerateResponse) -> Usage {
    m.usage.map_or_else(Usage::default, |u| Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u.prompt_tokens + u.completion_tokens,
    })
}

fn is_error(m: &GenerateResponse) -> bool {
    m.finish_reason == FinishReason::Error as i32
}

/// The handler.
pub async fn chat_completions(
    State(state): State<Arc<ApiState>>,
    body: Result<Json<ChatCompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {}", e.body_text())))?;
    let generate = validate(&req)?;
    let id = generate.request_id.clone();
    let started = upstream::start(&state.registry, &req.model, generate).await?;
    if req.stream {
        let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
        Ok(stream_response(started, id, req.model, include_usage))
    } else {
        complete(started, id, req.model)
            .await
            .map(IntoResponse::into_response)
    }
}

async fn complete(
    started: Started,
    id: String,
    model: String,
) -> Result<Json<ChatCompletion>, ApiError> {
    let Started {
        mut stream,
        first,
        guard,
    } = started;
    let mut text = String::new();
    let mut next = first;
    let mut last = None;
    while let Some(m) = next {
        if is_error(&m) {
            return Err(ApiError::internal(format!(
                "generation failed on the worker: {}",
                m.error
            )));
        }
        text.push_str(&m.text);
        if m.finish_reason != 0 {
            last = Some(m);
            break;
        }
        next = stream.message().await.map_err(|s| {
            ApiError::internal(format!("the worker failed mid-generation: {}", s.message()))
        })?;
    }
    drop(guard);
    let last = last
        .ok_or_else(|| ApiError::internal("the worker's stream ended without a finish reason"))?;
    Ok(Json(ChatCompletion {
        id,
        object: "chat.completion",
        created: now_secs(),
        model,
        choices: vec![Choice {
            index: 0,
            message: ChatMessage {
                role: "assistant".into(),
                content: text,
            },
            finish_reason: finish_reason(&last).unwrap_or("stop"),
        }],
        usage: usage(&last),
    }))
}

fn chunk(id: &str, model: &str, created: u64, delta: Delta, finish: Option<&'static str>) -> Event {
    let c = ChatCompletionChunk {
        id: id.to_string(),
        object: "chat.completion.chunk",
        created,
        model: model.to_string(),
        choices: vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish,
        }],
        usage: None,
    };
    Event::default().data(serde_json::to_string(&c).unwrap_or_default())
}

/// Streams SSE chunks: the role, content deltas, a chunk with the finish reason, usage when
/// asked for, then `[DONE]`. A worker failing after the first token ends the stream with an
/// error event. A client that goes away drops the worker stream, which cancels the sequence.
fn stream_response(started: Started, id: String, model: String, include_usage: bool) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(32);
    tokio::spawn(async move {
        let Started {
            mut stream,
            first,
            guard,
        } = started;
        let created = now_secs();
        let role = Delta {
            role: Some("assistant"),
            content: None,
        };
        if tx
            .send(chunk(&id, &model, created, role, None))
            .await
            .is_err()
        {
            return;
        }
        let mut next: Option<Result<GenerateResponse, tonic::Status>> = first.map(Ok);
        loop {
            let m = match next.take() {
                Some(Ok(m)) => m,
                Some(Err(status)) => {
                    let e = ApiError::internal(format!(
                        "the worker failed mid-generation: {}",
                        status.message()
                    ));
                    let _ = tx.send(Event::default().data(e.body().to_string())).await;
                    break;
                }
                None => break,
            };
            if is_error(&m) {
                let e = ApiError::internal(format!("generation failed on the worker: {}", m.error));
                let _ = tx.send(Event::default().data(e.body().to_string())).await;
                break;
            }
            if !m.text.is_empty() {
                let delta = Delta {
                    role: None,
                    content: Some(m.text.clone()),
                };
                if tx
                    .send(chunk(&id, &model, created, delta, None))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if let Some(reason) = finish_reason(&m) {
                if tx
                    .send(chunk(&id, &model, created, Delta::default(), Some(reason)))
                    .await
                    .is_err()
                {
                    return;
                }
                if include_usage {
                    let c = ChatCompletionChunk {
                        id: id.clone(),
                        object: "chat.completion.chunk",
                        created,
                        model: model.clone(),
                        choices: Vec::new(),
                        usage: Some(usage(&m)),
                    };
                    let _ = tx
                        .send(Event::default().data(serde_json::to_string(&c).unwrap_or_default()))
                        .await;
                }
                break;
            }
            next = stream.message().await.transpose();
            if next.is_none() {
                let e = ApiError::internal("the worker's stream ended without a finish reason");
                let _ = tx.send(Event::default().data(e.body().to_string())).await;
                break;
            }
        }
        drop(guard);
        let _ = tx.send(Event::default().data("[DONE]")).await;
    });
    let events = tokio_stream::StreamExt::map(ReceiverStream::new(rx), Ok::<Event, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(extra: serde_json::Value) -> ChatCompletionRequest {
        let mut base =
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn out_of_range_and_unsupported_parameters_are_named() {
        for (extra, param) in [
            (serde_json::json!({"temperature": 3.0}), "temperature"),
            (serde_json::json!({"top_p": -0.5}), "top_p"),
            (serde_json::json!({"max_tokens": 0}), "max_tokens"),
            (serde_json::json!({"n": 2}), "n"),
            (
                serde_json::json!({"presence_penalty": 0.5}),
                "presence_penalty",
            ),
            (
                serde_json::json!({"frequency_penalty": 1.0}),
                "frequency_penalty",
            ),
            (serde_json::json!({"model": ""}), "model"),
            (serde_json::json!({"messages": []}), "messages"),
            (
                serde_json::json!({"messages": [{"role": "robot", "content": "x"}]}),
                "messages",
            ),
        ] {
            let e = validate(&req(extra)).unwrap_err();
            assert_eq!(e.status.as_u16(), 400);
            assert_eq!(e.param.as_deref(), Some(param));
        }
    }

    #[test]
    fn valid_requests_map_to_sampling_params() {
        let g = validate(&req(serde_json::json!({"temperature": 0, "max_tokens": 7, "stop": "x", "seed": 3, "presence_penalty": 0}))).unwrap();
        let p = g.params.unwrap();
        assert_eq!(p.temperature, Some(0.0));
        assert_eq!(p.max_new_tokens, Some(7));
        assert_eq!(p.stop, vec!["x".to_string()]);
        assert_eq!(p.seed, Some(3));
        let g = validate(&req(serde_json::json!({"stop": ["a", "b"]}))).unwrap();
        assert_eq!(g.params.unwrap().stop.len(), 2);
    }
}

//! Generations on API-hosted endpoints: an OpenAI-compatible `/chat/completions` stream,
//! read as server-sent events and turned into the same messages a worker sends
//! (`api_stream`). The usage is asked for (`stream_options.include_usage`); an endpoint that
//! refuses that field is asked again without it, and one that sends no usage has its
//! content chunks counted.

use std::time::Instant;

use arena_proto::v1::{generate_request, GenerateRequest, GenerateResponse};
use axum::http::StatusCode;
use serde_json::{json, Value};
use tokio_stream::StreamExt;
use tonic::Status;

use super::api_stream::{ChatStream, SseEvents};
use super::contestants::Endpoint;
use super::stream::Started;
use crate::config::Timeouts;
use crate::error::{ApiError, ControllerError};

/// The HTTP client for API-hosted contestants (and moderation): connecting may take
/// `timeouts.connect` at most; the waits for tokens are bounded per call.
pub fn http_client(timeouts: &Timeouts) -> Result<reqwest::Client, ControllerError> {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .build()
        .map_err(|e| ControllerError::Config(format!("the HTTP client: {e}")))
}

/// 504 naming the endpoint that sent nothing in time.
fn timed_out(endpoint: &Endpoint, timeouts: &Timeouts) -> ApiError {
    ApiError {
        status: StatusCode::GATEWAY_TIMEOUT,
        code: "upstream_timeout",
        ..ApiError::unavailable(format!(
            "endpoint '{}' sent no first token within {} ms (the first-token timeout)",
            endpoint.name,
            timeouts.first_token.as_millis()
        ))
    }
}

/// The request body for the remote.
fn body(endpoint: &Endpoint, req: &GenerateRequest) -> Result<Value, ApiError> {
    let messages: Vec<Value> = match &req.input {
        Some(generate_request::Input::Chat(m)) => m
            .messages
            .iter()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect(),
        _ => {
            return Err(ApiError::invalid_param(
                "prompt",
                format!(
                    "'{}' is API-hosted: only chat completions are supported for it",
                    endpoint.name
                ),
            ))
        }
    };
    let p = req.params.clone().unwrap_or_default();
    let mut b = json!({
        "model": endpoint.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let fields = [
        ("temperature", p.temperature.map(|v| json!(v))),
        ("top_p", p.top_p.map(|v| json!(v))),
        ("max_tokens", p.max_new_tokens.map(|v| json!(v))),
        ("seed", p.seed.map(|v| json!(v))),
        ("stop", (!p.stop.is_empty()).then(|| json!(p.stop))),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            b[k] = v;
        }
    }
    Ok(b)
}

/// Maps the remote's refusal to our error: its client errors pass through, its other
/// failures (including refusing our key) are the gateway's problem, 502.
async fn refusal(endpoint: &Endpoint, response: reqwest::Response) -> ApiError {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or(text);
    let message = format!("endpoint '{}' answered {status}: {message}", endpoint.name);
    match status.as_u16() {
        400 | 404 | 422 => ApiError::bad_request(message),
        429 => ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            ..ApiError::bad_request(message)
        },
        _ => ApiError {
            status: StatusCode::BAD_GATEWAY,
            code: "upstream_error",
            ..ApiError::internal(message)
        },
    }
}

/// Sends the request; a failure to connect or to answer before `deadline` is the error.
async fn send(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    body: &Value,
    deadline: tokio::time::Instant,
    timeouts: &Timeouts,
) -> Result<reqwest::Response, ApiError> {
    let mut call = http
        .post(format!("{}/chat/completions", endpoint.base_url))
        .json(body);
    if let Some(key) = &endpoint.api_key {
        call = call.bearer_auth(key);
    }
    tokio::time::timeout_at(deadline, call.send())
        .await
        .map_err(|_| timed_out(endpoint, timeouts))?
        .map_err(|e| {
            ApiError::unavailable(format!("endpoint '{}' is unreachable: {e}", endpoint.name))
        })
}

/// Starts a streamed chat completion on the endpoint: its first token within
/// `timeouts.first_token`, each next one within `timeouts.between_tokens`.
pub async fn start(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    req: GenerateRequest,
    timeouts: &Timeouts,
) -> Result<Started, ApiError> {
    let dispatched = Instant::now();
    let deadline = tokio::time::Instant::now() + timeouts.first_token;
    let mut body = body(endpoint, &req)?;
    let mut response = send(http, endpoint, &body, deadline, timeouts).await?;
    if matches!(response.status().as_u16(), 400 | 422) {
        // Servers that refuse fields they do not know (older llama.cpp and vLLM, strict
        // FastAPI models) refuse stream_options: ask once more without it, and count the
        // tokens here. A request bad for another reason is refused again, with its reason.
        let first = refusal(endpoint, response).await;
        tracing::info!(endpoint = %endpoint.name, "refused with stream_options ({}); retrying without", first.message);
        if let Some(fields) = body.as_object_mut() {
            fields.remove("stream_options");
        }
        response = send(http, endpoint, &body, deadline, timeouts).await?;
    }
    if !response.status().is_success() {
        return Err(refusal(endpoint, response).await);
    }
    let mut bytes = response.bytes_stream();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<GenerateResponse, Status>>(32);
    tokio::spawn(async move {
        let (mut events, mut chat) = (SseEvents::default(), ChatStream::default());
        loop {
            // The reader goes (a timeout, a client gone): drop the remote call with it.
            let chunk = tokio::select! {
                _ = tx.closed() => return,
                chunk = bytes.next() => chunk,
            };
            let Some(chunk) = chunk else { break };
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx
                        .send(Err(Status::unavailable(format!(
                            "the endpoint's stream broke: {e}"
                        ))))
                        .await;
                    return;
                }
            };
            events.push(&chunk);
            while let Some(data) = events.next_data() {
                if data.trim() == "[DONE]" {
                    let _ = tx.send(Ok(chat.last())).await;
                    return;
                }
                match chat.parse(&data) {
                    Ok(Some(m)) => {
                        if tx.send(Ok(m)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        }
        let _ = tx
            .send(Err(Status::unavailable(
                "the endpoint's stream ended without [DONE]",
            )))
            .await;
    });
    let mut stream: super::stream::ResponseStream =
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx));
    let first = tokio::time::timeout_at(deadline, stream.next())
        .await
        .map_err(|_| timed_out(endpoint, timeouts))?;
    let first = match first {
        Some(Ok(m)) => Some(m),
        Some(Err(s)) => {
            return Err(ApiError::unavailable(format!(
                "endpoint '{}': {}",
                endpoint.name,
                s.message()
            )))
        }
        None => None,
    };
    Ok(Started::new(
        stream,
        first,
        None,
        dispatched,
        timeouts.between_tokens,
    ))
}

#[cfg(test)]
mod tests;

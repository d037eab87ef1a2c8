//! Generations on API-hosted endpoints: an OpenAI-compatible `/chat/completions` stream,
//! read as server-sent events and turned into the same messages a worker sends.

use std::time::Instant;

use arena_proto::v1::{generate_request, FinishReason, GenerateRequest, GenerateResponse, Usage};
use axum::http::StatusCode;
use serde_json::{json, Value};
use tokio_stream::StreamExt;
use tonic::Status;

use super::contestants::Endpoint;
use super::stream::Started;
use crate::error::ApiError;

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

/// Parses one SSE `data:` payload into a message; `None` for chunks with nothing to say.
fn parse(
    data: &str,
    finish: &mut Option<FinishReason>,
    usage: &mut Option<Usage>,
) -> Result<Option<GenerateResponse>, Status> {
    let v: Value = serde_json::from_str(data)
        .map_err(|e| Status::internal(format!("bad chunk from the endpoint: {e}")))?;
    if let Some(err) = v.get("error") {
        let msg = err["message"]
            .as_str()
            .unwrap_or("unknown error")
            .to_string();
        return Ok(Some(GenerateResponse {
            finish_reason: FinishReason::Error as i32,
            error: msg,
            ..Default::default()
        }));
    }
    if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
        *usage = Some(Usage {
            prompt_tokens: u["prompt_tokens"].as_u64().unwrap_or(0) as u32,
            completion_tokens: u["completion_tokens"].as_u64().unwrap_or(0) as u32,
        });
    }
    let choice = &v["choices"][0];
    match choice["finish_reason"].as_str() {
        Some("length") => *finish = Some(FinishReason::Length),
        Some(_) => *finish = Some(FinishReason::Stop),
        None => {}
    }
    Ok(choice["delta"]["content"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(|t| GenerateResponse {
            text: t.to_string(),
            ..Default::default()
        }))
}

/// Starts a streamed chat completion on the endpoint.
pub async fn start(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    req: GenerateRequest,
) -> Result<Started, ApiError> {
    let dispatched = Instant::now();
    let mut call = http
        .post(format!("{}/chat/completions", endpoint.base_url))
        .json(&body(endpoint, &req)?);
    if let Some(key) = &endpoint.api_key {
        call = call.bearer_auth(key);
    }
    let response = call.send().await.map_err(|e| {
        ApiError::unavailable(format!("endpoint '{}' is unreachable: {e}", endpoint.name))
    })?;
    if !response.status().is_success() {
        return Err(refusal(endpoint, response).await);
    }
    let mut bytes = response.bytes_stream();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<GenerateResponse, Status>>(32);
    tokio::spawn(async move {
        let mut buf = String::new();
        let (mut finish, mut usage) = (None, None);
        while let Some(chunk) = bytes.next().await {
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
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                for data in event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim)
                {
                    if data == "[DONE]" {
                        let last = GenerateResponse {
                            finish_reason: finish.unwrap_or(FinishReason::Stop) as i32,
                            usage,
                            ..Default::default()
                        };
                        let _ = tx.send(Ok(last)).await;
                        return;
                    }
                    match parse(data, &mut finish, &mut usage) {
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
        }
        let _ = tx
            .send(Err(Status::unavailable(
                "the endpoint's stream ended without [DONE]",
            )))
            .await;
    });
    let mut stream: super::stream::ResponseStream =
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx));
    let first = match stream.next().await {
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
    Ok(Started {
        stream,
        first,
        guard: None,
        dispatched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_become_messages() {
        let (mut f, mut u) = (None, None);
        let m = parse(
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
            &mut f,
            &mut u,
        )
        .unwrap();
        assert_eq!(m.unwrap().text, "Hi");
        assert!(parse(
            r#"{"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#,
            &mut f,
            &mut u
        )
        .unwrap()
        .is_none());
        parse(
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
            &mut f,
            &mut u,
        )
        .unwrap();
        assert_eq!(f, Some(FinishReason::Length));
        parse(
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}"#,
            &mut f,
            &mut u,
        )
        .unwrap();
        assert_eq!(u.unwrap().completion_tokens, 5);
        let e = parse(r#"{"error":{"message":"boom"}}"#, &mut f, &mut u)
            .unwrap()
            .unwrap();
        assert_eq!(e.finish_reason, FinishReason::Error as i32);
        assert!(parse("{oops", &mut f, &mut u).is_err());
    }
}

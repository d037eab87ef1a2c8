//! Starting a generation on a worker, with failover before the first token.

use std::time::Instant;

use arena_proto::v1::GenerateRequest;
use tonic::{Code, Status};

use super::dispatch::Policy;
use super::registry::Registry;
use super::stream::Started;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Other workers tried after the first fails before streaming.
const MAX_RETRIES: usize = 2;

/// Failures worth another worker: the worker is gone, draining or broke before answering.
fn retryable(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
    )
}

/// Maps a worker's refusal to the HTTP error the caller should see.
pub fn api_error_of(s: &Status) -> ApiError {
    let msg = s.message().to_string();
    match s.code() {
        Code::InvalidArgument => {
            // The worker names the parameter as: invalid parameter 'NAME': ...
            let param = msg
                .split('\'')
                .nth(1)
                .filter(|_| msg.starts_with("invalid parameter"))
                .map(str::to_string);
            ApiError {
                param,
                ..ApiError::bad_request(msg)
            }
        }
        Code::OutOfRange => ApiError {
            code: "context_length_exceeded",
            param: Some("messages".into()),
            ..ApiError::bad_request(msg)
        },
        Code::NotFound => ApiError {
            code: "model_not_found",
            ..ApiError::unavailable(msg)
        },
        Code::Unavailable => ApiError::unavailable(msg),
        _ => ApiError::internal(format!("worker error: {msg}")),
    }
}

/// Sends `req` to the least-loaded worker of `model`, moving on to another when one fails
/// before its first message. No worker at all is an immediate error, never a wait.
pub async fn start(
    registry: &Registry,
    policy: Policy,
    metrics: &Metrics,
    model: &str,
    req: GenerateRequest,
) -> Result<Started, ApiError> {
    let dispatched = Instant::now();
    let mut tried: Vec<String> = Vec::new();
    let mut last_error = None;
    for _ in 0..=MAX_RETRIES {
        let Some(worker) = registry.pick(model, policy, &tried) else {
            break;
        };
        if !tried.is_empty() {
            metrics.retries.inc();
        }
        tried.push(worker.id.clone());
        let guard = worker.start();
        let outcome = match worker.client.clone().generate(req.clone()).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                stream.message().await.map(|first| (stream, first))
            }
            Err(status) => Err(status),
        };
        match outcome {
            Ok((stream, first)) => {
                metrics
                    .ttft
                    .with_label_values(&[model])
                    .observe(dispatched.elapsed().as_secs_f64());
                return Ok(Started {
                    stream: Box::pin(stream),
                    first,
                    guard: Some(guard),
                    dispatched,
                });
            }
            Err(status) if retryable(&status) => {
                metrics.dispatch_failures.inc();
                tracing::warn!(worker_id = %worker.id, "worker failed before its first token ({}); trying another", status.message());
                registry.mark_failed(&worker.id);
                last_error = Some(status);
            }
            Err(status) => return Err(api_error_of(&status)),
        }
    }
    match last_error {
        Some(status) => Err(ApiError::unavailable(format!(
            "every worker serving '{model}' failed: {}",
            status.message()
        ))),
        None if registry.knows_model(model) => Err(ApiError::unavailable(format!(
            "no worker serving '{model}' is available right now"
        ))),
        None => Err(ApiError::model_not_found(model)),
    }
}

//! Starting a generation on a worker, with failover before the first token: a worker that
//! refuses, breaks or sends nothing within the first-token timeout gives way to another.

use std::time::Instant;

use arena_proto::v1::GenerateRequest;
use axum::http::StatusCode;
use tonic::{Code, Status};

use super::affinity::Affinity;
use super::dispatch::Policy;
use super::registry::Registry;
use super::stream::Started;
use crate::config::Timeouts;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Other workers tried after the first fails before streaming.
const MAX_RETRIES: usize = 2;

/// Failures worth another worker: the worker is gone, draining, broke before answering, or
/// sent nothing within the first-token timeout (`DeadlineExceeded`).
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

/// What a refusal says of the worker, for its breaker: Some(true) when it answered sanely (the
/// request was at fault), Some(false) when it is broken, None when it only is busy.
fn worker_was_fine(s: &Status) -> Option<bool> {
    match s.code() {
        Code::InvalidArgument
        | Code::OutOfRange
        | Code::NotFound
        | Code::FailedPrecondition
        | Code::AlreadyExists => Some(true),
        Code::ResourceExhausted => None,
        _ => Some(false),
    }
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

/// Sends `req` to the least-loaded worker of `model` whose breaker admits it, moving on to
/// another when one fails or times out before its first message. No worker at all is an
/// immediate error, never a wait.
pub async fn start(
    registry: &Registry,
    policy: Policy,
    metrics: &Metrics,
    timeouts: &Timeouts,
    model: &str,
    req: GenerateRequest,
    session: Option<(&Affinity, &str)>,
) -> Result<Started, ApiError> {
    let dispatched = Instant::now();
    let mut tried: Vec<String> = Vec::new();
    let mut last_error = None;
    let preferred = match session {
        Some((affinity, key)) => affinity.worker(model, key).await,
        None => None,
    };
    for _ in 0..=MAX_RETRIES {
        let Some(worker) = registry.pick_preferring(model, policy, &tried, preferred.as_deref())
        else {
            break;
        };
        if !tried.is_empty() {
            metrics.retries.inc();
        }
        tried.push(worker.id.clone());
        let mut guard = worker.start();
        let mut client = worker.client.clone();
        let call = async {
            let mut stream = client.generate(req.clone()).await?.into_inner();
            stream.message().await.map(|first| (stream, first))
        };
        // Dropping the call on timeout resets its HTTP/2 stream: the worker drops the sequence.
        let outcome = match tokio::time::timeout(timeouts.first_token, call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Status::deadline_exceeded(format!(
                "worker '{}' sent no first token within {} ms (the first-token timeout)",
                worker.id,
                timeouts.first_token.as_millis()
            ))),
        };
        match outcome {
            Ok((stream, first)) => {
                metrics
                    .ttft
                    .with_label_values(&[model])
                    .observe(dispatched.elapsed().as_secs_f64());
                if let Some((affinity, key)) = session {
                    affinity.remember(model, key, &worker.id);
                }
                let started = Started::new(
                    Box::pin(stream),
                    first,
                    Some(guard),
                    dispatched,
                    timeouts.between_tokens,
                );
                return Ok(started.counting_prefix_cache(
                    metrics.prefix_cache_hits.with_label_values(&[model]),
                    metrics.prefix_cache_tokens.with_label_values(&[model]),
                ));
            }
            Err(status) if retryable(&status) => {
                metrics.dispatch_failures.inc();
                tracing::warn!(worker_id = %worker.id, "worker failed before its first token ({}); trying another", status.message());
                guard.failed();
                registry.mark_failed(&worker.id);
                last_error = Some(status);
            }
            Err(status) => {
                match worker_was_fine(&status) {
                    Some(true) => guard.succeeded(),
                    Some(false) => guard.failed(),
                    None => {}
                }
                return Err(api_error_of(&status));
            }
        }
    }
    match last_error {
        // The last worker tried sent nothing in time: a gateway timeout, not a refusal.
        Some(status) if status.code() == Code::DeadlineExceeded => Err(ApiError {
            status: StatusCode::GATEWAY_TIMEOUT,
            code: "worker_timeout",
            ..ApiError::unavailable(format!(
                "every worker serving '{model}' failed: {}",
                status.message()
            ))
        }),
        Some(status) => Err(ApiError::unavailable(format!(
            "every worker serving '{model}' failed: {}",
            status.message()
        ))),
        None if registry.knows_model(model) => {
            let paused = registry.paused(model);
            let why = if paused > 0 {
                format!(
                    " ({paused} paused by the circuit breaker after repeated failures or timeouts)"
                )
            } else {
                String::new()
            };
            Err(ApiError::unavailable(format!(
                "no worker serving '{model}' is available right now{why}"
            )))
        }
        None => Err(ApiError::model_not_found(model)),
    }
}

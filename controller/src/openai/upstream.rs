//! Starting a generation on a worker, with failover before the first token.

use std::pin::Pin;
use std::time::Instant;

use arena_proto::v1::{GenerateRequest, GenerateResponse};
use tokio_stream::Stream;
use tonic::{Code, Status};

use crate::dispatch::Policy;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::registry::{InFlight, Registry};

/// Other workers tried after the first fails before streaming.
const MAX_RETRIES: usize = 2;

/// The messages of a generation, from a worker or a remote endpoint.
pub type ResponseStream = Pin<Box<dyn Stream<Item = Result<GenerateResponse, Status>> + Send>>;

/// A generation that has started on a worker or an API-hosted endpoint.
pub struct Started {
    /// The rest of its stream.
    pub stream: ResponseStream,
    /// Its first message, already read (None when the stream was empty).
    pub first: Option<GenerateResponse>,
    /// Counts the request against the worker while held (none for endpoints).
    pub guard: Option<InFlight>,
    /// When the request was dispatched.
    pub dispatched: Instant,
}

/// Why a generation stopped before its finish.
#[derive(Debug)]
pub enum Broken {
    /// The call failed: the worker or endpoint went away, or the connection broke.
    Call(Status),
    /// The stream ended without a finish reason.
    Ended,
    /// The worker reported an error.
    Failed(String),
}

impl Broken {
    /// The failure for a person; `who` names the other side ("the worker", "the model").
    pub fn describe(&self, who: &str) -> String {
        match self {
            Self::Call(status) => format!("{who} failed mid-generation: {}", status.message()),
            Self::Ended => format!("{who}'s stream ended without a finish reason"),
            Self::Failed(error) => format!("{who} reported an error: {error}"),
        }
    }
}

impl Started {
    /// The next message (the first, already read, comes first); an error message is `Broken`.
    pub async fn next_message(&mut self) -> Result<GenerateResponse, Broken> {
        let next = match self.first.take() {
            Some(m) => Some(Ok(m)),
            None => tokio_stream::StreamExt::next(&mut self.stream).await,
        };
        match next {
            Some(Ok(m)) if super::respond::is_error(&m) => Err(Broken::Failed(m.error)),
            Some(Ok(m)) => Ok(m),
            Some(Err(status)) => Err(Broken::Call(status)),
            None => Err(Broken::Ended),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use arena_proto::v1::FinishReason;

    fn text(t: &str) -> GenerateResponse {
        GenerateResponse {
            text: t.into(),
            ..Default::default()
        }
    }

    fn started(
        first: Option<GenerateResponse>,
        rest: Vec<Result<GenerateResponse, Status>>,
    ) -> Started {
        Started {
            stream: Box::pin(tokio_stream::iter(rest)),
            first,
            guard: None,
            dispatched: Instant::now(),
        }
    }

    #[tokio::test]
    async fn messages_come_in_order_and_every_way_of_breaking_is_told_apart() {
        let mut s = started(Some(text("a")), vec![Ok(text("b"))]);
        assert_eq!(s.next_message().await.unwrap().text, "a");
        assert_eq!(s.next_message().await.unwrap().text, "b");
        let ended = s.next_message().await.unwrap_err();
        assert!(matches!(ended, Broken::Ended));
        assert_eq!(
            ended.describe("the worker"),
            "the worker's stream ended without a finish reason"
        );

        let failed = GenerateResponse {
            finish_reason: FinishReason::Error as i32,
            error: "out of memory".into(),
            ..Default::default()
        };
        let mut s = started(None, vec![Ok(failed)]);
        let broken = s.next_message().await.unwrap_err();
        assert_eq!(
            broken.describe("the model"),
            "the model reported an error: out of memory"
        );

        let mut s = started(None, vec![Err(Status::unavailable("connection reset"))]);
        let broken = s.next_message().await.unwrap_err();
        assert!(matches!(broken, Broken::Call(_)));
        assert_eq!(
            broken.describe("the worker"),
            "the worker failed mid-generation: connection reset"
        );
    }
}

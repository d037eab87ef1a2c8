//! A generation once started, from a worker or an API-hosted contestant: its messages, and
//! what they mean (finished, failed, broken off).

use std::pin::Pin;
use std::time::Instant;

use arena_proto::v1::{FinishReason, GenerateResponse, Usage};
use tokio_stream::Stream;
use tonic::Status;

use super::registry::InFlight;

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
            Some(Ok(m)) if is_error(&m) => Err(Broken::Failed(m.error)),
            Some(Ok(m)) => Ok(m),
            Some(Err(status)) => Err(Broken::Call(status)),
            None => Err(Broken::Ended),
        }
    }
}

/// The finish reason of a last message as OpenAI names it; None before the last message.
pub fn finish_reason(m: &GenerateResponse) -> Option<&'static str> {
    match FinishReason::try_from(m.finish_reason).ok()? {
        FinishReason::Stop => Some("stop"),
        FinishReason::Length => Some("length"),
        _ => None,
    }
}

/// The token counts a last message carries (zero when it carries none).
pub fn usage(m: &GenerateResponse) -> Usage {
    m.usage.unwrap_or_default()
}

/// Whether the message reports a failed generation.
pub fn is_error(m: &GenerateResponse) -> bool {
    m.finish_reason == FinishReason::Error as i32
}

#[cfg(test)]
mod tests {
    use super::*;

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

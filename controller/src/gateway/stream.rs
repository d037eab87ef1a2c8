//! A generation once started, from a worker or an API-hosted contestant: its messages, and
//! what they mean (finished, failed, broken off, timed out).

use std::pin::Pin;
use std::time::{Duration, Instant};

use arena_proto::v1::{FinishReason, GenerateResponse, Usage};
use prometheus::IntCounter;
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
    /// Counts the request against the worker while held, and tells the worker's breaker how
    /// the generation went (none for endpoints).
    pub guard: Option<InFlight>,
    /// When the request was dispatched.
    pub dispatched: Instant,
    /// The longest wait for each next message.
    token_timeout: Duration,
    /// When the message being waited for is late. Kept across calls, so that a caller that
    /// wakes up for its own timers (and cancels the call) does not restart the clock.
    deadline: Option<tokio::time::Instant>,
    /// Requests served from the worker's prefix cache and the prompt tokens it saved.
    prefix_cache: Option<(IntCounter, IntCounter)>,
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
    /// Nothing came for this long (the token timeout); the call was dropped.
    TimedOut(Duration),
}

impl Broken {
    /// The failure for a person; `who` names the other side ("the worker", "the model").
    pub fn describe(&self, who: &str) -> String {
        match self {
            Self::Call(status) => format!("{who} failed mid-generation: {}", status.message()),
            Self::Ended => format!("{who}'s stream ended without a finish reason"),
            Self::Failed(error) => format!("{who} reported an error: {error}"),
            Self::TimedOut(wait) => format!(
                "{who} stopped sending tokens: nothing came for {} ms (the token timeout), so the generation was stopped",
                wait.as_millis()
            ),
        }
    }
}

impl Started {
    /// A started generation whose first message is `first`; each later message may take
    /// `token_timeout` at most.
    pub fn new(
        stream: ResponseStream,
        first: Option<GenerateResponse>,
        guard: Option<InFlight>,
        dispatched: Instant,
        token_timeout: Duration,
    ) -> Self {
        Self {
            stream,
            first,
            guard,
            dispatched,
            token_timeout,
            deadline: None,
            prefix_cache: None,
        }
    }

    /// Counts, at the last message, whether the worker's prefix cache served the prompt and
    /// how many prompt tokens it saved.
    pub fn counting_prefix_cache(mut self, hits: IntCounter, tokens: IntCounter) -> Self {
        self.prefix_cache = Some((hits, tokens));
        self
    }

    /// The next message (the first, already read, comes first); an error message, a broken
    /// call or a message later than the token timeout is `Broken`, and then the call is
    /// dropped (which cancels the sequence on the worker). Cancel-safe: no message is lost
    /// when the returned future is dropped, and the token timeout keeps running.
    pub async fn next_message(&mut self) -> Result<GenerateResponse, Broken> {
        let next = match self.first.take() {
            Some(m) => Some(Ok(m)),
            None => {
                let timeout = self.token_timeout;
                let deadline = *self
                    .deadline
                    .get_or_insert_with(|| tokio::time::Instant::now() + timeout);
                let next = tokio_stream::StreamExt::next(&mut self.stream);
                match tokio::time::timeout_at(deadline, next).await {
                    Ok(next) => next,
                    Err(_) => return Err(self.broke(Broken::TimedOut(timeout))),
                }
            }
        };
        self.deadline = None;
        match next {
            Some(Ok(m)) if is_error(&m) => Err(self.broke(Broken::Failed(m.error))),
            Some(Ok(m)) => {
                if finish_reason(&m).is_some() {
                    if let Some(g) = self.guard.as_mut() {
                        g.succeeded();
                    }
                    let cached = usage(&m).cached_tokens;
                    if let Some((hits, tokens)) = self.prefix_cache.as_ref().filter(|_| cached > 0)
                    {
                        hits.inc();
                        tokens.inc_by(u64::from(cached));
                    }
                }
                Ok(m)
            }
            Some(Err(status)) => Err(self.broke(Broken::Call(status))),
            None => Err(self.broke(Broken::Ended)),
        }
    }

    /// Counts the failure against the worker and drops the call: the worker stops the
    /// sequence, and the request no longer counts as running on it.
    fn broke(&mut self, why: Broken) -> Broken {
        if let Some(mut g) = self.guard.take() {
            g.failed();
        }
        self.stream = Box::pin(tokio_stream::empty());
        why
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
        Started::new(
            Box::pin(tokio_stream::iter(rest)),
            first,
            None,
            Instant::now(),
            Duration::from_secs(30),
        )
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

    /// A stream whose next message never comes.
    fn stalled(first: Option<GenerateResponse>, timeout: Duration) -> Started {
        let stream = tokio_stream::StreamExt::chain(
            tokio_stream::iter(vec![Ok(text("b"))]),
            tokio_stream::pending(),
        );
        Started::new(Box::pin(stream), first, None, Instant::now(), timeout)
    }

    /// Whether `f` finishes within 10 s: the timeouts under test are far shorter, and a
    /// broken timeout waits forever.
    async fn soon<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("still waiting after 10 s")
    }

    #[tokio::test]
    async fn a_stalled_stream_times_out_between_tokens_and_is_dropped() {
        let mut s = stalled(Some(text("a")), Duration::from_millis(200));
        assert_eq!(s.next_message().await.unwrap().text, "a");
        assert_eq!(s.next_message().await.unwrap().text, "b");
        let started = Instant::now();
        let broken = soon(s.next_message()).await.unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(matches!(broken, Broken::TimedOut(_)));
        assert_eq!(
            broken.describe("the worker"),
            "the worker stopped sending tokens: nothing came for 200 ms (the token timeout), so the generation was stopped"
        );
        // The call is gone: nothing more comes, at once.
        assert!(matches!(soon(s.next_message()).await, Err(Broken::Ended)));
    }

    #[tokio::test]
    async fn cancelled_waits_do_not_restart_the_token_timeout() {
        let mut s = stalled(None, Duration::from_millis(300));
        assert_eq!(s.next_message().await.unwrap().text, "b");
        // A caller waking every 20 ms for its own timer, as the arena's word coalescing does:
        // were the clock restarted on each call, this would never end.
        let broken = soon(async {
            loop {
                tokio::select! {
                    m = s.next_message() => break m.unwrap_err(),
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        })
        .await;
        assert!(matches!(broken, Broken::TimedOut(_)));
    }
}

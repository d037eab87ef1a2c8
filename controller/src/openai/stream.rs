//! Streaming chat and text completions as SSE: each choice's chunks, interleaved as they come
//! and tagged with their `index`, then a usage chunk when asked for, then `data: [DONE]`.
//!
//! The response body drives the worker streams itself (no task or channel in between, so a
//! chat's role chunk and its first text leave in one write); a client that goes away drops
//! them, which cancels the sequences on the workers.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;

use arena_proto::v1::GenerateResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio_stream::{Stream, StreamExt, StreamMap};

use super::logprobs;
use super::respond::{finish, Flavor};
use super::shapes::{Choice, Delta, Envelope};
use super::types::Usage;
use crate::error::ApiError;
use crate::gateway::stream::{finish_reason, Started};
use crate::metrics::Metrics;

/// What every chunk of one response carries.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Response id.
    pub id: String,
    /// Served model name.
    pub model: String,
    /// Endpoint flavor.
    pub flavor: Flavor,
    /// Unix seconds, the same in every chunk.
    pub created: u64,
    /// Alternatives per token when log-probabilities were asked for.
    pub logprobs: Option<u32>,
}

impl Meta {
    fn object(&self) -> &'static str {
        match self.flavor {
            Flavor::Chat => "chat.completion.chunk",
            Flavor::Text => "text_completion",
        }
    }

    fn event(&self, choices: Vec<Choice<'_>>, usage: Option<Usage>) -> Event {
        let body = Envelope {
            id: &self.id,
            object: self.object(),
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        Event::default()
            .json_data(body)
            .unwrap_or_else(|e| error_event(format!("could not encode a chunk: {e}")))
    }
}

/// An SSE event carrying an OpenAI-shaped error.
pub fn error_event(message: String) -> Event {
    Event::default().data(ApiError::internal(message).body().to_string())
}

/// What one choice's stream yields to the merge.
enum Piece {
    /// A chunk to send.
    Chunk(Event),
    /// The choice ended with these token counts (its finish chunk was sent before).
    Finished(arena_proto::v1::Usage),
    /// The choice broke: this error event ends the whole response.
    Failed(Event),
}

/// Where one choice's stream is.
enum Phase {
    /// Chat opens each choice with a role-only chunk.
    Role,
    /// Relaying the worker's messages.
    Body,
    /// The finish chunk is next.
    Finish(&'static str, GenerateResponse),
    /// Telling the merge the choice's usage is next.
    Usage(arena_proto::v1::Usage),
    /// Nothing more.
    End,
}

/// One choice's relay.
struct ChoiceRelay {
    started: Started,
    index: u32,
    meta: Arc<Meta>,
    metrics: Arc<Metrics>,
    phase: Phase,
    /// Where the next token starts in the text (text completions' `text_offset`).
    offset: usize,
}

impl ChoiceRelay {
    /// A chunk of this choice: text (None for chat's role chunk), tokens, finish reason.
    fn chunk(
        &mut self,
        text: Option<&str>,
        m: Option<&GenerateResponse>,
        finish: Option<&str>,
    ) -> Event {
        let tokens = match (self.meta.logprobs, m) {
            (Some(_), Some(m)) => Some(logprobs::tokens(m)),
            _ => None,
        };
        let choice = match self.meta.flavor {
            Flavor::Chat => Choice::Delta {
                index: self.index,
                delta: Delta {
                    role: (m.is_none() && finish.is_none()).then_some("assistant"),
                    content: text.filter(|t| !t.is_empty()),
                },
                logprobs: tokens.as_deref().map(logprobs::chat),
                finish_reason: finish,
            },
            Flavor::Text => Choice::Text {
                index: self.index,
                text: text.unwrap_or(""),
                logprobs: tokens.as_deref().map(|t| {
                    logprobs::text(
                        t,
                        &mut self.offset,
                        self.meta.logprobs.is_some_and(|n| n > 0),
                    )
                }),
                finish_reason: finish,
            },
        };
        self.meta.event(vec![choice], None)
    }

    /// The next piece, or None at the end.
    async fn step(&mut self) -> Option<Piece> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::End) {
                Phase::End => return None,
                Phase::Role => {
                    self.phase = Phase::Body;
                    if self.meta.flavor == Flavor::Chat {
                        return Some(Piece::Chunk(self.chunk(None, None, None)));
                    }
                }
                Phase::Body => {
                    let m = match self.started.next_message().await {
                        Ok(m) => m,
                        Err(broken) => {
                            return Some(Piece::Failed(error_event(broken.describe("the worker"))))
                        }
                    };
                    let has_tokens = self.meta.logprobs.is_some() && !m.logprobs.is_empty();
                    let chunk = (!m.text.is_empty() || has_tokens)
                        .then(|| self.chunk(Some(&m.text), Some(&m), None));
                    self.phase = match finish_reason(&m) {
                        Some(reason) => Phase::Finish(reason, m),
                        None => Phase::Body,
                    };
                    if let Some(c) = chunk {
                        return Some(Piece::Chunk(c));
                    }
                }
                Phase::Finish(reason, m) => {
                    let u = finish(&mut self.started, &m, &self.metrics, &self.meta.model);
                    self.phase = Phase::Usage(u);
                    return Some(Piece::Chunk(self.chunk(None, None, Some(reason))));
                }
                Phase::Usage(u) => return Some(Piece::Finished(u)),
            }
        }
    }
}

type Pieces = Pin<Box<dyn Stream<Item = Piece> + Send>>;

/// Where the merged stream is.
enum MergePhase {
    /// Relaying the choices' chunks.
    Relay,
    /// `[DONE]` is next.
    Done,
    /// Nothing more.
    End,
}

/// The merged response.
struct Merge {
    choices: StreamMap<u32, Pieces>,
    meta: Arc<Meta>,
    include_usage: bool,
    prompt_tokens: Option<u32>,
    /// The first choice's prompt tokens served by the prefix cache.
    cached_tokens: Option<u32>,
    completions: Vec<u32>,
    phase: MergePhase,
}

impl Merge {
    async fn step(&mut self) -> Option<Event> {
        loop {
            match self.phase {
                MergePhase::End => return None,
                MergePhase::Done => {
                    self.phase = MergePhase::End;
                    return Some(Event::default().data("[DONE]"));
                }
                MergePhase::Relay => match self.choices.next().await {
                    Some((_, Piece::Chunk(e))) => return Some(e),
                    Some((_, Piece::Finished(u))) => {
                        self.prompt_tokens.get_or_insert(u.prompt_tokens);
                        self.cached_tokens.get_or_insert(u.cached_tokens);
                        self.completions.push(u.completion_tokens);
                    }
                    Some((_, Piece::Failed(e))) => {
                        // Dropping the other choices cancels them on their workers.
                        self.choices = StreamMap::new();
                        self.phase = MergePhase::Done;
                        return Some(e);
                    }
                    None => {
                        self.phase = MergePhase::Done;
                        if self.include_usage {
                            let usage = Usage::of_choices(
                                self.prompt_tokens.unwrap_or(0),
                                self.completions.iter().copied(),
                            )
                            .with_cached(self.cached_tokens.unwrap_or(0));
                            return Some(self.meta.event(Vec::new(), Some(usage)));
                        }
                    }
                },
            }
        }
    }
}

/// Streams the choices of `started` as one SSE response.
pub fn sse(
    started: Vec<Started>,
    meta: Meta,
    include_usage: bool,
    metrics: Arc<Metrics>,
) -> Response {
    let meta = Arc::new(meta);
    let mut choices = StreamMap::new();
    for (started, index) in started.into_iter().zip(0u32..) {
        let relay = ChoiceRelay {
            started,
            index,
            meta: meta.clone(),
            metrics: metrics.clone(),
            phase: Phase::Role,
            offset: 0,
        };
        let pieces: Pieces = Box::pin(futures_util::stream::unfold(relay, |mut r| async move {
            r.step().await.map(|p| (p, r))
        }));
        choices.insert(index, pieces);
    }
    let merge = Merge {
        choices,
        meta,
        include_usage,
        prompt_tokens: None,
        cached_tokens: None,
        completions: Vec::new(),
        phase: MergePhase::Relay,
    };
    let events = futures_util::stream::unfold(merge, |mut m| async move {
        m.step().await.map(|e| (Ok::<Event, Infallible>(e), m))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

//! Turning a worker's stream into OpenAI responses: one JSON body, or SSE chunks.

use std::convert::Infallible;

use arena_proto::v1::GenerateResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::shapes::{Choice, Delta, Envelope, Message};
use super::types::{CommonParams, Usage};
use super::{now_secs, ApiState};
use std::sync::Arc;

use crate::error::ApiError;
use crate::gateway::stream::{self as generation, finish_reason, Started};
use crate::metrics::Metrics;

/// Which endpoint's shapes to produce.
#[derive(Debug, Clone, Copy)]
pub enum Flavor {
    /// `/v1/chat/completions`: messages and deltas.
    Chat,
    /// `/v1/completions`: plain text.
    Text,
}

/// What every response of one request carries.
pub struct Meta {
    /// Response id.
    pub id: String,
    /// Served model name.
    pub model: String,
    /// Endpoint flavor.
    pub flavor: Flavor,
}

impl Meta {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.flavor, chunk) {
            (Flavor::Chat, false) => "chat.completion",
            (Flavor::Chat, true) => "chat.completion.chunk",
            (Flavor::Text, _) => "text_completion",
        }
    }

    fn envelope<'a>(
        &'a self,
        chunk: bool,
        created: u64,
        choices: Vec<Choice<'a>>,
        usage: Option<Usage>,
    ) -> Envelope<'a> {
        Envelope {
            id: &self.id,
            object: self.object(chunk),
            created,
            model: &self.model,
            choices,
            usage,
        }
    }

    fn full<'a>(&'a self, text: &'a str, finish: &'a str, usage: Usage) -> Envelope<'a> {
        let choice = match self.flavor {
            Flavor::Chat => Choice::Message {
                index: 0,
                message: Message {
                    role: "assistant",
                    content: text,
                },
                finish_reason: finish,
            },
            Flavor::Text => Choice::Text {
                index: 0,
                text,
                logprobs: None,
                finish_reason: Some(finish),
            },
        };
        self.envelope(false, now_secs(), vec![choice], Some(usage))
    }

    /// A chunk with new text (`None` for the role-only opening chunk of chat).
    fn chunk(&self, created: u64, text: Option<&str>, finish: Option<&str>) -> Event {
        let choice = match self.flavor {
            Flavor::Chat => Choice::Delta {
                index: 0,
                delta: Delta {
                    role: (text.is_none() && finish.is_none()).then_some("assistant"),
                    content: text,
                },
                finish_reason: finish,
            },
            Flavor::Text => Choice::Text {
                index: 0,
                text: text.unwrap_or(""),
                logprobs: None,
                finish_reason: finish,
            },
        };
        event(&self.envelope(true, created, vec![choice], None))
    }

    fn usage_chunk(&self, created: u64, usage: Usage) -> Event {
        event(&self.envelope(true, created, Vec::new(), Some(usage)))
    }
}

/// An SSE event carrying `body` as JSON.
fn event(body: &Envelope<'_>) -> Event {
    Event::default()
        .json_data(body)
        .unwrap_or_else(|e| error_event(format!("could not encode a chunk: {e}")))
}

/// The OpenAI usage of a last message.
fn usage(m: &GenerateResponse) -> Usage {
    let u = generation::usage(m);
    Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u.prompt_tokens + u.completion_tokens,
    }
}

/// Counts a finished generation's tokens and duration.
fn record(metrics: &Metrics, meta: &Meta, started: std::time::Instant, m: &GenerateResponse) {
    let u = usage(m);
    metrics
        .tokens
        .with_label_values(&[&meta.model])
        .inc_by(u64::from(u.completion_tokens));
    metrics
        .generation
        .with_label_values(&[&meta.model])
        .observe(started.elapsed().as_secs_f64());
}

/// Dispatches a checked request and answers in the endpoint's shape, streamed or not.
pub async fn serve(
    state: &ApiState,
    generate: arena_proto::v1::GenerateRequest,
    flavor: Flavor,
    common: &CommonParams,
) -> Result<Response, ApiError> {
    let meta = Meta {
        id: generate.request_id.clone(),
        model: generate.model.clone(),
        flavor,
    };
    let started = state.gateway.start_generation(generate, false).await?;
    if common.stream {
        let include_usage = common
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage);
        Ok(stream(
            started,
            meta,
            include_usage,
            state.gateway.metrics.clone(),
        ))
    } else {
        complete(started, meta, &state.gateway.metrics).await
    }
}

/// Collects the whole generation into one response body.
async fn complete(
    mut started: Started,
    meta: Meta,
    metrics: &Metrics,
) -> Result<Response, ApiError> {
    let mut text = String::new();
    loop {
        let m = started
            .next_message()
            .await
            .map_err(|b| ApiError::internal(b.describe("the worker")))?;
        text.push_str(&m.text);
        if let Some(finish) = finish_reason(&m) {
            started.guard.take();
            record(metrics, &meta, started.dispatched, &m);
            return Ok(Json(meta.full(&text, finish, usage(&m))).into_response());
        }
    }
}

fn error_event(message: String) -> Event {
    Event::default().data(ApiError::internal(message).body().to_string())
}

/// Where a response stream is.
enum Phase {
    /// Chat opens with a role-only chunk.
    Role,
    /// Relaying the worker's messages.
    Body,
    /// The finish chunk is next.
    Finish(&'static str, GenerateResponse),
    /// The usage chunk is next.
    Usage(Usage),
    /// `[DONE]` is next.
    Done,
    /// Nothing more.
    End,
}

/// The state of one SSE response.
struct Relay {
    started: Started,
    meta: Meta,
    created: u64,
    include_usage: bool,
    metrics: Arc<Metrics>,
    phase: Phase,
}

impl Relay {
    /// The next event, or None at the end.
    async fn step(&mut self) -> Option<Event> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::End) {
                Phase::End => return None,
                Phase::Role => {
                    self.phase = Phase::Body;
                    if matches!(self.meta.flavor, Flavor::Chat) {
                        return Some(self.meta.chunk(self.created, None, None));
                    }
                }
                Phase::Body => {
                    self.phase = Phase::Done;
                    let m = match self.started.next_message().await {
                        Ok(m) => m,
                        Err(broken) => return Some(error_event(broken.describe("the worker"))),
                    };
                    let text = (!m.text.is_empty())
                        .then(|| self.meta.chunk(self.created, Some(&m.text), None));
                    self.phase = match finish_reason(&m) {
                        Some(reason) => Phase::Finish(reason, m),
                        None => Phase::Body,
                    };
                    if text.is_some() {
                        return text;
                    }
                }
                Phase::Finish(reason, m) => {
                    record(&self.metrics, &self.meta, self.started.dispatched, &m);
                    self.phase = if self.include_usage {
                        Phase::Usage(usage(&m))
                    } else {
                        Phase::Done
                    };
                    return Some(self.meta.chunk(self.created, None, Some(reason)));
                }
                Phase::Usage(u) => {
                    self.phase = Phase::Done;
                    return Some(self.meta.usage_chunk(self.created, u));
                }
                Phase::Done => {
                    // The worker is free for dispatch before the client reads the last line.
                    self.started.guard.take();
                    return Some(Event::default().data("[DONE]"));
                }
            }
        }
    }
}

/// Streams SSE chunks: (chat: the role first), text deltas, a chunk with the finish reason,
/// usage when asked for, then `[DONE]`. A worker failing after the first token ends the stream
/// with an error event. The response body drives the worker stream itself (no task or channel
/// in between, so the role chunk and the first text leave in one write); a client that goes
/// away drops it, which cancels the sequence on the worker.
pub fn stream(
    started: Started,
    meta: Meta,
    include_usage: bool,
    metrics: Arc<Metrics>,
) -> Response {
    let relay = Relay {
        started,
        meta,
        created: now_secs(),
        include_usage,
        metrics,
        phase: Phase::Role,
    };
    let events = futures_util::stream::unfold(relay, |mut relay| async move {
        relay
            .step()
            .await
            .map(|e| (Ok::<Event, Infallible>(e), relay))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

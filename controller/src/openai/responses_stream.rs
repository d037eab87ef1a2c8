//! Streaming `/v1/responses` with the events the OpenAI SDK reads: `response.created`,
//! `response.in_progress`, `response.output_item.added`, `response.content_part.added`,
//! `response.output_text.delta`..., `response.output_text.done`, `response.content_part.done`,
//! `response.output_item.done`, then `response.completed` (or `response.incomplete` at
//! `max_output_tokens`). A worker failing midway sends `error` and `response.failed`.
//!
//! As for chat, the response body drives the worker stream itself; a client that goes away
//! drops it, which cancels the sequence on the worker.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::respond::finish;
use super::responses::{Meta, Status};
use super::types::Usage;
use crate::gateway::stream::{finish_reason, Started};
use crate::metrics::Metrics;

/// The state of one streamed response.
struct Relay {
    started: Started,
    meta: Meta,
    metrics: Arc<Metrics>,
    /// Events ready to send.
    queue: VecDeque<Event>,
    /// The next event's `sequence_number`.
    sequence: u64,
    /// The text so far.
    text: String,
    /// No more messages to read.
    ended: bool,
}

impl Relay {
    /// Queues an event of `kind`: `body` plus its type and sequence number.
    fn push(&mut self, kind: &str, mut body: Value) {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        let event = Event::default()
            .event(kind)
            .json_data(&body)
            .unwrap_or_else(|e| Event::default().data(format!("could not encode an event: {e}")));
        self.queue.push_back(event);
    }

    /// Where the text goes: the message item (output 0) and its part (content 0).
    fn place(&self) -> Value {
        json!({"item_id": self.meta.message_id, "output_index": 0, "content_index": 0})
    }

    fn open(&mut self) {
        let response = self.meta.object(Status::InProgress, None, None, None);
        self.push("response.created", json!({"response": response}));
        self.push("response.in_progress", json!({"response": response}));
        let item = self.meta.item(Status::InProgress, None);
        self.push(
            "response.output_item.added",
            json!({"output_index": 0, "item": item}),
        );
        let mut part = self.place();
        part["part"] = Meta::part("");
        self.push("response.content_part.added", part);
    }

    fn close(&mut self, status: Status, usage: Usage) {
        let text = std::mem::take(&mut self.text);
        let mut done = self.place();
        done["text"] = json!(text);
        done["logprobs"] = json!([]);
        self.push("response.output_text.done", done);
        let mut part = self.place();
        part["part"] = Meta::part(&text);
        self.push("response.content_part.done", part);
        let item = self.meta.item(status, Some(&text));
        self.push(
            "response.output_item.done",
            json!({"output_index": 0, "item": item}),
        );
        let response = self.meta.object(status, Some(&text), Some(usage), None);
        let kind = if status == Status::Incomplete {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.push(kind, json!({"response": response}));
    }

    fn fail(&mut self, message: String) {
        self.push(
            "error",
            json!({"code": "server_error", "message": message, "param": null}),
        );
        let text = std::mem::take(&mut self.text);
        let response = self
            .meta
            .object(Status::Failed, Some(&text), None, Some(&message));
        self.push("response.failed", json!({"response": response}));
    }

    /// The next event, or None at the end.
    async fn step(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if self.ended {
                return None;
            }
            let m = match self.started.next_message().await {
                Ok(m) => m,
                Err(broken) => {
                    self.ended = true;
                    self.fail(broken.describe("the worker"));
                    continue;
                }
            };
            if !m.text.is_empty() {
                self.text.push_str(&m.text);
                let mut delta = self.place();
                delta["delta"] = json!(m.text);
                delta["logprobs"] = json!([]);
                self.push("response.output_text.delta", delta);
            }
            if let Some(reason) = finish_reason(&m) {
                self.ended = true;
                let u = finish(&mut self.started, &m, &self.metrics, &self.meta.model);
                let usage = Usage::of_choices(u.prompt_tokens, [u.completion_tokens])
                    .with_cached(u.cached_tokens);
                self.close(Status::of_finish(reason), usage);
            }
        }
    }
}

/// Streams one generation as Responses events.
pub fn sse(started: Vec<Started>, meta: Meta, metrics: Arc<Metrics>) -> Response {
    let mut relays = started.into_iter().map(|started| Relay {
        started,
        meta: meta.clone(),
        metrics: metrics.clone(),
        queue: VecDeque::new(),
        sequence: 0,
        text: String::new(),
        ended: false,
    });
    let relay = relays.next().map(|mut r| {
        r.open();
        r
    });
    let events = futures_util::stream::unfold(relay, |relay| async move {
        let mut r = relay?;
        r.step()
            .await
            .map(|e| (Ok::<Event, Infallible>(e), Some(r)))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

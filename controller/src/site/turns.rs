//! One user turn (or a regeneration) on one or two sides, its input already checked by
//! `input.rs`: the user message stored, every side generated at once and streamed as tagged
//! SSE events, and each answer stored before its side's `end` event, so a vote after `done`
//! always finds it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use arena_proto::v1::{generate_request, ChatMessage, GenerateRequest, Messages, SamplingParams};
use arena_store::{MessageRecord, NewMessage, StoreError};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use super::{store_error, ArenaState};
use crate::error::ApiError;
use crate::gateway::stream::{finish_reason, usage, Started};
use crate::ids::random_id;

/// A conversation as stored: the model answering and its messages.
pub struct Thread {
    /// Conversation id.
    pub conversation_id: String,
    /// The answering model.
    pub model: String,
    /// Every row, superseded ones included, in order.
    pub messages: Vec<MessageRecord>,
}

impl Thread {
    /// Loads a conversation's messages.
    pub async fn load(
        state: &ArenaState,
        conversation_id: &str,
        model: &str,
    ) -> Result<Self, ApiError> {
        let messages = state
            .store
            .messages(conversation_id)
            .await
            .map_err(store_error)?;
        Ok(Self {
            conversation_id: conversation_id.to_string(),
            model: model.to_string(),
            messages,
        })
    }

    /// User turns so far.
    pub fn turns(&self) -> i64 {
        self.messages.iter().filter(|m| m.role == "user").count() as i64
    }

    /// The current answer to the last turn, if it has one.
    pub fn current_answer(&self) -> Option<&MessageRecord> {
        let turn = self.turns();
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == "assistant" && !m.superseded && m.turn == turn)
    }

    /// True when the last turn has its answer (or there is no turn yet).
    pub fn answered(&self) -> bool {
        self.turns() == 0 || self.current_answer().is_some()
    }

    fn next_seq(&self) -> i64 {
        self.messages.last().map_or(0, |m| m.seq + 1)
    }

    /// The conversation a model sees: current messages only, minus the last turn's answer
    /// when it is being regenerated.
    fn history(&self, drop_last_answer: bool) -> Vec<ChatMessage> {
        let turn = self.turns();
        self.messages
            .iter()
            .filter(|m| !m.superseded)
            .filter(|m| !(drop_last_answer && m.role == "assistant" && m.turn == turn))
            .map(|m| ChatMessage {
                role: m.role.clone(),
                content: m.content.clone(),
            })
            .collect()
    }
}

/// One side's generation to run.
pub struct SideJob {
    tag: &'static str,
    model: String,
    conversation_id: String,
    messages: Vec<ChatMessage>,
    seq: i64,
    turn: i64,
}

/// Checks that every thread can take a new turn, stores the user message in each (one
/// transaction), and returns the jobs answering it, tagged `a`, `b`.
pub async fn begin_turn(
    state: &ArenaState,
    threads: &[Thread],
    text: &str,
) -> Result<(i64, Vec<SideJob>), ApiError> {
    let turns = threads.iter().map(Thread::turns).max().unwrap_or(0);
    let limit = state.settings.max_turns as i64;
    if turns >= limit {
        return Err(ApiError {
            code: "turn_limit",
            ..ApiError::invalid_param(
                "text",
                format!("this conversation reached its limit of {limit} turns: start a new one"),
            )
        });
    }
    ensure_answered(threads)?;
    let turn = turns + 1;
    let user: Vec<NewMessage> = threads
        .iter()
        .map(|t| NewMessage {
            conversation_id: t.conversation_id.clone(),
            seq: t.next_seq(),
            turn,
            role: "user",
            content: text.to_string(),
            ..Default::default()
        })
        .collect();
    state.store.add_messages(&user).await.map_err(|e| match e {
        StoreError::Conflict(_) => in_progress(),
        other => store_error(other),
    })?;
    let jobs = threads
        .iter()
        .zip(["a", "b"])
        .map(|(t, tag)| {
            let mut messages = t.history(false);
            messages.push(ChatMessage {
                role: "user".into(),
                content: text.to_string(),
            });
            SideJob {
                tag,
                model: t.model.clone(),
                conversation_id: t.conversation_id.clone(),
                messages,
                seq: t.next_seq() + 1,
                turn,
            }
        })
        .collect();
    Ok((turn, jobs))
}

/// Marks the last turn's answers superseded and returns jobs answering it again.
pub async fn begin_regenerate(
    state: &ArenaState,
    threads: &[Thread],
) -> Result<(i64, Vec<SideJob>), ApiError> {
    let turn = threads.iter().map(Thread::turns).max().unwrap_or(0);
    if turn == 0 {
        return Err(ApiError::conflict(
            "nothing_to_regenerate",
            "there is no answer to regenerate yet: send a message first",
        ));
    }
    ensure_answered(threads)?;
    for t in threads {
        state
            .store
            .supersede(&t.conversation_id, turn)
            .await
            .map_err(store_error)?;
    }
    let jobs = threads
        .iter()
        .zip(["a", "b"])
        .map(|(t, tag)| SideJob {
            tag,
            model: t.model.clone(),
            conversation_id: t.conversation_id.clone(),
            messages: t.history(true),
            seq: t.next_seq(),
            turn,
        })
        .collect();
    Ok((turn, jobs))
}

fn in_progress() -> ApiError {
    ApiError::conflict(
        "turn_in_progress",
        "an answer is still being generated: wait for it to finish",
    )
}

fn ensure_answered(threads: &[Thread]) -> Result<(), ApiError> {
    if threads.iter().all(Thread::answered) {
        Ok(())
    } else {
        Err(in_progress())
    }
}

/// How to present errors: in anonymous battles the models' names are replaced before an
/// error message reaches the browser.
pub struct Streaming {
    /// Names to hide from error messages.
    pub hide: Vec<String>,
    /// Battle-only endpoints may answer.
    pub in_battle: bool,
}

fn redact(message: &str, hide: &[String]) -> String {
    hide.iter()
        .filter(|n| !n.is_empty())
        .fold(message.to_string(), |m, name| {
            m.replace(name, "(hidden model)")
        })
}

fn event(v: serde_json::Value) -> Event {
    Event::default().data(v.to_string())
}

/// Runs every side at once and streams their tagged events, then `done`.
pub fn stream(
    state: Arc<ArenaState>,
    jobs: Vec<SideJob>,
    params: SamplingParams,
    turn: i64,
    how: Streaming,
) -> Response {
    let (tx, rx) = mpsc::channel::<Event>(64);
    let how = Arc::new(how);
    tokio::spawn(async move {
        let sides: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                tokio::spawn(run_side(
                    state.clone(),
                    job,
                    params.clone(),
                    tx.clone(),
                    how.clone(),
                ))
            })
            .collect();
        for side in sides {
            let _ = side.await;
        }
        let _ = tx.send(event(json!({"type": "done", "turn": turn}))).await;
    });
    let events = ReceiverStream::new(rx).map(Ok::<Event, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// How one side's generation ended.
struct Outcome {
    finish: &'static str,
    error: Option<String>,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
}

impl Outcome {
    fn failed(message: String) -> Self {
        Self {
            finish: "error",
            error: Some(message),
            prompt_tokens: None,
            completion_tokens: None,
        }
    }
}

/// Streams one side's deltas into `tx`; a client that goes away cancels the generation. The
/// answer (whole or partial) is stored, then the side's `end` or `error` event is sent.
async fn run_side(
    state: Arc<ArenaState>,
    job: SideJob,
    params: SamplingParams,
    tx: mpsc::Sender<Event>,
    how: Arc<Streaming>,
) {
    let dispatched = Instant::now();
    let request = GenerateRequest {
        request_id: random_id("arena-"),
        model: job.model.clone(),
        input: Some(generate_request::Input::Chat(Messages {
            messages: job.messages.clone(),
        })),
        params: Some(params),
        system_message: None,
        return_tokens: false,
    };
    let mut text = String::new();
    let mut ttft_ms = None;
    let outcome = match state.gateway.start_generation(request, how.in_battle).await {
        Err(e) => Outcome::failed(e.message),
        Ok(started) => {
            ttft_ms = Some(dispatched.elapsed().as_millis() as i64);
            relay(started, job.tag, &mut text, &tx).await
        }
    };
    let stored = state
        .store
        .add_messages(&[NewMessage {
            conversation_id: job.conversation_id.clone(),
            seq: job.seq,
            turn: job.turn,
            role: "assistant",
            content: text,
            model: Some(job.model.clone()),
            prompt_tokens: outcome.prompt_tokens,
            completion_tokens: outcome.completion_tokens,
            latency_ms: Some(dispatched.elapsed().as_millis() as i64),
            ttft_ms,
            finish_reason: Some(outcome.finish.to_string()),
            error: outcome.error.clone(),
        }])
        .await;
    let last = match (stored, &outcome.error) {
        (Err(e), _) => {
            tracing::error!(conversation = %job.conversation_id, "could not store an answer: {e}");
            json!({"type": "error", "side": job.tag, "message": "the answer could not be stored"})
        }
        (Ok(()), Some(message)) => {
            json!({"type": "error", "side": job.tag, "message": redact(message, &how.hide)})
        }
        (Ok(()), None) => json!({
            "type": "end",
            "side": job.tag,
            "finish_reason": outcome.finish,
            "tokens": outcome.completion_tokens,
        }),
    };
    let _ = tx.send(event(last)).await;
}

/// Forwards a started generation's text as delta events until it finishes, fails, or the
/// client leaves (then the stream is dropped, which cancels the sequence on the worker).
async fn relay(
    mut started: Started,
    tag: &'static str,
    text: &mut String,
    tx: &mpsc::Sender<Event>,
) -> Outcome {
    loop {
        let m = match started.next_message().await {
            Ok(m) => m,
            Err(broken) => return Outcome::failed(broken.describe("the model")),
        };
        if !m.text.is_empty() {
            text.push_str(&m.text);
            let delta = json!({"type": "delta", "side": tag, "text": m.text});
            if tx.send(event(delta)).await.is_err() {
                return Outcome {
                    finish: "cancelled",
                    error: None,
                    prompt_tokens: None,
                    completion_tokens: None,
                };
            }
        }
        if let Some(reason) = finish_reason(&m) {
            let u = usage(&m);
            return Outcome {
                finish: reason,
                error: None,
                prompt_tokens: Some(i64::from(u.prompt_tokens)),
                completion_tokens: Some(i64::from(u.completion_tokens)),
            };
        }
    }
}

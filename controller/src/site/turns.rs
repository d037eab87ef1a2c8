//! One user turn (or a regeneration) on one or two sides, its input already checked by
//! `input.rs`: the user message and the answers-to-be stored at once (answers as
//! `generating`, with a lease renewed while they stream), every side generated at once and
//! streamed as tagged SSE events, and each answer's end stored before its side's `end` event,
//! so a vote after `done` always finds it. An answer cut short by a disconnect is stored as
//! `interrupted`; one whose controller died is closed as `interrupted` when its lease runs
//! out ([`spawn_lease_sweep`]).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arena_proto::v1::{generate_request, ChatMessage, GenerateRequest, Messages, SamplingParams};
use arena_ratings::clock::unix_ms;
use arena_store::{
    AnswerUpdate, ArenaStore, Finished, MessageRecord, NewMessage, OpenTurn, StoreError,
    GENERATING, INTERRUPTED,
};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use super::coalesce::Coalescer;
use super::{store_error, ArenaState};
use crate::error::ApiError;
use crate::gateway::stream::{finish_reason, Started};
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

    /// True when the last turn's answer is no longer being generated (or there is no turn
    /// yet).
    pub fn answered(&self) -> bool {
        let now = unix_ms() as i64;
        self.turns() == 0 || self.current_answer().is_some_and(|m| !m.in_flight(now))
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
}

/// The row of an answer about to be generated.
fn pending_answer(state: &ArenaState, t: &Thread, seq: i64, turn: i64) -> NewMessage {
    NewMessage {
        conversation_id: t.conversation_id.clone(),
        seq,
        turn,
        role: "assistant",
        model: Some(t.model.clone()),
        finish_reason: Some(GENERATING.into()),
        lease_ms: Some(lease_until(state)),
        ..Default::default()
    }
}

fn lease_until(state: &ArenaState) -> i64 {
    (unix_ms() + state.settings.answer_lease.as_millis() as u64) as i64
}

/// Writes a turn's opening rows; losing a race is "in progress", a vote is "closed".
async fn open(state: &ArenaState, turn: OpenTurn) -> Result<(), ApiError> {
    state.store.open_turn(&turn).await.map_err(|e| match e {
        StoreError::Conflict(_) => in_progress(),
        StoreError::Closed => battle_closed(),
        other => store_error(other),
    })
}

/// A battle with its vote takes no more turns.
pub fn battle_closed() -> ApiError {
    ApiError::conflict(
        "battle_closed",
        "this battle has been voted on and takes no more turns: start a new round",
    )
}

/// Checks that every thread can take a new turn, stores the user message and the pending
/// answer in each (one transaction, with the battle locked and still unvoted when
/// `battle_id` is set), and returns the jobs answering it, tagged `a`, `b`.
pub async fn begin_turn(
    state: &ArenaState,
    battle_id: Option<&str>,
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
    let rows: Vec<NewMessage> = threads
        .iter()
        .flat_map(|t| {
            let user = NewMessage {
                conversation_id: t.conversation_id.clone(),
                seq: t.next_seq(),
                turn,
                role: "user",
                content: text.to_string(),
                ..Default::default()
            };
            [user, pending_answer(state, t, t.next_seq() + 1, turn)]
        })
        .collect();
    open(
        state,
        OpenTurn {
            battle_id: battle_id.map(str::to_string),
            supersede: Vec::new(),
            rows,
        },
    )
    .await?;
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
            }
        })
        .collect();
    Ok((turn, jobs))
}

/// Marks the last turn's answers superseded, stores new pending answers (one transaction)
/// and returns jobs answering it again.
pub async fn begin_regenerate(
    state: &ArenaState,
    battle_id: Option<&str>,
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
    open(
        state,
        OpenTurn {
            battle_id: battle_id.map(str::to_string),
            supersede: threads
                .iter()
                .map(|t| (t.conversation_id.clone(), turn))
                .collect(),
            rows: threads
                .iter()
                .map(|t| pending_answer(state, t, t.next_seq(), turn))
                .collect(),
        },
    )
    .await?;
    let jobs = threads
        .iter()
        .zip(["a", "b"])
        .map(|(t, tag)| SideJob {
            tag,
            model: t.model.clone(),
            conversation_id: t.conversation_id.clone(),
            messages: t.history(true),
            seq: t.next_seq(),
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

impl Streaming {
    /// Anonymous battles hide names, errors' details, token counts and token boundaries.
    fn anonymous(&self) -> bool {
        !self.hide.is_empty()
    }

    /// An error as this client may see it. In anonymous battles the details (a context
    /// length, a prompt's token count, a worker's words) would tell the models apart, so
    /// either side says the same thing for the same kind of failure.
    fn public_error(&self, failure: &Failure) -> String {
        if !self.anonymous() {
            return failure.message.clone();
        }
        if failure.code == "context_length_exceeded" {
            "the conversation is too long for this model: start a new battle".into()
        } else {
            "this model could not answer: regenerate to try again".into()
        }
    }
}

/// A side's failure: the full message (stored for the operator) and its kind.
struct Failure {
    message: String,
    code: &'static str,
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
    /// Shown to the client as the side's `error` event (in its public form).
    error: Option<Failure>,
    /// Stored with the answer only (the client is gone).
    note: Option<&'static str>,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
}

impl Outcome {
    fn failed(message: String, code: &'static str) -> Self {
        Self {
            finish: "error",
            error: Some(Failure { message, code }),
            note: None,
            prompt_tokens: None,
            completion_tokens: None,
        }
    }

    fn interrupted() -> Self {
        Self {
            finish: INTERRUPTED,
            error: None,
            note: Some("the client disconnected before the answer finished"),
            prompt_tokens: None,
            completion_tokens: None,
        }
    }
}

/// Renews the answer's lease and saves its text so far until aborted, so a crash loses at
/// most a few seconds of it and the answer is closed soon after.
fn keep_alive(
    state: Arc<ArenaState>,
    job: &SideJob,
    text: Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    let (conversation_id, seq) = (job.conversation_id.clone(), job.seq);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.settings.answer_lease / 3);
        tick.tick().await;
        loop {
            tick.tick().await;
            let content = text.lock().map(|t| t.clone()).unwrap_or_default();
            let update = AnswerUpdate {
                conversation_id: conversation_id.clone(),
                seq,
                content,
                finished: None,
                lease_ms: lease_until(&state),
            };
            if let Err(e) = state.store.update_answer(&update).await {
                tracing::warn!(conversation = %conversation_id, "could not renew an answer's lease: {e}");
            }
        }
    })
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
        // The gateway's: the conversation's, on workers.
        cache_scope: None,
    };
    let text = Arc::new(Mutex::new(String::new()));
    let keeper = keep_alive(state.clone(), &job, text.clone());
    let mut ttft_ms = None;
    let outcome = match state
        .gateway
        .start_generation(request, how.in_battle, Some(&job.conversation_id))
        .await
    {
        Err(e) => Outcome::failed(e.message, e.code),
        Ok(started) => {
            ttft_ms = Some(dispatched.elapsed().as_millis() as i64);
            let hold = how.anonymous().then(Coalescer::default);
            relay(started, job.tag, hold, &text, &tx).await
        }
    };
    keeper.abort();
    let content = text.lock().map(|t| t.clone()).unwrap_or_default();
    let stored = state
        .store
        .update_answer(&AnswerUpdate {
            conversation_id: job.conversation_id.clone(),
            seq: job.seq,
            content,
            finished: Some(Finished {
                prompt_tokens: outcome.prompt_tokens,
                completion_tokens: outcome.completion_tokens,
                latency_ms: Some(dispatched.elapsed().as_millis() as i64),
                ttft_ms,
                finish_reason: outcome.finish.to_string(),
                error: outcome
                    .error
                    .as_ref()
                    .map(|f| f.message.clone())
                    .or(outcome.note.map(str::to_string)),
            }),
            lease_ms: 0,
        })
        .await;
    let last = match (stored, &outcome.error) {
        (Err(e), _) => {
            tracing::error!(conversation = %job.conversation_id, "could not store an answer: {e}");
            json!({"type": "error", "side": job.tag, "message": "the answer could not be stored"})
        }
        (Ok(()), Some(failure)) => {
            json!({"type": "error", "side": job.tag, "message": how.public_error(failure)})
        }
        (Ok(()), None) => {
            let mut end = json!({"type": "end", "side": job.tag, "finish_reason": outcome.finish});
            // A token count tells tokenizers apart: anonymous battles leave it out.
            if !how.anonymous() {
                end["tokens"] = json!(outcome.completion_tokens);
            }
            end
        }
    };
    let _ = tx.send(event(last)).await;
}

/// Sends one delta event; false when the client has gone.
async fn send_delta(tx: &mpsc::Sender<Event>, tag: &str, text: Option<String>) -> bool {
    match text {
        Some(t) if !t.is_empty() => tx
            .send(event(json!({"type": "delta", "side": tag, "text": t})))
            .await
            .is_ok(),
        _ => true,
    }
}

/// Forwards a started generation's text as delta events (coalesced into words when `hold`
/// is set) until it finishes, fails, or the client leaves (then the stream is dropped, which
/// cancels the sequence on the worker).
async fn relay(
    mut started: Started,
    tag: &'static str,
    mut hold: Option<Coalescer>,
    text: &Mutex<String>,
    tx: &mpsc::Sender<Event>,
) -> Outcome {
    loop {
        let deadline = hold.as_ref().and_then(Coalescer::deadline);
        let next = match deadline {
            // next_message is cancel-safe: a message is never lost to the timer.
            Some(at) => tokio::select! {
                m = started.next_message() => Some(m),
                _ = tokio::time::sleep_until(at) => None,
            },
            None => Some(started.next_message().await),
        };
        let now = tokio::time::Instant::now();
        let m = match next {
            None => {
                let held = hold.as_mut().and_then(|h| h.flush(now));
                if !send_delta(tx, tag, held).await {
                    return Outcome::interrupted();
                }
                continue;
            }
            Some(Ok(m)) => m,
            Some(Err(broken)) => {
                let held = hold.as_mut().and_then(|h| h.flush(now));
                send_delta(tx, tag, held).await;
                return Outcome::failed(broken.describe("the model"), "model_error");
            }
        };
        if !m.text.is_empty() {
            if let Ok(mut t) = text.lock() {
                t.push_str(&m.text);
            }
            let out = match hold.as_mut() {
                Some(h) => h.push(&m.text, now),
                None => Some(m.text.clone()),
            };
            if !send_delta(tx, tag, out).await {
                return Outcome::interrupted();
            }
        }
        if let Some(reason) = finish_reason(&m) {
            let held = hold.as_mut().and_then(|h| h.flush(now));
            if !send_delta(tx, tag, held).await {
                return Outcome::interrupted();
            }
            // No usage, or an estimated one without a prompt count: unknown is stored as
            // NULL, never as a count of 0.
            return Outcome {
                finish: reason,
                error: None,
                note: None,
                prompt_tokens: m
                    .usage
                    .filter(|u| !u.estimated)
                    .map(|u| i64::from(u.prompt_tokens)),
                completion_tokens: m.usage.map(|u| i64::from(u.completion_tokens)),
            };
        }
    }
}

/// Closes the answers whose lease ran out (their controller stopped) as `interrupted`: once
/// at start, then every half lease.
pub fn spawn_lease_sweep(
    store: Arc<dyn ArenaStore>,
    lease: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval((lease / 2).max(Duration::from_millis(50)));
        loop {
            tick.tick().await;
            match store.close_expired_answers(unix_ms() as i64).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    answers = n,
                    "closed answers whose controller stopped as interrupted"
                ),
                Err(e) => tracing::warn!("could not close expired answers: {e}"),
            }
        }
    })
}

//! Starting a checked request's `n` generations at once, and answering with one JSON body;
//! streams are in `stream`.

use arena_proto::v1::{generate_request, GenerateRequest, SamplingParams};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::future::try_join_all;
use sha2::{Digest, Sha256};

use super::logprobs::{self, Token};
use super::params::Common;
use super::shapes::{Choice, Envelope, Message};
use super::stream;
use super::types::Usage;
use super::{now_secs, ApiState};
use crate::error::ApiError;
use crate::gateway::stream::{self as generation, finish_reason, Started};
use crate::metrics::Metrics;

/// Which endpoint's shapes to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `/v1/chat/completions`: messages and deltas.
    Chat,
    /// `/v1/completions`: plain text.
    Text,
}

/// How the client named the fields the worker's errors are about.
#[derive(Debug, Clone, Copy)]
pub struct Names {
    /// The token limit (`max_tokens`, `max_completion_tokens`, `max_output_tokens`).
    pub max_tokens: &'static str,
    /// The input (`messages`, `prompt`, `input`).
    pub input: &'static str,
    /// The alternatives per token (`top_logprobs`, or `logprobs` on text completions).
    pub top_logprobs: &'static str,
}

/// A checked request, ready to dispatch.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The generation every choice runs (each gets its own id, and seed when seeded).
    pub generate: GenerateRequest,
    /// Choices.
    pub n: u32,
    /// Answer as server-sent events.
    pub stream: bool,
    /// Streams end with a usage chunk.
    pub include_usage: bool,
    /// Alternatives per token when log-probabilities were asked for.
    pub logprobs: Option<u32>,
    /// The client's field names, for the worker's errors.
    pub names: Names,
    /// The conversation (`x-session-id` header, else the `user` field) whose turns go to the
    /// worker holding it in its prefix cache.
    pub session: Option<String>,
}

/// The worker's request: `input` for `model` under `request_id`.
pub fn generation(
    request_id: String,
    model: String,
    input: generate_request::Input,
    params: SamplingParams,
) -> GenerateRequest {
    GenerateRequest {
        request_id,
        model,
        input: Some(input),
        params: Some(params),
        system_message: None,
        return_tokens: false,
        // The gateway's: the conversation's, on workers.
        cache_scope: None,
    }
}

impl Plan {
    /// A chat or text completion's plan: `input` for `model` with the request's common
    /// fields (its choices among them), under a fresh id that starts `id_prefix`; `names` are
    /// the client's for the input and the alternatives per token.
    pub fn completion(
        id_prefix: &str,
        model: String,
        input: generate_request::Input,
        common: Common,
        logprobs: Option<u32>,
        (input_name, top_logprobs): (&'static str, &'static str),
    ) -> Plan {
        let id = crate::ids::random_id(id_prefix);
        Plan {
            generate: generation(id, model, input, common.sampling),
            n: common.n,
            stream: common.stream,
            include_usage: common.include_usage,
            logprobs,
            session: common.user,
            names: Names {
                max_tokens: common.max_name,
                input: input_name,
                top_logprobs,
            },
        }
    }

    /// Takes the conversation from the `x-session-id` header when it holds non-empty text (it
    /// wins over the `user` field), and makes it the caller's own: under another API key the
    /// same `user` or session id is another conversation, and none is an arena conversation's
    /// id, so a client who guesses someone's cannot meet their prompts in a worker's prefix
    /// cache.
    pub fn session_from(&mut self, headers: &axum::http::HeaderMap) {
        let header = headers
            .get("x-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let Some(session) = header {
            self.session = Some(session.to_string());
        }
        if let Some(session) = self.session.as_mut() {
            // A digest: the key itself is not kept in the affinity map.
            let owner = super::bearer_key(headers).map_or_else(
                || "-".to_string(),
                |k| crate::ids::hex(&Sha256::digest(k.as_bytes()))[..16].to_string(),
            );
            *session = format!("v1/{owner}/{session}");
        }
    }
}

/// Rewrites an error from dispatch so that it names the client's fields: the worker says
/// `max_new_tokens`, `prompt` and `messages` whatever the endpoint.
pub fn rename(mut e: ApiError, names: Names) -> ApiError {
    let renamed = match e.param.as_deref() {
        Some("max_new_tokens") => Some(names.max_tokens),
        Some("messages" | "prompt") => Some(names.input),
        Some("top_logprobs") => Some(names.top_logprobs),
        // The conversation template refused the messages (roles out of order).
        None if e.message.starts_with("template error") => Some(names.input),
        _ => None,
    };
    if let Some(name) = renamed {
        e.param = Some(name.to_string());
    }
    e.message = e.message.replace("max_new_tokens", names.max_tokens);
    e
}

/// Starts the plan's `n` generations at once, so the worker batches them; if one cannot
/// start, the others are dropped (which cancels them) and its error is the answer.
pub async fn start(state: &ApiState, plan: &Plan) -> Result<Vec<Started>, ApiError> {
    let model = &plan.generate.model;
    if plan.logprobs.is_some()
        && state
            .gateway
            .endpoints
            .get(model)
            .is_some_and(|e| !e.battle_only)
    {
        return Err(ApiError::unsupported_param(
            "logprobs",
            format!("'{model}' is API-hosted: log-probabilities are not available for it"),
        ));
    }
    let requests = (0..plan.n).map(|i| {
        let mut req = plan.generate.clone();
        if i > 0 {
            req.request_id = format!("{}-{i}", req.request_id);
            // Seeded choices differ from each other, and each is reproducible.
            if let Some(p) = req.params.as_mut() {
                p.seed = p.seed.map(|s| s.wrapping_add(u64::from(i)));
            }
        }
        if let Some(top) = plan.logprobs {
            req.return_tokens = true;
            if let Some(p) = req.params.as_mut() {
                p.top_logprobs = Some(top);
            }
        }
        state
            .gateway
            .start_generation(req, false, plan.session.as_deref())
    });
    try_join_all(requests)
        .await
        .map_err(|e| rename(e, plan.names))
}

/// One choice, generated to its end.
#[derive(Debug, Default)]
pub struct Finished {
    /// The text.
    pub text: String,
    /// "stop" or "length".
    pub finish: &'static str,
    /// Its prompt and completion tokens.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Prompt tokens the worker's prefix cache served.
    pub cached_tokens: u32,
    /// The tokens, when asked for.
    pub tokens: Vec<Token>,
}

/// Ends a generation at its last message `m`: frees the worker for dispatch (before the
/// client reads the rest), counts its tokens and duration, and returns its usage.
pub fn finish(
    started: &mut Started,
    m: &arena_proto::v1::GenerateResponse,
    metrics: &Metrics,
    model: &str,
) -> arena_proto::v1::Usage {
    started.guard.take();
    let u = generation::usage(m);
    metrics
        .tokens
        .with_label_values(&[model])
        .inc_by(u64::from(u.completion_tokens));
    metrics
        .generation
        .with_label_values(&[model])
        .observe(started.dispatched.elapsed().as_secs_f64());
    u
}

/// Reads one generation to its end.
pub async fn collect(
    mut started: Started,
    model: &str,
    metrics: &Metrics,
) -> Result<Finished, ApiError> {
    let mut done = Finished::default();
    loop {
        let m = started
            .next_message()
            .await
            .map_err(|b| ApiError::internal(b.describe("the worker")))?;
        done.text.push_str(&m.text);
        done.tokens.extend(logprobs::tokens(&m));
        if let Some(reason) = finish_reason(&m) {
            let u = finish(&mut started, &m, metrics, model);
            done.finish = reason;
            done.prompt_tokens = u.prompt_tokens;
            done.completion_tokens = u.completion_tokens;
            done.cached_tokens = u.cached_tokens;
            return Ok(done);
        }
    }
}

/// Every choice generated to its end, concurrently, in choice order.
pub async fn collect_all(
    started: Vec<Started>,
    model: &str,
    metrics: &Metrics,
) -> Result<Vec<Finished>, ApiError> {
    try_join_all(started.into_iter().map(|s| collect(s, model, metrics))).await
}

/// The usage of finished choices: the prompt once, every choice's output.
pub fn usage_of(choices: &[Finished]) -> Usage {
    Usage::of_choices(
        choices.first().map_or(0, |c| c.prompt_tokens),
        choices.iter().map(|c| c.completion_tokens),
    )
    .with_cached(choices.first().map_or(0, |c| c.cached_tokens))
}

/// Dispatches a checked chat or text completion and answers in its shape, streamed or not.
pub async fn serve(state: &ApiState, plan: Plan, flavor: Flavor) -> Result<Response, ApiError> {
    let started = start(state, &plan).await?;
    let meta = stream::Meta {
        id: plan.generate.request_id.clone(),
        model: plan.generate.model.clone(),
        flavor,
        created: now_secs(),
        logprobs: plan.logprobs,
    };
    let metrics = state.gateway.metrics.clone();
    if plan.stream {
        return Ok(stream::sse(started, meta, plan.include_usage, metrics));
    }
    let choices = collect_all(started, &meta.model, &metrics).await?;
    let usage = usage_of(&choices);
    let body = Envelope {
        id: &meta.id,
        object: match flavor {
            Flavor::Chat => "chat.completion",
            Flavor::Text => "text_completion",
        },
        created: meta.created,
        model: &meta.model,
        choices: choices
            .iter()
            .zip(0..)
            .map(|(c, index)| whole(c, index, flavor, plan.logprobs))
            .collect(),
        usage: Some(usage),
    };
    Ok(Json(body).into_response())
}

/// One finished choice in the endpoint's shape.
fn whole(c: &Finished, index: u32, flavor: Flavor, logprobs: Option<u32>) -> Choice<'_> {
    match flavor {
        Flavor::Chat => Choice::Message {
            index,
            message: Message {
                role: "assistant",
                content: &c.text,
            },
            logprobs: logprobs.map(|_| logprobs::chat(&c.tokens)),
            finish_reason: c.finish,
        },
        Flavor::Text => Choice::Text {
            index,
            text: &c.text,
            logprobs: logprobs.map(|top| logprobs::text(&c.tokens, &mut 0, top > 0)),
            finish_reason: Some(c.finish),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            max_tokens: "max_output_tokens",
            input: "input",
            top_logprobs: "logprobs",
        }
    }

    #[test]
    fn worker_names_become_the_clients() {
        let e = rename(
            ApiError::invalid_param(
                "max_new_tokens",
                "invalid parameter 'max_new_tokens': 5000 is outside [1, 256]",
            ),
            names(),
        );
        assert_eq!(e.param.as_deref(), Some("max_output_tokens"));
        assert_eq!(
            e.message,
            "invalid parameter 'max_output_tokens': 5000 is outside [1, 256]"
        );
        let e = rename(
            ApiError {
                code: "context_length_exceeded",
                ..ApiError::invalid_param(
                    "messages",
                    "prompt of 300 tokens plus max_new_tokens 10 exceeds",
                )
            },
            names(),
        );
        assert_eq!(e.param.as_deref(), Some("input"));
        assert!(e.message.contains("max_output_tokens 10"), "{}", e.message);
        let e = rename(
            ApiError::bad_request("template error: message 1 has role"),
            names(),
        );
        assert_eq!(e.param.as_deref(), Some("input"));
        let e = rename(ApiError::invalid_param("top_logprobs", "x"), names());
        assert_eq!(e.param.as_deref(), Some("logprobs"));
        let e = rename(ApiError::invalid_param("temperature", "x"), names());
        assert_eq!(e.param.as_deref(), Some("temperature"));
    }

    #[test]
    fn usage_counts_the_prompt_once() {
        let c = |completion_tokens| Finished {
            prompt_tokens: 7,
            completion_tokens,
            ..Default::default()
        };
        let u = usage_of(&[c(3), c(5)]);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (7, 8, 15)
        );
    }
}

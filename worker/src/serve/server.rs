//! The gRPC `arena.v1.Worker` service.

use std::pin::Pin;
use std::sync::Arc;

use arena_proto::v1::worker_server::Worker;
use arena_proto::v1::{
    count_tokens_request, generate_request, ChatMessage, CountTokensRequest, CountTokensResponse,
    FinishReason, GenerateRequest, GenerateResponse, InfoRequest, InfoResponse, SamplingParams,
    TokenLogprob, TopLogprobs, Usage,
};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::error::WorkerError;
use crate::generate::engine::{Event, Finish};
use crate::generate::logprobs::Alternative;
use crate::generate::params::{check_cache_scope, check_top_logprobs, GenerationParams, RawParams};
use crate::serve::served::{Input, ServedModel};
use crate::text::template::{Message, Role};

/// The worker's gRPC service over one served model.
pub struct WorkerService {
    model: Arc<ServedModel>,
    worker_id: String,
}

impl WorkerService {
    /// A service for `model`, reporting `worker_id` in `Info`.
    pub fn new(model: Arc<ServedModel>, worker_id: String) -> Self {
        Self { model, worker_id }
    }
}

/// Maps worker errors to gRPC statuses a client can act on.
pub fn status_of(e: WorkerError) -> Status {
    match e {
        WorkerError::InvalidParameter { .. } | WorkerError::Template(_) => {
            Status::invalid_argument(e.to_string())
        }
        WorkerError::ContextOverflow { .. } => Status::out_of_range(e.to_string()),
        WorkerError::EngineStopped => Status::unavailable(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

fn messages(chat: Vec<ChatMessage>) -> Result<Vec<Message>, Status> {
    chat.into_iter()
        .map(|m| {
            Ok(Message::new(
                Role::parse(&m.role).map_err(status_of)?,
                m.content,
            ))
        })
        .collect()
}

fn raw_params(p: Option<SamplingParams>) -> RawParams {
    let p = p.unwrap_or_default();
    RawParams {
        temperature: p.temperature,
        top_p: p.top_p,
        top_k: p.top_k,
        repetition_penalty: p.repetition_penalty,
        max_new_tokens: p.max_new_tokens,
        stop: p.stop,
        stop_token_ids: p.stop_token_ids,
        seed: p.seed,
    }
}

fn response_of(event: Event) -> GenerateResponse {
    match event {
        Event::Token {
            text,
            token_ids,
            logprobs,
            token_bytes,
            top_logprobs,
        } => GenerateResponse {
            text,
            token_ids,
            logprobs,
            token_bytes,
            top_logprobs: top_logprobs.into_iter().map(alternatives).collect(),
            ..Default::default()
        },
        Event::Done {
            finish,
            prompt_tokens,
            completion_tokens,
            cached_tokens,
        } => GenerateResponse {
            finish_reason: match finish {
                Finish::Stop => FinishReason::Stop,
                Finish::Length => FinishReason::Length,
            } as i32,
            usage: Some(Usage {
                prompt_tokens: prompt_tokens as u32,
                completion_tokens: completion_tokens as u32,
                cached_tokens: cached_tokens as u32,
                estimated: false,
            }),
            ..Default::default()
        },
        Event::Error(error) => GenerateResponse {
            finish_reason: FinishReason::Error as i32,
            error,
            ..Default::default()
        },
    }
}

fn alternatives(step: Vec<Alternative>) -> TopLogprobs {
    TopLogprobs {
        tokens: step
            .into_iter()
            .map(|a| TokenLogprob {
                token_id: a.id,
                token: a.bytes,
                logprob: a.logprob,
            })
            .collect(),
    }
}

type GenerateStream = Pin<Box<dyn Stream<Item = Result<GenerateResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Worker for WorkerService {
    type GenerateStream = GenerateStream;

    async fn generate(
        &self,
        request: Request<GenerateRequest>,
    ) -> Result<Response<GenerateStream>, Status> {
        let req = request.into_inner();
        if !self.model.is_accepting() {
            return Err(Status::unavailable("the worker is shutting down"));
        }
        let name = &self.model.info().name;
        if !req.model.is_empty() && &req.model != name {
            return Err(Status::not_found(format!(
                "this worker serves '{name}', not '{}'",
                req.model
            )));
        }
        let input = match req.input {
            Some(generate_request::Input::Chat(c)) => Input::Chat(messages(c.messages)?),
            Some(generate_request::Input::Prompt(p)) => Input::Prompt(p),
            None => {
                return Err(Status::invalid_argument(
                    "either chat messages or a prompt is required",
                ))
            }
        };
        let model = self.model.clone();
        let top_logprobs = check_top_logprobs(req.params.as_ref().and_then(|p| p.top_logprobs))
            .map_err(status_of)?;
        let cache_scope = check_cache_scope(req.cache_scope).map_err(status_of)?;
        let params = raw_params(req.params);
        let system = req.system_message;
        let return_tokens = req.return_tokens;
        // Templating and tokenization are CPU work: keep them off the async threads.
        let (ids, params) = tokio::task::spawn_blocking(move || {
            model.prepare(&input, system.as_deref(), &params, return_tokens)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(status_of)?;
        let params = GenerationParams {
            top_logprobs,
            cache_scope,
            ..params
        };
        tracing::debug!(request_id = %req.request_id, prompt_tokens = ids.len(), "generate");
        let rx = self.model.engine().submit(ids, params).map_err(status_of)?;
        let stream = UnboundedReceiverStream::new(rx).map(|e| Ok(response_of(e)));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn count_tokens(
        &self,
        request: Request<CountTokensRequest>,
    ) -> Result<Response<CountTokensResponse>, Status> {
        let req = request.into_inner();
        let input = match req.input {
            Some(count_tokens_request::Input::Chat(c)) => Input::Chat(messages(c.messages)?),
            Some(count_tokens_request::Input::Prompt(p)) => Input::Prompt(p),
            None => {
                return Err(Status::invalid_argument(
                    "either chat messages or a prompt is required",
                ))
            }
        };
        let model = self.model.clone();
        let system = req.system_message;
        let ids = tokio::task::spawn_blocking(move || model.prompt_ids(&input, system.as_deref()))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(status_of)?;
        Ok(Response::new(CountTokensResponse {
            count: ids.len() as u32,
            context_length: self.model.info().context_length as u32,
        }))
    }

    async fn info(&self, _request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let info = self.model.info();
        let engine = self.model.engine();
        Ok(Response::new(InfoResponse {
            model: info.name.clone(),
            context_length: info.context_length as u32,
            template: info.template.clone(),
            architecture: info.architecture.clone(),
            format: info.format.clone(),
            device: info.device.clone(),
            max_concurrency: engine.max_concurrency() as u32,
            queue_length: engine.stats().queue_length() as u32,
            in_flight: engine.stats().in_flight() as u32,
            worker_id: self.worker_id.clone(),
        }))
    }
}

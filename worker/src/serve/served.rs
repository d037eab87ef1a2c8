//! A loaded model with its template and engine: turns requests into prompt ids and checked
//! parameters, the same way for gRPC and the local CLI.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::Result;
use crate::generate::engine::{self, EngineHandle, EngineOptions};
use crate::generate::params::{check_context, GenerationParams, RawParams};
use crate::model::loader::LoadedModel;
use crate::text::template::{Message, Template};
use crate::text::tokenizer::Tokenizer;

/// What the caller wants continued.
#[derive(Debug, Clone)]
pub enum Input {
    /// Chat messages, rendered with the conversation template.
    Chat(Vec<Message>),
    /// A raw prompt, tokenized as is.
    Prompt(String),
}

/// Facts about the served model, for `Info` and registration.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Served name.
    pub name: String,
    /// Context length in tokens.
    pub context_length: usize,
    /// Template name.
    pub template: String,
    /// Architecture named by the files.
    pub architecture: String,
    /// "gguf" or "safetensors".
    pub format: String,
    /// Device description.
    pub device: String,
}

/// A model being served.
pub struct ServedModel {
    info: ModelInfo,
    tokenizer: Arc<Tokenizer>,
    template: Template,
    vocab_size: usize,
    engine: EngineHandle,
    accepting: AtomicBool,
    allow_special_tokens: bool,
}

impl ServedModel {
    /// Starts the engine for a loaded model.
    pub fn start(
        loaded: LoadedModel,
        name: String,
        template: Template,
        engine: EngineOptions,
        allow_special_tokens: bool,
    ) -> Result<Arc<Self>> {
        let cfg = loaded.model.config().clone();
        let device = format!("{:?}", loaded.model.device().location());
        let tokenizer = Arc::new(loaded.tokenizer);
        let engine = engine::spawn(loaded.model, tokenizer.clone(), engine)?;
        Ok(Arc::new(Self {
            info: ModelInfo {
                name,
                context_length: cfg.context_length,
                template: template.name().to_string(),
                architecture: loaded.architecture,
                format: loaded.format.to_string(),
                device,
            },
            vocab_size: cfg.vocab_size.max(tokenizer.vocab_size()),
            tokenizer,
            template,
            engine,
            accepting: AtomicBool::new(true),
            allow_special_tokens,
        }))
    }

    /// Facts about the model.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The engine handle (load counters, submission).
    pub fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Whether new requests are taken (false while draining for shutdown).
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
    }

    /// Stops taking new requests.
    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Relaxed);
    }

    /// Prompt token ids for an input, after the template. Message text never becomes a
    /// special token; a raw prompt's only when the operator allowed it.
    pub fn prompt_ids(&self, input: &Input, system: Option<&str>) -> Result<Vec<u32>> {
        match input {
            Input::Chat(messages) => {
                let rendered = self.template.render(messages, system)?;
                self.tokenizer
                    .encode_rendered(&rendered, self.template.tokenizer_adds_bos())
            }
            Input::Prompt(p) if self.allow_special_tokens => self.tokenizer.encode(p, true),
            Input::Prompt(p) => self.tokenizer.encode_plain(p, true),
        }
    }

    /// Prompt ids and checked parameters, or a clear error about either.
    pub fn prepare(
        &self,
        input: &Input,
        system: Option<&str>,
        raw: &RawParams,
        return_tokens: bool,
    ) -> Result<(Vec<u32>, GenerationParams)> {
        let mut params = raw.validate(self.vocab_size, self.info.context_length)?;
        params.return_tokens = return_tokens;
        if matches!(input, Input::Chat(_)) {
            for s in self.template.stop_strings() {
                if !params.stop.contains(&s) {
                    params.stop.push(s);
                }
            }
        }
        let ids = self.prompt_ids(input, system)?;
        if raw.max_new_tokens.is_none() {
            // Unasked-for defaults shrink to fit instead of failing the request.
            let room = self.info.context_length.saturating_sub(ids.len()).max(1);
            params.max_new_tokens = params.max_new_tokens.min(room);
        }
        check_context(ids.len(), params.max_new_tokens, self.info.context_length)?;
        Ok((ids, params))
    }
}

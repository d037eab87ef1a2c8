//! Validation of request parameters: every range check lives here.

use crate::error::{Result, WorkerError};
use crate::generate::logprobs::MAX_TOP_LOGPROBS;
use crate::generate::prefix_cache::Scope;
use crate::generate::sampling::SamplingConfig;

/// Default `max_new_tokens` when the caller sets none.
pub const DEFAULT_MAX_NEW_TOKENS: usize = 256;
/// Most stop strings one request may carry.
pub const MAX_STOP_STRINGS: usize = 16;
/// Longest stop string, in bytes.
pub const MAX_STOP_LEN: usize = 256;
/// Longest prefix-cache scope, in bytes (the controller's are 64).
pub const MAX_SCOPE_LEN: usize = 128;

/// Parameters as a caller sends them; absent fields take defaults.
#[derive(Debug, Clone, Default)]
pub struct RawParams {
    /// Softmax temperature.
    pub temperature: Option<f32>,
    /// Nucleus mass.
    pub top_p: Option<f32>,
    /// Top-k cut-off.
    pub top_k: Option<u32>,
    /// Repetition penalty.
    pub repetition_penalty: Option<f32>,
    /// New tokens at most.
    pub max_new_tokens: Option<u32>,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Extra ids that end generation.
    pub stop_token_ids: Vec<u32>,
    /// Sampling seed.
    pub seed: Option<u64>,
}

/// Checked parameters of one generation.
#[derive(Debug, Clone)]
pub struct GenerationParams {
    /// How to sample.
    pub sampling: SamplingConfig,
    /// New tokens at most.
    pub max_new_tokens: usize,
    /// Stop strings (the template's and the caller's).
    pub stop: Vec<String>,
    /// Ids that end generation (EOS and the caller's).
    pub stop_token_ids: Vec<u32>,
    /// Whether to send token ids and log-probabilities.
    pub return_tokens: bool,
    /// Alternatives to report at each step with the tokens (0 to 20).
    pub top_logprobs: usize,
    /// Whose prefix-cache entries the prompt may start from, and whom its sequence serves.
    pub cache_scope: Scope,
}

fn check_range(param: &'static str, v: f32, lo: f32, hi: f32) -> Result<f32> {
    if !v.is_finite() || v < lo || v > hi {
        return Err(WorkerError::param(
            param,
            format!("{v} is outside [{lo}, {hi}]"),
        ));
    }
    Ok(v)
}

impl RawParams {
    /// Checks every field against `vocab_size` and `context_length`.
    pub fn validate(&self, vocab_size: usize, context_length: usize) -> Result<GenerationParams> {
        let d = SamplingConfig::default();
        let temperature = check_range(
            "temperature",
            self.temperature.unwrap_or(d.temperature),
            0.0,
            2.0,
        )?;
        let top_p = check_range("top_p", self.top_p.unwrap_or(d.top_p), 0.0, 1.0)?;
        let repetition_penalty = self.repetition_penalty.unwrap_or(1.0);
        if !repetition_penalty.is_finite() || repetition_penalty <= 0.0 || repetition_penalty > 10.0
        {
            return Err(WorkerError::param(
                "repetition_penalty",
                format!("{repetition_penalty} is outside (0, 10]"),
            ));
        }
        let max_new_tokens = self
            .max_new_tokens
            .map_or(DEFAULT_MAX_NEW_TOKENS.min(context_length), |m| m as usize);
        if max_new_tokens == 0 || max_new_tokens > context_length {
            return Err(WorkerError::param(
                "max_new_tokens",
                format!("{max_new_tokens} is outside [1, {context_length}] (the model's context length)"),
            ));
        }
        if self.stop.len() > MAX_STOP_STRINGS {
            return Err(WorkerError::param(
                "stop",
                format!(
                    "{} stop strings given; at most {MAX_STOP_STRINGS} are allowed",
                    self.stop.len()
                ),
            ));
        }
        if let Some(s) = self
            .stop
            .iter()
            .find(|s| s.is_empty() || s.len() > MAX_STOP_LEN)
        {
            return Err(WorkerError::param(
                "stop",
                format!(
                    "stop strings must have 1 to {MAX_STOP_LEN} bytes, got {}",
                    s.len()
                ),
            ));
        }
        if let Some(id) = self
            .stop_token_ids
            .iter()
            .find(|&&id| id as usize >= vocab_size)
        {
            return Err(WorkerError::param(
                "stop_token_ids",
                format!("token id {id} is not below the vocabulary size {vocab_size}"),
            ));
        }
        Ok(GenerationParams {
            sampling: SamplingConfig {
                temperature,
                top_p,
                top_k: self.top_k.unwrap_or(0) as usize,
                repetition_penalty,
                seed: self.seed,
            },
            max_new_tokens,
            stop: self.stop.clone(),
            stop_token_ids: self.stop_token_ids.clone(),
            return_tokens: false,
            top_logprobs: 0,
            cache_scope: Scope::Shared,
        })
    }
}

/// Checks how many alternatives per step a caller asks for (it travels beside `RawParams`,
/// which the command line builds too).
pub fn check_top_logprobs(n: Option<u32>) -> Result<usize> {
    let n = n.unwrap_or(0) as usize;
    if n > MAX_TOP_LOGPROBS {
        return Err(WorkerError::param(
            "top_logprobs",
            format!("{n} is outside [0, {MAX_TOP_LOGPROBS}]"),
        ));
    }
    Ok(n)
}

/// The prefix-cache scope a request names (see `GenerateRequest.cache_scope`): none is the
/// shared one, empty text none at all.
pub fn check_cache_scope(raw: Option<String>) -> Result<Scope> {
    match raw {
        None => Ok(Scope::Shared),
        Some(s) if s.is_empty() => Ok(Scope::Off),
        Some(s) if s.len() > MAX_SCOPE_LEN => Err(WorkerError::param(
            "cache_scope",
            format!("{} bytes is longer than {MAX_SCOPE_LEN}", s.len()),
        )),
        Some(s) => Ok(Scope::Key(s)),
    }
}

/// Rejects a prompt that cannot fit with the requested new tokens.
pub fn check_context(
    prompt_tokens: usize,
    max_new_tokens: usize,
    context_length: usize,
) -> Result<()> {
    if prompt_tokens == 0 {
        return Err(WorkerError::param(
            "prompt",
            "the prompt is empty after tokenization",
        ));
    }
    if prompt_tokens + max_new_tokens > context_length {
        return Err(WorkerError::ContextOverflow {
            prompt_tokens,
            max_new_tokens,
            context_length,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(p: RawParams) -> String {
        p.validate(100, 50).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid() {
        let g = RawParams::default().validate(100, 512).unwrap();
        assert_eq!(g.max_new_tokens, DEFAULT_MAX_NEW_TOKENS);
        assert_eq!(g.sampling.temperature, 0.7);
    }

    #[test]
    fn out_of_range_values_name_the_parameter() {
        let cases = [
            (
                RawParams {
                    temperature: Some(-0.1),
                    ..Default::default()
                },
                "temperature",
            ),
            (
                RawParams {
                    temperature: Some(f32::NAN),
                    ..Default::default()
                },
                "temperature",
            ),
            (
                RawParams {
                    top_p: Some(1.5),
                    ..Default::default()
                },
                "top_p",
            ),
            (
                RawParams {
                    repetition_penalty: Some(0.0),
                    ..Default::default()
                },
                "repetition_penalty",
            ),
            (
                RawParams {
                    max_new_tokens: Some(0),
                    ..Default::default()
                },
                "max_new_tokens",
            ),
            (
                RawParams {
                    max_new_tokens: Some(51),
                    ..Default::default()
                },
                "max_new_tokens",
            ),
            (
                RawParams {
                    stop: vec![String::new()],
                    ..Default::default()
                },
                "stop",
            ),
            (
                RawParams {
                    stop: vec!["x".into(); 17],
                    ..Default::default()
                },
                "stop",
            ),
            (
                RawParams {
                    stop_token_ids: vec![100],
                    ..Default::default()
                },
                "stop_token_ids",
            ),
        ];
        for (p, name) in cases {
            let e = err(p);
            assert!(e.contains(&format!("'{name}'")), "{e}");
        }
    }

    #[test]
    fn a_cache_scope_is_shared_off_or_a_bounded_key() {
        assert_eq!(check_cache_scope(None).unwrap(), Scope::Shared);
        assert_eq!(check_cache_scope(Some(String::new())).unwrap(), Scope::Off);
        let key = "k".repeat(MAX_SCOPE_LEN);
        assert_eq!(
            check_cache_scope(Some(key.clone())).unwrap(),
            Scope::Key(key)
        );
        let e = check_cache_scope(Some("k".repeat(MAX_SCOPE_LEN + 1))).unwrap_err();
        assert!(e.to_string().contains("cache_scope"), "{e}");
    }

    #[test]
    fn top_logprobs_is_bounded() {
        assert_eq!(check_top_logprobs(None).unwrap(), 0);
        assert_eq!(check_top_logprobs(Some(20)).unwrap(), 20);
        let e = check_top_logprobs(Some(21)).unwrap_err().to_string();
        assert!(e.contains("'top_logprobs'"), "{e}");
    }

    #[test]
    fn unset_max_new_tokens_fits_a_small_context() {
        assert_eq!(
            RawParams::default()
                .validate(100, 50)
                .unwrap()
                .max_new_tokens,
            50
        );
    }

    #[test]
    fn context_overflow_names_both_numbers() {
        let e = check_context(40, 20, 50).unwrap_err().to_string();
        assert!(
            e.contains("40") && e.contains("20") && e.contains("50"),
            "{e}"
        );
        assert!(check_context(30, 20, 50).is_ok());
        assert!(check_context(0, 1, 50).is_err());
    }
}

//! The sampling and streaming fields the endpoints share, read one by one; each error names
//! the field as the client sent it.

use arena_proto::v1::SamplingParams;
use serde_json::Value;

use super::fields::{float_in, int_in, wrong_shape, Fields};
use crate::config::MAX_CHOICES;
use crate::error::ApiError;

/// Most alternatives per token a client may ask for (OpenAI's `top_logprobs` limit; the
/// worker's too).
pub const MAX_TOP_LOGPROBS: u32 = 20;

/// What a completion request asks of its generation(s).
#[derive(Debug, Clone)]
pub struct Common {
    /// For the worker.
    pub sampling: SamplingParams,
    /// Choices to generate.
    pub n: u32,
    /// Stream as server-sent events.
    pub stream: bool,
    /// Send a usage chunk last.
    pub include_usage: bool,
    /// How the client named the token limit, for errors about it.
    pub max_name: &'static str,
    /// The `user` field: whose conversation this is, for routing its turns to one worker.
    pub user: Option<String>,
}

/// The model name: required, not blank.
pub fn model(f: &mut Fields) -> Result<String, ApiError> {
    let model: String = f.require("model")?;
    if model.trim().is_empty() {
        return Err(ApiError::invalid_param("model", "'model' is required"));
    }
    Ok(model)
}

/// `temperature` (default 1, as OpenAI's) and `top_p`.
pub fn temperature_top_p(f: &mut Fields) -> Result<SamplingParams, ApiError> {
    let temperature = float_in(f, "temperature", 0.0, 2.0)?;
    let top_p = float_in(f, "top_p", 0.0, 1.0)?;
    Ok(SamplingParams {
        temperature: Some(temperature.unwrap_or(1.0)),
        top_p,
        ..Default::default()
    })
}

/// The token limit under the first of `names` the client sent (all are consumed).
pub fn max_tokens(
    f: &mut Fields,
    names: &[&'static str],
) -> Result<(Option<u32>, &'static str), ApiError> {
    let mut found = (None, names[0]);
    for &name in names {
        if let Some(v) = int_in(f, name, 1, i64::from(u32::MAX))? {
            if found.0.is_none() {
                found = (Some(v), name);
            }
        }
    }
    Ok(found)
}

/// `stream` and `stream_options` (`include_usage`; `include_obfuscation` is accepted and has
/// nothing to do: chunks are never padded).
pub fn streaming(f: &mut Fields) -> Result<(bool, bool), ApiError> {
    let stream = f.take::<bool>("stream")?.unwrap_or(false);
    let mut include_usage = false;
    if let Some(v) = f.raw("stream_options") {
        let mut o = Fields::new(v, "stream_options")?;
        include_usage = o.take::<bool>("include_usage")?.unwrap_or(false);
        o.take::<bool>("include_obfuscation")?;
        o.finish()?;
    }
    Ok((stream, include_usage))
}

/// The fields chat and text completions share.
pub fn common(f: &mut Fields, default_max_tokens: Option<u32>) -> Result<Common, ApiError> {
    let mut sampling = temperature_top_p(f)?;
    let (max, max_name) = max_tokens(f, &["max_completion_tokens", "max_tokens"])?;
    sampling.max_new_tokens = max.or(default_max_tokens);
    sampling.stop = match f.raw("stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s],
        Some(v) => super::fields::parse(v, "stop")?,
    };
    // OpenAI's seeds are any 64-bit integer; the worker's are unsigned: the bits are kept.
    sampling.seed = f
        .take::<serde_json::Number>("seed")?
        .map(|n| match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Ok(u),
            (None, Some(i)) => Ok(i as u64),
            _ => Err(wrong_shape("seed", "'seed' must be an integer")),
        })
        .transpose()?;
    let n = int_in(f, "n", 1, i64::from(MAX_CHOICES))?.unwrap_or(1);
    for name in ["presence_penalty", "frequency_penalty"] {
        if float_in(f, name, -2.0, 2.0)?.is_some_and(|v| v != 0.0) {
            return Err(ApiError::unsupported_param(
                name,
                format!("'{name}' is not supported; leave it unset or 0"),
            ));
        }
    }
    f.only_noop(
        "logit_bias",
        |v| v.as_object().is_some_and(|m| m.is_empty()),
        "token biases are not applied",
    )?;
    // The caller's id for its end users: the turns of one user go to the worker that holds
    // their conversation in its prefix cache.
    let user = f.take::<String>("user")?.filter(|u| !u.is_empty());
    let (stream, include_usage) = streaming(f)?;
    Ok(Common {
        sampling,
        n,
        stream,
        include_usage,
        max_name,
        user,
    })
}

/// Chat's `logprobs` (bool) and `top_logprobs`: the alternatives per token when asked for.
pub fn chat_logprobs(f: &mut Fields) -> Result<Option<u32>, ApiError> {
    let on = f.take::<bool>("logprobs")?.unwrap_or(false);
    let top = int_in(f, "top_logprobs", 0, i64::from(MAX_TOP_LOGPROBS))?;
    match (on, top) {
        (false, Some(_)) => Err(ApiError::invalid_param(
            "top_logprobs",
            "'top_logprobs' needs 'logprobs': true",
        )),
        (false, None) => Ok(None),
        (true, top) => Ok(Some(top.unwrap_or(0))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn common_of(v: Value) -> Result<Common, ApiError> {
        let mut f = Fields::new(v, "").unwrap();
        let c = common(&mut f, None)?;
        f.finish()?;
        Ok(c)
    }

    #[test]
    fn out_of_range_and_unsupported_parameters_are_named() {
        for (v, param, code) in [
            (
                json!({"temperature": 3.0}),
                "temperature",
                "invalid_parameter",
            ),
            (json!({"top_p": -0.5}), "top_p", "invalid_parameter"),
            (json!({"max_tokens": 0}), "max_tokens", "invalid_parameter"),
            (
                json!({"max_completion_tokens": -3}),
                "max_completion_tokens",
                "invalid_parameter",
            ),
            (json!({"n": 0}), "n", "invalid_parameter"),
            (json!({"n": MAX_CHOICES + 1}), "n", "invalid_parameter"),
            (
                json!({"presence_penalty": 0.5}),
                "presence_penalty",
                "unsupported_parameter",
            ),
            (
                json!({"frequency_penalty": 1.0}),
                "frequency_penalty",
                "unsupported_parameter",
            ),
            (
                json!({"logit_bias": {"42": 3}}),
                "logit_bias",
                "unsupported_parameter",
            ),
            (
                json!({"stream_options": {"include_usage": true, "x": 1}}),
                "stream_options.x",
                "unsupported_parameter",
            ),
            (json!({"tools": [{}]}), "tools", "unsupported_parameter"),
        ] {
            let e = common_of(v.clone()).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{v}");
            assert_eq!(e.param.as_deref(), Some(param), "{v}");
            assert_eq!(e.code, code, "{v}");
        }
    }

    #[test]
    fn type_errors_name_flattened_fields() {
        for (v, param) in [
            (json!({"temperature": "hot"}), "temperature"),
            (json!({"max_tokens": "many"}), "max_tokens"),
            (json!({"stop": 3}), "stop"),
            (json!({"seed": 1.5}), "seed"),
            (json!({"stream": "yes"}), "stream"),
            (json!({"n": 1.5}), "n"),
        ] {
            let e = common_of(v.clone()).unwrap_err();
            assert_eq!(e.status.as_u16(), 422, "{v}");
            assert_eq!(e.param.as_deref(), Some(param), "{v}");
        }
    }

    #[test]
    fn valid_fields_map_to_sampling_params() {
        let c = common_of(
            json!({"temperature": 0, "max_tokens": 7, "stop": "x", "seed": 3,
            "presence_penalty": 0, "frequency_penalty": null, "user": "u", "logit_bias": {},
            "n": 3, "stream": true, "stream_options": {"include_usage": true}}),
        )
        .unwrap();
        let p = &c.sampling;
        assert_eq!(p.temperature, Some(0.0));
        assert_eq!(p.max_new_tokens, Some(7));
        assert_eq!(c.max_name, "max_tokens");
        assert_eq!(p.stop, vec!["x".to_string()]);
        assert_eq!(p.seed, Some(3));
        assert_eq!((c.n, c.stream, c.include_usage), (3, true, true));
        let c =
            common_of(json!({"stop": ["a", "b"], "seed": -1, "max_completion_tokens": 5})).unwrap();
        assert_eq!(c.sampling.stop.len(), 2);
        assert_eq!(c.sampling.seed, Some(u64::MAX));
        assert_eq!(c.max_name, "max_completion_tokens");
        assert_eq!(c.sampling.temperature, Some(1.0));
        let mut f = Fields::new(json!({}), "").unwrap();
        assert_eq!(
            common(&mut f, Some(16)).unwrap().sampling.max_new_tokens,
            Some(16)
        );
    }

    #[test]
    fn logprobs_need_logprobs_true() {
        let lp = |v: Value| chat_logprobs(&mut Fields::new(v, "").unwrap());
        assert_eq!(lp(json!({})).unwrap(), None);
        assert_eq!(lp(json!({"logprobs": true})).unwrap(), Some(0));
        assert_eq!(
            lp(json!({"logprobs": true, "top_logprobs": 5})).unwrap(),
            Some(5)
        );
        assert_eq!(
            lp(json!({"top_logprobs": 2})).unwrap_err().param.as_deref(),
            Some("top_logprobs")
        );
        assert_eq!(
            lp(json!({"logprobs": true, "top_logprobs": 21}))
                .unwrap_err()
                .param
                .as_deref(),
            Some("top_logprobs")
        );
    }
}

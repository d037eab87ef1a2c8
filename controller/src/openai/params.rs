//! Checks shared by both completion endpoints; each error names its parameter.

use arena_proto::v1::SamplingParams;

use super::types::CommonParams;
use crate::error::ApiError;

/// Checks the common fields and maps them to the worker's sampling parameters.
pub fn sampling(
    model: &str,
    p: &CommonParams,
    default_max_tokens: Option<u32>,
) -> Result<SamplingParams, ApiError> {
    if model.trim().is_empty() {
        return Err(ApiError::invalid_param("model", "'model' is required"));
    }
    if p.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid_param("n", "only n = 1 is supported"));
    }
    for (name, v) in [
        ("presence_penalty", p.presence_penalty),
        ("frequency_penalty", p.frequency_penalty),
    ] {
        if v.is_some_and(|v| v != 0.0) {
            return Err(ApiError::invalid_param(
                name,
                format!("'{name}' is not supported; leave it unset or 0"),
            ));
        }
    }
    let in_range = |name: &str, v: Option<f32>, lo: f32, hi: f32| match v {
        Some(x) if !(lo..=hi).contains(&x) => Err(ApiError::invalid_param(
            name,
            format!("'{name}' must be between {lo} and {hi}, got {x}"),
        )),
        _ => Ok(()),
    };
    in_range("temperature", p.temperature, 0.0, 2.0)?;
    in_range("top_p", p.top_p, 0.0, 1.0)?;
    let max_tokens = p
        .max_completion_tokens
        .or(p.max_tokens)
        .or(default_max_tokens);
    if max_tokens == Some(0) {
        return Err(ApiError::invalid_param(
            "max_tokens",
            "'max_tokens' must be at least 1",
        ));
    }
    Ok(SamplingParams {
        // OpenAI's default temperature is 1.
        temperature: Some(p.temperature.unwrap_or(1.0)),
        top_p: p.top_p,
        max_new_tokens: max_tokens,
        stop: p.stop.clone().map(|s| s.into_vec()).unwrap_or_default(),
        seed: p.seed,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: serde_json::Value) -> CommonParams {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn out_of_range_and_unsupported_parameters_are_named() {
        for (v, param) in [
            (serde_json::json!({"temperature": 3.0}), "temperature"),
            (serde_json::json!({"top_p": -0.5}), "top_p"),
            (serde_json::json!({"max_tokens": 0}), "max_tokens"),
            (serde_json::json!({"n": 2}), "n"),
            (
                serde_json::json!({"presence_penalty": 0.5}),
                "presence_penalty",
            ),
            (
                serde_json::json!({"frequency_penalty": 1.0}),
                "frequency_penalty",
            ),
        ] {
            let e = sampling("m", &params(v), None).unwrap_err();
            assert_eq!(e.status.as_u16(), 400);
            assert_eq!(e.param.as_deref(), Some(param));
        }
        assert_eq!(
            sampling(" ", &CommonParams::default(), None)
                .unwrap_err()
                .param
                .as_deref(),
            Some("model")
        );
    }

    #[test]
    fn valid_fields_map_to_sampling_params() {
        let p = sampling(
            "m",
            &params(serde_json::json!({"temperature": 0, "max_tokens": 7, "stop": "x", "seed": 3, "presence_penalty": 0})),
            None,
        )
        .unwrap();
        assert_eq!(p.temperature, Some(0.0));
        assert_eq!(p.max_new_tokens, Some(7));
        assert_eq!(p.stop, vec!["x".to_string()]);
        assert_eq!(p.seed, Some(3));
        let p = sampling(
            "m",
            &params(serde_json::json!({"stop": ["a", "b"]})),
            Some(16),
        )
        .unwrap();
        assert_eq!(p.stop.len(), 2);
        assert_eq!(p.max_new_tokens, Some(16));
        assert_eq!(p.temperature, Some(1.0));
    }
}

//! The worker's per-token report (ids, bytes, log-probabilities, alternatives) in OpenAI's
//! shapes: `choices[i].logprobs.content[]` for chat, the legacy `tokens` / `token_logprobs` /
//! `top_logprobs` / `text_offset` lists for text completions.

use arena_proto::v1::GenerateResponse;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// One generated token as the worker reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Its bytes (possibly part of a UTF-8 character).
    pub bytes: Vec<u8>,
    /// Its log-probability under the model.
    pub logprob: f32,
    /// The most likely tokens at its step, most likely first.
    pub top: Vec<(Vec<u8>, f32)>,
}

/// The tokens a worker message reports (none unless they were asked for).
pub fn tokens(m: &GenerateResponse) -> Vec<Token> {
    m.logprobs
        .iter()
        .enumerate()
        .map(|(i, &logprob)| Token {
            bytes: m.token_bytes.get(i).cloned().unwrap_or_default(),
            logprob,
            top: m
                .top_logprobs
                .get(i)
                .map(|t| {
                    t.tokens
                        .iter()
                        .map(|a| (a.token.clone(), a.logprob))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// A token's text: its bytes as UTF-8, or OpenAI's `bytes:\xe2\x80` spelling for a token that
/// holds part of a character.
pub fn token_string(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => std::iter::once("bytes:".to_string())
            .chain(bytes.iter().map(|b| format!("\\x{b:02x}")))
            .collect(),
    }
}

/// Chat's `logprobs` object.
#[derive(Debug, Serialize)]
pub struct ChatLogprobs {
    /// One entry per token.
    pub content: Vec<ChatToken>,
    /// Never a refusal here.
    pub refusal: Option<()>,
}

/// One chat token with its alternatives.
#[derive(Debug, Serialize)]
pub struct ChatToken {
    /// Its text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f32,
    /// Its bytes, as integers.
    pub bytes: Vec<u8>,
    /// The most likely tokens at its step (empty unless `top_logprobs` was set).
    pub top_logprobs: Vec<TopToken>,
}

/// An alternative at one step.
#[derive(Debug, Serialize)]
pub struct TopToken {
    /// Its text.
    pub token: String,
    /// Its log-probability.
    pub logprob: f32,
    /// Its bytes, as integers.
    pub bytes: Vec<u8>,
}

/// The chat shape of `tokens`.
pub fn chat(tokens: &[Token]) -> ChatLogprobs {
    ChatLogprobs {
        content: tokens
            .iter()
            .map(|t| ChatToken {
                token: token_string(&t.bytes),
                logprob: t.logprob,
                bytes: t.bytes.clone(),
                top_logprobs: t
                    .top
                    .iter()
                    .map(|(bytes, logprob)| TopToken {
                        token: token_string(bytes),
                        logprob: *logprob,
                        bytes: bytes.clone(),
                    })
                    .collect(),
            })
            .collect(),
        refusal: None,
    }
}

/// The legacy completions shape.
#[derive(Debug, Serialize)]
pub struct TextLogprobs {
    /// Each token's text.
    pub tokens: Vec<String>,
    /// Each token's log-probability.
    pub token_logprobs: Vec<f32>,
    /// The alternatives at each step, text to log-probability (null when none were asked for).
    pub top_logprobs: Option<Vec<TopMap>>,
    /// Where each token starts in the completion's text, in characters.
    pub text_offset: Vec<usize>,
}

/// The alternatives at one step, as a JSON object in likelihood order.
#[derive(Debug)]
pub struct TopMap(pub Vec<(String, f32)>);

impl Serialize for TopMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The legacy shape of `tokens`; `offset` is where the first starts in the completion (in
/// characters) and moves past the last, so chunks of a stream continue it.
pub fn text(tokens: &[Token], offset: &mut usize, with_top: bool) -> TextLogprobs {
    let mut out = TextLogprobs {
        tokens: Vec::with_capacity(tokens.len()),
        token_logprobs: Vec::with_capacity(tokens.len()),
        top_logprobs: with_top.then(Vec::new),
        text_offset: Vec::with_capacity(tokens.len()),
    };
    for t in tokens {
        let s = token_string(&t.bytes);
        out.text_offset.push(*offset);
        *offset += String::from_utf8_lossy(&t.bytes).chars().count();
        out.tokens.push(s);
        out.token_logprobs.push(t.logprob);
        if let Some(top) = out.top_logprobs.as_mut() {
            top.push(TopMap(
                t.top.iter().map(|(b, lp)| (token_string(b), *lp)).collect(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use arena_proto::v1::{TokenLogprob, TopLogprobs};

    fn message() -> GenerateResponse {
        GenerateResponse {
            text: "hé".into(),
            token_ids: vec![1, 2, 3],
            logprobs: vec![-0.5, -1.0, -0.25],
            token_bytes: vec![b"h".to_vec(), vec![0xC3], vec![0xA9]],
            top_logprobs: (0..3)
                .map(|i| TopLogprobs {
                    tokens: vec![
                        TokenLogprob {
                            token_id: i,
                            token: b"h".to_vec(),
                            logprob: -0.125,
                        },
                        TokenLogprob {
                            token_id: 9,
                            token: b" x".to_vec(),
                            logprob: -2.0,
                        },
                    ],
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn chat_shape_spells_partial_characters_as_bytes() {
        let c = serde_json::to_value(chat(&tokens(&message()))).unwrap();
        assert_eq!(c["content"][0]["token"], "h");
        assert_eq!(c["content"][0]["bytes"], serde_json::json!([104]));
        assert_eq!(c["content"][1]["token"], "bytes:\\xc3");
        assert_eq!(c["content"][2]["logprob"], -0.25);
        assert_eq!(c["content"][2]["top_logprobs"][1]["token"], " x");
        assert_eq!(c["content"][2]["top_logprobs"].as_array().unwrap().len(), 2);
        assert!(c["refusal"].is_null());
        assert!(tokens(&GenerateResponse::default()).is_empty());
    }

    #[test]
    fn text_shape_continues_offsets_across_chunks() {
        let mut offset = 0;
        let t = tokens(&message());
        let first = serde_json::to_value(text(&t[..1], &mut offset, true)).unwrap();
        let rest = serde_json::to_value(text(&t[1..], &mut offset, false)).unwrap();
        assert_eq!(first["tokens"], serde_json::json!(["h"]));
        assert_eq!(
            first["top_logprobs"][0],
            serde_json::json!({"h": -0.125, " x": -2.0})
        );
        assert_eq!(rest["text_offset"], serde_json::json!([1, 2]));
        assert!(rest["top_logprobs"].is_null());
        assert_eq!(offset, 3);
    }
}

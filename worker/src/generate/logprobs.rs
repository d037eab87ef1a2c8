//! What `return_tokens` reports of each generated token: its bytes, its log-probability under
//! the model, and the most likely alternatives at that step.
//!
//! Log-probabilities are those of the model's own distribution (log-softmax of the logits
//! before repetition penalty, temperature, top-k and top-p), so they do not depend on how the
//! token was drawn, and the sampled token's value equals its entry among the alternatives.

use crate::text::tokenizer::Tokenizer;

/// Most alternatives one step may report (OpenAI's limit for `top_logprobs`).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// A log-probability that is not finite (a masked logit) is reported as this, as OpenAI does,
/// so that it survives JSON.
const FLOOR: f32 = -9999.0;

/// One token with its log-probability.
#[derive(Debug, Clone, PartialEq)]
pub struct Alternative {
    /// Token id.
    pub id: u32,
    /// Its bytes (possibly part of a UTF-8 character).
    pub bytes: Vec<u8>,
    /// Its log-probability.
    pub logprob: f32,
}

/// The log-softmax normaliser of `logits`: log Σ exp(l).
pub fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    max + sum.ln()
}

/// `logit - lse`, kept finite.
pub fn logprob(logit: f32, lse: f32) -> f32 {
    let lp = logit - lse;
    if lp.is_finite() {
        lp.max(FLOOR)
    } else {
        FLOOR
    }
}

/// The `n` most likely ids with their log-probabilities, most likely first (lower id on ties).
/// One pass keeping a small sorted list: n is at most 20 against a vocabulary of many thousands.
pub fn top(logits: &[f32], lse: f32, n: usize) -> Vec<(u32, f32)> {
    let n = n.min(logits.len());
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(n + 1);
    if n == 0 {
        return best;
    }
    for (i, &l) in logits.iter().enumerate() {
        // A NaN logit is no candidate; a full list takes only a strictly better one.
        if l.is_nan() || (best.len() == n && l <= best[n - 1].1) {
            continue;
        }
        // Ties keep the earlier (lower) id first: insert after equal values.
        let at = best.partition_point(|&(_, b)| b >= l);
        best.insert(at, (i as u32, l));
        best.truncate(n);
    }
    best.into_iter()
        .map(|(id, l)| (id, logprob(l, lse)))
        .collect()
}

/// What `return_tokens` reports of one step.
#[derive(Debug, Default)]
pub struct Report {
    /// The sampled id (none for a stop token).
    pub token_ids: Vec<u32>,
    /// Its log-probability.
    pub logprobs: Vec<f32>,
    /// Its bytes.
    pub token_bytes: Vec<Vec<u8>>,
    /// The alternatives at its step, when asked for.
    pub top_logprobs: Vec<Vec<Alternative>>,
}

impl Report {
    /// The sampled `id` and, when asked, the `n` most likely tokens, all under the model's
    /// distribution `raw` (the logits before the sampler changed them).
    pub fn of(raw: &[f32], id: u32, n: usize, tok: &Tokenizer, pieces: &TokenBytes) -> Self {
        let lse = log_sum_exp(raw);
        let logit = raw.get(id as usize).copied().unwrap_or(f32::NEG_INFINITY);
        let top_logprobs = if n > 0 {
            vec![top(raw, lse, n)
                .into_iter()
                .map(|(id, logprob)| Alternative {
                    id,
                    bytes: pieces.of(tok, id),
                    logprob,
                })
                .collect()]
        } else {
            Vec::new()
        };
        Self {
            token_ids: vec![id],
            logprobs: vec![logprob(logit, lse)],
            token_bytes: vec![pieces.of(tok, id)],
            top_logprobs,
        }
    }
}

/// Turns token ids into their bytes, for byte-level BPE and SentencePiece vocabularies alike.
#[derive(Debug, Clone)]
pub struct TokenBytes {
    /// For byte-level vocabularies: GPT-2's printable character of each byte, reversed.
    byte_of: Option<std::collections::HashMap<char, u8>>,
}

impl TokenBytes {
    /// Works out the vocabulary's kind once: SentencePiece pieces mark spaces with '▁', which
    /// GPT-2's byte alphabet never contains.
    pub fn new(tok: &Tokenizer) -> Self {
        let spm = (0..tok.vocab_size() as u32)
            .filter_map(|id| tok.id_to_token(id))
            .any(|piece| piece.contains('▁'));
        Self::with_kind(!spm)
    }

    /// A converter for a byte-level (`true`) or SentencePiece (`false`) vocabulary.
    pub fn with_kind(byte_level: bool) -> Self {
        let byte_of = byte_level.then(|| {
            crate::model::tiny_gguf::bytes_to_unicode()
                .into_iter()
                .enumerate()
                .map(|(b, c)| (c, b as u8))
                .collect()
        });
        Self { byte_of }
    }

    /// The bytes of token `id` (empty for an id the vocabulary does not have).
    pub fn of(&self, tok: &Tokenizer, id: u32) -> Vec<u8> {
        tok.id_to_token(id)
            .map(|piece| self.piece_bytes(&piece))
            .unwrap_or_default()
    }

    /// The bytes a vocabulary piece stands for. Characters outside the byte alphabet (in
    /// special tokens) stand for themselves.
    pub fn piece_bytes(&self, piece: &str) -> Vec<u8> {
        match &self.byte_of {
            Some(byte_of) => {
                let mut out = Vec::with_capacity(piece.len());
                for c in piece.chars() {
                    match byte_of.get(&c) {
                        Some(&b) => out.push(b),
                        None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                    }
                }
                out
            }
            None => match byte_fallback(piece) {
                Some(b) => vec![b],
                None => piece.replace('▁', " ").into_bytes(),
            },
        }
    }
}

/// The byte of a SentencePiece byte-fallback piece, `<0xAB>`.
fn byte_fallback(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2)
        .then(|| u8::from_str_radix(hex, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_is_sorted_with_lower_ids_first_on_ties() {
        let logits = [1.0f32, 3.0, 2.0, 3.0, f32::NEG_INFINITY];
        let lse = log_sum_exp(&logits);
        let t = top(&logits, lse, 3);
        assert_eq!(
            t.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![1, 3, 2],
            "{t:?}"
        );
        assert!((t[0].1 - (3.0 - lse)).abs() < 1e-6);
        let total: f32 = logits.iter().map(|&l| logprob(l, lse).exp()).sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        assert_eq!(logprob(f32::NEG_INFINITY, lse), FLOOR);
        assert!(top(&logits, lse, 0).is_empty());
        assert_eq!(top(&logits, lse, 50).len(), logits.len());
    }

    #[test]
    fn log_sum_exp_is_stable() {
        let lse = log_sum_exp(&[1000.0, 1000.0]);
        assert!((lse - (1000.0 + 2f32.ln())).abs() < 1e-3, "{lse}");
        assert!((logprob(0.0, log_sum_exp(&[0.0, 0.0])) - 0.5f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn both_vocabulary_kinds_are_recognised() {
        use crate::model::tiny_gguf::{gpt2_vocab, spm_vocab};
        use crate::text::tokenizer::GgufVocab;
        let (tokens, merges) = gpt2_vocab();
        let gpt2 = Tokenizer::from_gguf(&GgufVocab {
            model: "gpt2".into(),
            tokens,
            merges,
            ..Default::default()
        })
        .unwrap();
        let (tokens, scores, token_types) = spm_vocab();
        let spm = Tokenizer::from_gguf(&GgufVocab {
            model: "llama".into(),
            tokens,
            scores,
            token_types,
            ..Default::default()
        })
        .unwrap();
        for (tok, want) in [(&gpt2, "hello world\né"), (&spm, " hello world\né")] {
            let tb = TokenBytes::new(tok);
            let ids = tok.encode_plain("hello world\né", false).unwrap();
            let bytes: Vec<u8> = ids.iter().flat_map(|&id| tb.of(tok, id)).collect();
            assert_eq!(String::from_utf8_lossy(&bytes), want, "{ids:?}");
        }
    }

    #[test]
    fn pieces_become_their_bytes() {
        let bl = TokenBytes::with_kind(true);
        assert_eq!(bl.piece_bytes("Ġhello"), b" hello");
        assert_eq!(bl.piece_bytes("Ċ"), b"\n");
        // "é" is two bytes, each its own character in GPT-2's alphabet.
        assert_eq!(bl.piece_bytes("Ã©"), "é".as_bytes());
        assert_eq!(bl.piece_bytes("<|im_end|>"), b"<|im_end|>");
        let spm = TokenBytes::with_kind(false);
        assert_eq!(spm.piece_bytes("▁hello"), b" hello");
        assert_eq!(spm.piece_bytes("<0x0A>"), b"\n");
        assert_eq!(spm.piece_bytes("<0xE2>"), vec![0xE2]);
        assert_eq!(spm.piece_bytes("é"), "é".as_bytes());
        assert_eq!(spm.piece_bytes("<0xZZ>"), b"<0xZZ>");
    }
}

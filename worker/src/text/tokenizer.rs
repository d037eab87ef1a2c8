//! Tokenizers built from GGUF metadata or a Hugging Face `tokenizer.json`, and streaming decode.

use std::collections::HashSet;
use std::path::Path;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{NormalizerWrapper, Sequence as NormalizerSequence};
use tokenizers::normalizers::{Prepend, Replace};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, Encoding, SplitDelimiterBehavior};

use crate::error::{Result, WorkerError};
use crate::text::guard::{overlaps, Rendered};

/// GGUF token types (llama.cpp `llama_token_type`).
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// llama.cpp's pre-tokenizer regex for the `llama-bpe` (LLaMA 3) vocabularies.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The vocabulary as stored in GGUF metadata (`tokenizer.ggml.*`).
#[derive(Debug, Default)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: `gpt2` (byte-level BPE) or `llama` (SentencePiece).
    pub model: String,
    /// `tokenizer.ggml.pre`: which pre-tokenizer regex the vocabulary was trained with.
    pub pre: Option<String>,
    /// Token strings by id.
    pub tokens: Vec<String>,
    /// Token types by id (may be empty).
    pub token_types: Vec<i64>,
    /// SentencePiece scores by id (may be empty).
    pub scores: Vec<f32>,
    /// BPE merges as "left right" (may be empty).
    pub merges: Vec<String>,
    /// Beginning-of-sequence token.
    pub bos: Option<u32>,
    /// End-of-sequence token.
    pub eos: Option<u32>,
    /// Unknown token.
    pub unk: Option<u32>,
    /// Whether prompts start with BOS.
    pub add_bos: Option<bool>,
}

/// A model's tokenizer with the special tokens generation needs.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// The same tokenizer with special-token parsing off: their text is ordinary text.
    plain: tokenizers::Tokenizer,
    special_ids: HashSet<u32>,
    bos: Option<u32>,
    eos: Vec<u32>,
    add_bos: bool,
    manual_bos: bool,
}

fn tok_err(e: impl std::fmt::Display) -> WorkerError {
    WorkerError::Tokenizer(e.to_string())
}

impl Tokenizer {
    /// Builds the tokenizer llama.cpp would use for this GGUF vocabulary.
    pub fn from_gguf(v: &GgufVocab) -> Result<Self> {
        if v.tokens.is_empty() {
            return Err(WorkerError::MissingTokenizer(
                "the GGUF file has no tokenizer.ggml.tokens".into(),
            ));
        }
        let vocab: Vocab = v
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let mut inner = match v.model.as_str() {
            "gpt2" => {
                let merges = v
                    .merges
                    .iter()
                    .map(|m| {
                        m.split_once(' ')
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                            .ok_or_else(|| tok_err(format!("malformed merge '{m}'")))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let bpe = BPE::builder()
                    .vocab_and_merges(vocab, merges)
                    .build()
                    .map_err(tok_err)?;
                let mut t = tokenizers::Tokenizer::new(bpe);
                t.with_pre_tokenizer(Some(gpt2_pre_tokenizer(v.pre.as_deref())?));
                t.with_decoder(Some(ByteLevelDecoder::default()));
                t
            }
            "llama" => {
                let merges = merges_from_scores(&v.tokens, &v.scores, &vocab);
                let mut b = BPE::builder()
                    .vocab_and_merges(vocab, merges)
                    .byte_fallback(true)
                    .fuse_unk(true);
                if let Some(unk) = v.unk.and_then(|u| v.tokens.get(u as usize)) {
                    b = b.unk_token(unk.clone());
                }
                let mut t = tokenizers::Tokenizer::new(b.build().map_err(tok_err)?);
                t.with_normalizer(Some(NormalizerSequence::new(vec![
                    NormalizerWrapper::Prepend(Prepend::new("▁".into())),
                    NormalizerWrapper::Replace(Replace::new(" ", "▁").map_err(tok_err)?),
                ])))
                .map_err(tok_err)?;
                t.with_decoder(Some(DecoderSequence::new(vec![
                    DecoderWrapper::Replace(Replace::new("▁", " ").map_err(tok_err)?),
                    DecoderWrapper::ByteFallback(ByteFallback::new()),
                    DecoderWrapper::Fuse(Fuse::new()),
                    DecoderWrapper::Strip(Strip::new(' ', 1, 0)),
                ])));
                t
            }
            other => {
                return Err(WorkerError::MissingTokenizer(format!(
                    "unsupported GGUF tokenizer model '{other}' (supported: gpt2, llama)"
                )))
            }
        };
        let specials: Vec<AddedToken> = v
            .token_types
            .iter()
            .enumerate()
            .filter(|(_, ty)| matches!(**ty, TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED))
            .filter_map(|(i, _)| v.tokens.get(i))
            .map(|t| AddedToken::from(t.clone(), true))
            .collect();
        inner.add_special_tokens(specials).map_err(tok_err)?;
        let add_bos = v.add_bos.unwrap_or(v.model == "llama");
        Ok(Self::assemble(
            inner,
            v.bos,
            v.eos.into_iter().collect(),
            add_bos,
            true,
        ))
    }

    fn assemble(
        inner: tokenizers::Tokenizer,
        bos: Option<u32>,
        eos: Vec<u32>,
        add_bos: bool,
        manual_bos: bool,
    ) -> Self {
        let mut plain = inner.clone();
        plain.set_encode_special_tokens(true);
        let special_ids = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .collect();
        Self {
            inner,
            plain,
            special_ids,
            bos,
            eos,
            add_bos,
            manual_bos,
        }
    }

    /// Loads a Hugging Face `tokenizer.json`; its post-processor decides about BOS.
    pub fn from_hf_file(
        path: &Path,
        bos: Option<&str>,
        eos: &[String],
        eos_ids: &[u32],
    ) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| WorkerError::MissingTokenizer(format!("{}: {e}", path.display())))?;
        let bos = bos.and_then(|b| inner.token_to_id(b));
        let mut eos_all: Vec<u32> = eos_ids.to_vec();
        eos_all.extend(eos.iter().filter_map(|e| inner.token_to_id(e)));
        eos_all.sort_unstable();
        eos_all.dedup();
        Ok(Self::assemble(inner, bos, eos_all, true, false))
    }

    /// Encodes trusted text; special tokens written in it are recognised. With
    /// `add_special`, BOS is added when the model expects it.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, add_special && !self.manual_bos)
            .map_err(tok_err)?;
        Ok(self.with_bos(enc.get_ids().to_vec(), add_special))
    }

    /// Encodes caller-written text: special tokens written in it are read as plain text.
    pub fn encode_plain(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let enc = self
            .plain
            .encode(text, add_special && !self.manual_bos)
            .map_err(tok_err)?;
        Ok(self.with_bos(enc.get_ids().to_vec(), add_special))
    }

    /// Encodes a rendered prompt: special tokens count only where the template wrote them;
    /// inside message text they are plain text.
    pub fn encode_rendered(&self, r: &Rendered, add_special: bool) -> Result<Vec<u32>> {
        let post = add_special && !self.manual_bos;
        let enc = self.inner.encode(r.text.as_str(), post).map_err(tok_err)?;
        let is_forged = |(id, &(s, e)): (&u32, &(usize, usize))| {
            self.special_ids.contains(id) && overlaps(&r.untrusted, &(s..e))
        };
        if !enc.get_ids().iter().zip(enc.get_offsets()).any(is_forged) {
            // The usual case: one pass, the ids the model was trained on.
            return Ok(self.with_bos(enc.get_ids().to_vec(), add_special));
        }
        // Split only at the template's own special tokens; everything between them is
        // tokenized with special-token parsing off, as the library splits pieces itself.
        let slice = |a: usize, b: usize| {
            r.text
                .get(a..b)
                .ok_or_else(|| tok_err(format!("token offsets {a}..{b} split a character")))
        };
        let mut parts: Vec<Encoding> = Vec::new();
        let mut at = 0;
        for (id, &(s, e)) in enc.get_ids().iter().zip(enc.get_offsets()) {
            if s >= e || s < at || !self.special_ids.contains(id) || overlaps(&r.untrusted, &(s..e))
            {
                continue;
            }
            if at < s {
                parts.push(self.plain.encode(slice(at, s)?, false).map_err(tok_err)?);
            }
            parts.push(self.inner.encode(slice(s, e)?, false).map_err(tok_err)?);
            at = e;
        }
        if at < r.text.len() {
            parts.push(
                self.plain
                    .encode(slice(at, r.text.len())?, false)
                    .map_err(tok_err)?,
            );
        }
        let enc = self
            .inner
            .post_process(Encoding::merge(parts, true), None, post)
            .map_err(tok_err)?;
        Ok(self.with_bos(enc.get_ids().to_vec(), add_special))
    }

    /// Puts BOS first when this vocabulary wants it and the library does not add it.
    fn with_bos(&self, mut ids: Vec<u32>, add_special: bool) -> Vec<u32> {
        if add_special && self.manual_bos && self.add_bos {
            if let Some(bos) = self.bos {
                if ids.first() != Some(&bos) {
                    ids.insert(0, bos);
                }
            }
        }
        ids
    }

    /// Decodes ids to text, dropping special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(tok_err)
    }

    /// The text of one token, special or not.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// End-of-sequence ids.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos
    }

    /// Beginning-of-sequence id.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Encodes a rendered prompt like `encode_rendered` (no BOS added) and gives each token's
    /// byte range in `r.text`, for telling which tokens came from which part of the text.
    pub fn encode_rendered_with_offsets(&self, r: &Rendered) -> Result<Vec<(u32, (usize, usize))>> {
        let enc = self.inner.encode(r.text.as_str(), false).map_err(tok_err)?;
        let pairs: Vec<(u32, (usize, usize))> = enc
            .get_ids()
            .iter()
            .copied()
            .zip(enc.get_offsets().iter().copied())
            .collect();
        let forged = pairs
            .iter()
            .any(|(id, (s, e))| self.special_ids.contains(id) && overlaps(&r.untrusted, &(*s..*e)));
        if !forged {
            return Ok(pairs);
        }
        // Message text that spells a special token: split as encode_rendered does, keeping
        // each piece's offsets relative to the whole text.
        let mut out = Vec::with_capacity(pairs.len());
        let mut at = 0;
        let plain_piece = |a: usize, b: usize, out: &mut Vec<(u32, (usize, usize))>| {
            let piece = r
                .text
                .get(a..b)
                .ok_or_else(|| tok_err(format!("token offsets {a}..{b} split a character")))?;
            let enc = self.plain.encode(piece, false).map_err(tok_err)?;
            out.extend(
                enc.get_ids()
                    .iter()
                    .zip(enc.get_offsets())
                    .map(|(&id, &(s, e))| (id, (a + s, a + e))),
            );
            Ok::<_, WorkerError>(())
        };
        for &(id, (s, e)) in &pairs {
            if s >= e
                || s < at
                || !self.special_ids.contains(&id)
                || overlaps(&r.untrusted, &(s..e))
            {
                continue;
            }
            if at < s {
                plain_piece(at, s, &mut out)?;
            }
            out.push((id, (s, e)));
            at = e;
        }
        if at < r.text.len() {
            plain_piece(at, r.text.len(), &mut out)?;
        }
        Ok(out)
    }

    /// Writes the tokenizer as a Hugging Face `tokenizer.json` that loads back to the same
    /// ids; a vocabulary whose BOS this type adds itself gets a post-processor adding it.
    pub fn save_hf(&self, path: &Path) -> Result<()> {
        let mut out = self.inner.clone();
        if self.manual_bos && self.add_bos {
            if let Some((bos, text)) = self.bos.and_then(|b| Some((b, self.inner.id_to_token(b)?)))
            {
                let post = tokenizers::processors::template::TemplateProcessing::builder()
                    .try_single(format!("{text} $A"))
                    .map_err(tok_err)?
                    .try_pair(format!("{text} $A {text} $B"))
                    .map_err(tok_err)?
                    .special_tokens(vec![(text.clone(), bos)])
                    .build()
                    .map_err(tok_err)?;
                out.with_post_processor(Some(post));
            }
        }
        out.save(path, false).map_err(tok_err)
    }
}

/// Pre-tokenizer for byte-level BPE, chosen like llama.cpp by `tokenizer.ggml.pre`.
fn gpt2_pre_tokenizer(pre: Option<&str>) -> Result<PreTokenizerWrapper> {
    let byte_level = |regex| PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, regex));
    Ok(match pre.unwrap_or("default") {
        // llama.cpp splits digits one by one, then applies the GPT-2 regex.
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            PreTokenizerWrapper::Sequence(PreSequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                byte_level(true),
            ]))
        }
        "llama-bpe" | "llama3" | "llama-v3" | "smaug-bpe" => {
            PreTokenizerWrapper::Sequence(PreSequence::new(vec![
                PreTokenizerWrapper::Split(
                    Split::new(
                        SplitPattern::Regex(LLAMA3_REGEX.into()),
                        SplitDelimiterBehavior::Isolated,
                        false,
                    )
                    .map_err(tok_err)?,
                ),
                byte_level(false),
            ]))
        }
        "default" | "gpt-2" | "gpt2" => byte_level(true),
        other => {
            tracing::warn!(
                pre = other,
                "unknown GGUF pre-tokenizer; using the GPT-2 regex"
            );
            byte_level(true)
        }
    })
}

/// Derives SentencePiece BPE merges from token scores: a pair merges when the merged piece
/// is in the vocabulary, higher-scored pieces first (what llama.cpp's SPM tokenizer does).
fn merges_from_scores(tokens: &[String], scores: &[f32], vocab: &Vocab) -> Vec<(String, String)> {
    let mut merges: Vec<(f32, u32, String, String)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        let score = scores.get(id).copied().unwrap_or(0.0);
        for (split, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(split);
            if vocab.contains_key(left) && vocab.contains_key(right) {
                merges.push((score, id as u32, left.to_string(), right.to_string()));
            }
        }
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    merges.into_iter().map(|(_, _, l, r)| (l, r)).collect()
}

/// Turns a stream of token ids into text deltas that are always whole UTF-8 characters.
///
/// A token can end inside a multi-byte character, and SentencePiece decoders drop a leading
/// space of the first token, so each delta is the difference between decoding a short window
/// with and without the newest tokens.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    ids: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
}

impl StreamDecoder {
    /// Adds one token; returns the new text once it forms whole characters.
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<Option<String>> {
        self.ids.push(id);
        let prefix = tok.decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let full = tok.decode(&self.ids[self.prefix_offset..])?;
        if full.len() > prefix.len() && !full.ends_with('\u{FFFD}') {
            let delta = match full.get(prefix.len()..) {
                Some(d) if full.starts_with(&prefix) => d.to_string(),
                _ => full.chars().skip(prefix.chars().count()).collect(),
            };
            self.prefix_offset = self.read_offset;
            self.read_offset = self.ids.len();
            Ok(Some(delta))
        } else {
            Ok(None)
        }
    }

    /// Whatever is still held back (an incomplete character becomes U+FFFD).
    pub fn flush(&mut self, tok: &Tokenizer) -> Result<String> {
        if self.read_offset == self.ids.len() {
            return Ok(String::new());
        }
        let prefix = tok.decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let full = tok.decode(&self.ids[self.prefix_offset..])?;
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        Ok(full.chars().skip(prefix.chars().count()).collect())
    }
}

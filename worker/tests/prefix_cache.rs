//! The prefix cache on tiny models: a conversation's next turn starts from the KV its
//! previous turn left and prefills only the new tokens, and generates exactly what a worker
//! without the cache generates, the same tokens with the same log-probabilities, with f32
//! weights and every quantized type. The reused KV of an answer was computed by the decode
//! kernels, one row at a time, where a fresh prefill computes it with the prompt's kernels:
//! those kernels add their sums in the same order for one row as for many. The 16-bit
//! kernels do too on every CPU in a batch-invariant worker; otherwise (AMX tiles, BF16 on
//! AVX2) the tokens agree wherever the top-2 gap is clear (DESIGN.md §12).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arena_worker::generate::engine::{EngineOptions, Event};
use arena_worker::generate::params::RawParams;
use arena_worker::model::loader;
use arena_worker::serve::served::{Input, ServedModel};
use arena_worker::text::template::{Message, Role, Template};
use arena_worker::tiny::{self, VocabKind};
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device};

/// A loaded model served with a prefix cache of `prefix_cache_bytes` (0: none).
fn serve(path: &Path, prefix_cache_bytes: usize) -> Arc<ServedModel> {
    let loaded = loader::load(path, &Device::Cpu).unwrap();
    let template = Template::select(None, loaded.own_template.clone(), "model").unwrap();
    let engine = EngineOptions {
        max_concurrency: 4,
        prefix_cache_bytes,
    };
    ServedModel::start(loaded, "model".into(), template, engine, false).unwrap()
}

/// The tiny model as an f32 Hugging Face folder (`None`) or GGUF with matrices of `dtype`.
fn served(dtype: Option<GgmlDType>, prefix_cache_bytes: usize) -> Arc<ServedModel> {
    let dir = tempfile::tempdir().unwrap();
    let path = match dtype {
        Some(dtype) => {
            let path = dir.path().join("tiny.gguf");
            tiny::write_tiny_gguf_as(&path, VocabKind::Gpt2, 11, dtype).unwrap();
            path
        }
        None => {
            tiny::write_tiny_hf(dir.path(), DType::F32, 11).unwrap();
            dir.path().to_path_buf()
        }
    };
    serve(&path, prefix_cache_bytes)
}

/// A greedy answer: its text, ids and each step's top two log-probabilities, with the
/// prompt's length and how much of it came from the cache.
#[derive(Debug)]
struct Answer {
    text: String,
    ids: Vec<u32>,
    top2: Vec<[f32; 2]>,
    prompt: usize,
    cached: usize,
}

async fn answer(m: &ServedModel, messages: &[Message]) -> Answer {
    let params = RawParams {
        temperature: Some(0.0),
        max_new_tokens: Some(24),
        ..Default::default()
    };
    let (ids, mut params) = m
        .prepare(&Input::Chat(messages.to_vec()), None, &params, true)
        .unwrap();
    params.top_logprobs = 2;
    let mut rx = m.engine().submit(ids, params).unwrap();
    let mut a = Answer {
        text: String::new(),
        ids: Vec::new(),
        top2: Vec::new(),
        prompt: 0,
        cached: 0,
    };
    while let Some(e) = rx.recv().await {
        match e {
            Event::Token {
                text,
                token_ids,
                top_logprobs,
                ..
            } => {
                a.text.push_str(&text);
                a.ids.extend(token_ids);
                a.top2
                    .extend(top_logprobs.iter().map(|t| [t[0].logprob, t[1].logprob]));
            }
            Event::Done {
                prompt_tokens,
                cached_tokens,
                ..
            } => (a.prompt, a.cached) = (prompt_tokens, cached_tokens),
            Event::Error(e) => panic!("engine error: {e}"),
        }
    }
    a
}

/// How the cached run must match the fresh one.
#[derive(Clone, Copy)]
enum Match {
    /// The same ids and log-probabilities, bit for bit.
    Exact,
    /// The same ids up to a step where the fresh run's top two were within [`CLOSE`], and
    /// log-probabilities within it: 16-bit weights, whose fastest prompt kernels (AMX tiles,
    /// the f32 GEMM for BF16 on AVX2) add in another order than the one-row decode kernel.
    NearTies,
}

/// Log-probability drift allowed with [`Match::NearTies`], and the top-2 gap under which a
/// step is a near-tie either run may break its own way.
const CLOSE: f32 = 0.25;

/// Checks that `cached` generated what `fresh` did.
fn same_answer(cached: &Answer, fresh: &Answer, how: Match, what: &str, turn: usize) {
    if let Match::Exact = how {
        assert_eq!(cached.ids, fresh.ids, "{what}, turn {turn}: ids differ");
        assert_eq!(cached.text, fresh.text);
        // Bit for bit: the cached keys and values are the ones a fresh prefill computes.
        let bits = |a: &Answer| {
            a.top2
                .iter()
                .flatten()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            bits(cached),
            bits(fresh),
            "{what}, turn {turn}: log-probabilities differ"
        );
        return;
    }
    for (i, (c, f)) in cached.ids.iter().zip(&fresh.ids).enumerate() {
        let gap = fresh.top2[i][0] - fresh.top2[i][1];
        if c != f {
            assert!(
                gap < CLOSE,
                "{what}, turn {turn}, step {i}: {c} vs {f} with a clear gap of {gap}"
            );
            return;
        }
        let drift = (cached.top2[i][0] - fresh.top2[i][0]).abs();
        assert!(
            drift < CLOSE,
            "{what}, turn {turn}, step {i}: log-probability drifted by {drift}"
        );
    }
}

/// Three turns of one conversation on a worker with the cache and one without.
async fn three_turns(with: Arc<ServedModel>, without: Arc<ServedModel>, how: Match, what: &str) {
    let mut conversation = vec![Message::new(Role::User, "hello world")];
    let mut saved = 0;
    for (turn, next) in ["and then", "once more", ""].iter().enumerate() {
        let cached = answer(&with, &conversation).await;
        let fresh = answer(&without, &conversation).await;
        same_answer(&cached, &fresh, how, what, turn + 1);
        assert_eq!(fresh.cached, 0);
        if turn == 0 {
            assert_eq!(cached.cached, 0, "nothing to reuse on the first turn");
        } else {
            // Everything up to the previous answer is reused; only the new turn is prefilled.
            assert!(
                cached.cached > 0 && cached.cached < cached.prompt,
                "turn {}: {cached:?}",
                turn + 1
            );
            saved += cached.cached;
        }
        if next.is_empty() {
            // Long enough that the fresh worker prefills it with the prompt kernels (the GEMM
            // from 32 rows), not the ones that decoded the cached answers.
            assert!(fresh.prompt >= 32, "{what}: a prompt of {}", fresh.prompt);
            break;
        }
        // The fresh worker's answer goes on, so both see the same conversation.
        conversation.push(Message::new(Role::Assistant, fresh.text.clone()));
        conversation.push(Message::new(Role::User, *next));
    }
    assert_eq!(with.engine().stats().prefix_cache(), (2, saved));
    assert_eq!(without.engine().stats().prefix_cache(), (0, 0));
}

#[tokio::test]
async fn with_f32_weights_later_turns_reuse_the_kv_and_answer_exactly_the_same() {
    three_turns(served(None, 64 << 20), served(None, 0), Match::Exact, "f32").await;
}

#[tokio::test]
async fn with_every_quantized_type_later_turns_answer_exactly_the_same() {
    use GgmlDType::*;
    for dtype in [Q4_0, Q4_1, Q8_0, Q4K, Q5K, Q6K] {
        let (with, without) = (served(Some(dtype), 64 << 20), served(Some(dtype), 0));
        three_turns(with, without, Match::Exact, &format!("{dtype:?}")).await;
    }
}

#[tokio::test]
async fn with_16_bit_weights_later_turns_agree_wherever_the_top_token_is_clear() {
    for dtype in [GgmlDType::F16, GgmlDType::BF16] {
        let (with, without) = (served(Some(dtype), 64 << 20), served(Some(dtype), 0));
        three_turns(with, without, Match::NearTies, &format!("{dtype:?}")).await;
    }
}

#[tokio::test]
async fn with_16_bit_weights_a_batch_invariant_worker_answers_exactly_the_same() {
    // What `arena worker --batch-invariant` sets, for this test's process.
    arena_worker::model::half::keep_rows_alike();
    for dtype in [GgmlDType::F16, GgmlDType::BF16] {
        let (with, without) = (served(Some(dtype), 64 << 20), served(Some(dtype), 0));
        three_turns(with, without, Match::Exact, &format!("{dtype:?}")).await;
    }
}

/// The real SmolLM2 (Q4_1), fetched by scripts/fetch-models.sh into `$ARENA_MODELS`.
fn smollm2() -> PathBuf {
    let dir = std::env::var_os("ARENA_MODELS").map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/arena/models"),
        PathBuf::from,
    );
    let path = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models.sh",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn smollm2_answers_later_turns_from_the_cache_as_it_does_without() {
    let path = smollm2();
    three_turns(
        serve(&path, 256 << 20),
        serve(&path, 0),
        Match::Exact,
        "SmolLM2 Q4_1",
    )
    .await;
}

#[tokio::test]
async fn an_unrelated_prompt_reuses_nothing_and_a_repeated_one_all_but_its_last_token() {
    let m = served(None, 64 << 20);
    let first = vec![Message::new(Role::User, "hello world")];
    let a = answer(&m, &first).await;
    let b = answer(&m, &[Message::new(Role::User, "zebra")]).await;
    // The template's opening tokens are shared; the user's text is not.
    assert!(b.cached < b.prompt - 1, "{b:?}");
    // The same prompt again: its KV is there but for the last token, which is fed again.
    let again = answer(&m, &first).await;
    assert_eq!(again.ids, a.ids);
    assert_eq!(again.cached, again.prompt - 1);
}

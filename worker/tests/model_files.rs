//! Loading tiny models in both formats, the forward pass, and every bad-model-file case.

use std::path::Path;

use arena_worker::model::half::{Half, Kernel};
use arena_worker::model::kv_cache::KvCache;
use arena_worker::model::llama::{BatchItem, Llama};
use arena_worker::model::loader::{self, LoadedModel};
use arena_worker::model::quant::Isa;
use arena_worker::tiny::{self, VocabKind};
use arena_worker::WorkerError;
use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::QTensor;
use candle_core::{DType, Device};

fn load(path: &Path) -> Result<LoadedModel, WorkerError> {
    loader::load(path, &Device::Cpu)
}

fn tiny_gguf(dir: &Path, kind: VocabKind) -> std::path::PathBuf {
    let path = dir.join("tiny.gguf");
    tiny::write_tiny_gguf(&path, kind, 7).unwrap();
    path
}

fn logits(model: &Llama, tokens: &[u32]) -> Vec<f32> {
    let mut cache = model.new_cache();
    model
        .forward(&mut [BatchItem {
            tokens,
            cache: &mut cache,
        }])
        .unwrap()
        .remove(0)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn gguf_and_hf_tiny_models_load_and_run() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [VocabKind::Gpt2, VocabKind::Spm] {
        let m = load(&tiny_gguf(dir.path(), kind)).unwrap();
        assert_eq!(m.format, "gguf");
        assert_eq!(m.model.config().context_length, tiny::CONTEXT);
        // No `output.weight`: the head multiplies the Q8_0 embedding itself, held once.
        assert!(m.model.head_shares_embedding(), "the tied head is a copy");
        let l = logits(&m.model, &[1, 2, 3]);
        assert_eq!(l.len(), m.model.config().vocab_size);
        assert!(l.iter().all(|x| x.is_finite()));
    }
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let hf = dir.path().join(format!("hf-{dtype:?}"));
        tiny::write_tiny_hf(&hf, dtype, 7).unwrap();
        let m = load(&hf).unwrap();
        assert_eq!(m.format, "safetensors");
        assert!(
            m.own_template.is_some(),
            "chat_template from tokenizer_config.json"
        );
        let l = logits(&m.model, &[5, 6, 7]);
        assert!(l.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn batched_and_chunked_steps_match_one_sequence_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("hf");
    tiny::write_tiny_hf(&hf, DType::F32, 3).unwrap();
    let m = load(&hf).unwrap().model;
    let a: Vec<u32> = (10..50).collect();
    let b: Vec<u32> = (100..107).collect();
    let whole_a = logits(&m, &a);
    let whole_b = logits(&m, &b);

    // Token by token through the cache gives what one prefill gives.
    let mut cache = m.new_cache();
    let mut last = Vec::new();
    for t in &a {
        last = m
            .forward(&mut [BatchItem {
                tokens: std::slice::from_ref(t),
                cache: &mut cache,
            }])
            .unwrap()
            .remove(0);
    }
    assert!(
        max_diff(&last, &whole_a) < 1e-3,
        "{}",
        max_diff(&last, &whole_a)
    );

    // A prompt chunk of one sequence and a decode step of another in the same batch.
    let mut ca = m.new_cache();
    let mut cb = m.new_cache();
    m.forward(&mut [BatchItem {
        tokens: &a[..30],
        cache: &mut ca,
    }])
    .unwrap();
    m.forward(&mut [BatchItem {
        tokens: &b[..6],
        cache: &mut cb,
    }])
    .unwrap();
    let out = m
        .forward(&mut [
            BatchItem {
                tokens: &a[30..],
                cache: &mut ca,
            },
            BatchItem {
                tokens: &b[6..],
                cache: &mut cb,
            },
        ])
        .unwrap();
    assert!(max_diff(&out[0], &whole_a) < 1e-3);
    assert!(max_diff(&out[1], &whole_b) < 1e-3);
    assert_eq!(ca.len(), a.len());
    assert_eq!(cb.len(), b.len());
}

#[test]
fn quantized_gguf_prefill_paths_agree() {
    // Long prompts go through unpacked weight tiles, short steps through the fused kernel.
    let dir = tempfile::tempdir().unwrap();
    let m = load(&tiny_gguf(dir.path(), VocabKind::Gpt2)).unwrap().model;
    let prompt: Vec<u32> = (0..64).map(|i| (i * 7 % 250) as u32).collect();
    let whole = logits(&m, &prompt);
    let mut cache = m.new_cache();
    let mut last = Vec::new();
    for chunk in prompt.chunks(5) {
        last = m
            .forward(&mut [BatchItem {
                tokens: chunk,
                cache: &mut cache,
            }])
            .unwrap()
            .remove(0);
    }
    // Q8 activations on the short path: agreement to quantization noise.
    let scale = whole.iter().map(|x| x.abs()).fold(0.0, f32::max);
    assert!(
        max_diff(&last, &whole) < 0.05 * scale,
        "{} vs scale {scale}",
        max_diff(&last, &whole)
    );
}

#[test]
fn context_overflow_in_the_cache_is_an_error_not_a_panic() {
    let mut cache = KvCache::new(1, 4, &Device::Cpu);
    let k = candle_core::Tensor::zeros((1, 5, 2), DType::F32, &Device::Cpu).unwrap();
    assert!(cache.append(0, &k, &k).is_err());
}

fn expect_err(path: &Path) -> String {
    match load(path) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(e) => e.to_string(),
    }
}

/// Rewrites a GGUF file with edited metadata and tensors.
fn rewrite(
    src: &Path,
    dst: &Path,
    edit: impl FnOnce(&mut Vec<(String, Value)>, &mut Vec<(String, QTensor)>),
) {
    let mut f = std::fs::File::open(src).unwrap();
    let c = Content::read(&mut f).unwrap();
    let mut md: Vec<(String, Value)> = c
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut names: Vec<&String> = c.tensor_infos.keys().collect();
    names.sort();
    let mut ts: Vec<(String, QTensor)> = names
        .into_iter()
        .map(|n| (n.clone(), c.tensor(&mut f, n, &Device::Cpu).unwrap()))
        .collect();
    edit(&mut md, &mut ts);
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = ts.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut std::fs::File::create(dst).unwrap(), &md_refs, &t_refs).unwrap();
}

#[test]
fn bad_model_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = tiny_gguf(dir.path(), VocabKind::Gpt2);
    let bytes = std::fs::read(&good).unwrap();

    let e = expect_err(&dir.path().join("nope.gguf"));
    assert!(e.contains("not found"), "{e}");

    let p = dir.path().join("truncated.gguf");
    std::fs::write(&p, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let e = expect_err(&p);
    assert!(e.contains("truncated"), "{e}");

    let p = dir.path().join("header-only.gguf");
    std::fs::write(&p, &bytes[..100]).unwrap();
    let e = expect_err(&p);
    assert!(
        e.contains("invalid model") || e.contains("truncated"),
        "{e}"
    );

    let p = dir.path().join("garbage.gguf");
    std::fs::write(&p, b"this is not a model at all, just text").unwrap();
    let e = expect_err(&p);
    assert!(e.contains("not a GGUF file"), "{e}");

    let p = dir.path().join("falcon.gguf");
    rewrite(&good, &p, |md, _| {
        md.retain(|(k, _)| k != "general.architecture");
        md.push((
            "general.architecture".into(),
            Value::String("falcon".into()),
        ));
    });
    let e = expect_err(&p);
    assert!(e.contains("unsupported architecture 'falcon'"), "{e}");

    let p = dir.path().join("no-tensor.gguf");
    rewrite(&good, &p, |_, ts| {
        ts.retain(|(n, _)| n != "blk.1.ffn_up.weight")
    });
    let e = expect_err(&p);
    assert!(e.contains("missing tensor 'blk.1.ffn_up.weight'"), "{e}");

    let p = dir.path().join("no-vocab.gguf");
    rewrite(&good, &p, |md, _| {
        md.retain(|(k, _)| !k.starts_with("tokenizer."))
    });
    let e = expect_err(&p);
    assert!(e.contains("missing tokenizer"), "{e}");

    // An unknown ggml type id in the tensor table.
    let p = dir.path().join("unknown-quant.gguf");
    let mut patched = bytes.clone();
    let name = b"token_embd.weight";
    let at = patched.windows(name.len()).position(|w| w == name).unwrap();
    let dtype_at = at + name.len() + 4 + 2 * 8;
    patched[dtype_at..dtype_at + 4].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(&p, &patched).unwrap();
    let e = expect_err(&p);
    assert!(e.contains("unsupported tensor type"), "{e}");

    let p = dir.path().join("bad-shape.gguf");
    rewrite(&good, &p, |md, _| {
        md.retain(|(k, _)| k != "llama.feed_forward_length");
        md.push(("llama.feed_forward_length".into(), Value::U32(96)));
    });
    let e = expect_err(&p);
    assert!(e.contains("has shape"), "{e}");
}

#[test]
fn bad_hf_folders_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("hf");
    tiny::write_tiny_hf(&hf, DType::F32, 1).unwrap();

    let no_tok = dir.path().join("no-tok");
    tiny::write_tiny_hf(&no_tok, DType::F32, 1).unwrap();
    std::fs::remove_file(no_tok.join("tokenizer.json")).unwrap();
    let e = expect_err(&no_tok);
    assert!(e.contains("missing tokenizer"), "{e}");

    let gpt = dir.path().join("gpt-neox");
    tiny::write_tiny_hf(&gpt, DType::F32, 1).unwrap();
    let cfg = std::fs::read_to_string(gpt.join("config.json")).unwrap();
    let cfg = cfg
        .replace("LlamaForCausalLM", "GPTNeoXForCausalLM")
        .replace("\"llama\"", "\"gpt_neox\"");
    std::fs::write(gpt.join("config.json"), cfg).unwrap();
    let e = expect_err(&gpt);
    assert!(
        e.contains("unsupported architecture 'GPTNeoXForCausalLM'"),
        "{e}"
    );

    let corrupt = dir.path().join("corrupt");
    tiny::write_tiny_hf(&corrupt, DType::F32, 1).unwrap();
    let st = corrupt.join("model.safetensors");
    let b = std::fs::read(&st).unwrap();
    std::fs::write(&st, &b[..b.len() / 2]).unwrap();
    let e = expect_err(&corrupt);
    assert!(e.contains("invalid model"), "{e}");

    let ints = dir.path().join("ints");
    tiny::write_tiny_hf(&ints, DType::F32, 1).unwrap();
    let st = ints.join("model.safetensors");
    let mut map = candle_core::safetensors::load(&st, &Device::Cpu).unwrap();
    let w = map
        .get("model.norm.weight")
        .unwrap()
        .to_dtype(DType::I64)
        .unwrap();
    map.insert("model.norm.weight".into(), w);
    candle_core::safetensors::save(&map, &st).unwrap();
    let e = expect_err(&ints);
    assert!(
        e.contains("unsupported tensor type for 'model.norm.weight'"),
        "{e}"
    );

    let missing = dir.path().join("missing");
    tiny::write_tiny_hf(&missing, DType::F32, 1).unwrap();
    let st = missing.join("model.safetensors");
    let mut map = candle_core::safetensors::load(&st, &Device::Cpu).unwrap();
    map.remove("model.layers.0.mlp.up_proj.weight");
    candle_core::safetensors::save(&map, &st).unwrap();
    let e = expect_err(&missing);
    assert!(
        e.contains("missing tensor 'model.layers.0.mlp.up_proj.weight'"),
        "{e}"
    );

    let bad_json = dir.path().join("bad-json");
    tiny::write_tiny_hf(&bad_json, DType::F32, 1).unwrap();
    std::fs::write(bad_json.join("config.json"), "{ not json").unwrap();
    let e = expect_err(&bad_json);
    assert!(e.contains("malformed JSON"), "{e}");

    let e = expect_err(&dir.path().join("does-not-exist"));
    assert!(e.contains("not found"), "{e}");
}

#[test]
fn unknown_device_is_a_clear_error() {
    assert!(loader::parse_device("tpu")
        .unwrap_err()
        .to_string()
        .contains("unknown device"));
    #[cfg(not(feature = "cuda"))]
    assert!(loader::parse_device("cuda:0")
        .unwrap_err()
        .to_string()
        .contains("--features cuda"));
}

/// The 16-bit kind of a candle dtype (F16 unless BF16).
fn dtype_half(dtype: DType) -> Half {
    if dtype == DType::BF16 {
        Half::Bf16
    } else {
        Half::F16
    }
}

/// A 16-bit HF folder is held at 2 bytes per weight on the CPU and computes what the same
/// values held in f32 compute (through candle's f32 path).
#[test]
fn sixteen_bit_weights_stay_sixteen_bit_and_match_their_f32_values() {
    let dir = tempfile::tempdir().unwrap();
    for (dtype, name) in [(DType::F16, "f16"), (DType::BF16, "bf16")] {
        let half = dir.path().join(format!("hf-{name}"));
        tiny::write_tiny_hf(&half, dtype, 11).unwrap();
        // The same values widened to f32, in a second folder.
        let wide = dir.path().join(format!("hf-{name}-as-f32"));
        std::fs::create_dir_all(&wide).unwrap();
        for entry in std::fs::read_dir(&half).unwrap() {
            let path = entry.unwrap().path();
            let to = wide.join(path.file_name().unwrap());
            if path.extension().is_some_and(|e| e == "safetensors") {
                let tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
                let tensors: std::collections::HashMap<_, _> = tensors
                    .into_iter()
                    .map(|(k, t)| (k, t.to_dtype(DType::F32).unwrap()))
                    .collect();
                candle_core::safetensors::save(&tensors, &to).unwrap();
            } else {
                std::fs::copy(&path, &to).unwrap();
            }
        }
        let h = load(&half).unwrap().model;
        let w = load(&wide).unwrap().model;
        assert_eq!(h.held_as(), (name, name), "tied head and blocks in {name}");
        assert!(
            h.head_shares_embedding(),
            "{name}: the tied head is a second copy"
        );
        assert_eq!(w.held_as(), ("f32", "f32"));
        // On AVX-512 BF16 CPUs BF16 weights meet activations rounded to BF16 (as in
        // llama.cpp there), 2⁻⁹ of each term at every layer: 0.4% of the largest logit here.
        let rounds = Kernel::new(Isa::best(), dtype_half(dtype));
        let tol = if rounds.rounds_activations() {
            1.0 / 64.0
        } else {
            1e-4
        };
        for tokens in [&[5u32, 6, 7][..], &(0..40).collect::<Vec<u32>>()[..]] {
            let (a, b) = (logits(&h, tokens), logits(&w, tokens));
            let scale = b.iter().map(|x| x.abs()).fold(0.0, f32::max);
            assert!(
                max_diff(&a, &b) <= tol * scale.max(1.0),
                "{name}, {} tokens: {} (scale {scale})",
                tokens.len(),
                max_diff(&a, &b)
            );
        }
    }
}

//! The training forward against the worker's: the same logits from the same weights, from a
//! Hugging Face folder (f32) and from GGUF (dequantized, Q and K un-permuted), and a folder
//! written from the training weights loads back in the worker with the same logits.

use arena_train::model::{TrainModel, Tuning};
use arena_train::save::{write_folder, FolderParts};
use arena_worker::model::llama::BatchItem;
use arena_worker::model::loader::{self, dense::load_dense};
use arena_worker::tiny::{write_tiny_gguf, write_tiny_hf, VocabKind};
use candle_core::{DType, Device};

const PROMPT: [u32; 9] = [5, 17, 42, 3, 99, 7, 64, 12, 1];

/// The worker's logits after the last token of `PROMPT`.
fn worker_logits(path: &std::path::Path) -> Vec<f32> {
    let loaded = loader::load(path, &Device::Cpu).unwrap();
    let mut cache = loaded.model.new_cache();
    let mut items = [BatchItem {
        tokens: &PROMPT,
        cache: &mut cache,
    }];
    loaded.model.forward(&mut items).unwrap().remove(0)
}

/// The training forward's logits after the last token of `PROMPT`.
fn train_logits(model: &TrainModel) -> Vec<f32> {
    let logits = model.forward(&PROMPT).unwrap();
    let last = logits.dim(0).unwrap() - 1;
    logits.get(last).unwrap().to_vec1().unwrap()
}

/// Writes `model`'s weights as a folder with `dense`'s tokenizer and template.
fn save(
    model: &TrainModel,
    dense: &arena_worker::model::loader::dense::DenseModel,
    out: &std::path::Path,
) {
    write_folder(
        out,
        &model.tensors().unwrap(),
        &FolderParts {
            cfg: model.config(),
            tied: model.tied(),
            tokenizer: &dense.tokenizer,
            template: dense.own_template.as_ref(),
        },
    )
    .unwrap();
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn scale(a: &[f32]) -> f32 {
    a.iter().map(|x| x.abs()).fold(0.0, f32::max)
}

#[test]
fn the_training_forward_gives_the_workers_logits_on_f32_weights() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_hf(dir.path(), DType::F32, 3).unwrap();
    let dense = load_dense(dir.path(), &Device::Cpu).unwrap();
    let model = TrainModel::from_dense(&dense, DType::F32).unwrap();
    let (ours, worker) = (train_logits(&model), worker_logits(dir.path()));
    assert!(scale(&worker) > 0.1, "{worker:?}");
    let d = max_diff(&ours, &worker);
    assert!(d < 1e-4 * scale(&worker).max(1.0), "max difference {d}");
}

#[test]
fn gguf_weights_are_dequantized_and_unpermuted_and_save_as_a_folder_the_worker_serves() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("tiny.gguf");
    write_tiny_gguf(&gguf, VocabKind::Gpt2, 4).unwrap();
    let dense = load_dense(&gguf, &Device::Cpu).unwrap();
    let model = TrainModel::from_dense(&dense, DType::F32).unwrap();
    let ours = train_logits(&model);
    // The worker multiplies the Q8_0 weights with int8 activations: close, not equal. A wrong
    // un-permutation of Q or K would scramble attention far beyond this.
    let worker = worker_logits(&gguf);
    let d = max_diff(&ours, &worker);
    assert!(
        d < 0.05 * scale(&worker),
        "max difference {d} of {}",
        scale(&worker)
    );
    let top = |v: &[f32]| {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
    };
    assert_eq!(top(&ours), top(&worker));

    // Written as a folder, the same weights load in the worker with the same f32 logits and
    // the same tokenizer.
    let out = dir.path().join("out");
    save(&model, &dense, &out);
    let served = worker_logits(&out);
    let d = max_diff(&ours, &served);
    assert!(d < 1e-4 * scale(&served).max(1.0), "max difference {d}");
    let text = "hello world, hello";
    let back = loader::load_tokenizer(&out).unwrap();
    assert_eq!(
        back.encode(text, true).unwrap(),
        dense.tokenizer.encode(text, true).unwrap()
    );
    let folder = loader::load(&out, &Device::Cpu).unwrap();
    assert!(folder.own_template.is_some(), "the chat template was kept");
}

#[test]
fn lora_updates_merge_into_a_folder_with_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_hf(dir.path(), DType::F32, 5).unwrap();
    let dense = load_dense(dir.path(), &Device::Cpu).unwrap();
    let tuning = Tuning::Lora {
        rank: 3,
        alpha: 6.0,
    };
    let model = TrainModel::new(&dense, DType::F32, tuning, 1).unwrap();
    let before = train_logits(&model);
    // A fresh adapter changes nothing (B is zero) ...
    let d = max_diff(&before, &worker_logits(dir.path()));
    assert!(d < 1e-4 * scale(&before).max(1.0), "max difference {d}");
    // ... a trained one does, and the merged folder carries exactly that change.
    for (name, var) in model.vars() {
        if name.ends_with("lora_b") {
            let noise = var.as_tensor().randn_like(0.0, 0.2).unwrap();
            var.set(&noise).unwrap();
        }
    }
    let ours = train_logits(&model);
    assert!(max_diff(&ours, &before) > 0.01 * scale(&before));
    let out = dir.path().join("out");
    save(&model, &dense, &out);
    let served = worker_logits(&out);
    let d = max_diff(&ours, &served);
    assert!(d < 1e-4 * scale(&served).max(1.0), "max difference {d}");
}

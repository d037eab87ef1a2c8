//! `sft` end to end on a tiny model: the held-out loss falls, the folder it writes loads in
//! the worker, and bad options and data are refused with clear errors.

use std::io::Write;

use arena_train::run::{sft, SftOptions};
use arena_worker::tiny::{write_tiny_gguf, VocabKind};

fn data(path: &std::path::Path, n: usize) {
    let mut f = std::fs::File::create(path).unwrap();
    for i in 0..n {
        let (q, a) = if i % 2 == 0 {
            ("hello", "hello world")
        } else {
            ("world", "world hello")
        };
        writeln!(
            f,
            r#"{{"id": "{i}", "conversations": [{{"from": "human", "value": "{q}"}}, {{"from": "gpt", "value": "{a}"}}]}}"#
        )
        .unwrap();
    }
    writeln!(f, "not json").unwrap();
}

#[test]
fn fine_tuning_lowers_the_held_out_loss_and_writes_a_servable_folder() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    write_tiny_gguf(&model, VocabKind::Gpt2, 2).unwrap();
    let file = dir.path().join("data.jsonl");
    data(&file, 16);
    let out = dir.path().join("out");
    let mut opts = SftOptions::new(model, file, out.clone());
    opts.lr = 1e-2;
    opts.epochs = 4;
    opts.grad_accum = 2;
    opts.eval_fraction = 0.25;
    let report = sft(&opts).unwrap();
    assert_eq!(
        (report.train_conversations, report.eval_conversations),
        (12, 4)
    );
    assert_eq!(report.bad_lines, 1);
    assert_eq!(report.steps, 4 * 6);
    let (before, after) = (
        report.eval_loss_before.unwrap(),
        report.eval_loss_after.unwrap(),
    );
    assert!(after < 0.5 * before, "held-out loss {before} -> {after}");
    let served = arena_worker::model::loader::load(&out, &candle_core::Device::Cpu).unwrap();
    assert_eq!(served.format, "safetensors");
}

#[test]
fn bad_options_and_unusable_data_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    write_tiny_gguf(&model, VocabKind::Gpt2, 2).unwrap();
    let file = dir.path().join("data.jsonl");
    data(&file, 2);
    let out = dir.path().join("out");
    let mut opts = SftOptions::new(model.clone(), file, out.clone());
    opts.lr = 0.0;
    assert!(sft(&opts).unwrap_err().to_string().contains("--lr"));
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "{}\n\n").unwrap();
    let opts = SftOptions::new(model.clone(), empty, out.clone());
    let e = sft(&opts).unwrap_err().to_string();
    assert!(
        e.contains("no usable conversation") && e.contains("line 1"),
        "{e}"
    );
    let missing = SftOptions::new(model, dir.path().join("nope.jsonl"), out.clone());
    assert!(sft(&missing)
        .unwrap_err()
        .to_string()
        .contains("nope.jsonl"));
    assert!(!out.exists(), "nothing written on failure");
}

/// The options of the resume tests: a tiny model, 2 epochs of 5 steps.
fn resumable(dir: &std::path::Path, out: &str, lora: bool) -> SftOptions {
    let model = dir.join("tiny.gguf");
    if !model.exists() {
        write_tiny_gguf(&model, VocabKind::Gpt2, 2).unwrap();
        data(&dir.join("data.jsonl"), 12);
    }
    let mut opts = SftOptions::new(model, dir.join("data.jsonl"), dir.join(out));
    opts.lr = 1e-2;
    opts.epochs = 2;
    opts.grad_accum = 2;
    opts.eval_fraction = 0.2;
    opts.checkpoint_every = 3;
    if lora {
        opts.lora_rank = 4;
    }
    opts
}

fn weights(out: &std::path::Path) -> Vec<u8> {
    std::fs::read(out.join("model.safetensors")).unwrap()
}

#[test]
fn a_run_stopped_halfway_resumes_to_the_same_weights_as_one_that_was_not() {
    for lora in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let whole = sft(&resumable(dir.path(), "whole", lora)).unwrap();
        assert!(whole.finished && whole.resumed_from.is_none());
        assert_eq!(whole.total_steps, 10);
        assert!(
            !dir.path().join("whole/checkpoint").exists(),
            "removed when done"
        );

        let mut first = resumable(dir.path(), "halves", lora);
        first.stop_after = Some(4);
        let half = sft(&first).unwrap();
        assert!(!half.finished && half.eval_loss_after.is_none());
        assert_eq!(half.steps, 4);
        assert!(!dir.path().join("halves/model.safetensors").exists());
        assert!(dir.path().join("halves/checkpoint/state.json").exists());

        // Other settings are refused, naming the one that differs.
        let mut other = resumable(dir.path(), "halves", lora);
        other.lr = 5e-3;
        let e = sft(&other).unwrap_err().to_string();
        assert!(
            e.contains("lr: 0.01 there, 0.005 now") && e.contains("--fresh"),
            "{e}"
        );

        let rest = sft(&resumable(dir.path(), "halves", lora)).unwrap();
        assert_eq!(rest.resumed_from, Some(4));
        assert!(rest.finished);
        assert_eq!(rest.train_tokens, whole.train_tokens);
        assert_eq!(rest.eval_loss_before, whole.eval_loss_before);
        assert_eq!(rest.eval_loss_after, whole.eval_loss_after, "lora: {lora}");
        assert!(
            weights(&dir.path().join("halves")) == weights(&dir.path().join("whole")),
            "lora: {lora}: resumed weights differ"
        );

        // --fresh starts over even with a checkpoint there.
        let mut again = resumable(dir.path(), "halves", lora);
        again.stop_after = Some(2);
        sft(&again).unwrap();
        again.stop_after = None;
        again.fresh = true;
        assert_eq!(sft(&again).unwrap().resumed_from, None);
    }
}

#[test]
fn lora_trains_only_the_adapters_and_still_lowers_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = resumable(dir.path(), "lora", true);
    opts.epochs = 6;
    let report = sft(&opts).unwrap();
    let full = sft(&resumable(dir.path(), "full", false)).unwrap();
    assert!(
        report.parameters * 5 < full.parameters,
        "{} adapter parameters of {}",
        report.parameters,
        full.parameters
    );
    let (before, after) = (
        report.eval_loss_before.unwrap(),
        report.eval_loss_after.unwrap(),
    );
    assert!(after < 0.8 * before, "held-out loss {before} -> {after}");
}

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

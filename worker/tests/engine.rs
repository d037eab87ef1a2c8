//! The generation engine on a tiny model: batching, stops, limits, seeds, cancellation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arena_worker::generate::engine::{EngineOptions, Event, Finish};
use arena_worker::generate::params::RawParams;
use arena_worker::model::loader;
use arena_worker::serve::served::{Input, ServedModel};
use arena_worker::text::template::{Message, Role, Template};
use arena_worker::tiny::{self, VocabKind};
use candle_core::Device;

fn served(max_concurrency: usize) -> Arc<ServedModel> {
    served_with(EngineOptions {
        max_concurrency,
        prefix_cache_bytes: 0,
    })
}

fn served_with(engine: EngineOptions) -> Arc<ServedModel> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    tiny::write_tiny_gguf(&path, VocabKind::Gpt2, 11).unwrap();
    let loaded = loader::load(&path, &Device::Cpu).unwrap();
    let template = Template::select(None, loaded.own_template.clone(), "tiny").unwrap();
    ServedModel::start(loaded, "tiny".into(), template, engine, false).unwrap()
}

fn input(text: &str) -> Input {
    Input::Chat(vec![Message::new(Role::User, text)])
}

fn greedy(max_new_tokens: u32) -> RawParams {
    RawParams {
        temperature: Some(0.0),
        max_new_tokens: Some(max_new_tokens),
        ..Default::default()
    }
}

struct Outcome {
    text: String,
    ids: Vec<u32>,
    finish: Option<Finish>,
    completion_tokens: usize,
}

async fn run(model: &ServedModel, text: &str, params: RawParams) -> Outcome {
    let (ids, params) = model.prepare(&input(text), None, &params, true).unwrap();
    let mut rx = model.engine().submit(ids, params).unwrap();
    let mut out = Outcome {
        text: String::new(),
        ids: Vec::new(),
        finish: None,
        completion_tokens: 0,
    };
    while let Some(e) = rx.recv().await {
        match e {
            Event::Token {
                text, token_ids, ..
            } => {
                out.text.push_str(&text);
                out.ids.extend(token_ids);
            }
            Event::Done {
                finish,
                completion_tokens,
                ..
            } => {
                out.finish = Some(finish);
                out.completion_tokens = completion_tokens;
            }
            Event::Error(e) => panic!("engine error: {e}"),
        }
    }
    out
}

#[tokio::test]
async fn max_new_tokens_ends_with_length() {
    let m = served(4);
    let o = run(&m, "hello", greedy(12)).await;
    assert_eq!(o.finish, Some(Finish::Length));
    assert_eq!(o.completion_tokens, 12);
    assert_eq!(o.ids.len(), 12);
}

#[tokio::test]
async fn concurrent_requests_in_one_batch_match_a_lone_request() {
    let m = served(8);
    let lone = run(&m, "hello world", greedy(40)).await;
    let other = run(&m, "world", greedy(40)).await;
    let futures: Vec<_> = (0..6)
        .map(|i| {
            let m = m.clone();
            let text = if i % 2 == 0 { "hello world" } else { "world" };
            tokio::spawn(async move { run(&m, text, greedy(40)).await })
        })
        .collect();
    for (i, f) in futures.into_iter().enumerate() {
        let o = f.await.unwrap();
        let expect = if i % 2 == 0 { &lone } else { &other };
        assert_eq!(o.ids, expect.ids, "request {i}");
        assert_eq!(o.text, expect.text, "request {i}");
    }
}

#[tokio::test]
async fn stop_strings_are_cut_even_across_tokens() {
    let m = served(2);
    let full = run(&m, "hello", greedy(60)).await;
    let chars: Vec<char> = full.text.chars().collect();
    assert!(chars.len() > 12, "need some text to cut: {:?}", full.text);
    // A stop string spanning several tokens in the middle of the output.
    let start = chars.len() / 2;
    let stop: String = chars[start..start + 3].iter().collect();
    let prefix_end = full.text.find(&stop).unwrap();
    let params = RawParams {
        stop: vec![stop.clone()],
        ..greedy(60)
    };
    let cut = run(&m, "hello", params).await;
    assert_eq!(cut.finish, Some(Finish::Stop));
    assert_eq!(cut.text, full.text[..prefix_end], "stop {stop:?}");
}

#[tokio::test]
async fn stop_token_ids_end_generation() {
    let m = served(2);
    let full = run(&m, "hello", greedy(30)).await;
    let target = full.ids[5];
    let first = full.ids.iter().position(|&t| t == target).unwrap();
    let params = RawParams {
        stop_token_ids: vec![target],
        ..greedy(30)
    };
    let o = run(&m, "hello", params).await;
    assert_eq!(o.finish, Some(Finish::Stop));
    assert_eq!(o.completion_tokens, first + 1);
}

#[tokio::test]
async fn seeded_sampling_is_reproducible_and_differs_across_seeds() {
    let m = served(4);
    let p = |seed| RawParams {
        temperature: Some(1.0),
        top_p: Some(0.95),
        seed: Some(seed),
        max_new_tokens: Some(30),
        ..Default::default()
    };
    let a = run(&m, "hello", p(1)).await;
    let b = run(&m, "hello", p(1)).await;
    let c = run(&m, "hello", p(2)).await;
    assert_eq!(a.ids, b.ids);
    assert_ne!(a.ids, c.ids);
}

#[tokio::test]
async fn dropping_the_receiver_cancels_the_sequence() {
    let m = served(1);
    let (ids, params) = m
        .prepare(&input("hello"), None, &greedy(200), false)
        .unwrap();
    let rx = m.engine().submit(ids.clone(), params.clone()).unwrap();
    let queued = m.engine().submit(ids, params).unwrap();
    drop(rx);
    drop(queued);
    let deadline = Instant::now() + Duration::from_secs(5);
    while m.engine().stats().in_flight() + m.engine().stats().queue_length() > 0 {
        assert!(
            Instant::now() < deadline,
            "cancelled sequences still counted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The engine is still healthy afterwards.
    assert_eq!(run(&m, "hello", greedy(3)).await.completion_tokens, 3);
}

#[tokio::test]
async fn context_overflow_and_bad_messages_are_refused_before_queueing() {
    let m = served(1);
    let e = m
        .prepare(&input("hello"), None, &greedy(tiny::CONTEXT as u32), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("context length of {}", tiny::CONTEXT)),
        "{e}"
    );
    let e = m
        .prepare(&Input::Chat(vec![]), None, &greedy(3), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'messages'"), "{e}");
}

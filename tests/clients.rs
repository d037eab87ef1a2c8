//! The official `openai` Python client and curl against a real controller and worker, and the
//! OpenAI API's newer parts (log-probabilities, `n`, `/v1/responses`) checked from Rust.
//!
//! `scripts/test.sh` installs two clients into virtualenvs, the pinned old one (openai 1.12.0)
//! and the newest (see `clients_latest_venv` in scripts/lib.sh), and sets
//! `ARENA_CLIENTS_PYTHON` and `ARENA_CLIENTS_LATEST_PYTHON` to their interpreters.

mod common;

use std::process::Command;

use serde_json::{json, Value};

fn run_client(cmd: &mut Command, http: &str) {
    let out = cmd
        .env("ARENA_BASE_URL", format!("{http}/v1"))
        .env("ARENA_API_KEY", "sk-test")
        .env("ARENA_MODEL", "tiny-chat")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?} failed:\n{}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What ran (each client prints its version), for `--success-output`.
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

fn python(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run scripts/test.sh, which installs the openai clients")
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_python_clients_old_and_new_and_curl_work() {
    let pythons = [
        python("ARENA_CLIENTS_PYTHON"),
        python("ARENA_CLIENTS_LATEST_PYTHON"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let c = common::bin().spawn_controller(&["--api-keys", "sk-test"]);
    let _worker = common::bin().spawn_registered_worker(&model, &c.grpc, &[]);
    common::wait_workers(&c, 1).await;
    let http = c.http.clone();
    let root = env!("CARGO_MANIFEST_DIR");
    for python in &pythons {
        run_client(
            Command::new(python).arg(format!("{root}/tests/clients/openai_client.py")),
            &http,
        );
    }
    run_client(
        Command::new("bash").arg(format!("{root}/tests/clients/curl.sh")),
        &http,
    );
}

async fn post(http: &str, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{http}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{path}: {v}");
    v
}

fn bytes_of(v: &Value) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn logprobs_choices_and_responses_from_a_real_worker() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let c = common::bin().spawn_controller(&[]);
    let _worker = common::bin().spawn_registered_worker(&model, &c.grpc, &[]);
    common::wait_workers(&c, 1).await;
    let http = c.http.as_str();
    let chat = |extra: Value| {
        let mut body = json!({"model": "tiny-chat", "temperature": 0, "max_tokens": 10,
            "messages": [{"role": "user", "content": "hello world"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };

    // Greedy: each token is the most likely one, with the same log-probability, and the
    // tokens' bytes spell the text.
    let v = post(
        http,
        "/v1/chat/completions",
        chat(json!({"logprobs": true, "top_logprobs": 4})),
    )
    .await;
    let choice = &v["choices"][0];
    let content = choice["logprobs"]["content"].as_array().unwrap();
    assert_eq!(choice["finish_reason"], "length", "{v}");
    assert_eq!(content.len(), 10, "{v}");
    let mut spelled = Vec::new();
    for t in content {
        let top = t["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 4, "{t}");
        assert_eq!(bytes_of(&t["bytes"]), bytes_of(&top[0]["bytes"]), "{t}");
        let lp = t["logprob"].as_f64().unwrap();
        assert!(
            lp <= 0.0 && (lp - top[0]["logprob"].as_f64().unwrap()).abs() < 1e-5,
            "{t}"
        );
        assert!(top
            .windows(2)
            .all(|w| w[0]["logprob"].as_f64() >= w[1]["logprob"].as_f64()));
        spelled.extend(bytes_of(&t["bytes"]));
    }
    assert_eq!(
        String::from_utf8_lossy(&spelled),
        choice["message"]["content"].as_str().unwrap(),
        "{v}"
    );

    // Sampled: a token's log-probability is the model's, the same as its entry among the
    // alternatives whatever the temperature.
    let v = post(
        http,
        "/v1/chat/completions",
        chat(json!({"logprobs": true, "top_logprobs": 20, "temperature": 1.5, "seed": 3})),
    )
    .await;
    let mut matched = 0;
    for t in v["choices"][0]["logprobs"]["content"].as_array().unwrap() {
        if let Some(alt) = t["top_logprobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["bytes"] == t["bytes"])
        {
            matched += 1;
            let (a, b) = (t["logprob"].as_f64(), alt["logprob"].as_f64());
            assert!((a.unwrap() - b.unwrap()).abs() < 1e-5, "{t}");
        }
    }
    assert!(matched > 0, "{v}");

    // n choices at once: the same greedy answer in each, the prompt counted once.
    let one = post(http, "/v1/chat/completions", chat(json!({}))).await;
    let three = post(http, "/v1/chat/completions", chat(json!({"n": 3}))).await;
    let choices = three["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["message"], one["choices"][0]["message"]);
    }
    assert_eq!(
        three["usage"]["prompt_tokens"],
        one["usage"]["prompt_tokens"]
    );
    assert_eq!(three["usage"]["completion_tokens"], 30);

    // /v1/responses answers what chat answers for the same conversation.
    let r = post(
        http,
        "/v1/responses",
        json!({"model": "tiny-chat", "input": "hello world", "temperature": 0,
            "max_output_tokens": 10}),
    )
    .await;
    assert_eq!(r["object"], "response");
    assert_eq!(
        r["output"][0]["content"][0]["text"],
        one["choices"][0]["message"]["content"]
    );
    assert_eq!(r["usage"]["input_tokens"], one["usage"]["prompt_tokens"]);
    assert_eq!(r["usage"]["output_tokens"], 10);
    assert_eq!(r["status"], "incomplete");
}

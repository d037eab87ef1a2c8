//! Helpers for arena tests: a controller with its store and workers, SSE turns, JSON calls.

use std::path::Path;

use serde_json::{json, Value};

use crate::bin::{wait_workers, Bin, Controller};
use crate::process::Proc;

/// A controller on a fresh database of `backend` with workers registered.
pub struct Arena {
    /// The controller.
    pub c: Controller,
    /// Its workers, by position in the spawn list.
    pub workers: Vec<Proc>,
    /// Its database URL, for checking rows.
    pub db_url: String,
}

impl Bin {
    /// Starts a controller on a fresh `backend` database with `args`, and one worker per
    /// (model, name, extra args).
    pub async fn spawn_arena(
        &self,
        backend: &str,
        dir: &Path,
        args: &[&str],
        workers: &[(&Path, &str, &[&str])],
    ) -> Arena {
        let db_url = crate::db::database_url(backend, dir).await;
        let mut all = vec!["--database-url", db_url.as_str()];
        all.extend_from_slice(args);
        let c = self.spawn_controller(&all);
        let workers: Vec<Proc> = workers
            .iter()
            .map(|(model, name, extra)| {
                let mut a = vec!["--name", *name];
                a.extend_from_slice(extra);
                self.spawn_registered_worker(model, &c.grpc, &a)
            })
            .collect();
        wait_workers(&c, workers.len()).await;
        Arena { c, workers, db_url }
    }

    /// The real SmolLM2 as two contestants, one set of weights under two templates in two
    /// worker processes: `smollm2-135m` (its own ChatML) and `smollm2-135m (vicuna template)`.
    pub async fn spawn_smollm2_arena(&self, backend: &str, dir: &Path) -> Arena {
        self.spawn_smollm2_arena_with(backend, dir, &[]).await
    }

    /// [`Bin::spawn_smollm2_arena`] with extra controller `args`.
    pub async fn spawn_smollm2_arena_with(
        &self,
        backend: &str,
        dir: &Path,
        args: &[&str],
    ) -> Arena {
        let model = crate::worker::smollm2();
        self.spawn_arena(
            backend,
            dir,
            args,
            &[
                (&model, "smollm2-135m", &["--threads", "1"]),
                (
                    &model,
                    "smollm2-135m (vicuna template)",
                    &["--threads", "1", "--template", "vicuna_v1.1"],
                ),
            ],
        )
        .await
    }
}

/// A call's status, headers and body (JSON when it parses, else a string).
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The raw body.
    pub text: String,
}

impl Answer {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The SSE `data:` payloads, parsed.
    pub fn events(&self) -> Vec<Value> {
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| {
                serde_json::from_str(d.trim()).unwrap_or_else(|e| panic!("bad event {d}: {e}"))
            })
            .collect()
    }

    /// The concatenated deltas of `side`.
    pub fn text_of(&self, side: &str) -> String {
        self.events()
            .iter()
            .filter(|e| e["type"] == "delta" && e["side"] == side)
            .map(|e| e["text"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Reads a whole answer.
async fn read(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Answer {
        status,
        headers,
        text: r.text().await.unwrap(),
    }
}

/// POSTs JSON and reads the whole answer.
pub async fn post(base: &str, path: &str, body: Value) -> Answer {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    read(r).await
}

/// GETs a path.
pub async fn get(base: &str, path: &str) -> Answer {
    read(reqwest::get(format!("{base}{path}")).await.unwrap()).await
}

/// Opens an anonymous battle; its id.
pub async fn open_battle(http: &str) -> String {
    let created = post(http, "/api/battles", json!({"mode": "anonymous"})).await;
    assert_eq!(created.status, 200, "{}", created.text);
    created.json()["id"]
        .as_str()
        .expect("a battle id")
        .to_string()
}

/// Asks battle `id` `prompt` (greedy, at most `max_tokens`) and waits until both sides
/// answered in full.
pub async fn answer_turn(http: &str, id: &str, prompt: &str, max_tokens: u32) {
    let turn = json!({"text": prompt, "temperature": 0.0, "max_tokens": max_tokens});
    let t = post(http, &format!("/api/battles/{id}/turns"), turn).await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.events().last().unwrap()["type"], "done", "{}", t.text);
}

/// Votes `winner` on battle `id`; the vote's answer.
pub async fn vote(http: &str, id: &str, winner: &str) -> Value {
    let v = post(
        http,
        &format!("/api/battles/{id}/vote"),
        json!({"winner": winner}),
    )
    .await;
    assert_eq!(v.status, 200, "{}", v.text);
    v.json()
}

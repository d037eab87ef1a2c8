//! The terms of use end to end: `arena controller --terms FILE` (and `ARENA_TERMS`) serves
//! them, a missing file stops start-up, the cookie of a browser that accepted them is stored
//! with its conversations, and `arena export --accepted-terms-only` leaves out the rest.

mod common;

use arena_testkit::on_both_backends;
use common::{get, post, rows};
use serde_json::{json, Value};

/// POSTs JSON with an optional `Cookie` header; returns the status and the body.
async fn post_with_cookie(base: &str, path: &str, body: Value, cookie: Option<&str>) -> Value {
    let mut r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn turn() -> Value {
    json!({"text": "Hello there", "temperature": 0.0, "max_tokens": 8})
}

#[test]
fn a_missing_terms_file_stops_the_controller_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("our-terms.txt");
    let out = common::bin()
        .controller_command()
        .args(["--terms", missing.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without its terms: {stderr}");
    assert!(
        stderr.contains(&missing.display().to_string()) && stderr.contains("terms of use"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_terms_come_from_the_flag_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("terms.txt");
    std::fs::write(&file, "Our own terms.\n").unwrap();
    let by_flag = common::bin().spawn_controller(&["--terms", file.to_str().unwrap()]);
    let config = get(&by_flag.http, "/api/config").await.json();
    assert_eq!(config["terms"]["text"], "Our own terms.", "{config}");

    let mut cmd = common::bin().controller_command();
    cmd.env("ARENA_TERMS", &file);
    let by_env = common::start_controller(cmd);
    assert_eq!(get(&by_env.http, "/api/config").await.json(), config);

    let default = common::bin().spawn_controller(&[]);
    let default = get(&default.http, "/api/config").await.json();
    assert!(
        default["terms"]["text"]
            .as_str()
            .unwrap()
            .contains("research preview"),
        "{default}"
    );
    assert_ne!(default["terms"]["version"], config["terms"]["version"]);
}

/// Runs `arena export ARGS` on `db` and returns its lines as JSON.
fn export(db: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["export", "--database-url", db];
    all.extend_from_slice(args);
    common::bin()
        .ok(&all)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn export_leaves_out_what_was_not_accepted(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_gguf(dir.path());
    let a = common::bin()
        .spawn_arena(
            backend,
            dir.path(),
            &[],
            &[(&model, "tiny-a", &[]), (&model, "tiny-b", &[])],
        )
        .await;
    let http = &a.c.http;
    let version = get(http, "/api/config").await.json()["terms"]["version"]
        .as_str()
        .unwrap()
        .to_string();
    let accepted = format!("arena_terms={version}");

    // A battle and a chat from a browser that accepted the terms, and the same from a client
    // that did not: each answered, each battle voted on.
    let mut battles = Vec::new();
    let mut chats = Vec::new();
    for cookie in [Some(accepted.as_str()), None] {
        let b = post_with_cookie(http, "/api/battles", json!({"mode": "anonymous"}), cookie).await;
        let id = b["id"].as_str().unwrap().to_string();
        let t = post(http, &format!("/api/battles/{id}/turns"), turn()).await;
        assert_eq!(t.status, 200, "{}", t.text);
        let v = post(
            http,
            &format!("/api/battles/{id}/vote"),
            json!({"winner": "tie"}),
        )
        .await;
        assert_eq!(v.status, 200, "{}", v.text);
        battles.push(id);
        let c = post_with_cookie(http, "/api/chats", json!({"model": "tiny-a"}), cookie).await;
        let id = c["id"].as_str().unwrap().to_string();
        let t = post(http, &format!("/api/chats/{id}/turns"), turn()).await;
        assert_eq!(t.status, 200, "{}", t.text);
        chats.push(id);
    }
    // Both sides of the battle and the chat store the version; the others NULL (read as "").
    let mut stored: Vec<String> = rows(&a.db_url, "SELECT terms_version FROM conversations")
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    stored.sort();
    let v = version.as_str();
    assert_eq!(stored, ["", "", "", v, v, v]);

    let db = a.db_url.as_str();
    let votes = export(db, &["--format", "chatbot-arena", "--all"]);
    assert_eq!(votes.len(), 2, "{votes:?}");
    let votes = export(
        db,
        &[
            "--format",
            "chatbot-arena",
            "--all",
            "--accepted-terms-only",
        ],
    );
    assert_eq!(votes.len(), 1, "{votes:?}");
    assert_eq!(votes[0]["question_id"], battles[0].as_str());

    let conversations = export(db, &["--format", "sharegpt"]);
    assert_eq!(conversations.len(), 6, "{conversations:?}");
    let conversations = export(db, &["--format", "sharegpt", "--accepted-terms-only"]);
    let ids: Vec<&str> = conversations
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.contains(&chats[0].as_str()), "{ids:?}");
    assert!(!ids.contains(&chats[1].as_str()), "{ids:?}");
    let accepted_sides = rows(
        db,
        &format!(
            "SELECT conversation_a, conversation_b FROM battles WHERE id = '{}'",
            battles[0]
        ),
    )
    .await;
    for side in &accepted_sides[0] {
        assert!(ids.contains(&side.as_str()), "{side} not in {ids:?}");
    }
}
on_both_backends!(
    export_accepted_terms_only_leaves_out_what_was_not_accepted,
    export_leaves_out_what_was_not_accepted
);

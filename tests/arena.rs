//! The arena API end to end: a real controller on a fresh SQLite file or Postgres database,
//! real tiny-model workers over gRPC, every test on both backends.

mod common;

use std::path::Path;

use arena_testkit::on_both_backends;
use common::{get, post, rows, Arena};
use serde_json::{json, Value};

/// A controller with two tiny workers, `tiny-a` and `tiny-b`.
async fn two_tiny(backend: &str, dir: &Path, args: &[&str]) -> Arena {
    let model = common::tiny_gguf(dir);
    common::bin()
        .spawn_arena(
            backend,
            dir,
            args,
            &[(&model, "tiny-a", &[]), (&model, "tiny-b", &[])],
        )
        .await
}

const GREEDY: f64 = 0.0;

fn turn(text: &str) -> Value {
    json!({"text": text, "temperature": GREEDY, "max_tokens": 8})
}

/// The names of the battle's models must not appear anywhere in `text`.
fn assert_no_names(text: &str) {
    for name in ["tiny-a", "tiny-b"] {
        assert!(
            !text.contains(name),
            "'{name}' leaked before the vote: {text}"
        );
    }
}

async fn full_anonymous_battle(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let a = two_tiny(backend, dir.path(), &[]).await;
    let http = &a.c.http;

    let created = post(http, "/api/battles", json!({"mode": "anonymous"})).await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_no_names(&created.text);
    assert_no_names(&format!("{:?}", created.headers));
    let id = created.json()["id"].as_str().unwrap().to_string();

    // No vote before any answer.
    let early = post(
        http,
        &format!("/api/battles/{id}/vote"),
        json!({"winner": "tie"}),
    )
    .await;
    assert_eq!(early.status, 409, "{}", early.text);

    let t = post(
        http,
        &format!("/api/battles/{id}/turns"),
        turn("Hello there"),
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_no_names(&t.text);
    assert_no_names(&format!("{:?}", t.headers));
    let events = t.events();
    for side in ["a", "b"] {
        assert!(
            !t.text_of(side).is_empty(),
            "side {side} streamed nothing: {events:?}"
        );
        let ends: Vec<&Value> = events
            .iter()
            .filter(|e| e["side"] == side && (e["type"] == "end" || e["type"] == "error"))
            .collect();
        assert_eq!(ends.len(), 1, "{events:?}");
        assert_eq!(ends[0]["type"], "end", "{events:?}");
    }
    assert_eq!(events.last().unwrap(), &json!({"type": "done", "turn": 1}));

    let state = get(http, &format!("/api/battles/{id}")).await;
    assert_eq!(state.status, 200);
    assert_no_names(&state.text);
    assert_eq!(state.json()["turns"], 1);

    // A second turn, then the vote reveals the names.
    let t2 = post(http, &format!("/api/battles/{id}/turns"), turn("And again")).await;
    assert_eq!(t2.status, 200, "{}", t2.text);
    assert_no_names(&t2.text);
    let bad = post(
        http,
        &format!("/api/battles/{id}/vote"),
        json!({"winner": "left"}),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(bad.json()["error"]["param"], "winner");
    let v = post(
        http,
        &format!("/api/battles/{id}/vote"),
        json!({"winner": "model_b"}),
    )
    .await;
    assert_eq!(v.status, 200, "{}", v.text);
    let names = v.json();
    let mut pair = [
        names["model_a"].as_str().unwrap().to_string(),
        names["model_b"].as_str().unwrap().to_string(),
    ];
    pair.sort();
    assert_eq!(pair, ["tiny-a".to_string(), "tiny-b".to_string()]);
    assert_eq!(names["counted"], true, "{names}");

    // Only once, and the battle is closed.
    let again = post(
        http,
        &format!("/api/battles/{id}/vote"),
        json!({"winner": "tie"}),
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.text);
    let closed = post(http, &format!("/api/battles/{id}/turns"), turn("more")).await;
    assert_eq!(closed.status, 409, "{}", closed.text);
    assert_eq!(closed.json()["error"]["code"], "battle_closed");
    let shown = get(http, &format!("/api/battles/{id}")).await.json();
    assert_eq!(shown["model_a"], names["model_a"]);

    // The rows an analyst sees.
    let db = &a.db_url;
    let votes = rows(
        db,
        &format!("SELECT winner, model_a, model_b, CAST(turn AS BIGINT), CASE WHEN counted THEN 'yes' ELSE 'no' END FROM battle_outcomes WHERE battle_id = '{id}'"),
    )
    .await;
    assert_eq!(
        votes,
        vec![vec![
            "model_b".to_string(),
            names["model_a"].as_str().unwrap().to_string(),
            names["model_b"].as_str().unwrap().to_string(),
            "2".to_string(),
            "yes".to_string()
        ]]
    );
    let msgs = rows(
        db,
        &format!("SELECT m.role, m.model, m.finish_reason FROM messages m JOIN battles b ON m.conversation_id = b.conversation_a WHERE b.id = '{id}' ORDER BY m.seq"),
    )
    .await;
    assert_eq!(msgs.len(), 4, "{msgs:?}");
    assert_eq!(msgs[1][0], "assistant");
    assert_eq!(msgs[1][1], names["model_a"].as_str().unwrap());
    let board = get(http, "/api/leaderboard").await.json();
    let models = board["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "{board}");
    assert_eq!(models[0]["model"], names["model_b"]);
    assert_eq!(models[0]["wins"], 1);
    assert!(
        models[0]["bt"].as_f64().unwrap() > models[1]["bt"].as_f64().unwrap(),
        "{board}"
    );
    assert!(models[0]["elo"].as_f64().unwrap() > 1000.0, "{board}");
    assert_eq!(models[0]["few_battles"], true);
    assert!(models[0]["ci_low"].as_f64().unwrap() <= models[0]["bt"].as_f64().unwrap());
    assert_eq!(board["votes"], 1);
    assert_eq!(board["win_fraction"]["models"][0], names["model_b"]);
    assert_eq!(board["win_fraction"]["values"][0][1], 1.0);
    // The command line computes the same ratings from the same database.
    let out = common::bin().ok(&["leaderboard", "--database-url", db, "--format", "json"]);
    let cli: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cli[0]["model"], names["model_b"]);
    assert_eq!(cli[0]["rank"], 1);
    assert_eq!(cli[0]["bt"], models[0]["bt"]);

    // The day's snapshot was kept when the leaderboard was first computed with a vote; it
    // downloads as a file `arena leaderboard --verify` reproduces from the store.
    let day = arena_ratings::clock::utc_day(arena_ratings::clock::unix_ms());
    assert_eq!(board["snapshot"]["day"], day.as_str(), "{board}");
    assert_eq!(board["snapshot"]["votes"], 1, "{board}");
    let listed = get(http, "/api/leaderboard/snapshots").await.json();
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 1, "{listed}");
    let snap = get(http, &format!("/api/leaderboard/snapshots/{day}")).await;
    assert_eq!(snap.status, 200, "{}", snap.text);
    assert_eq!(
        snap.json()["vote_set_sha256"],
        board["snapshot"]["vote_set_sha256"]
    );
    let file = dir.path().join("snapshot.json");
    std::fs::write(&file, &snap.text).unwrap();
    let out = common::bin().ok(&[
        "leaderboard",
        "--database-url",
        db,
        "--verify",
        file.to_str().unwrap(),
    ]);
    assert!(out.contains("reproduced"), "{out}");
    assert_eq!(
        get(http, "/api/leaderboard/snapshots/1999-01-01")
            .await
            .status,
        404
    );
    assert_eq!(
        get(http, "/api/leaderboard/snapshots/yesterday")
            .await
            .status,
        400
    );

    // Style control rates the same vote from the style recorded with it.
    let styled = get(http, "/api/leaderboard?style_control=true").await;
    assert_eq!(styled.status, 200, "{}", styled.text);
    let styled = styled.json();
    assert_eq!(styled["style_control"], true);
    assert_eq!(styled["without_style"], 0);
    assert_eq!(styled["votes"], 1);
    let features: Vec<&str> = styled["style_coefficients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["feature"].as_str().unwrap())
        .collect();
    assert_eq!(
        features,
        [
            "sum_assistant_tokens",
            "header_count",
            "list_count",
            "bold_count"
        ]
    );
    assert_eq!(board["style_control"], false);
    for bad in ["?style_control=maybe", "?stlye_control=true"] {
        let r = get(http, &format!("/api/leaderboard{bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert!(
            r.text.contains("style_control") || r.text.contains("stlye_control"),
            "{}",
            r.text
        );
    }
    let out = common::bin().ok(&[
        "leaderboard",
        "--database-url",
        db,
        "--style-control",
        "--format",
        "json",
    ]);
    let cli: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cli.as_array().unwrap().len(), 2, "{out}");

    // The README's analyst queries run as written.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("Five queries an analyst runs")
        .nth(1)
        .and_then(|r| r.split("```sql").nth(1))
        .and_then(|r| r.split("```").next())
        .expect("the README's analyst queries");
    let queries: Vec<&str> = block
        .split(';')
        .map(|q| q.trim())
        .filter(|q| {
            q.lines()
                .any(|l| !l.trim_start().starts_with("--") && !l.trim().is_empty())
        })
        .collect();
    assert_eq!(queries.len(), 5, "{block}");
    let per_day = rows(db, queries[0]).await;
    assert_eq!(per_day.len(), 1, "{per_day:?}");
    assert_eq!(per_day[0][1], "1");
    for q in &queries[1..] {
        rows(db, q).await;
    }
    let pairs = rows(db, queries[3]).await;
    assert_eq!(pairs.len(), 1, "{pairs:?}");

    // The exports an analyst or a trainer takes away.
    let out = common::bin().ok(&["export", "--format", "chatbot-arena", "--database-url", db]);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    let row = &lines[0];
    assert_eq!(row["question_id"], id.as_str());
    assert_eq!(row["winner"], "model_b");
    assert_eq!(row["model_a"], names["model_a"]);
    assert_eq!(row["anony"], true);
    assert_eq!(row["turn"], 2);
    assert_eq!(row["conversation_a"].as_array().unwrap().len(), 4);
    assert_eq!(
        row["conversation_b"][0],
        json!({"role": "user", "content": "Hello there"})
    );
    // What the vote judged, as the workers counted it: both turns' answers of each side.
    let meta = &row["conv_metadata"];
    assert_eq!(meta["turns"], 2, "{meta}");
    for side in ["a", "b"] {
        let tokens = meta[format!("sum_assistant_{side}_tokens")].as_u64();
        assert!(tokens.is_some_and(|t| t > 0), "{meta}");
        assert!(
            meta[format!("context_{side}_tokens")].as_u64().is_some(),
            "{meta}"
        );
        assert!(
            meta[format!("header_count_{side}")]["h1"].is_u64(),
            "{meta}"
        );
    }
    let out = common::bin().ok(&["export", "--format", "sharegpt", "--database-url", db]);
    let conversations: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(conversations.len(), 2, "{out}");
    assert_eq!(conversations[0]["conversations"][0]["from"], "human");
    assert_eq!(conversations[0]["conversations"][1]["from"], "gpt");
    let bad = common::bin()
        .command()
        .args(["export", "--format", "parquet"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("chatbot-arena or sharegpt"));

    // Unknown battle.
    let missing = post(http, "/api/battles/b_nope/vote", json!({"winner": "tie"})).await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    let missing = post(http, "/api/battles/b_nope/turns", turn("hi")).await;
    assert_eq!(missing.status, 404, "{}", missing.text);
}
on_both_backends!(
    full_anonymous_battle_streams_votes_and_reveals,
    full_anonymous_battle
);

async fn named_battles_regenerate_and_direct_chat(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let a = two_tiny(backend, dir.path(), &[]).await;
    let http = &a.c.http;
    let config = get(http, "/api/config").await.json();
    assert_eq!(config["models"], json!(["tiny-a", "tiny-b"]));

    let unknown = post(
        http,
        "/api/battles",
        json!({"mode": "named", "model_a": "tiny-a", "model_b": "nope"}),
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.json()["error"]["param"], "model_b");
    let b = post(
        http,
        "/api/battles",
        json!({"mode": "named", "model_a": "tiny-a", "model_b": "tiny-b"}),
    )
    .await;
    assert_eq!(b.json()["model_a"], "tiny-a");
    let id = b.json()["id"].as_str().unwrap().to_string();
    let nothing = post(http, &format!("/api/battles/{id}/regenerate"), json!({})).await;
    assert_eq!(nothing.status, 409, "{}", nothing.text);
    let first = post(http, &format!("/api/battles/{id}/turns"), turn("Hi")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    // Greedy regeneration gives the same answers; the first ones stay stored, superseded.
    let again = post(
        http,
        &format!("/api/battles/{id}/regenerate"),
        json!({"temperature": 0, "max_tokens": 8}),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.text_of("a"), first.text_of("a"));
    assert_eq!(again.text_of("b"), first.text_of("b"));
    let v = post(
        http,
        &format!("/api/battles/{id}/vote"),
        json!({"winner": "tie"}),
    )
    .await
    .json();
    assert_eq!(v["counted"], false, "named votes do not rank: {v}");
    let superseded = rows(&a.db_url, "SELECT COUNT(*) FROM messages WHERE superseded").await;
    assert_eq!(superseded, vec![vec!["2".to_string()]]);

    // Direct chat: one side, the same text as the OpenAI API gives, and ratings.
    let chat = post(http, "/api/chats", json!({"model": "tiny-b"})).await;
    assert_eq!(chat.status, 200, "{}", chat.text);
    let cid = chat.json()["id"].as_str().unwrap().to_string();
    let early = post(
        http,
        &format!("/api/chats/{cid}/rating"),
        json!({"rating": "upvote"}),
    )
    .await;
    assert_eq!(early.status, 409, "{}", early.text);
    let t = post(http, &format!("/api/chats/{cid}/turns"), turn("Hello")).await;
    assert_eq!(t.status, 200, "{}", t.text);
    let (status, body) = common::post_chat(
        http,
        &json!({"model": "tiny-b", "messages": [{"role": "user", "content": "Hello"}], "temperature": 0, "max_tokens": 8}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        t.text_of("a"),
        v["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert!(t.events().iter().all(|e| e["side"] != "b"));
    let r = post(
        http,
        &format!("/api/chats/{cid}/rating"),
        json!({"rating": "upvote"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let bad = post(
        http,
        &format!("/api/chats/{cid}/rating"),
        json!({"rating": "meh"}),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        rows(&a.db_url, "SELECT rating FROM ratings").await,
        vec![vec!["upvote".to_string()]]
    );
    let none = post(http, "/api/chats", json!({"model": "nope"})).await;
    assert_eq!(none.status, 404);
}
on_both_backends!(
    named_battles_regenerate_and_direct_chat,
    named_battles_regenerate_and_direct_chat
);

async fn limits_moderation_and_rate_limits(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.txt");
    std::fs::write(&rules, "# test rules\nforbidden[- ]?topic\n").unwrap();
    let a = two_tiny(
        backend,
        dir.path(),
        &[
            "--max-message-chars",
            "20",
            "--max-turns",
            "2",
            "--moderation-rules",
            rules.to_str().unwrap(),
            "--rate-limit",
            "10",
            "--rate-window-s",
            "60",
        ],
    )
    .await;
    let http = &a.c.http;
    let id = post(http, "/api/battles", json!({"mode": "anonymous"}))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/battles/{id}/turns");

    let long = post(http, &path, turn("x".repeat(21).as_str())).await;
    assert_eq!(long.status, 400, "{}", long.text);
    let e = long.json();
    assert_eq!(e["error"]["code"], "message_too_long");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit is 20"),
        "{e}"
    );
    let empty = post(http, &path, turn("  ")).await;
    assert_eq!(empty.status, 400);
    let typed = post(http, &path, json!({"text": 5})).await;
    assert_eq!(typed.status, 422, "{}", typed.text);
    assert_eq!(typed.json()["error"]["param"], "text");
    let unknown = post(http, &path, json!({"text": "hi", "temprature": 1})).await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    assert_eq!(unknown.json()["error"]["param"], "temprature");
    let hot = post(http, &path, json!({"text": "hi", "temperature": 3})).await;
    assert_eq!(hot.status, 400);
    assert_eq!(hot.json()["error"]["param"], "temperature");

    let flagged = post(http, &path, turn("a Forbidden topic")).await;
    assert_eq!(flagged.status, 400, "{}", flagged.text);
    assert_eq!(flagged.json()["error"]["code"], "flagged");
    let recorded = rows(
        &a.db_url,
        "SELECT content, source, battle_id FROM moderation_flags",
    )
    .await;
    assert_eq!(
        recorded,
        vec![vec![
            "a Forbidden topic".to_string(),
            "local".into(),
            id.clone()
        ]]
    );
    // Refused input reached neither side.
    assert_eq!(
        rows(&a.db_url, "SELECT COUNT(*) FROM messages").await,
        vec![vec!["0".to_string()]]
    );

    for text in ["one", "two"] {
        let ok = post(http, &path, turn(text)).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
    }
    let third = post(http, &path, turn("three")).await;
    assert_eq!(third.status, 400, "{}", third.text);
    assert_eq!(third.json()["error"]["code"], "turn_limit");

    // Every request to a generation route counts, refused ones too: 1 create + 9 turns so
    // far, so the 11th request passes the limit of 10 per minute.
    let limited = post(http, &path, turn("four")).await;
    assert_eq!(limited.status, 429, "{}", limited.text);
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Votes and reads are not generation and stay open.
    assert_eq!(get(http, &format!("/api/battles/{id}")).await.status, 200);
}
on_both_backends!(
    limits_moderation_and_rate_limits,
    limits_moderation_and_rate_limits
);

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_stops_start_up_with_a_clear_message() {
    let port = common::free_port();
    let mut cmd = common::bin().controller_command();
    cmd.args([
        "--database-url",
        &format!("postgres://arena:pw@127.0.0.1:{port}/arena"),
    ]);
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open the database at postgres://arena:***@127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains(":pw@"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_is_served_with_a_strict_content_security_policy() {
    let c = common::bin().spawn_controller(&[]);
    let page = get(&c.http, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("/app.js"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    for asset in [
        "/app.js",
        "/markdown.js",
        "/conversation.js",
        "/catalog.js",
        "/leaderboard.js",
        "/style.css",
    ] {
        assert_eq!(get(&c.http, asset).await.status, 200, "{asset}");
    }
    assert_eq!(
        get(&c.http, "/ready").await.json(),
        json!({"status": "ready"})
    );
    let ready = get(&c.ops, "/ready").await.json();
    assert_eq!(ready["store"], "sqlite");
}

/// An OpenAI-compatible moderation endpoint that flags any input mentioning "attack".
async fn moderation_endpoint() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/moderations",
        post(|axum::Json(body): axum::Json<Value>| async move {
            let flagged = body["input"].as_str().unwrap_or("").contains("attack");
            axum::Json(json!({"id": "modr-1", "model": "test", "results": [{
                "flagged": flagged,
                "categories": {"violence": flagged, "hate": false},
            }]}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1/moderations")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_moderation_endpoint_checks_every_mode_and_an_unreachable_one_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let url = moderation_endpoint().await;
    let a = two_tiny("sqlite", dir.path(), &["--moderation-url", &url]).await;
    let http = &a.c.http;
    let battle = post(http, "/api/battles", json!({"mode": "anonymous"}))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let chat = post(http, "/api/chats", json!({"model": "tiny-a"}))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        format!("/api/battles/{battle}/turns"),
        format!("/api/chats/{chat}/turns"),
    ] {
        let refused = post(http, &path, turn("plan an attack")).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        let e = refused.json();
        assert_eq!(e["error"]["code"], "flagged");
        assert!(
            e["error"]["message"].as_str().unwrap().contains("violence"),
            "{e}"
        );
        assert_eq!(post(http, &path, turn("plan a picnic")).await.status, 200);
    }
    let flags = rows(
        &a.db_url,
        "SELECT source, reason FROM moderation_flags ORDER BY created_ms",
    )
    .await;
    assert_eq!(flags.len(), 2, "{flags:?}");
    assert_eq!(flags[0][0], "remote");

    // A moderation service that cannot be reached lets nothing through.
    let dead = format!("http://127.0.0.1:{}/v1/moderations", common::free_port());
    let b = two_tiny("sqlite", dir.path(), &["--moderation-url", &dead]).await;
    let chat = post(&b.c.http, "/api/chats", json!({"model": "tiny-a"}))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = post(
        &b.c.http,
        &format!("/api/chats/{chat}/turns"),
        turn("hello"),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.text.contains("moderation check failed"), "{}", r.text);
}

#[test]
fn the_leaderboard_command_reads_battle_files_and_reports_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("battles.csv");
    let mut csv = String::from("model_a,model_b,winner,tstamp\n");
    for i in 0..40 {
        let winner = ["model_a", "model_a", "tie", "model_b"][i % 4];
        csv.push_str(&format!("alpha,beta,{winner},{i}\n"));
    }
    csv.push_str("alpha,beta,left,41\n");
    std::fs::write(&file, &csv).unwrap();
    let out = common::output_ok(common::bin().command().args([
        "leaderboard",
        "--battles",
        file.to_str().unwrap(),
        "--format",
        "csv",
        "--bootstrap",
        "20",
    ]));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let first: Vec<&str> = stdout.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(first[0..2], ["1", "alpha"], "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 42") && stderr.contains("unknown winner 'left'"),
        "{stderr}"
    );
    let battles = file.to_str().unwrap();
    common::bin().fails(
        &["leaderboard", "--battles", battles, "--strict"],
        "line 42",
    );
    common::bin().fails(
        &["leaderboard", "--battles", "/no/such.jsonl"],
        "/no/such.jsonl",
    );
    common::bin().fails(
        &["leaderboard", "--battles", battles, "--anchor", "beta"],
        "MODEL=RATING",
    );
    let anchored = common::bin().ok(&[
        "leaderboard",
        "--battles",
        file.to_str().unwrap(),
        "--anchor",
        "beta=800",
        "--format",
        "json",
        "--bootstrap",
        "0",
    ]);
    let rows: Value = serde_json::from_str(&anchored).unwrap();
    assert_eq!(rows[1]["model"], "beta");
    assert!(
        (rows[1]["bt"].as_f64().unwrap() - 800.0).abs() < 1e-9,
        "{rows}"
    );

    // A snapshot reproduces from the same votes, whatever flags the check is given, and
    // stops reproducing once a vote is added.
    let snap = dir.path().join("snapshot.json");
    let snap = snap.to_str().unwrap();
    let args = [
        "leaderboard",
        "--battles",
        battles,
        "--ci",
        "bootstrap",
        "--bootstrap",
        "30",
    ];
    common::bin().ok(&[&args[..], &["--seed", "5", "--snapshot", snap]].concat());
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(snap).unwrap()).unwrap();
    assert_eq!(saved["battles"], 40);
    assert_eq!(saved["options"]["seed"], 5);
    let checked = common::bin().ok(&["leaderboard", "--battles", battles, "--verify", snap]);
    assert!(checked.contains("reproduced"), "{checked}");
    csv.push_str("beta,alpha,model_a,43\n");
    std::fs::write(&file, &csv).unwrap();
    common::bin().fails(
        &["leaderboard", "--battles", battles, "--verify", snap],
        "not reproduced",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_api_has_its_own_rate_limit() {
    let c = common::bin().spawn_controller(&["--api-rate-limit", "2", "--rate-window-s", "60"]);
    for _ in 0..2 {
        assert_eq!(get(&c.http, "/v1/models").await.status, 200);
    }
    let limited = get(&c.http, "/v1/models").await;
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert_eq!(limited.json()["error"]["type"], "rate_limit_error");
    assert!(limited.headers.contains_key("retry-after"));
    // The arena's generation routes are counted apart: no models here, so 503, not 429.
    let battle = post(&c.http, "/api/battles", json!({"mode": "anonymous"})).await;
    assert_eq!(battle.status, 503, "{}", battle.text);
    // Without the flag, /v1 is not limited.
    let open = common::bin().spawn_controller(&[]);
    for _ in 0..5 {
        assert_eq!(get(&open.http, "/v1/models").await.status, 200);
    }
}

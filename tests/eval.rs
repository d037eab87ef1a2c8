//! `arena eval` as users run it: real processes against a real controller serving SmolLM2 as
//! contestants and judge, on SQLite and Postgres; and killed runs that resume and lose
//! nothing, against a scripted endpoint that answers slowly enough to be killed mid-run.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arena_store::{NewBattle, NewMessage, NewVote};
use arena_testkit::on_both_backends;
use common::rows;
use serde_json::{json, Value};

const CONTESTANTS: [&str; 2] = ["smollm2-135m", "smollm2-135m (vicuna template)"];

/// `arena eval ARGS` on `db`, its output whatever its exit status.
fn eval(db: &str, args: &[&str]) -> Output {
    common::bin()
        .command()
        .arg("eval")
        .args(args)
        .args(["--database-url", db])
        .output()
        .expect("run arena eval")
}

/// `arena eval ARGS` that must succeed: (stdout, stderr).
fn eval_ok(db: &str, args: &[&str]) -> (String, String) {
    let out = eval(db, args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "arena eval {args:?} failed:\n{stderr}"
    );
    (stdout, stderr)
}

async fn count(db: &str, sql: &str) -> usize {
    rows(db, sql).await[0][0].parse().unwrap()
}

/// The first question of writing, math and coding from the shipped set, as a set of its own.
fn three_questions(dir: &Path) -> String {
    let shipped = include_str!("../eval/questions/arena-80.jsonl");
    let mut out = String::new();
    for category in ["writing", "math", "coding"] {
        let line = shipped
            .lines()
            .find(|l| serde_json::from_str::<Value>(l).unwrap()["category"] == category)
            .unwrap();
        out.push_str(line);
        out.push('\n');
    }
    let path = dir.join("three.jsonl");
    std::fs::write(&path, out).unwrap();
    path.display().to_string()
}

/// A battle of the two contestants answered on both sides and voted `winner`.
async fn voted_battle(db: &str, id: &str, prompt: &str, winner: &str) {
    let s = arena_store::connect(db).await.unwrap();
    s.create_battle(&NewBattle {
        id: id.into(),
        model_a: CONTESTANTS[0].into(),
        model_b: CONTESTANTS[1].into(),
        anonymous: true,
        conversation_a: format!("{id}-a"),
        conversation_b: format!("{id}-b"),
        client_hash: "client".into(),
        terms_version: None,
        pair_probability: None,
    })
    .await
    .unwrap();
    for (side, answer) in [("a", "Here is a short answer."), ("b", "I do not know.")] {
        let row = |seq, role: &'static str, content: &str| NewMessage {
            conversation_id: format!("{id}-{side}"),
            seq,
            turn: 1,
            role,
            content: content.into(),
            finish_reason: (role == "assistant").then(|| "stop".into()),
            ..Default::default()
        };
        s.add_messages(&[row(0, "user", prompt), row(1, "assistant", answer)])
            .await
            .unwrap();
    }
    s.add_vote(&NewVote {
        id: format!("v-{id}"),
        battle_id: id.into(),
        turn: 1,
        winner: winner.into(),
        voter_hash: "voter".into(),
        exclusion: None,
        limits: Default::default(),
        categories: Vec::new(),
    })
    .await
    .unwrap();
}

/// `arena eval show --mode pairwise` of `judge` (default: the newest), checking each model's
/// pairs add up to the six of three questions × two turns.
fn pairs_add_up(db: &str, questions: &str, judge: Option<&str>) -> Value {
    let mut args = vec!["show", "--questions", questions, "--mode", "pairwise"];
    if let Some(j) = judge {
        args.extend(["--judge-model", j]);
    }
    args.extend(["--format", "json"]);
    let (json_out, _) = eval_ok(db, &args);
    let s: Value = serde_json::from_str(&json_out).unwrap();
    for m in s["models"].as_array().unwrap() {
        let p = &m["pairs"];
        let total: u64 = ["wins", "ties", "losses", "errors"]
            .iter()
            .map(|k| p[k].as_u64().unwrap())
            .sum();
        assert_eq!(total, 6, "{m}");
    }
    s
}

/// The whole benchmark with SmolLM2 as both contestants and judge. Its verdicts are often
/// unreadable: every judgment is counted either way, and the counts must add up.
async fn smollm2_contestants_and_judge(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let arena = common::bin().spawn_smollm2_arena(backend, dir.path()).await;
    let db = arena.db_url.as_str();
    let url = format!("{}/v1", arena.c.http);
    let questions = three_questions(dir.path());
    let answers_file = dir.path().join("answers.jsonl");
    let gen = [
        "gen",
        "--questions",
        &questions,
        "--model",
        CONTESTANTS[0],
        "--model",
        CONTESTANTS[1],
        "--base-url",
        &url,
        "--max-tokens",
        "24",
        "--parallel",
        "2",
        "--answers-file",
        answers_file.to_str().unwrap(),
    ];
    let (_, stderr) = eval_ok(db, &gen);
    assert!(
        stderr.contains("12 turns answered, 0 already stored"),
        "{stderr}"
    );
    assert_eq!(count(db, "SELECT COUNT(*) FROM eval_answers").await, 12);
    let lines: Vec<Value> = std::fs::read_to_string(&answers_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    assert!(lines
        .iter()
        .all(|l| l["choices"][0]["turns"].as_array().unwrap().len() == 2));
    // Resumable: a second run asks for nothing.
    let (_, stderr) = eval_ok(db, &gen);
    assert!(
        stderr.contains("0 turns answered, 12 already stored"),
        "{stderr}"
    );

    // Single grades: 3 questions x 2 turns x 2 models.
    let judge = [
        "--questions",
        &questions,
        "--judge-model",
        CONTESTANTS[0],
        "--judge-url",
        &url,
        "--judge-max-tokens",
        "24",
        "--parallel",
        "2",
        "--quiet",
    ];
    let single: Vec<&str> = ["judge", "--mode", "single"]
        .iter()
        .chain(&judge)
        .copied()
        .collect();
    let (_, stderr) = eval_ok(db, &single);
    assert!(stderr.contains("12 judgments made"), "{stderr}");
    let unreadable = count(
        db,
        "SELECT COUNT(*) FROM eval_judgments WHERE mode = 'single' AND verdict IS NULL",
    )
    .await;
    let (json_out, _) = eval_ok(
        db,
        &[
            "show",
            "--questions",
            &questions,
            "--mode",
            "single",
            "--format",
            "json",
        ],
    );
    let s: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(
        (s["judgments"].as_u64(), s["unreadable"].as_u64()),
        (Some(12), Some(unreadable as u64))
    );
    let models = s["models"].as_array().unwrap();
    assert_eq!(models.len(), 2, "{s}");
    let mut seen = 0;
    for m in models {
        let (graded, bad) = (
            m["single"]["graded"].as_u64().unwrap(),
            m["single"]["unreadable"].as_u64().unwrap(),
        );
        assert_eq!(graded + bad, 6, "{m}");
        seen += bad;
    }
    assert_eq!(seen, unreadable as u64);

    // Pairwise, both orders: 3 questions x 2 turns x 2 orders; each model's pairs add up.
    let pairwise: Vec<&str> = ["judge", "--mode", "pairwise"]
        .iter()
        .chain(&judge)
        .copied()
        .collect();
    let (_, stderr) = eval_ok(db, &pairwise);
    assert!(stderr.contains("12 judgments made"), "{stderr}");
    let (_, stderr) = eval_ok(db, &pairwise);
    assert!(
        stderr.contains("0 judgments made") && stderr.contains("12 already stored"),
        "{stderr}"
    );
    pairs_add_up(db, &questions, None);

    // The same pairs with verdicts read from SmolLM2's likelihoods after a "[[" prefill: a
    // ledger of its own (the written verdicts above do not count as done), each judgment's
    // output showing the letters' probabilities, and the verdict the likeliest letter.
    let likely: Vec<&str> = pairwise
        .iter()
        .copied()
        .chain(["--verdict-from", "likelihood"])
        .collect();
    let (_, stderr) = eval_ok(db, &likely);
    assert!(stderr.contains("12 judgments made"), "{stderr}");
    let stored = rows(
        db,
        "SELECT judge, output, COALESCE(verdict, '-'), COALESCE(CAST(score AS TEXT), '-') \
         FROM eval_judgments WHERE mode = 'pairwise' AND judge LIKE '%(likelihood)'",
    )
    .await;
    assert_eq!(stored.len(), 12);
    let mut readable = 0;
    for row in &stored {
        assert_eq!(row[0], "smollm2-135m (likelihood)");
        assert!(row[1].contains("likelihoods after \"[[\": A "), "{row:?}");
        if row[2] != "-" {
            readable += 1;
            assert!(row[1].starts_with(&format!("[[{}]]", row[2])), "{row:?}");
            // The preference for the first-shown answer, which balances the two orders.
            let pref: f64 = row[3].parse().unwrap();
            assert!((-1.0..=1.0).contains(&pref), "{row:?}");
        }
    }
    assert!(
        readable > 0,
        "no likelihood verdict was readable: {stored:?}"
    );
    let s = pairs_add_up(db, &questions, Some("smollm2-135m (likelihood)"));
    assert_eq!(s["judgments"].as_u64(), Some(12), "{s}");

    // The judge beside the humans: two voted battles, each judged in both orders.
    let writing = serde_json::from_str::<Value>(
        std::fs::read_to_string(&questions)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    voted_battle(db, "b1", writing["turns"][0].as_str().unwrap(), "model_a").await;
    voted_battle(db, "b2", "What is the capital of France?", "tie").await;
    let agree: Vec<&str> = std::iter::once("agree")
        .chain(judge)
        .chain(["--format", "json"])
        .collect();
    let (json_out, stderr) = eval_ok(db, &agree);
    assert!(stderr.contains("4 judgments made"), "{stderr}");
    let a: Value = serde_json::from_str(&json_out).unwrap();
    let ag = &a["agreement"];
    assert_eq!(ag["battles"], 2, "{a}");
    let readable = ag["with_ties"]["total"].as_u64().unwrap();
    assert_eq!(readable + ag["unreadable"].as_u64().unwrap(), 2, "{a}");
    assert!(ag["by_category"].get("writing").is_some(), "{a}");
    assert!(ag["by_category"].get("uncategorized").is_some(), "{a}");
    // The same battles judged from likelihoods: a ledger of its own, every verdict readable
    // or counted.
    let agree_likely: Vec<&str> = agree
        .iter()
        .copied()
        .chain(["--verdict-from", "likelihood"])
        .collect();
    let (json_out, stderr) = eval_ok(db, &agree_likely);
    assert!(stderr.contains("4 judgments made"), "{stderr}");
    let a: Value = serde_json::from_str(&json_out).unwrap();
    let ag = &a["agreement"];
    let readable = ag["with_ties"]["total"].as_u64().unwrap();
    assert_eq!(readable + ag["unreadable"].as_u64().unwrap(), 2, "{a}");
    assert_eq!(
        count(
            db,
            "SELECT COUNT(*) FROM eval_judgments WHERE question_set = 'arena-battles'"
        )
        .await,
        8
    );

    // A model the controller does not serve fails at once with the controller's reason.
    let out = eval(
        db,
        &[
            "gen",
            "--questions",
            &questions,
            "--model",
            "no-such-model",
            "--base-url",
            &url,
            "--quiet",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("no-such-model") && stderr.contains("404"),
        "{stderr}"
    );
}

on_both_backends!(smollm2_end_to_end, smollm2_contestants_and_judge);

/// What the scripted endpoint saw: (model, messages) per call.
type Seen = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// An OpenAI-compatible endpoint answering every call after `delay`: contestants with a
/// numbered text, the judge with a grade.
async fn slow_endpoint(delay: Duration) -> (String, Seen) {
    use axum::routing::post;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |axum::Json(body): axum::Json<Value>| {
            let log = log.clone();
            async move {
                tokio::time::sleep(delay).await;
                let model = body["model"].as_str().unwrap_or_default().to_string();
                let messages = body["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| (m["role"].as_str().unwrap().to_string(), m["content"].as_str().unwrap().to_string()))
                    .collect();
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push((model.clone(), messages));
                    log.len()
                };
                let text = if model == "judge" {
                    format!("Fine.\nRating: [[{}]]", 1 + n % 10)
                } else {
                    format!("answer number {n}")
                };
                axum::Json(json!({
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), seen)
}

/// Starts `arena eval ARGS` and kills it (SIGKILL) once `sql` counts at least `at` rows;
/// returns the count after the kill.
async fn kill_when(db: &str, args: &[&str], sql: &str, at: usize) -> usize {
    let mut child = Command::new(env!("CARGO_BIN_EXE_arena"))
        .arg("eval")
        .args(args)
        .args(["--database-url", db, "--quiet"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(db, sql).await < at {
        assert!(Instant::now() < deadline, "no progress to kill");
        assert!(
            child.try_wait().unwrap().is_none(),
            "it finished before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    count(db, sql).await
}

/// Kills `arena eval ARGS` once 30 of the 160 rows `sql` counts are stored, runs it again to
/// the end, and checks that the second run said `said(made, stored)` and asked the endpoint
/// exactly for the rows the store lacked.
async fn kill_and_resume(
    db: &str,
    args: &[&str],
    sql: &str,
    seen: &Seen,
    said: impl Fn(usize, usize) -> String,
) {
    let stored = kill_when(db, args, sql, 30).await;
    assert!((30..160).contains(&stored), "{stored}");
    let asked_before = seen.lock().unwrap().len();
    let (_, stderr) = eval_ok(db, args);
    let line = said(160 - stored, stored);
    assert!(stderr.contains(&line), "no '{line}' in {stderr}");
    assert_eq!(count(db, sql).await, 160);
    assert_eq!(seen.lock().unwrap().len() - asked_before, 160 - stored);
}

async fn killed_runs_resume(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = arena_testkit::db::database_url(backend, dir.path()).await;
    // Migrated before the first run, so its rows can be counted from its start.
    arena_store::connect(&db).await.unwrap();
    let (url, seen) = slow_endpoint(Duration::from_millis(60)).await;
    // The shipped set: 80 questions, 160 turns.
    let gen = [
        "gen",
        "--model",
        "contestant",
        "--base-url",
        &url,
        "--parallel",
        "4",
    ];
    kill_and_resume(
        &db,
        &gen,
        "SELECT COUNT(*) FROM eval_answers",
        &seen,
        |made, stored| format!("{made} turns answered, {stored} already stored"),
    )
    .await;
    // Every second turn was asked with the first turn's stored answer as its context.
    let first: std::collections::HashMap<String, String> = rows(
        &db,
        "SELECT question_id, content FROM eval_answers WHERE turn = 1",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone()))
    .collect();
    let stored_first: std::collections::HashSet<&String> = first.values().collect();
    let calls = seen.lock().unwrap().clone();
    let second_turns: Vec<_> = calls.iter().filter(|c| c.1.len() == 3).collect();
    assert!(second_turns.len() >= 80);
    for (_, messages) in second_turns {
        assert_eq!(messages[1].0, "assistant");
        assert!(
            stored_first.contains(&messages[1].1),
            "a second turn asked with an unstored first answer: {messages:?}"
        );
    }

    // The judge, killed and resumed the same way: every answer turn graded once.
    let judge = [
        "judge",
        "--judge-model",
        "judge",
        "--judge-url",
        &url,
        "--parallel",
        "4",
    ];
    kill_and_resume(
        &db,
        &judge,
        "SELECT COUNT(*) FROM eval_judgments",
        &seen,
        |made, stored| {
            format!("{made} judgments made (0 without a readable verdict), {stored} already stored")
        },
    )
    .await;
    let (json_out, _) = eval_ok(&db, &["show", "--format", "json"]);
    let s: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(s["judgments"], 160);
    assert_eq!(s["models"][0]["single"]["graded"], 160);
    assert_eq!(s["categories"].as_array().unwrap().len(), 8);
}

on_both_backends!(killed_and_resumed, killed_runs_resume);

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = arena_testkit::db::scratch_sqlite_url(dir.path());
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"question_id\": 1, \"turns\": [\"a\"]}\n{\"turns\": [\"b\"]}\n",
    )
    .unwrap();
    let reserved = dir.path().join("arena-battles.jsonl");
    std::fs::write(&reserved, "{\"question_id\": 1, \"turns\": [\"a\"]}\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["gen", "--model", "m", "--questions", bad.to_str().unwrap()],
            "bad.jsonl:2: no 'question_id'",
        ),
        (
            vec!["gen", "--model", "m", "--questions", "/nowhere/q.jsonl"],
            "cannot read /nowhere/q.jsonl",
        ),
        (
            vec!["gen", "--model", "m", "--temperature", "hot"],
            "temperature 'hot'",
        ),
        (
            vec!["gen", "--model", "m", "--base-url", "ftp://x"],
            "not an http:// or https:// URL",
        ),
        (
            vec!["judge", "--judge-model", "j", "--mode", "best"],
            "unknown mode 'best'",
        ),
        (
            vec!["judge", "--judge-model", "j", "--model", "ghost"],
            "model 'ghost' has no complete answers",
        ),
        (
            vec![
                "judge",
                "--judge-model",
                "j",
                "--verdict-from",
                "likelihood",
            ],
            "use --mode pairwise",
        ),
        (
            vec!["judge", "--judge-model", "j", "--verdict-from", "logits"],
            "unknown verdict source 'logits'",
        ),
        (vec!["show"], "no judgments of question set 'arena-80'"),
        (
            vec![
                "gen",
                "--model",
                "m",
                "--questions",
                reserved.to_str().unwrap(),
            ],
            "names the judged arena battles",
        ),
    ];
    for (args, needle) in cases {
        let out = eval(&db, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains(needle),
            "{args:?}: no '{needle}' in {stderr}"
        );
    }
}

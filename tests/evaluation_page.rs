//! The Evaluation section of the Leaderboard tab: judgments stored as `arena eval` stores them,
//! served by a real controller (no workers) as summaries and SVG charts, and shown in a real
//! headless Chromium.

mod common;

use std::time::Duration;

use arena_store::{ArenaStore, EvalJudgment};
use arena_testkit::browser::Browser;
use serde_json::{json, Value};

/// A model name that is markup: it must reach the page and the chart as text.
const HOSTILE: &str = "<img src=x onerror=alert(1)>";
/// A judge name that needs URL encoding in the chart's address.
const JUDGE: &str = "judge #1 & co";

fn judgment(mode: &str, question: &str, turn: i64, a: &str, b: &str) -> EvalJudgment {
    EvalJudgment {
        question_set: "arena-80".into(),
        question_id: question.into(),
        mode: mode.into(),
        judge: JUDGE.into(),
        turn,
        model_a: a.into(),
        model_b: b.into(),
        category: "writing".into(),
        prompt: "the judge's prompt".into(),
        output: "the judge's output".into(),
        ..Default::default()
    }
}

fn grade(question: &str, turn: i64, model: &str, score: Option<f64>) -> EvalJudgment {
    EvalJudgment {
        verdict: score.map(|s| s.to_string()),
        score,
        error: score
            .is_none()
            .then(|| "no verdict in the judge's output".into()),
        ..judgment("single", question, turn, model, "")
    }
}

fn verdict(question: &str, a: &str, b: &str, v: Option<&str>) -> EvalJudgment {
    EvalJudgment {
        verdict: v.map(str::to_string),
        error: v
            .is_none()
            .then(|| "no verdict in the judge's output".into()),
        ..judgment("pairwise", question, 1, a, b)
    }
}

/// A single-grading run (alpha: 8, 6 / 9, unreadable; HOSTILE: 4, 5 / 6, 3), then a
/// pairwise one (alpha vs beta: a win, a disagreement, a tie, an unreadable pair), and an
/// agreement run on arena battles, which the page leaves out.
async fn seed(store: &dyn ArenaStore) {
    let mut all = vec![
        grade("q1", 1, "alpha", Some(8.0)),
        grade("q1", 2, "alpha", Some(6.0)),
        grade("q2", 1, "alpha", Some(9.0)),
        grade("q2", 2, "alpha", None),
        grade("q1", 1, HOSTILE, Some(4.0)),
        grade("q1", 2, HOSTILE, Some(5.0)),
        grade("q2", 1, HOSTILE, Some(6.0)),
        grade("q2", 2, HOSTILE, Some(3.0)),
    ];
    // Each pair in both orders: (alpha shown first, beta shown first).
    for (q, alpha_first, beta_first) in [
        ("q1", Some("A"), Some("B")),
        ("q2", Some("A"), Some("A")),
        ("q3", Some("C"), Some("C")),
        ("q4", None, Some("A")),
    ] {
        all.push(verdict(q, "alpha", "beta", alpha_first));
        all.push(verdict(q, "beta", "alpha", beta_first));
    }
    let mut agreement = verdict("battle-1", "alpha", "beta", Some("A"));
    agreement.question_set = "arena-battles".into();
    all.push(agreement);
    for j in &all {
        assert!(store.add_eval_judgment(j).await.unwrap());
        // Distinct times: the runs are listed newest first.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-9)
}

async fn chart(http: &str, set: &str, judge: &str, mode: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{http}/api/evaluation/chart.svg"))
        .query(&[("set", set), ("judge", judge), ("mode", mode)])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leaderboard_tab_shows_the_stored_evaluations() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = arena_testkit::db::database_url("sqlite", dir.path()).await;
    seed(&*arena_store::connect(&db_url).await.unwrap()).await;
    let c = common::bin().spawn_controller(&["--database-url", &db_url]);

    // The summaries: newest run first, the agreement run left out.
    let got = common::get(&c.http, "/api/evaluation").await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.headers["cache-control"], "no-cache");
    let body = got.json();
    let runs = body["evaluations"].as_array().unwrap();
    let modes: Vec<&str> = runs.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["pairwise", "single"], "{body:#}");

    let pairwise = &runs[0];
    assert_eq!(
        (&pairwise["question_set"], &pairwise["judge"]),
        (&json!("arena-80"), &json!(JUDGE))
    );
    assert_eq!(
        (&pairwise["judgments"], &pairwise["unreadable"]),
        (&json!(8), &json!(1))
    );
    // Two models: no baseline, every pair counted from both sides.
    assert_eq!(pairwise["baseline"], Value::Null);
    let m = &pairwise["models"];
    assert_eq!(
        (&m[0]["model"], &m[1]["model"]),
        (&json!("alpha"), &json!("beta"))
    );
    let wtle = |m: &Value| [&m["wins"], &m["ties"], &m["losses"], &m["errors"]].map(Value::clone);
    assert_eq!(
        wtle(&m[0]["pairs"]),
        [json!(1), json!(2), json!(0), json!(1)]
    );
    assert_eq!(
        wtle(&m[1]["pairs"]),
        [json!(0), json!(2), json!(1), json!(1)]
    );
    assert!(close(&m[0]["pairs"]["win_rate"], 2.0 / 3.0), "{m:#}");
    assert!(close(&m[1]["pairs"]["win_rate"], 1.0 / 3.0), "{m:#}");
    assert!(close(&m[0]["pairs"]["consistency"], 2.0 / 3.0), "{m:#}");
    let p = &m[0]["pairs"];
    assert!(p["ci_low"].as_f64() <= p["win_rate"].as_f64(), "{p}");
    assert!(p["win_rate"].as_f64() <= p["ci_high"].as_f64(), "{p}");

    let single = &runs[1];
    assert_eq!(
        (&single["judgments"], &single["unreadable"]),
        (&json!(8), &json!(1))
    );
    assert_eq!(single["baseline"], "alpha");
    let m = &single["models"];
    assert_eq!(
        (&m[0]["model"], &m[1]["model"]),
        (&json!("alpha"), &json!(HOSTILE))
    );
    let (alpha, hostile) = (&m[0]["single"], &m[1]["single"]);
    assert!(close(&alpha["overall"], 23.0 / 3.0), "{alpha}");
    assert_eq!(alpha["turns"], json!([8.5, 6.0]));
    assert_eq!(
        (&alpha["graded"], &alpha["unreadable"]),
        (&json!(3), &json!(1))
    );
    assert!(close(&alpha["relative"], 100.0), "{alpha}");
    assert!(close(&hostile["overall"], 4.5), "{hostile}");
    assert_eq!(hostile["turns"], json!([5.0, 4.0]));
    // Over the (question, turn)s both were graded on: 15 of alpha's 23.
    assert!(
        close(&hostile["relative"], 100.0 * 15.0 / 23.0),
        "{hostile}"
    );

    // The chart: an SVG document, the hostile name in it as text, locked down.
    let r = chart(&c.http, "arena-80", JUDGE, "single").await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/svg+xml");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(
        h["content-security-policy"],
        "default-src 'none'; style-src 'unsafe-inline'"
    );
    let svg = r.text().await.unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    assert!(svg.contains("&lt;img src=x onerror=alert(1)&gt;"), "{svg}");
    assert!(!svg.contains("<img"), "{svg}");
    // No such run, a run left out, or a name a little off: the site's JSON 404.
    for (set, judge, mode) in [
        ("arena-80", JUDGE, "arena-hard"),
        ("arena-80", "judge", "single"),
        ("arena-80' OR '1'='1", JUDGE, "single"),
        ("arena-battles", JUDGE, "pairwise"),
    ] {
        let r = chart(&c.http, set, judge, mode).await;
        assert_eq!(r.status(), 404, "{set} {judge} {mode}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "not_found", "{e}");
    }
    let missing = common::get(
        &c.http,
        "/api/evaluation/chart.svg?set=arena-80&mode=single",
    )
    .await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(missing.json()["error"]["param"], "judge");

    // The page: both runs under the arena ratings, the charts loaded, names as text.
    let browser = Browser::start(1280, 1000).await;
    browser.goto(&format!("{}/#leaderboard", c.http)).await;
    browser.accept_terms().await;
    browser
        .wait_for(
            "return document.querySelectorAll('#evaluation-list .eval-run').length === 2 && \
             [...document.querySelectorAll('#evaluation-list img')].every(i => i.complete)",
            Duration::from_secs(20),
        )
        .await;
    let shown = browser
        .eval(
            "const runs = [...document.querySelectorAll('#evaluation-list .eval-run')]; \
             return runs.map(r => ({ \
               title: r.querySelector('h3').textContent, \
               img: r.querySelector('img').naturalWidth, \
               alt: r.querySelector('img').alt, \
               cells: [...r.querySelectorAll('tbody tr')].map(tr => [...tr.cells].map(td => td.textContent)), \
               note: r.querySelector('.lb-note').textContent }))",
        )
        .await;
    let single = &shown[1];
    assert!(
        single["title"].as_str().unwrap().contains(JUDGE),
        "{shown:#}"
    );
    assert!(
        single["img"].as_u64().unwrap() > 0,
        "the chart did not load: {shown:#}"
    );
    assert!(!single["alt"].as_str().unwrap().is_empty(), "{shown:#}");
    assert_eq!(
        single["cells"],
        json!([
            ["alpha", "7.67", "8.50", "6.00", "100.0"],
            [HOSTILE, "4.50", "5.00", "4.00", "65.2"]
        ]),
        "{shown:#}"
    );
    assert_eq!(
        single["note"],
        "8 judgments, 1 unreadable verdict (counted, never guessed)"
    );
    let pairwise = &shown[0];
    let cells = pairwise["cells"].as_array().unwrap();
    assert_eq!(cells[0][0], "alpha", "{shown:#}");
    assert!(
        cells[0][1].as_str().unwrap().starts_with("66.7 ("),
        "{shown:#}"
    );
    assert_eq!(
        (&cells[0][2], &cells[0][3]),
        (&json!("1 / 2 / 0"), &json!("67"))
    );
    assert_eq!(cells[1][0], "beta", "{shown:#}");
    // The hostile name made no element: the only images are the two charts.
    assert_eq!(
        browser
            .eval("return [document.querySelectorAll('img').length, document.querySelectorAll('#evaluation-list td img').length]")
            .await,
        json!([2, 0])
    );
    // Below the arena ratings, in the same tab.
    assert_eq!(
        browser
            .eval("const t = document.querySelector('#leaderboard-table'), e = document.querySelector('#evaluation-title'); \
                   return !!(t.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING) && e.closest('#panel-leaderboard') !== null")
            .await,
        json!(true)
    );
    if let Ok(path) = std::env::var("ARENA_SCREENSHOT_EVALUATION") {
        browser
            .eval("document.querySelector('#evaluation-title').scrollIntoView(); return true")
            .await;
        std::fs::write(path, browser.screenshot().await).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_evaluations_the_page_says_how_to_make_one() {
    let c = common::bin().spawn_controller(&[]);
    let got = common::get(&c.http, "/api/evaluation").await;
    assert_eq!(got.json(), json!({"evaluations": []}));
    let browser = Browser::start(900, 900).await;
    browser.goto(&format!("{}/#leaderboard", c.http)).await;
    browser
        .wait_for(
            "return !document.querySelector('#evaluation-empty').hidden",
            Duration::from_secs(20),
        )
        .await;
    let text = browser
        .eval("return document.querySelector('#evaluation-empty').textContent")
        .await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains("arena eval gen") && text.contains("arena eval judge"),
        "{text}"
    );
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('#evaluation-list > *').length")
            .await,
        json!(0)
    );
    // The arena ratings above it still draw their (empty) table.
    assert_eq!(
        browser
            .eval("return [document.querySelectorAll('#leaderboard-table thead th').length > 0, \
                   document.querySelector('#leaderboard-table tbody').innerText.includes('No counted votes yet')]")
            .await,
        json!([true, true])
    );
}

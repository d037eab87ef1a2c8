//! The web page in a real browser: headless Chromium (Debian's chromium and chromium-driver,
//! installed by scripts/test.sh) against a real controller and workers.

mod common;

use std::time::Duration;

use arena_testkit::browser::Browser;
use common::rows;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_battle_streams_both_answers_takes_a_vote_and_reveals_the_names() {
    let dir = tempfile::tempdir().unwrap();
    // A catalog describing one of the two contestants, with markup in its text: shown after
    // the vote and on the leaderboard, as text.
    let catalog = dir.path().join("models.toml");
    std::fs::write(&catalog, CATALOG).unwrap();
    let a = common::bin()
        .spawn_smollm2_arena_with(
            "sqlite",
            dir.path(),
            &["--model-info", catalog.to_str().unwrap()],
        )
        .await;
    let browser = Browser::start(1280, 1000).await;
    browser.goto(&a.c.http).await;
    browser.accept_terms().await;
    // Nothing on the page names a model before the vote.
    let before = browser
        .eval("return document.documentElement.outerHTML")
        .await;
    assert!(
        !before.as_str().unwrap().contains("smollm2"),
        "names in the page"
    );
    // Greedy answers: a sampled one could name a model and keep the vote off the leaderboard.
    browser
        .eval("document.querySelector('#battle-temperature').value = '0'; return true")
        .await;
    browser
        .type_into(
            "#battle-input",
            "What is the capital of France? Answer in one word.\u{E007}",
        )
        .await;
    // While the answers stream, nobody can vote.
    assert_eq!(
        browser
            .eval("return document.querySelector('#battle-vote-b').disabled")
            .await,
        json!(true)
    );
    browser
        .wait_for(
            "return !document.querySelector('#battle-vote-b').disabled",
            Duration::from_secs(120),
        )
        .await;
    let panes = browser
        .eval("return [document.querySelector('#battle-a').innerText, document.querySelector('#battle-b').innerText]")
        .await;
    for pane in panes.as_array().unwrap() {
        let t = pane.as_str().unwrap();
        assert!(
            t.contains("capital of France"),
            "the question is not shown: {t}"
        );
        assert!(
            t.len() > "What is the capital of France? Answer in one word.".len() + 2,
            "no answer: {t}"
        );
    }
    let during = browser
        .eval("return document.documentElement.outerHTML")
        .await;
    assert!(
        !during.as_str().unwrap().contains("smollm2"),
        "names before the vote"
    );

    browser.click("#battle-vote-b").await;
    browser
        .wait_for(
            "return document.querySelector('#battle-name-a').innerText.includes('smollm2')",
            Duration::from_secs(20),
        )
        .await;
    let names = browser
        .eval("return document.querySelector('#battle-name-a').innerText + ' | ' + document.querySelector('#battle-name-b').innerText")
        .await;
    let names = names.as_str().unwrap().to_string();
    assert!(names.contains("vicuna template"), "{names}");
    assert!(
        browser
            .eval("return document.querySelector('#battle-vote-a').disabled")
            .await
            == json!(true),
        "voting stays open after the vote"
    );
    let votes = rows(
        &a.db_url,
        "SELECT v.winner, b.model_b FROM votes v JOIN battles b ON b.id = v.battle_id",
    )
    .await;
    assert_eq!(votes.len(), 1, "{votes:?}");
    assert_eq!(votes[0][0], "model_b");
    assert!(names.contains(&votes[0][1]), "{names} vs {votes:?}");
    // The described model shows its display name as a link, with organization and licence;
    // the other keeps its served name.
    let revealed = browser
        .eval(&format!("{CATALOG_ENTRY} return [...document.querySelectorAll('.pane-name')].map(entry).filter(Boolean)"))
        .await;
    assert_eq!(revealed, json!([described()]), "{names}");
    assert!(
        names.contains("Hugging Face <img src=x onerror="),
        "{names}"
    );
    assert_eq!(
        browser
            .eval("return [window.__xss === undefined, document.querySelectorAll('.pane-name img, .pane-name script').length]")
            .await,
        json!([true, 0])
    );

    if let Ok(path) = std::env::var("ARENA_SCREENSHOT") {
        std::fs::write(path, browser.screenshot().await).unwrap();
    }

    // The vote is on the leaderboard tab: both models in the table, the interval plot and
    // the win-fraction heat map drawn.
    browser.click("#tab-leaderboard").await;
    browser
        .wait_for(
            "return document.querySelectorAll('#leaderboard-table tbody tr').length === 2",
            Duration::from_secs(20),
        )
        .await;
    let table = browser
        .eval("return document.querySelector('#leaderboard-table').innerText")
        .await;
    let table = table.as_str().unwrap();
    assert!(table.contains("smollm2-135m (vicuna template)"), "{table}");
    let described_rows = browser
        .eval(&format!("{CATALOG_ENTRY} return [...document.querySelectorAll('#leaderboard-table td.col-model')].map(entry).filter(Boolean)"))
        .await;
    assert_eq!(described_rows, json!([described()]), "{table}");
    assert!(table.contains("SmolLM2-135M-Instruct"), "{table}");
    assert!(
        table.contains("Hugging Face <img src=x onerror=\"window.__xss=8\"> · Apache 2.0"),
        "{table}"
    );
    assert_eq!(
        browser
            .eval("return [window.__xss === undefined, document.querySelectorAll('#leaderboard-table img, #leaderboard-table script').length]")
            .await,
        json!([true, 0])
    );
    // One vote is far below the minimum: no interval, however wide, is shown for it.
    assert_eq!(table.matches("too few votes").count(), 2, "{table}");
    // And below --new-model-votes (300 by default): both ratings are provisional, a badge
    // whose title says why.
    assert_eq!(
        browser
            .eval("return [...document.querySelectorAll('#leaderboard-table td.col-model .provisional-badge')].map((b) => [b.textContent, b.title.includes('Fewer than 300 counted votes')])")
            .await,
        json!([["provisional", true], ["provisional", true]])
    );
    let drawn = browser
        .eval("return [document.querySelectorAll('#leaderboard-ci-plot circle').length, document.querySelectorAll('#leaderboard-heatmap rect').length > 0]")
        .await;
    assert_eq!(drawn, json!([2, true]), "{table}");
    // The interval plot and both heat maps name the described model as the catalog does.
    let labels = browser
        .eval("return ['#leaderboard-ci-plot', '#leaderboard-heatmap', '#leaderboard-counts'].map((s) => [...document.querySelectorAll(s + ' text.label')].map((t) => t.textContent))")
        .await;
    for (chart, names) in labels.as_array().unwrap().iter().enumerate() {
        let names: Vec<&str> = names
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n.as_str())
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with("SmolLM2-135M-")),
            "chart {chart}: {names:?}"
        );
        assert!(!names.contains(&"smollm2-135m"), "chart {chart}: {names:?}");
    }
    // The day's snapshot, with its hash and the file to verify.
    let snapshot = browser
        .eval("const p = document.querySelector('#leaderboard-snapshot'); return [p.hidden, p.textContent, p.querySelector('a').getAttribute('href')]")
        .await;
    assert_eq!(snapshot[0], json!(false), "{snapshot}");
    assert!(
        snapshot[1]
            .as_str()
            .unwrap()
            .starts_with("Daily snapshot 20"),
        "{snapshot}"
    );
    assert!(
        snapshot[2]
            .as_str()
            .unwrap()
            .starts_with("/api/leaderboard/snapshots/20"),
        "{snapshot}"
    );
    // With two models the heat map's colour bar is narrow: its two end labels must not be
    // drawn over each other.
    let apart = browser
        .eval(
            "const b = [...document.querySelectorAll('#leaderboard-heatmap text.legend')].map((e) => e.getBBox());
             return b.length === 2 && (b[0].x + b[0].width <= b[1].x || b[1].x + b[1].width <= b[0].x
               || b[0].y + b[0].height <= b[1].y || b[1].y + b[1].height <= b[0].y);",
        )
        .await;
    assert_eq!(apart, json!(true), "the legend's labels overlap");
    if let Ok(path) = std::env::var("ARENA_SCREENSHOT_LEADERBOARD") {
        std::fs::write(path, browser.screenshot().await).unwrap();
    }
    // One click rates the same vote under style control and says what it adjusted for.
    browser.click("#leaderboard-style").await;
    browser
        .wait_for(
            "const n = document.querySelector('#leaderboard-style-note'); return !n.hidden && n.textContent.includes('length')",
            Duration::from_secs(20),
        )
        .await;
    let note = browser
        .eval("return document.querySelector('#leaderboard-style-note').textContent")
        .await;
    assert!(note.as_str().unwrap().contains("Style control"), "{note}");
    let rows = browser
        .eval("return document.querySelectorAll('#leaderboard-table tbody tr').length")
        .await;
    assert_eq!(rows, json!(2));
    if let Ok(path) = std::env::var("ARENA_SCREENSHOT_STYLE") {
        std::fs::write(path, browser.screenshot().await).unwrap();
    }
    browser.click("#leaderboard-style").await;
    browser
        .wait_for(
            "return document.querySelector('#leaderboard-style-note').hidden",
            Duration::from_secs(20),
        )
        .await;
    // The vote's battle is in the English category: choosing it shows that board and says
    // how many battles a model needs on it (one vote is below the minimum: nobody listed).
    let options = browser
        .eval("return [...document.querySelectorAll('#leaderboard-category option')].map((o) => o.value)")
        .await;
    assert_eq!(options, json!(["", "english"]), "{options}");
    browser
        .eval("const s = document.querySelector('#leaderboard-category'); s.value = 'english'; s.dispatchEvent(new Event('change')); return true;")
        .await;
    browser
        .wait_for(
            "const n = document.querySelector('#leaderboard-category-note'); return !n.hidden && n.textContent.includes('at least 10 battles')",
            Duration::from_secs(20),
        )
        .await;
    let note = browser
        .eval("return document.querySelector('#leaderboard-category-note').textContent")
        .await;
    assert!(
        note.as_str()
            .unwrap()
            .starts_with("English: 1 counted vote."),
        "{note}"
    );
    let table = browser
        .eval("return document.querySelector('#leaderboard-table').innerText")
        .await;
    assert!(
        table
            .as_str()
            .unwrap()
            .contains("No model has enough battles in this category"),
        "{table}"
    );
    if let Ok(path) = std::env::var("ARENA_SCREENSHOT_CATEGORY") {
        std::fs::write(path, browser.screenshot().await).unwrap();
    }
}

/// The catalog of the SmolLM2 test: only `smollm2-135m`, with markup in its text.
const CATALOG: &str = r#"
[models."smollm2-135m"]
display_name = "SmolLM2-135M-Instruct"
organization = 'Hugging Face <img src=x onerror="window.__xss=8">'
license = "Apache 2.0"
link = "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct"
description = "<script>window.__xss=9</script> A 135M-parameter model"
"#;

/// A script defining `entry(element)`: what a rendered catalog link inside it says, or null.
const CATALOG_ENTRY: &str = "const entry = (e) => { const a = e.querySelector('a.model-link');      return a && {text: a.textContent, href: a.getAttribute('href'), rel: a.rel, title: a.title,      sub: (e.querySelector('.model-sub') || {}).textContent}; };";

/// What `entry` finds for the described model, `smollm2-135m`.
fn described() -> serde_json::Value {
    json!({
        "text": "SmolLM2-135M-Instruct",
        "href": "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
        "rel": "noopener noreferrer",
        "title": "<script>window.__xss=9</script> A 135M-parameter model",
        "sub": "Hugging Face <img src=x onerror=\"window.__xss=8\"> · Apache 2.0",
    })
}

/// An OpenAI-compatible endpoint streaming `payloads` as SSE `data:` lines to every chat
/// completion; returns its base URL.
async fn scripted_endpoint(payloads: Vec<String>) -> String {
    use axum::routing::post;
    let body: String = payloads.iter().map(|p| format!("data: {p}\n\n")).collect();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || async move { ([("content-type", "text/event-stream")], body) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

fn delta(content: &str) -> String {
    json!({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
        .to_string()
}

/// A "model" whose answer is markup meant to run in the page.
async fn hostile_endpoint() -> String {
    scripted_endpoint(vec![
        json!({"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": null}]})
            .to_string(),
        delta("Look: <img src=x onerror=\"window.__xss=1\"> and <script>window.__xss=2</script> **done**"),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).to_string(),
        json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 9}}).to_string(),
        "[DONE]".to_string(),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn markup_in_a_model_answer_renders_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let base = hostile_endpoint().await;
    let file = dir.path().join("endpoints.toml");
    std::fs::write(
        &file,
        format!("[[endpoint]]\nname = \"hostile\"\nbase_url = \"{base}\"\n"),
    )
    .unwrap();
    let mut cmd = common::bin().controller_command();
    cmd.args(["--endpoints", file.to_str().unwrap()]);
    let c = common::start_controller(cmd);

    let browser = Browser::start(900, 900).await;
    browser.goto(&format!("{}/#direct", c.http)).await;
    browser.accept_terms().await;
    browser
        .wait_for(
            "return [...document.querySelectorAll('#direct-model option')].some(o => o.value === 'hostile')",
            Duration::from_secs(20),
        )
        .await;
    browser
        .eval("const s = document.querySelector('#direct-model'); s.value = 'hostile'; s.dispatchEvent(new Event('change')); return true")
        .await;
    browser
        .type_into(
            "#direct-input",
            "<img src=y onerror=\"window.__xss=3\"> hi\u{E007}",
        )
        .await;
    browser
        .wait_for(
            "return document.querySelector('#direct-a').innerText.includes('done')",
            Duration::from_secs(30),
        )
        .await;
    let text = browser
        .eval("return document.querySelector('#direct-a').innerText")
        .await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains("<img src=x onerror=\"window.__xss=1\">"),
        "{text}"
    );
    assert!(text.contains("<script>window.__xss=2</script>"), "{text}");
    assert!(
        text.contains("<img src=y onerror"),
        "the user's own text: {text}"
    );
    let injected = browser
        .eval("return [window.__xss === undefined, document.querySelectorAll('#direct-a img, #direct-a script').length]")
        .await;
    assert_eq!(
        injected,
        json!([true, 0]),
        "markup from the answer ran or became elements"
    );
    // Markdown still renders: **done** is bold.
    assert_eq!(
        browser.eval("return [...document.querySelectorAll('#direct-a strong')].some(e => e.innerText === 'done')").await,
        json!(true)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_side_failing_shows_a_banner_while_the_other_answers() {
    let dir = tempfile::tempdir().unwrap();
    let broken = scripted_endpoint(vec![
        delta("I was about to say"),
        json!({"error": {"message": "the upstream model crashed"}}).to_string(),
    ])
    .await;
    let file = dir.path().join("endpoints.toml");
    std::fs::write(
        &file,
        format!("[[endpoint]]\nname = \"broken\"\nbase_url = \"{broken}\"\n"),
    )
    .unwrap();
    let model = common::tiny_gguf(dir.path());
    let a = common::bin()
        .spawn_arena(
            "sqlite",
            dir.path(),
            &["--endpoints", file.to_str().unwrap()],
            &[(&model, "tiny-a", &[])],
        )
        .await;

    let browser = Browser::start(1000, 900).await;
    browser.goto(&format!("{}/#sbs", a.c.http)).await;
    browser.accept_terms().await;
    browser
        .wait_for(
            "return [...document.querySelectorAll('#sbs-model-a option')].some(o => o.value === 'broken')",
            Duration::from_secs(20),
        )
        .await;
    browser
        .eval("for (const [id, v] of [['#sbs-model-a', 'broken'], ['#sbs-model-b', 'tiny-a']]) { const s = document.querySelector(id); s.value = v; s.dispatchEvent(new Event('change')); } return true")
        .await;
    browser.type_into("#sbs-input", "hello there\u{E007}").await;
    browser
        .wait_for(
            "return !document.querySelector('#sbs-error').hidden",
            Duration::from_secs(30),
        )
        .await;
    let banner = browser
        .eval("return document.querySelector('#sbs-error').innerText")
        .await;
    let banner = banner.as_str().unwrap().to_string();
    assert!(banner.contains("the upstream model crashed"), "{banner}");
    // The other side still finishes; then Regenerate opens, and the vote stays shut: it
    // needs two complete answers.
    browser
        .wait_for(
            "return !document.querySelector('#sbs-regenerate').disabled",
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        browser
            .eval("return document.querySelector('#sbs-vote-tie').disabled")
            .await,
        json!(true)
    );
    let panes = browser
        .eval("return [document.querySelector('#sbs-a').innerText, document.querySelector('#sbs-b').innerText]")
        .await;
    assert!(
        panes[0].as_str().unwrap().contains("I was about to say"),
        "{panes}"
    );
    let b = panes[1].as_str().unwrap();
    assert!(
        b.len() > "hello there".len() + 1,
        "side B did not answer: {b}"
    );
}

/// Every composer's input and Send button: disabled or not.
const COMPOSERS_DISABLED: &str = "return ['battle', 'sbs', 'direct'].flatMap(p => \
     [document.querySelector(`#${p}-input`).disabled, document.querySelector(`#${p}-send`).disabled])";

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_browser_agrees_to_the_terms_once_before_its_first_message() {
    let dir = tempfile::tempdir().unwrap();
    let terms = dir.path().join("terms.txt");
    std::fs::write(
        &terms,
        "Be kind to the models. <b>Not bold</b>\n\nConversations may be published.\n",
    )
    .unwrap();
    let model = common::tiny_gguf(dir.path());
    let a = common::bin()
        .spawn_arena(
            "sqlite",
            dir.path(),
            &["--terms", terms.to_str().unwrap()],
            &[(&model, "tiny-a", &[]), (&model, "tiny-b", &[])],
        )
        .await;
    let config = common::get(&a.c.http, "/api/config").await.json();
    let version = config["terms"]["version"].as_str().unwrap().to_string();

    // A phone-sized window.
    let browser = Browser::start(390, 800).await;
    browser.goto(&a.c.http).await;
    browser
        .wait_for(
            "return !document.querySelector('#terms').hidden && !document.querySelector('#terms-accept').disabled",
            Duration::from_secs(20),
        )
        .await;
    // The operator's text, as text in two paragraphs: markup in it stays markup.
    let shown = browser
        .eval("const t = document.querySelector('#terms-text'); return [t.innerText, t.querySelectorAll('p').length, t.querySelectorAll('b').length]")
        .await;
    let text = shown[0].as_str().unwrap();
    assert!(
        text.contains("Be kind to the models. <b>Not bold</b>"),
        "{shown}"
    );
    assert!(text.contains("Conversations may be published."), "{shown}");
    assert_eq!(shown[1], 2, "{shown}");
    assert_eq!(shown[2], 0, "{shown}");
    // It fits the phone's width, with the button to agree on screen.
    assert_eq!(
        browser
            .eval("const r = document.querySelector('#terms-accept').getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth && r.bottom <= window.innerHeight")
            .await,
        json!(true)
    );
    // Before agreeing nothing can be typed or sent, in any tab.
    assert_eq!(
        browser.eval(COMPOSERS_DISABLED).await,
        json!([true, true, true, true, true, true])
    );

    browser.click("#terms-accept").await;
    browser
        .wait_for(
            "return document.querySelector('#terms').hidden",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(
        browser.eval(COMPOSERS_DISABLED).await,
        json!([false, false, false, false, false, false])
    );
    let cookie = browser.eval("return document.cookie").await;
    assert!(
        cookie
            .as_str()
            .unwrap()
            .contains(&format!("arena_terms={version}")),
        "{cookie}"
    );

    browser
        .eval("document.querySelector('#battle-temperature').value = '0'; document.querySelector('#battle-max-tokens').value = '8'; return true")
        .await;
    browser
        .type_into("#battle-input", "Hello there\u{E007}")
        .await;
    browser
        .wait_for(
            "return !document.querySelector('#battle-vote-tie').disabled",
            Duration::from_secs(60),
        )
        .await;
    // Both sides of the battle were stored with the accepted version.
    let stored = rows(&a.db_url, "SELECT terms_version FROM conversations").await;
    assert_eq!(stored, [[version.clone()], [version.clone()]], "{stored:?}");

    // Accepted once per browser: a reload does not ask again.
    browser.goto(&a.c.http).await;
    browser
        .wait_for(
            "return !document.querySelector('#battle-input').disabled",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(
        browser
            .eval("return document.querySelector('#terms').hidden")
            .await,
        json!(true)
    );
    // New terms have a new version: a browser that accepted other terms is asked again.
    browser
        .eval("document.cookie = 'arena_terms=0000000000000000; Path=/; SameSite=Strict'; return true")
        .await;
    browser.goto(&a.c.http).await;
    browser
        .wait_for(
            "return !document.querySelector('#terms').hidden && !document.querySelector('#terms-accept').disabled",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(
        browser.eval(COMPOSERS_DISABLED).await,
        json!([true, true, true, true, true, true])
    );
}

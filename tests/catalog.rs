//! The model catalog (`--model-info FILE`) end to end: a real controller whose two contestants
//! are scripted OpenAI-compatible endpoints; the catalog's info on the leaderboard rows and in
//! the vote's answer, `arena leaderboard --model-info`, and bad files stopping start-up.

mod common;

use common::{get, post};
use serde_json::{json, Value};

/// An OpenAI-compatible endpoint answering every chat completion with the same short text;
/// returns its base URL.
async fn answering_endpoint(text: &'static str) -> String {
    use axum::routing::post;
    let chunk = |v: Value| format!("data: {v}\n\n");
    let body = [
        chunk(
            json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]}),
        ),
        chunk(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})),
        chunk(json!({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3}})),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || async move { ([("content-type", "text/event-stream")], body) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

/// Hostile text an operator's catalog might carry: it must stay text wherever it is shown.
const HOSTILE: &str = "<script>window.__xss=1</script> a \\\"quoted\\\" model";

/// A catalog describing `alpha` only.
fn write_catalog(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("models.toml");
    std::fs::write(
        &path,
        format!(
            "[models.alpha]\ndisplay_name = \"Alpha-7B-Chat\"\norganization = \"Alpha Lab\"\n\
             license = \"MIT\"\nlink = \"https://example.com/alpha\"\ndescription = \"{HOSTILE}\"\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leaderboard_rows_and_the_vote_carry_the_catalogs_info() {
    let dir = tempfile::tempdir().unwrap();
    let (alpha, beta) = (
        answering_endpoint("Paris.").await,
        answering_endpoint("Lyon.").await,
    );
    let endpoints = dir.path().join("endpoints.toml");
    std::fs::write(
        &endpoints,
        format!(
            "[[endpoint]]\nname = \"alpha\"\nbase_url = \"{alpha}\"\n\n\
             [[endpoint]]\nname = \"beta\"\nbase_url = \"{beta}\"\n"
        ),
    )
    .unwrap();
    let catalog = write_catalog(dir.path());
    let db = format!("sqlite://{}", dir.path().join("arena.db").display());
    let c = common::bin().spawn_controller(&[
        "--database-url",
        &db,
        "--endpoints",
        endpoints.to_str().unwrap(),
        "--model-info",
        catalog.to_str().unwrap(),
    ]);
    let http = &c.http;

    let created = post(http, "/api/battles", json!({"mode": "anonymous"})).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_string();
    // Before the vote nothing tells the sides apart, the catalog's names included.
    let shown = get(http, &format!("/api/battles/{id}")).await;
    assert!(!shown.text.contains("Alpha"), "{}", shown.text);
    let answered = post(
        http,
        &format!("/api/battles/{id}/turns"),
        json!({"text": "Capital of France?"}),
    )
    .await;
    assert_eq!(answered.status, 200, "{}", answered.text);
    assert!(!answered.text.contains("Alpha"), "{}", answered.text);

    // Alpha (the one answering "Paris.") wins, whichever side it was drawn on.
    let alpha_won = if answered.text_of("a") == "Paris." {
        "model_a"
    } else {
        "model_b"
    };
    let vote = post(
        http,
        &format!("/api/battles/{id}/vote"),
        json!({"winner": alpha_won}),
    )
    .await;
    assert_eq!(vote.status, 200, "{}", vote.text);
    let vote = vote.json();
    assert_eq!(vote["counted"], true, "{vote}");
    let (alpha_side, beta_side) = if vote["model_a"] == "alpha" {
        ("info_a", "info_b")
    } else {
        ("info_b", "info_a")
    };
    let want = json!({
        "display_name": "Alpha-7B-Chat",
        "organization": "Alpha Lab",
        "license": "MIT",
        "link": "https://example.com/alpha",
        "description": "<script>window.__xss=1</script> a \"quoted\" model",
    });
    assert_eq!(vote[alpha_side], want, "{vote}");
    // A model the catalog lacks has no info; the page shows its served name.
    assert_eq!(vote[beta_side], Value::Null, "{vote}");
    let shown = get(http, &format!("/api/battles/{id}")).await.json();
    assert_eq!(shown[alpha_side], want, "{shown}");

    let board = get(http, "/api/leaderboard").await.json();
    let rows = board["models"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{board}");
    let row = |name: &str| rows.iter().find(|r| r["model"] == name).unwrap().clone();
    assert_eq!(row("alpha")["info"], want, "{board}");
    assert!(row("beta").get("info").is_none(), "{board}");
    // The ratings themselves are as without a catalog.
    assert!(
        row("alpha")["bt"].as_f64().unwrap() > row("beta")["bt"].as_f64().unwrap(),
        "{board}"
    );

    // The command line: JSON rows carry the same info; the table and CSV get the
    // organization and licence, and only when a catalog is given.
    let args = ["leaderboard", "--database-url", &db];
    let catalog = catalog.to_str().unwrap();
    let json_rows: Value = serde_json::from_str(
        &common::bin().ok(&[&args[..], &["--format", "json", "--model-info", catalog]].concat()),
    )
    .unwrap();
    assert_eq!(json_rows[0]["model"], "alpha");
    assert_eq!(json_rows[0]["info"], want, "{json_rows}");
    assert!(json_rows[1].get("info").is_none(), "{json_rows}");
    let table = common::bin().ok(&[&args[..], &["--model-info", catalog]].concat());
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].ends_with("organization  license"), "{table}");
    assert!(
        lines[1].contains("alpha") && lines[1].ends_with("Alpha Lab     MIT"),
        "{table}"
    );
    let csv =
        common::bin().ok(&[&args[..], &["--format", "csv", "--model-info", catalog]].concat());
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].ends_with(",organization,license"), "{csv}");
    assert!(lines[1].ends_with(",Alpha Lab,MIT"), "{csv}");
    assert!(lines[2].ends_with(",,"), "{csv}");
    let plain = common::bin().ok(&[&args[..], &["--format", "csv"]].concat());
    assert!(!plain.contains("organization"), "{plain}");
    let plain: Value =
        serde_json::from_str(&common::bin().ok(&[&args[..], &["--format", "json"]].concat()))
            .unwrap();
    assert!(plain[0].get("info").is_none(), "{plain}");
}

#[test]
fn a_bad_catalog_stops_the_controller_and_the_command_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("models.toml");
    std::fs::write(
        &bad,
        "[models.m]\ndisplay_name = \"M\"\nlink = \"javascript:alert(1)\"\n",
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("arena.db").display());
    let out = common::bin()
        .controller_command()
        .args(["--database-url", &db, "--model-info", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3:", bad.display())) && err.contains("http://"),
        "{err}"
    );
    let battles = dir.path().join("battles.csv");
    std::fs::write(&battles, "model_a,model_b,winner\nm,n,model_a\n").unwrap();
    let file = battles.to_str().unwrap();
    common::bin().fails(
        &[
            "leaderboard",
            "--battles",
            file,
            "--model-info",
            "/no/such/models.toml",
        ],
        "/no/such/models.toml",
    );
    std::fs::write(
        &bad,
        "[models.m]\ndisplay_name = \"M\"\nlicence = \"MIT\"\n",
    )
    .unwrap();
    common::bin().fails(
        &[
            "leaderboard",
            "--battles",
            file,
            "--model-info",
            bad.to_str().unwrap(),
        ],
        "model 'm': unknown key 'licence'",
    );
}

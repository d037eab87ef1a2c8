//! Snapshots of every board, end to end through the binary: a store filled with the
//! benchmark's synthetic votes (each with its answers' style, categories and pair
//! probability), then `arena leaderboard --snapshot` of the style-controlled, category and
//! inverse-propensity-weighted boards, each reproduced by `--verify` whatever flags the check
//! is given, and refused once what it was computed from is not the snapshot's. Both backends.

mod common;

use arena_testkit::on_both_backends;
use serde_json::Value;

async fn snapshots_of_every_board(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = arena_testkit::db::database_url(backend, dir.path()).await;
    let bin = common::bin();
    let filled = bin.ok(&[
        "bench",
        "leaderboard",
        "--battles",
        "3000",
        "--models",
        "6",
        "--store",
        &db,
    ]);
    assert!(filled.contains("wrote 3000 votes"), "{filled}");

    let boards: [&[&str]; 4] = [
        &["--style-control"],
        &["--category", "coding", "--category-min-battles", "1"],
        &["--ipw"],
        &["--style-control", "--category", "math"],
    ];
    for (i, flags) in boards.iter().enumerate() {
        let snap = dir.path().join(format!("snap-{i}.json"));
        let snap = snap.to_str().unwrap();
        let board = ["leaderboard", "--database-url", &db, "--format", "json"];
        let listed = bin.ok(&[&board[..], flags, &["--snapshot", snap]].concat());
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(snap).unwrap()).unwrap();
        assert_eq!(saved["format"], "arena-leaderboard-snapshot/2");
        let style = flags.contains(&"--style-control");
        assert_eq!(saved["view"]["style_control"], style, "{flags:?}");
        assert_eq!(saved["style_sha256"].is_string(), style, "{flags:?}");
        assert_eq!(
            saved["propensity_sha256"].is_string(),
            flags.contains(&"--ipw")
        );
        // The snapshot's ratings are the board printed beside it.
        let rows: Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(
            rows[0]["bt"], saved["leaderboard"]["rows"][0]["bt"],
            "{flags:?}"
        );
        if let Some(c) = flags.iter().position(|f| *f == "--category") {
            assert_eq!(saved["view"]["category"], flags[c + 1]);
            assert!(saved["battles"].as_u64().unwrap() < 3000, "{saved}");
        }
        // Checked with other flags: the snapshot's own view and options are used.
        let verify = ["leaderboard", "--database-url", &db, "--ties", "davidson"];
        let checked = bin.ok(&[&verify[..], &["--verify", snap]].concat());
        assert!(checked.contains(": reproduced"), "{flags:?}: {checked}");

        // What the ratings read changed behind the same votes: refused, and told which.
        let mut doctored = saved.clone();
        let (key, told) = if style {
            ("style_sha256", "answers' style")
        } else if flags.contains(&"--ipw") {
            ("propensity_sha256", "pair probabilities")
        } else {
            ("vote_set_sha256", "votes:")
        };
        doctored[key] = Value::from("0".repeat(64));
        let bad = dir.path().join(format!("doctored-{i}.json"));
        std::fs::write(&bad, doctored.to_string()).unwrap();
        bin.fails(
            &[&verify[..], &["--verify", bad.to_str().unwrap()]].concat(),
            told,
        );
    }

    // A snapshot of the plain board from the version before views still verifies.
    let snap = dir.path().join("v1.json");
    let snap = snap.to_str().unwrap();
    bin.ok(&["leaderboard", "--database-url", &db, "--snapshot", snap]);
    let mut v1: Value = serde_json::from_str(&std::fs::read_to_string(snap).unwrap()).unwrap();
    v1["format"] = Value::from("arena-leaderboard-snapshot/1");
    v1.as_object_mut().unwrap().remove("view");
    std::fs::write(snap, v1.to_string()).unwrap();
    let checked = bin.ok(&["leaderboard", "--database-url", &db, "--verify", snap]);
    assert!(checked.contains(": reproduced"), "{checked}");
}

on_both_backends!(
    style_category_and_ipw_boards_have_snapshots_that_verify,
    snapshots_of_every_board
);

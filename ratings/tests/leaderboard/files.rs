//! Battles files: the three formats agree, the Chatbot Arena dataset's shape reads, bad rows
//! are reported by line.

use std::fmt::Write as _;
use std::path::Path;

use arena_ratings::{compute, read_battles, Aggregate, Leaderboard, RatingOptions, Winner};

use super::fixture;

/// Reads a file into a leaderboard with 50 rounds.
fn board_of(path: &Path) -> Leaderboard {
    let (agg, report) = Aggregate::from_file(path, true).expect("read");
    assert_eq!(report.bad_total, 0);
    compute(
        &agg,
        &RatingOptions {
            bootstrap_rounds: 50,
            ..RatingOptions::fastchat(&agg)
        },
    )
    .expect("compute")
}

#[test]
fn csv_json_lines_and_json_array_give_the_same_leaderboard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rows = Vec::new();
    read_battles(&fixture("battles.jsonl"), true, |b| rows.push(b)).expect("read");
    let mut csv = String::from("tstamp,winner,model_b,model_a,turn,anony\n");
    for b in &rows {
        let (t, turn, anony) = (
            b.tstamp.expect("tstamp"),
            b.turn.expect("turn"),
            b.anony.expect("anony"),
        );
        let _ = writeln!(
            csv,
            "{t},{},{},{},{turn},{anony}",
            b.winner.as_str(),
            b.model_b,
            b.model_a
        );
    }
    let csv_path = dir.path().join("battles.csv");
    std::fs::write(&csv_path, csv).expect("write csv");
    let array_path = dir.path().join("battles.json");
    std::fs::write(
        &array_path,
        serde_json::to_string_pretty(&rows).expect("json"),
    )
    .expect("write json");
    let jsonl = board_of(&fixture("battles.jsonl"));
    assert_eq!(board_of(&csv_path), jsonl);
    assert_eq!(board_of(&array_path), jsonl);
}

#[test]
fn chatbot_arena_dataset_shape_is_read_in_both_formats() {
    for name in ["arena_shape.csv", "arena_shape.jsonl"] {
        let mut rows = Vec::new();
        let report = read_battles(&fixture(name), true, |b| rows.push(b)).expect(name);
        assert_eq!(
            (report.rows, report.bad_total, report.out_of_order),
            (5, 0, 0),
            "{name}"
        );
        assert_eq!(rows[1].winner, Winner::TieBothBad);
        assert_eq!((rows[2].anony, rows[2].turn), (Some(false), Some(2)));
        assert!((rows[0].tstamp.expect("tstamp") - 1682351591.1322).abs() < 1e-6);
        assert_eq!(
            (rows[4].model_a.as_str(), rows[4].model_b.as_str()),
            ("koala-13b", "vicuna-13b")
        );
    }
}

#[test]
fn bad_rows_are_listed_with_their_lines_and_strict_stops_at_the_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = "model_a,model_b,winner,tstamp\n\
               a,b,model_a,1\n\
               a,b,draw,2\n\
               ,b,tie,3\n\
               a,a,tie,4\n\
               a,b,tie,soon\n\
               \"b\nc\",a,model_b,6\n\
               a,b,tie\n\
               b,a,model_b,0\n";
    let jsonl = "{\"model_a\":\"a\",\"model_b\":\"b\",\"winner\":\"model_a\",\"tstamp\":1}\n\
                 \n\
                 {\"model_a\":\"a\",\"model_b\":\"b\",\"winner\":\"draw\"}\n\
                 {\"model_b\":\"b\",\"winner\":\"tie\"}\n\
                 not json\n\
                 {\"model_a\":\"a\",\"model_b\":\"b\",\"winner\":\"tie\",\"turn\":-1}\n\
                 {\"model_a\":\"b\",\"model_b\":\"a\",\"winner\":\"tie\",\"tstamp\":0}\n";
    let cases = [
        (
            "bad.csv",
            csv,
            vec![
                (3, "unknown winner 'draw'"),
                (4, "model_a is empty"),
                (5, "same model 'a'"),
                (6, "tstamp is not a number: 'soon'"),
                (9, "3 fields, the header has 4"),
            ],
            3,
        ),
        (
            "bad.jsonl",
            jsonl,
            vec![
                (3, "unknown winner 'draw'"),
                (4, "missing model_a"),
                (5, "not a JSON object"),
                (6, "turn is not a whole number"),
            ],
            2,
        ),
    ];
    for (name, text, bad, good) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let (_, report) = Aggregate::from_file(&path, false).expect(name);
        let got: Vec<u64> = report.bad.iter().map(|b| b.line).collect();
        assert_eq!(
            got,
            bad.iter().map(|b| b.0).collect::<Vec<_>>(),
            "{name}: {:?}",
            report.bad
        );
        for (row, (_, reason)) in report.bad.iter().zip(&bad) {
            assert!(row.reason.contains(reason), "{name}: {row}");
        }
        assert_eq!(
            (report.rows, report.bad_total, report.out_of_order),
            (good, bad.len() as u64, 1)
        );
        let err = Aggregate::from_file(&path, true)
            .expect_err("strict")
            .to_string();
        let first = format!("{name}: line {}: {}", bad[0].0, bad[0].1);
        assert!(err.contains(&first), "{err}");
    }
    let no_winner = dir.path().join("header.csv");
    std::fs::write(&no_winner, "model_a,model_b,vote\na,b,model_a\n").expect("write");
    let err = Aggregate::from_file(&no_winner, false)
        .expect_err("no winner column")
        .to_string();
    assert!(err.contains("no 'winner' column"), "{err}");
    let err = Aggregate::from_file(&dir.path().join("battles.txt"), false).expect_err("extension");
    assert!(
        err.to_string().contains("unknown battles file type"),
        "{err}"
    );
}

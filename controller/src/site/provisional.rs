//! Provisional ratings: a model with fewer than `--new-model-votes N` counted anonymous votes
//! (the same threshold that ends its sampling boost) has a rating still settling, and
//! `/api/leaderboard`, the page and `arena leaderboard --provisional-votes N` say so.

use arena_ratings::{Leaderboard, TextColumn};
use arena_store::ModelStats;
use serde_json::{json, Value};

/// Whether `votes` counted votes leave a rating provisional under threshold `threshold`
/// (0: never).
pub fn is_provisional(votes: u64, threshold: u64) -> bool {
    votes < threshold
}

/// Marks each row of a `/api/leaderboard` body `provisional` by its model's counted votes in
/// `stats` (the count the boost uses; the row's own `battles` when the model is missing), and
/// states the threshold as `provisional_votes`.
pub fn mark(body: &mut Value, stats: &[ModelStats], threshold: u64) {
    if let Some(rows) = body["models"].as_array_mut() {
        for row in rows {
            let votes = stats
                .iter()
                .find(|s| row["model"].as_str() == Some(s.model.as_str()))
                .map(|s| s.battles.max(0) as u64)
                .or_else(|| row["battles"].as_u64())
                .unwrap_or(0);
            row["provisional"] = json!(is_provisional(votes, threshold));
        }
    }
    body["provisional_votes"] = json!(threshold);
}

/// Marks `arena leaderboard --format json` rows by their `battles`.
pub fn mark_rows(rows: &mut [Value], threshold: u64) {
    for row in rows {
        let votes = row["battles"].as_u64().unwrap_or(0);
        row["provisional"] = json!(is_provisional(votes, threshold));
    }
}

/// The table's `status` column (`provisional` beside those models) or the CSV's
/// `provisional` column (true or false).
pub fn column(board: &Leaderboard, threshold: u64, csv: bool) -> TextColumn {
    TextColumn {
        header: if csv { "provisional" } else { "status" }.into(),
        cells: board
            .rows
            .iter()
            .map(|r| {
                let p = is_provisional(r.battles, threshold);
                match (csv, p) {
                    (true, p) => p.to_string(),
                    (false, true) => "provisional".into(),
                    (false, false) => String::new(),
                }
            })
            .collect(),
    }
}

/// The table's footnote.
pub fn footnote(threshold: u64) -> String {
    format!(
        "provisional: fewer than {threshold} counted votes, a rating still settling (the \
         arena's --new-model-boost draws such models more often)\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(model: &str, battles: i64) -> ModelStats {
        ModelStats {
            model: model.into(),
            battles,
            wins: 0,
            losses: 0,
            ties: 0,
            win_rate: 0.0,
        }
    }

    #[test]
    fn rows_below_the_threshold_are_provisional() {
        let mut body = json!({"models": [
            {"model": "old", "battles": 5},
            {"model": "new", "battles": 900},
            {"model": "unlisted", "battles": 2},
        ]});
        mark(&mut body, &[stats("old", 300), stats("new", 299)], 300);
        let flags: Vec<&Value> = body["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["provisional"])
            .collect();
        // The store's count wins over the row's (a view may count fewer battles).
        assert_eq!(flags, [&json!(false), &json!(true), &json!(true)]);
        assert_eq!(body["provisional_votes"], 300);
        mark(&mut body, &[], 0);
        assert!(body["models"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["provisional"] == false));
        let mut rows = vec![json!({"battles": 9}), json!({"battles": 10})];
        mark_rows(&mut rows, 10);
        assert_eq!(
            (&rows[0]["provisional"], &rows[1]["provisional"]),
            (&json!(true), &json!(false))
        );
    }

    #[test]
    fn the_cli_marks_them_in_every_format() {
        use super::super::leaderboard::OutputFormat;
        use super::super::leaderboard_text::render;
        use arena_ratings::{Aggregate, Battle, Winner};
        let mut agg = Aggregate::new();
        // Battles: x 3, y 2, z 1.
        for (a, b) in [("x", "y"), ("x", "y"), ("x", "z")] {
            let battle = Battle {
                model_a: a.into(),
                model_b: b.into(),
                winner: Winner::ModelA,
                tstamp: None,
                anony: Some(true),
                turn: None,
            };
            agg.add(&battle).unwrap();
        }
        let board = arena_ratings::compute(&agg, &Default::default()).unwrap();
        let csv = render(&board, OutputFormat::Csv, None, 3).unwrap();
        let mut marks: Vec<(&str, &str)> = csv
            .lines()
            .skip(1)
            .map(|l| (l.split(',').nth(1).unwrap(), l.rsplit(',').next().unwrap()))
            .collect();
        marks.sort();
        assert!(
            csv.lines().next().unwrap().ends_with(",provisional"),
            "{csv}"
        );
        assert_eq!(
            marks,
            [("x", "false"), ("y", "true"), ("z", "true")],
            "{csv}"
        );
        let table = render(&board, OutputFormat::Table, None, 3).unwrap();
        assert_eq!(table.matches("  provisional").count(), 2, "{table}");
        assert!(table.ends_with(&footnote(3)), "{table}");
        // Off: no column, no note, no field.
        let plain = render(&board, OutputFormat::Table, None, 0).unwrap();
        assert!(!plain.contains("provisional"), "{plain}");
        let json = render(&board, OutputFormat::Json, None, 0).unwrap();
        assert!(!json.contains("provisional"), "{json}");
    }
}

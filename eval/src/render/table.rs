//! The summary as aligned columns for a terminal: a main table, then one by category.

use std::fmt::Write as _;

use crate::summary::Summary;

/// Control characters escaped, so a user's model name cannot move a terminal's cursor.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Aligned columns: the first (names) left, the others right.
fn grid(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let width = |i: usize| {
        rows.iter()
            .chain([&header.to_vec()])
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    for line in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(text, "{cell:<w$}");
            } else {
                let _ = write!(text, "  {cell:>w$}");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
}

fn describe(s: &Summary) -> String {
    let parts: Vec<String> = [
        ("question set", &s.question_set),
        ("judge", &s.judge),
        ("mode", &s.mode),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k} {}", printable(v)))
    .collect();
    if parts.is_empty() {
        "this evaluation".into()
    } else {
        parts.join(", ")
    }
}

fn fixed(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.1}%"))
}

/// The header lines, the main table and the table by category; a line when nothing is done.
pub(super) fn table(s: &Summary) -> String {
    let what = describe(s);
    if s.models.is_empty() {
        return if s.judgments == 0 {
            format!("no judgments yet for {what}\n")
        } else {
            format!(
                "no finished results yet for {what}: {} judgments, {} unreadable \
                 (a pair counts once judged in both orders)\n",
                s.judgments, s.unreadable
            )
        };
    }
    let single = s.mode == "single";
    let baseline = match (&s.baseline, single) {
        (Some(b), _) => printable(b),
        (None, true) => "none".into(),
        (None, false) => "all opponents, pooled".into(),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "question set: {}   judge: {}   mode: {}   baseline: {baseline}",
        printable(&s.question_set),
        printable(&s.judge),
        printable(&s.mode)
    );
    let _ = writeln!(
        out,
        "judgments: {}   unreadable: {} (unreadable verdicts are counted, never guessed)",
        s.judgments, s.unreadable
    );
    if s.mode == "arena-hard" {
        let _ = writeln!(
            out,
            "wins, ties and losses are votes: a strong verdict counts 3"
        );
    }
    out.push('\n');
    let (header, rows) = if single { single_rows(s) } else { pair_rows(s) };
    let (main, by_cat): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
    grid(&mut out, &header, &main);
    let what = if single { "mean grade" } else { "win rate" };
    let _ = writeln!(out, "\n{what} by category");
    let cat_header: Vec<String> = std::iter::once("model".to_string())
        .chain(s.categories.iter().map(|c| printable(c)))
        .collect();
    grid(&mut out, &cat_header, &by_cat);
    if let Some(r) = &s.arena {
        let rho = r.spearman.map_or_else(|| "-".into(), |v| format!("{v:.3}"));
        let _ = writeln!(
            out,
            "\nbeside the arena (Bradley-Terry from counted votes): Spearman's rho = {rho} over {} models",
            r.models
        );
        let header = [
            "model",
            "arena rating",
            "arena rank",
            "score here",
            "rank here",
        ]
        .map(String::from)
        .to_vec();
        let rows: Vec<Vec<String>> = r
            .rows
            .iter()
            .map(|row| {
                vec![
                    printable(&row.model),
                    format!("{:.0}", row.arena_rating),
                    row.arena_rank.to_string(),
                    format!("{:.3}", row.judge_rating),
                    row.judge_rank.to_string(),
                ]
            })
            .collect();
        grid(&mut out, &header, &rows);
    }
    out
}

/// Per model: its row in the main table and in the category table.
type Rows = Vec<(Vec<String>, Vec<String>)>;

/// A row of dashes for a model without results of this mode.
fn dashes(name: &str, n: usize) -> Vec<String> {
    std::iter::once(name.to_string())
        .chain((0..n).map(|_| "-".to_string()))
        .collect()
}

fn single_rows(s: &Summary) -> (Vec<String>, Rows) {
    let turns = s
        .models
        .iter()
        .filter_map(|m| m.single.as_ref())
        .map(|g| g.turns.len());
    let turns = turns.max().unwrap_or(0);
    let mut header: Vec<String> = vec!["model".into(), "overall".into()];
    header.extend((1..=turns).map(|t| format!("turn {t}")));
    header.extend(["relative", "graded", "unreadable"].map(String::from));
    let rows = s.models.iter().map(|m| {
        let name = printable(&m.model);
        let Some(g) = &m.single else {
            return (
                dashes(&name, header.len() - 1),
                dashes(&name, s.categories.len()),
            );
        };
        let mut row = vec![name.clone(), fixed((g.graded > 0).then_some(g.overall), 2)];
        row.extend((0..turns).map(|t| fixed(g.turns.get(t).copied().flatten(), 2)));
        row.extend([
            percent(g.relative),
            g.graded.to_string(),
            g.unreadable.to_string(),
        ]);
        let cats = s
            .categories
            .iter()
            .map(|c| fixed(g.by_category.get(c).copied(), 2));
        (row, std::iter::once(name).chain(cats).collect())
    });
    let rows = rows.collect();
    (header, rows)
}

fn pair_rows(s: &Summary) -> (Vec<String>, Rows) {
    let header = [
        "model",
        "wins",
        "ties",
        "losses",
        "unreadable",
        "win rate",
        "95% CI",
        "consistency",
    ];
    let header: Vec<String> = header.map(String::from).to_vec();
    let rows = s.models.iter().map(|m| {
        let name = printable(&m.model);
        let Some(p) = &m.pairs else {
            return (
                dashes(&name, header.len() - 1),
                dashes(&name, s.categories.len()),
            );
        };
        let r = &p.rate;
        let mut row = vec![name.clone()];
        row.extend([r.wins, r.ties, r.losses, r.errors].map(|n| n.to_string()));
        // Nothing decided (every verdict unreadable) has no rate, not a rate of 0.
        let decided = r.wins + r.ties + r.losses > 0;
        row.push(percent(decided.then_some(100.0 * r.win_rate)));
        row.push(if decided {
            format!("[{:.1}, {:.1}]", 100.0 * r.ci_low, 100.0 * r.ci_high)
        } else {
            "-".to_string()
        });
        row.push(percent(p.consistency.map(|c| 100.0 * c)));
        let cats = s
            .categories
            .iter()
            .map(|c| percent(p.by_category.get(c).map(|v| 100.0 * v)));
        (row, std::iter::once(name).chain(cats).collect())
    });
    let rows = rows.collect();
    (header, rows)
}

#[cfg(test)]
mod tests {
    use crate::render::fixtures::{pair_summary, single_summary, ODD};
    use crate::render::{summary, Format};

    #[test]
    fn single_table_shows_grades_turns_and_unreadable() {
        let t = summary(&single_summary(), Format::Table);
        assert!(t.contains("question set: mt-bench"), "{t}");
        assert!(t.contains("baseline: chatgpt"), "{t}");
        assert!(
            t.contains("unreadable: 3 (unreadable verdicts are counted, never guessed)"),
            "{t}"
        );
        assert!(t.contains("turn 1") && t.contains("turn 2"), "{t}");
        let lines: Vec<&str> = t.lines().collect();
        let header = lines.iter().find(|l| l.starts_with("model  ")).unwrap();
        let row = lines.iter().find(|l| l.starts_with(ODD)).unwrap();
        // Right-aligned: the overall grade ends where its heading does.
        let end = |l: &str, s: &str| l.find(s).unwrap() + s.len();
        assert_eq!(end(row, "7.25"), end(header, "overall"), "{t}");
        assert!(
            row.contains("92.3%") && row.contains("7.50") && row.contains("7.00"),
            "{row}"
        );
        assert!(row.trim_end().ends_with("10           1"), "{row}");
        let chatgpt = lines.iter().find(|l| l.starts_with("chatgpt")).unwrap();
        assert!(
            chatgpt.contains(" - ") && chatgpt.contains("100.0%"),
            "{chatgpt}"
        );
        assert!(t.contains("mean grade by category"), "{t}");
        let by_cat = lines.iter().rev().find(|l| l.starts_with(ODD)).unwrap();
        assert!(
            by_cat.contains("6.50") && by_cat.contains("8.00"),
            "{by_cat}"
        );
    }

    #[test]
    fn pair_table_shows_rates_intervals_and_consistency() {
        let t = summary(&pair_summary(), Format::Table);
        assert!(
            t.contains("mode: pairwise") && t.contains("baseline: gpt-3.5"),
            "{t}"
        );
        let row = t.lines().find(|l| l.starts_with(ODD)).unwrap();
        for s in ["62.5%", "[50.0, 75.0]", "80.0%"] {
            assert!(row.contains(s), "{s} in {row}");
        }
        let counts: Vec<&str> = row[ODD.len()..].split_whitespace().take(4).collect();
        assert_eq!(counts, ["4", "2", "2", "1"]);
        assert!(t.contains("win rate by category"), "{t}");
        let alpaca = t.lines().rev().find(|l| l.starts_with("alpaca")).unwrap();
        assert!(alpaca.contains("50.0%") && alpaca.contains('-'), "{alpaca}");
        let mut hard = pair_summary();
        hard.mode = "arena-hard".into();
        assert!(summary(&hard, Format::Table).contains("strong verdict counts 3"));
    }

    #[test]
    fn empty_summaries_say_so() {
        let mut s = pair_summary();
        s.models.clear();
        s.judgments = 0;
        let t = summary(&s, Format::Table);
        assert_eq!(
            t,
            "no judgments yet for question set mt-bench, judge gpt-4, mode pairwise\n"
        );
        s.judgments = 5;
        assert!(summary(&s, Format::Table).starts_with("no finished results yet"));
    }

    #[test]
    fn control_characters_in_names_are_escaped() {
        let mut s = single_summary();
        s.models[0].model = "evil\x1b[2J".into();
        let t = summary(&s, Format::Table);
        assert!(!t.contains('\x1b') && t.contains("evil\\u{1b}[2J"), "{t}");
    }
}

//! `arena eval show`'s output: a [`Summary`](crate::summary::Summary) as a table for people,
//! JSON, or CSV.

use std::fmt::Write as _;
use std::str::FromStr;

use crate::summary::{ModelSummary, Summary};

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Self::Table),
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            other => Err(format!("unknown format '{other}': use table, json or csv")),
        }
    }
}

/// `s` written in `format`, ending with a newline.
pub fn summary(s: &Summary, format: Format) -> String {
    match format {
        Format::Table => table(s),
        Format::Json => json(s),
        Format::Csv => csv_text(s),
    }
}

fn json(s: &Summary) -> String {
    let text = serde_json::to_string_pretty(s)
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string());
    text + "\n"
}

/// The CSV columns, in order.
const CSV_HEADER: &str = "question_set,judge,mode,baseline,model,category,score,relative,wins,ties,losses,unreadable,win_rate,ci_low,ci_high,consistency";

fn csv_text(s: &Summary) -> String {
    csv_rows(s).unwrap_or_else(|e| format!("error writing CSV: {e}\n"))
}

fn csv_rows(s: &Summary) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER.split(','))?;
    let base = s.baseline.as_deref().unwrap_or_default();
    for m in &s.models {
        for row in model_rows(m, &s.categories) {
            let head = [s.question_set.as_str(), &s.judge, &s.mode, base, &m.model];
            w.write_record(
                head.iter()
                    .map(|h| h.as_bytes())
                    .chain(row.iter().map(|c| c.as_bytes())),
            )?;
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn num(x: Option<f64>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

/// One model's CSV cells from `category` on: its overall row, then one per category.
/// Rates stay fractions as in the JSON, so the two agree.
fn model_rows(m: &ModelSummary, categories: &[String]) -> Vec<[String; 11]> {
    let empty = || -> [String; 11] { Default::default() };
    let mut overall = empty();
    overall[0] = "overall".into();
    if let Some(g) = &m.single {
        overall[1] = num((g.graded > 0).then_some(g.overall));
        overall[2] = num(g.relative);
        overall[6] = g.unreadable.to_string();
    }
    if let Some(p) = &m.pairs {
        let r = &p.rate;
        overall[3] = r.wins.to_string();
        overall[4] = r.ties.to_string();
        overall[5] = r.losses.to_string();
        overall[6] = r.errors.to_string();
        overall[7] = num(Some(r.win_rate));
        overall[8] = num(Some(r.ci_low));
        overall[9] = num(Some(r.ci_high));
        overall[10] = num(p.consistency);
    }
    let mut rows = vec![overall];
    for c in categories {
        let mut row = empty();
        row[0] = c.clone();
        if let Some(g) = &m.single {
            row[1] = num(g.by_category.get(c).copied());
        }
        if let Some(p) = &m.pairs {
            row[7] = num(p.by_category.get(c).copied());
        }
        rows.push(row);
    }
    rows
}

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

fn table(s: &Summary) -> String {
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
        row.push(percent(Some(100.0 * r.win_rate)));
        row.push(format!(
            "[{:.1}, {:.1}]",
            100.0 * r.ci_low,
            100.0 * r.ci_high
        ));
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::WinRate;
    use crate::summary::{PairScores, SingleScores};

    const ODD: &str = "a, \"quoted\" model";

    fn cats(v: &[(&str, f64)]) -> BTreeMap<String, f64> {
        v.iter().map(|(c, x)| (c.to_string(), *x)).collect()
    }

    fn base(mode: &str, baseline: &str, models: Vec<ModelSummary>) -> Summary {
        Summary {
            question_set: "mt-bench".into(),
            judge: "gpt-4".into(),
            mode: mode.into(),
            baseline: Some(baseline.into()),
            categories: vec!["math".into(), "writing".into()],
            judgments: 21,
            unreadable: 3,
            models,
        }
    }

    fn graded(
        model: &str,
        overall: f64,
        turns: Vec<Option<f64>>,
        rel: f64,
        n: (usize, usize),
    ) -> ModelSummary {
        ModelSummary {
            model: model.into(),
            single: Some(SingleScores {
                overall,
                turns,
                by_category: cats(&[("math", overall - 0.75), ("writing", overall + 0.75)]),
                relative: Some(rel),
                graded: n.0,
                unreadable: n.1,
            }),
            pairs: None,
        }
    }

    fn single_summary() -> Summary {
        base(
            "single",
            "chatgpt",
            vec![
                graded("chatgpt", 8.0, vec![Some(8.0), None], 100.0, (8, 2)),
                graded(ODD, 7.25, vec![Some(7.5), Some(7.0)], 92.345, (10, 1)),
            ],
        )
    }

    fn paired(
        model: &str,
        w: (usize, usize, usize, usize),
        rate: f64,
        ci: (f64, f64),
    ) -> ModelSummary {
        ModelSummary {
            model: model.into(),
            single: None,
            pairs: Some(PairScores {
                rate: WinRate {
                    wins: w.0,
                    ties: w.1,
                    losses: w.2,
                    errors: w.3,
                    win_rate: rate,
                    ci_low: ci.0,
                    ci_high: ci.1,
                },
                by_category: cats(&[("math", 0.5)]),
                consistency: Some(0.8),
            }),
        }
    }

    fn pair_summary() -> Summary {
        base(
            "pairwise",
            "gpt-3.5",
            vec![
                paired(ODD, (4, 2, 2, 1), 0.625, (0.5, 0.75)),
                paired("alpaca", (1, 0, 7, 0), 0.125, (0.0, 0.25)),
            ],
        )
    }

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

    #[test]
    fn json_keeps_the_serde_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&summary(&single_summary(), Format::Json)).unwrap();
        assert_eq!(v["mode"], "single");
        assert_eq!(v["unreadable"], 3);
        assert_eq!(
            v["models"][0]["single"]["turns"][1],
            serde_json::Value::Null
        );
        assert_eq!(v["models"][1]["model"], ODD);
        assert!(v["models"][0].get("pairs").is_none());
        let v: serde_json::Value =
            serde_json::from_str(&summary(&pair_summary(), Format::Json)).unwrap();
        let p = &v["models"][0]["pairs"];
        assert_eq!(
            (p["wins"].clone(), p["errors"].clone()),
            (4.into(), 1.into())
        );
        assert_eq!(p["win_rate"], 0.625);
        assert_eq!(p["by_category"]["math"], 0.5);
    }

    fn parse(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header = r.headers().unwrap().iter().map(String::from).collect();
        let rows = r
            .records()
            .map(|rec| rec.unwrap().iter().map(String::from).collect())
            .collect();
        (header, rows)
    }

    #[test]
    fn single_csv_parses_back() {
        let (header, rows) = parse(&summary(&single_summary(), Format::Csv));
        assert_eq!(header, CSV_HEADER.split(',').collect::<Vec<_>>());
        assert_eq!(rows.len(), 2 * 3);
        let row = |model: &str, cat: &str| {
            rows.iter()
                .find(|r| r[4] == model && r[5] == cat)
                .unwrap()
                .clone()
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            row(ODD, "overall"),
            s(&[
                "mt-bench", "gpt-4", "single", "chatgpt", ODD, "overall", "7.25", "92.345", "", "",
                "", "1", "", "", "", ""
            ])
        );
        assert_eq!(row(ODD, "math")[6..8], s(&["6.5", ""]));
        assert_eq!(row("chatgpt", "writing")[6], "8.75");
    }

    #[test]
    fn pair_csv_parses_back() {
        let (_, rows) = parse(&summary(&pair_summary(), Format::Csv));
        assert_eq!(rows.len(), 2 * 3);
        let overall = &rows[0];
        assert_eq!(overall[4], ODD);
        assert_eq!(
            overall[5..],
            ["overall", "", "", "4", "2", "2", "1", "0.625", "0.5", "0.75", "0.8"]
        );
        let writing = rows
            .iter()
            .find(|r| r[4] == "alpaca" && r[5] == "writing")
            .unwrap();
        assert!(writing[6..].iter().all(String::is_empty), "{writing:?}");
        let math = rows
            .iter()
            .find(|r| r[4] == "alpaca" && r[5] == "math")
            .unwrap();
        assert_eq!(math[12], "0.5");
    }
}

//! The summary as CSV: one row per model and category, after each model's overall row.

use crate::summary::{ModelSummary, Summary};

/// The CSV columns, in order.
const CSV_HEADER: &str = "question_set,judge,mode,baseline,model,category,score,relative,wins,ties,losses,unreadable,win_rate,ci_low,ci_high,consistency";

/// The CSV, or a line saying why it could not be written.
pub(super) fn csv_text(s: &Summary) -> String {
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
        // Nothing decided has no rate, not a rate of 0.
        let decided = r.wins + r.ties + r.losses > 0;
        overall[7] = num(decided.then_some(r.win_rate));
        overall[8] = num(decided.then_some(r.ci_low));
        overall[9] = num(decided.then_some(r.ci_high));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::{pair_summary, single_summary, ODD};
    use crate::render::{summary, Format};

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

//! The agreement and the rank comparison written as a table for people, JSON, or CSV.

use serde::Serialize;

use super::{Agreement, CategoryAgreement, RankComparison, Rate};
use crate::render::Format;

/// `61.5%`, or `-` when nothing was compared.
fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_string(), |r| format!("{:.1}%", 100.0 * r))
}

/// `61.5% (8/13)`.
fn cell(r: &Rate) -> String {
    format!("{} ({}/{})", percent(r.rate), r.agree, r.total)
}

/// `61.5% with ties (8/13), 80.0% without ties (4/5)`.
fn both_rates(with: &Rate, without: &Rate) -> String {
    let (w, wo) = (with, without);
    let (pw, pwo) = (percent(w.rate), percent(wo.rate));
    format!(
        "{pw} with ties ({}/{}), {pwo} without ties ({}/{})",
        w.agree, w.total, wo.agree, wo.total
    )
}

/// The agreement (and the rank comparison, when given) as a table, JSON or CSV.
pub fn render(a: &Agreement, ranks: Option<&RankComparison>, format: Format) -> String {
    match format {
        Format::Table => table(a, ranks),
        Format::Json => {
            #[derive(Serialize)]
            struct Document<'a> {
                agreement: &'a Agreement,
                ranks: Option<&'a RankComparison>,
            }
            // Only string-keyed maps and numbers (non-finite ones become null): cannot fail.
            serde_json::to_string_pretty(&Document {
                agreement: a,
                ranks,
            })
            .map_or_else(|e| format!("{{\"error\": \"{e}\"}}\n"), |s| s + "\n")
        }
        // Writing to memory cannot fail; say so rather than panic if it ever does.
        Format::Csv => to_csv(a).unwrap_or_else(|e| format!("error: cannot write CSV: {e}\n")),
    }
}

fn table(a: &Agreement, ranks: Option<&RankComparison>) -> String {
    let (h, r, c) = (&a.human_human, &a.reference, &a.consistency);
    let p = |x: f64| format!("{:.0}%", 100.0 * x);
    let mut lines = vec![
        format!(
            "judge vs humans: {}",
            both_rates(&a.with_ties, &a.without_ties)
        ),
        match h.with_ties.total {
            0 => "human vs human: no prompt has two votes on the same model pair".to_string(),
            _ => format!(
                "human vs human: {} in {} groups of one prompt and model pair",
                both_rates(&h.with_ties, &h.without_ties),
                h.groups
            ),
        },
        format!(
            "MT-bench paper: {} vs humans {} / {}, human vs human {} / {}",
            r.judge,
            p(r.judge_with_ties),
            p(r.judge_without_ties),
            p(r.human_with_ties),
            p(r.human_without_ties)
        ),
        format!(
            "judge consistency: {} ({}/{}) same verdict in both orders",
            percent(c.rate),
            c.consistent,
            c.total
        ),
        format!(
            "battles: {}, unreadable verdicts: {} (left out)",
            a.battles, a.unreadable
        ),
    ];
    let width = |names: Vec<usize>, least: usize| names.into_iter().max().unwrap_or(0).max(least);
    if !a.by_category.is_empty() {
        let w = width(a.by_category.keys().map(|k| k.chars().count()).collect(), 8);
        lines.push(format!(
            "\n{:<w$}  {:>7}  {:<20}  without ties",
            "category", "battles", "with ties"
        ));
        for (cat, x) in &a.by_category {
            let (b, wt, wo) = (x.battles, cell(&x.with_ties), cell(&x.without_ties));
            lines.push(format!("{cat:<w$}  {b:>7}  {wt:<20}  {wo}"));
        }
    }
    if let Some(rc) = ranks {
        let w = width(rc.rows.iter().map(|r| r.model.chars().count()).collect(), 5);
        let head = ("model", "arena", "judge", "arena rank", "judge rank");
        lines.push(format!(
            "\n{:<w$}  {:>6}  {:>6}  {:>10}  {:>10}",
            head.0, head.1, head.2, head.3, head.4
        ));
        for r in &rc.rows {
            let (m, ar, jr) = (&r.model, r.arena_rating, r.judge_rating);
            lines.push(format!(
                "{m:<w$}  {ar:>6.1}  {jr:>6.1}  {:>10}  {:>10}",
                r.arena_rank, r.judge_rank
            ));
        }
        let rho = rc
            .spearman
            .map_or_else(|| "-".to_string(), |x| format!("{x:.3}"));
        lines.push(format!(
            "Spearman's ρ, arena vs judge: {rho} over {} models",
            rc.models
        ));
    }
    lines.join("\n") + "\n"
}

/// The CSV's columns.
const CSV_HEADER: &str = "category,battles,agree_with_ties,total_with_ties,rate_with_ties,\
                          agree_without_ties,total_without_ties,rate_without_ties";

/// One row per category, then `overall`.
fn to_csv(a: &Agreement) -> Result<String, Box<dyn std::error::Error>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER.split(','))?;
    let overall = CategoryAgreement {
        battles: a.battles,
        with_ties: a.with_ties,
        without_ties: a.without_ties,
    };
    let name = "overall".to_string();
    let rate = |r: &Rate| r.rate.map_or_else(String::new, |x| format!("{x:.4}"));
    for (cat, x) in a.by_category.iter().chain([(&name, &overall)]) {
        let (wt, wo) = (&x.with_ties, &x.without_ties);
        w.write_record([
            cat.clone(),
            x.battles.to_string(),
            wt.agree.to_string(),
            wt.total.to_string(),
            rate(wt),
            wo.agree.to_string(),
            wo.total.to_string(),
            rate(wo),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agreement::fixtures::{arena, fixture, judged};
    use crate::agreement::{agreement, rank_comparison};

    #[test]
    fn renders_for_people_and_machines() {
        let a = agreement(&fixture());
        let ranks = rank_comparison(&arena(), &judged(true)).expect("fits");
        let t = render(&a, Some(&ranks), Format::Table);
        for line in [
            "judge vs humans: 42.9% with ties (3/7), 50.0% without ties (2/4)",
            "human vs human: 50.0% with ties (1/2), 100.0% without ties (1/1)",
            "MT-bench paper: GPT-4 vs humans 66% / 85%, human vs human 63% / 81%",
            "judge consistency: 85.7% (6/7)",
            "unreadable verdicts: 1",
            "writing",
            "Spearman's ρ, arena vs judge: 1.000 over 3 models",
        ] {
            assert!(t.contains(line), "{line} not in\n{t}");
        }
        let json: serde_json::Value =
            serde_json::from_str(&render(&a, Some(&ranks), Format::Json)).expect("JSON");
        assert_eq!(json["agreement"]["with_ties"]["agree"], 3);
        assert_eq!(json["agreement"]["reference"]["judge_without_ties"], 0.85);
        assert_eq!(json["ranks"]["models"], 3);
        assert!(render(&a, None, Format::Json).contains("\"ranks\": null"));
        let csv = render(&a, None, Format::Csv);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines, [
            "category,battles,agree_with_ties,total_with_ties,rate_with_ties,agree_without_ties,total_without_ties,rate_without_ties",
            "coding,4,2,4,0.5000,2,2,1.0000",
            "writing,4,1,3,0.3333,0,2,0.0000",
            "overall,8,3,7,0.4286,2,4,0.5000",
        ]);
    }
}

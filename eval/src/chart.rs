//! The Vicuna article's chart, drawn by us as SVG: one bar per model, its total relative to
//! a baseline (single grades) or its win rate against it (pairwise, Arena-Hard).

use std::fmt::Write as _;

use crate::summary::Summary;

/// One model's bar, in percent.
struct Bar<'a> {
    model: &'a str,
    value: f64,
    interval: Option<(f64, f64)>,
}

const TOP: f64 = 48.0;
const ROW: f64 = 28.0;
const BAR: f64 = 18.0;
const PLOT: f64 = 440.0;
/// Room right of the plot for the value labels.
const RIGHT: f64 = 72.0;
/// Rough width of a 13px sans-serif character: no font metrics in a standalone file.
const CHAR: f64 = 7.5;
/// Longer model names are cut, the full name stays in the bar's tooltip.
const MAX_LABEL: usize = 40;

/// `&`, `<`, `>`, `"` and `'` as XML entities: model names come from users.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even as references.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

fn label(model: &str) -> String {
    if model.chars().count() <= MAX_LABEL {
        model.to_string()
    } else {
        model.chars().take(MAX_LABEL - 1).chain(['…']).collect()
    }
}

fn bars(s: &Summary) -> Vec<Bar<'_>> {
    let single = s.mode == "single";
    let mut bars: Vec<Bar<'_>> = s
        .models
        .iter()
        .filter_map(|m| {
            if single {
                let value = m.single.as_ref()?.relative?;
                return Some(Bar {
                    model: &m.model,
                    value,
                    interval: None,
                });
            }
            let r = &m.pairs.as_ref()?.rate;
            // Nothing decided: a 0% win rate would be a guess, not a result.
            (r.wins + r.ties + r.losses > 0).then(|| Bar {
                model: &m.model,
                value: 100.0 * r.win_rate,
                interval: Some((100.0 * r.ci_low, 100.0 * r.ci_high)),
            })
        })
        .filter(|b| b.value.is_finite())
        .collect();
    bars.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.model.cmp(b.model)));
    bars
}

/// The chart as a standalone SVG document, or None when no model has a value to draw.
pub fn relative_chart(s: &Summary) -> Option<String> {
    let bars = bars(s);
    if bars.is_empty() {
        return None;
    }
    let single = s.mode == "single";
    let versus = s.baseline.as_deref().unwrap_or("all opponents");
    let what = if single { "Relative score" } else { "Win rate" };
    let title = format!("{what} vs {versus} (judge {}, {})", s.judge, s.question_set);
    let reference = if single { 100.0 } else { 50.0 };
    let max = bars
        .iter()
        .map(|b| b.interval.map_or(b.value, |(_, hi)| hi.max(b.value)))
        .filter(|v| v.is_finite())
        .fold(reference, f64::max);
    let longest = bars
        .iter()
        .map(|b| label(b.model).chars().count())
        .max()
        .unwrap_or(0);
    let left = (longest as f64 * CHAR + 16.0).max(60.0);
    let x = |v: f64| left + PLOT * v.clamp(0.0, max) / max;
    let width = (left + PLOT + RIGHT).max(title.chars().count() as f64 * 8.0 + 24.0);
    let bottom = TOP + bars.len() as f64 * ROW;
    let height = bottom + 30.0;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-labelledby="chart-title" font-family="sans-serif" style="background:#fff">"#
    );
    let title = escape(&title);
    let _ = writeln!(svg, r#"<title id="chart-title">{title}</title>"#);
    let _ = writeln!(
        svg,
        r##"<text x="12" y="26" font-size="15px" font-weight="bold" fill="#222">{title}</text>"##
    );
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + i as f64 * ROW;
        let mid = y + BAR / 2.0;
        let name = escape(b.model);
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{mid:.1}" text-anchor="end" dominant-baseline="middle" font-size="13px" fill="#222">{}</text>"##,
            left - 8.0,
            escape(&label(b.model))
        );
        let end = x(b.value);
        let _ = writeln!(
            svg,
            r##"<rect class="bar" x="{left:.1}" y="{y:.1}" width="{:.1}" height="{BAR:.0}" fill="#4c78a8"><title>{name}: {:.1}%</title></rect>"##,
            end - left,
            b.value
        );
        let mut text_at = end;
        if let Some((lo, hi)) = b.interval {
            let (x0, x1) = (x(lo), x(hi));
            let (y0, y1) = (y + 3.0, y + BAR - 3.0);
            let _ = writeln!(
                svg,
                r##"<g stroke="#222" stroke-width="1.5"><line x1="{x0:.1}" y1="{mid:.1}" x2="{x1:.1}" y2="{mid:.1}"/><line x1="{x0:.1}" y1="{y0:.1}" x2="{x0:.1}" y2="{y1:.1}"/><line x1="{x1:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}"/></g>"##
            );
            text_at = text_at.max(x1);
        }
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{mid:.1}" dominant-baseline="middle" font-size="12px" fill="#222">{:.1}%</text>"##,
            text_at + 6.0,
            b.value
        );
    }
    let xr = x(reference);
    let _ = writeln!(
        svg,
        r##"<line x1="{left:.1}" y1="{:.1}" x2="{left:.1}" y2="{bottom:.1}" stroke="#222"/>"##,
        TOP - 6.0
    );
    let _ = writeln!(
        svg,
        r##"<line class="reference" x1="{xr:.1}" y1="{:.1}" x2="{xr:.1}" y2="{bottom:.1}" stroke="#888" stroke-dasharray="4 3"/>"##,
        TOP - 6.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="{xr:.1}" y="{:.1}" text-anchor="middle" font-size="11px" fill="#555">{reference:.0}%</text>"##,
        bottom + 16.0
    );
    svg.push_str("</svg>\n");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::WinRate;
    use crate::summary::{ModelSummary, PairScores, SingleScores};

    fn summary(mode: &str, models: Vec<ModelSummary>) -> Summary {
        Summary {
            question_set: "vicuna-bench".into(),
            judge: "gpt-4".into(),
            mode: mode.into(),
            baseline: Some("chatgpt".into()),
            categories: vec!["math".into()],
            judgments: 10,
            unreadable: 0,
            models,
            arena: None,
        }
    }

    fn graded(model: &str, overall: f64, relative: Option<f64>) -> ModelSummary {
        ModelSummary {
            model: model.into(),
            single: Some(SingleScores {
                overall,
                turns: vec![Some(overall)],
                by_category: BTreeMap::new(),
                relative,
                graded: 5,
                unreadable: 0,
            }),
            pairs: None,
        }
    }

    fn paired(model: &str, rate: f64, ci: (f64, f64)) -> ModelSummary {
        ModelSummary {
            model: model.into(),
            single: None,
            pairs: Some(PairScores {
                rate: WinRate {
                    wins: 3,
                    ties: 1,
                    losses: 1,
                    errors: 0,
                    win_rate: rate,
                    ci_low: ci.0,
                    ci_high: ci.1,
                },
                by_category: BTreeMap::new(),
                consistency: None,
            }),
        }
    }

    /// Every tag closed in order: enough to catch broken markup without an XML parser.
    fn assert_balanced(svg: &str) {
        let mut open: Vec<&str> = Vec::new();
        for part in svg.split('<').skip(1) {
            let tag = &part[..part.find('>').expect("unclosed tag")];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop(), Some(name), "in {svg}");
            } else if !tag.ends_with('/') {
                open.push(tag.split_whitespace().next().unwrap());
            }
        }
        assert!(open.is_empty(), "unclosed {open:?}");
    }

    fn widths(svg: &str) -> Vec<f64> {
        svg.split(r#"<rect class="bar""#)
            .skip(1)
            .map(|r| {
                let w = &r[r.find(r#"width=""#).unwrap() + 7..];
                w[..w.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn single_chart_draws_relative_scores_best_first() {
        let s = summary(
            "single",
            vec![
                graded("chatgpt", 8.0, Some(100.0)),
                graded("vicuna", 7.5, Some(92.0)),
                graded("alpaca", 5.0, Some(68.0)),
                graded("llama", 4.0, Some(105.5)),
                graded("no-baseline-overlap", 6.0, None),
            ],
        );
        let svg = relative_chart(&s).unwrap();
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        for needle in [
            "viewBox=\"0 0 ",
            "role=\"img\"",
            "font-family=\"sans-serif\"",
        ] {
            assert!(svg.contains(needle), "{needle}");
        }
        assert!(svg.contains("<title id=\"chart-title\">Relative score vs chatgpt (judge gpt-4, vicuna-bench)</title>"));
        assert_balanced(&svg);
        assert_eq!(svg.matches("<rect").count(), 4);
        let w = widths(&svg);
        assert!(w.windows(2).all(|p| p[0] > p[1]), "{w:?}");
        // The largest value fills the plot; others scale to it.
        assert_eq!(w[0], PLOT);
        assert!((w[2] / w[0] - 92.0 / 105.5).abs() < 1e-3, "{w:?}");
        let order: Vec<usize> = ["llama", "chatgpt", "vicuna", "alpaca"]
            .iter()
            .map(|m| svg.find(&format!(">{m}<")).unwrap())
            .collect();
        assert!(order.windows(2).all(|p| p[0] < p[1]));
        assert!(svg.contains(">105.5%<") && svg.contains(">92.0%<"));
        assert!(
            svg.contains("class=\"reference\"")
                && svg.contains("stroke-dasharray")
                && svg.contains(">100%<")
        );
        assert!(!svg.contains("no-baseline-overlap"));
    }

    #[test]
    fn single_chart_scales_to_at_least_the_baseline() {
        let svg =
            relative_chart(&summary("single", vec![graded("vicuna", 7.0, Some(50.0))])).unwrap();
        assert_eq!(widths(&svg), [PLOT / 2.0]);
    }

    #[test]
    fn pair_chart_draws_win_rates_with_intervals() {
        let mut s = summary(
            "pairwise",
            vec![
                paired("alpaca", 0.25, (0.1, 0.4)),
                paired("vicuna", 0.625, (0.5, 0.8)),
            ],
        );
        s.baseline = None;
        let svg = relative_chart(&s).unwrap();
        assert_balanced(&svg);
        assert!(svg.contains("Win rate vs all opponents (judge gpt-4, vicuna-bench)"));
        assert_eq!(svg.matches("<rect").count(), 2);
        let w = widths(&svg);
        assert!(w[0] > w[1], "{w:?}");
        assert!(svg.find(">vicuna<").unwrap() < svg.find(">alpaca<").unwrap());
        assert!(svg.contains(">62.5%<") && svg.contains(">50%<"));
        // A whisker per bar: a horizontal line and two caps.
        assert_eq!(svg.matches("<line").count(), 2 * 3 + 2);
    }

    #[test]
    fn data_text_is_escaped() {
        let mut s = summary(
            "single",
            vec![graded(
                "<script>alert('x')</script> & \"co\"",
                7.0,
                Some(90.0),
            )],
        );
        s.judge = "<b>judge</b>".into();
        let svg = relative_chart(&s).unwrap();
        assert!(!svg.contains("<script") && !svg.contains("<b>"), "{svg}");
        assert!(
            svg.contains("&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt; &amp; &quot;co&quot;")
        );
        assert!(svg.contains("judge &lt;b&gt;judge&lt;/b&gt;"));
        assert_balanced(&svg);
    }

    #[test]
    fn nothing_to_draw_is_none() {
        assert!(relative_chart(&summary("single", vec![])).is_none());
        assert!(relative_chart(&summary("single", vec![graded("a", 5.0, None)])).is_none());
        let mut undecided = paired("a", 0.0, (0.0, 0.0));
        if let Some(p) = undecided.pairs.as_mut() {
            p.rate = WinRate {
                wins: 0,
                ties: 0,
                losses: 0,
                errors: 2,
                ..p.rate.clone()
            };
        }
        assert!(relative_chart(&summary("arena-hard", vec![undecided])).is_none());
    }

    #[test]
    fn long_names_are_cut_in_the_label_only() {
        let long = "m".repeat(60);
        let svg = relative_chart(&summary("single", vec![graded(&long, 7.0, Some(90.0))])).unwrap();
        assert!(svg.contains(&format!(">{}…<", "m".repeat(39))));
        assert!(svg.contains(&format!("<title>{long}: 90.0%</title>")));
    }
}

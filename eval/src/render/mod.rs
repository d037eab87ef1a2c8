//! `arena eval show`'s output: a [`Summary`] as a table for people,
//! JSON, or CSV.
//!
//! This module holds [`Format`] and the dispatch; `table` writes the table, `csv` the CSV.

use std::str::FromStr;

use crate::summary::Summary;

mod csv;
#[cfg(test)]
mod fixtures;
mod table;

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
        Format::Table => table::table(s),
        Format::Json => json(s),
        Format::Csv => csv::csv_text(s),
    }
}

fn json(s: &Summary) -> String {
    let text = serde_json::to_string_pretty(s)
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string());
    text + "\n"
}

#[cfg(test)]
mod tests {
    use super::fixtures::{pair_summary, single_summary, ODD};
    use super::*;

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
}

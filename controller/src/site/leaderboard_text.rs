//! What `arena leaderboard` prints: the ratings as a table, JSON or CSV; with a model catalog,
//! JSON rows carry each model's `info` and the table and CSV gain organization and licence
//! columns.

use arena_ratings::{Leaderboard, TextColumn};

use super::catalog::{Catalog, ModelInfo};
use super::leaderboard::OutputFormat;
use super::provisional;
use crate::error::ControllerError;

/// `board` in `format`, with what `catalog` says about each model when one is given, and
/// models with fewer than `provisional_votes` battles marked provisional (0: no marks).
pub fn render(
    board: &Leaderboard,
    format: OutputFormat,
    catalog: Option<&Catalog>,
    provisional_votes: u64,
) -> Result<String, ControllerError> {
    let mut columns = catalog.map(|c| columns(board, c)).unwrap_or_default();
    let marking = provisional_votes > 0;
    if marking && format != OutputFormat::Json {
        let csv = format == OutputFormat::Csv;
        columns.insert(0, provisional::column(board, provisional_votes, csv));
    }
    Ok(match format {
        OutputFormat::Table => {
            let mut table = arena_ratings::to_table_with(board, &columns);
            if marking
                && board
                    .rows
                    .iter()
                    .any(|r| provisional::is_provisional(r.battles, provisional_votes))
            {
                table.push_str(&provisional::footnote(provisional_votes));
            }
            table
        }
        OutputFormat::Csv => arena_ratings::to_csv_with(board, &columns),
        OutputFormat::Json => {
            let mut rows = serde_json::to_value(&board.rows)
                .map_err(|e| ControllerError::Leaderboard(e.to_string()))?;
            if let (Some(catalog), Some(rows)) = (catalog, rows.as_array_mut()) {
                catalog.annotate_rows(rows);
            }
            if let (true, Some(rows)) = (marking, rows.as_array_mut()) {
                provisional::mark_rows(rows, provisional_votes);
            }
            let mut s = serde_json::to_string_pretty(&rows)
                .map_err(|e| ControllerError::Leaderboard(e.to_string()))?;
            s.push('\n');
            s
        }
    })
}

/// The organization and licence of each row's model (empty when the catalog lacks them).
fn columns(board: &Leaderboard, catalog: &Catalog) -> Vec<TextColumn> {
    let column = |header: &str, field: fn(&ModelInfo) -> Option<&String>| TextColumn {
        header: header.into(),
        cells: board
            .rows
            .iter()
            .map(|r| {
                catalog
                    .get(&r.model)
                    .and_then(field)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect(),
    };
    vec![
        column("organization", |i| i.organization.as_ref()),
        column("license", |i| i.license.as_ref()),
    ]
}

//! What `arena leaderboard` prints: the ratings as a table, JSON or CSV; with a model catalog,
//! JSON rows carry each model's `info` and the table and CSV gain organization and licence
//! columns.

use arena_ratings::{Leaderboard, TextColumn};

use super::catalog::{Catalog, ModelInfo};
use super::leaderboard::OutputFormat;
use crate::error::ControllerError;

/// `board` in `format`, with what `catalog` says about each model when one is given.
pub fn render(
    board: &Leaderboard,
    format: OutputFormat,
    catalog: Option<&Catalog>,
) -> Result<String, ControllerError> {
    let columns = catalog.map(|c| columns(board, c)).unwrap_or_default();
    Ok(match format {
        OutputFormat::Table => arena_ratings::to_table_with(board, &columns),
        OutputFormat::Csv => arena_ratings::to_csv_with(board, &columns),
        OutputFormat::Json => {
            let mut rows = serde_json::to_value(&board.rows)
                .map_err(|e| ControllerError::Leaderboard(e.to_string()))?;
            if let (Some(catalog), Some(rows)) = (catalog, rows.as_array_mut()) {
                catalog.annotate_rows(rows);
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

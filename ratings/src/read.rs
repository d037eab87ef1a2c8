//! Battles files: JSON lines, a JSON array (FastChat's `clean_battle_*.json`), or CSV with a
//! header (the Chatbot Arena dataset exported by pandas). Rows are handed to a sink one at a
//! time, so a file of any size is read in constant memory.

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use serde::de::{DeserializeSeed, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::battle::{battle_from_text, Battle, JsonRow};
use super::styled::{styled_from_json, StyledBattle};
use crate::error::RatingsError;

/// What the readers can make of a row.
trait ReadRow: Sized {
    fn from_json(row: JsonRow) -> Result<Self, String>;
    fn from_csv(record: &csv::ByteRecord, cols: &Columns) -> Result<Self, String>;
    fn tstamp(&self) -> Option<f64>;
}

impl ReadRow for Battle {
    fn from_json(row: JsonRow) -> Result<Self, String> {
        row.into_battle()
    }
    fn from_csv(record: &csv::ByteRecord, cols: &Columns) -> Result<Self, String> {
        csv_battle(record, cols)
    }
    fn tstamp(&self) -> Option<f64> {
        self.tstamp
    }
}

impl ReadRow for StyledBattle {
    fn from_json(row: JsonRow) -> Result<Self, String> {
        styled_from_json(row)
    }
    fn from_csv(_: &csv::ByteRecord, _: &Columns) -> Result<Self, String> {
        // `read_styled_battles` refuses CSV files before reading a row.
        Err("a CSV row has no conv_metadata".into())
    }
    fn tstamp(&self) -> Option<f64> {
        self.battle.tstamp
    }
}

/// The bad rows a report lists; past this only `bad_total` counts them (a wrong file can hold
/// millions).
pub const MAX_LISTED_BAD_ROWS: usize = 1000;

/// How a battles file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line, or one JSON array of objects (told apart by the first byte).
    Json,
    /// Comma-separated with a header row naming the columns.
    Csv,
}

impl Format {
    /// The format a file name's extension says: `.csv`, or `.jsonl`, `.ndjson`, `.json`.
    pub fn from_path(path: &Path) -> Result<Self, RatingsError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Ok(Self::Csv),
            Some("jsonl" | "ndjson" | "json") => Ok(Self::Json),
            _ => Err(RatingsError::UnknownFileType {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// A row that was skipped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadRow {
    /// 1-based line: of the row (JSON lines), where the record starts (CSV), or where the
    /// item ends (JSON array).
    pub line: u64,
    /// Why it was skipped.
    pub reason: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What reading a file found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReadReport {
    /// Battles handed to the sink.
    pub rows: u64,
    /// The first `MAX_LISTED_BAD_ROWS` skipped rows.
    pub bad: Vec<BadRow>,
    /// All skipped rows.
    pub bad_total: u64,
    /// Battles whose `tstamp` is earlier than the previous battle's: online Elo takes battles
    /// in file order, which is time order only when this is 0.
    pub out_of_order: u64,
}

/// Reads a battles file, the format chosen by its extension (see `Format::from_path`).
///
/// Bad rows are skipped and listed; with `strict` the first one is an error naming its line.
pub fn read_battles(
    path: &Path,
    strict: bool,
    sink: impl FnMut(Battle),
) -> Result<ReadReport, RatingsError> {
    let format = Format::from_path(path)?;
    let file = File::open(path).map_err(|error| RatingsError::Open {
        path: path.to_path_buf(),
        error,
    })?;
    read_battles_from(file, format, strict, sink).map_err(|message| RatingsError::Read {
        path: path.to_path_buf(),
        message,
    })
}

/// Reads battles from any reader (standard input, a network body) in the given format.
///
/// Errors are plain messages (`line 7: unknown winner 'x'`) for the caller to prefix with
/// the source's name.
pub fn read_battles_from(
    reader: impl Read,
    format: Format,
    strict: bool,
    sink: impl FnMut(Battle),
) -> Result<ReadReport, String> {
    read_rows(reader, format, strict, sink)
}

/// Reads battles with the style of both answers from a JSON file in the public dataset's
/// shape: each row's `conv_metadata` holds `sum_assistant_{a,b}_tokens` and
/// `{header,list,bold}_count_{a,b}` (numbers, or objects whose values add up, as
/// `{"h1": 2, "h2": 0}`). A row without them is a bad row; a CSV file is refused.
pub fn read_styled_battles(
    path: &Path,
    strict: bool,
    sink: impl FnMut(StyledBattle),
) -> Result<ReadReport, RatingsError> {
    let fail = |message: String| RatingsError::Read {
        path: path.to_path_buf(),
        message,
    };
    if Format::from_path(path)? == Format::Csv {
        return Err(fail(
            "style control reads each battle's conv_metadata, which CSV files do not carry; \
             use the JSON or JSONL file"
                .into(),
        ));
    }
    let file = File::open(path).map_err(|error| RatingsError::Open {
        path: path.to_path_buf(),
        error,
    })?;
    read_rows(file, Format::Json, strict, sink).map_err(fail)
}

fn read_rows<T: ReadRow>(
    reader: impl Read,
    format: Format,
    strict: bool,
    sink: impl FnMut(T),
) -> Result<ReadReport, String> {
    let mut rows = Rows {
        report: ReadReport::default(),
        strict,
        failure: None,
        last_tstamp: None,
        sink,
        row: std::marker::PhantomData,
    };
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    match format {
        Format::Csv => read_csv(reader, &mut rows)?,
        Format::Json => {
            let first = first_byte(&mut reader).map_err(|e| format!("cannot read: {e}"))?;
            if first == Some(b'[') {
                read_json_array(reader, &mut rows)?;
            } else {
                read_json_lines(reader, &mut rows)?;
            }
        }
    }
    Ok(rows.report)
}

/// Where rows go: good ones to the sink, bad ones to the report (or out as the error).
struct Rows<T, F> {
    report: ReadReport,
    strict: bool,
    /// The strict-mode error, kept whole while serde unwinds the array.
    failure: Option<String>,
    last_tstamp: Option<f64>,
    sink: F,
    row: std::marker::PhantomData<fn(T)>,
}

impl<T: ReadRow, F: FnMut(T)> Rows<T, F> {
    fn take(&mut self, line: u64, row: Result<T, String>) -> Result<(), String> {
        match row {
            Ok(battle) => {
                if let Some(t) = battle.tstamp() {
                    if self.last_tstamp.is_some_and(|last| t < last) {
                        self.report.out_of_order += 1;
                    }
                    self.last_tstamp = Some(t);
                }
                self.report.rows += 1;
                (self.sink)(battle);
                Ok(())
            }
            Err(reason) if self.strict => Err(format!("line {line}: {reason}")),
            Err(reason) => {
                self.report.bad_total += 1;
                if self.report.bad.len() < MAX_LISTED_BAD_ROWS {
                    self.report.bad.push(BadRow { line, reason });
                }
                Ok(())
            }
        }
    }
}

fn first_byte(reader: &mut impl BufRead) -> std::io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        // A UTF-8 byte-order mark or leading blank lines do not decide the format.
        let skip = buf
            .iter()
            .take_while(|b| b.is_ascii_whitespace() || matches!(b, 0xEF | 0xBB | 0xBF))
            .count();
        if skip < buf.len() {
            return Ok(Some(buf[skip]));
        }
        reader.consume(skip);
    }
}

fn read_json_lines<T: ReadRow, F: FnMut(T)>(
    mut reader: impl BufRead,
    rows: &mut Rows<T, F>,
) -> Result<(), String> {
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        if reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| format!("cannot read after line {line}: {e}"))?
            == 0
        {
            return Ok(());
        }
        line += 1;
        let text = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row = serde_json::from_slice::<JsonRow>(text)
            .map_err(|e| format!("not a JSON object: {}", strip_position(&e)))
            .and_then(T::from_json);
        rows.take(line, row)?;
    }
}

/// serde_json appends "at line 1 column 9" to errors; within one line only the column helps.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => format!("{} (column {})", &text[..at], e.column()),
        None => text,
    }
}

fn read_json_array<T: ReadRow, F: FnMut(T)>(
    reader: impl BufRead,
    rows: &mut Rows<T, F>,
) -> Result<(), String> {
    let newlines = Rc::new(Cell::new(0u64));
    let counted = CountLines {
        inner: reader,
        newlines: Rc::clone(&newlines),
    };
    let mut de = serde_json::Deserializer::from_reader(counted);
    let result = ArraySeed {
        rows: &mut *rows,
        newlines,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match (result, rows.failure.take()) {
        (_, Some(strict)) => Err(strict),
        (Ok(()), None) => Ok(()),
        (Err(e), None) if e.is_io() => Err(format!("cannot read: {e}")),
        (Err(e), None) => Err(format!("not a JSON array of battles: {e}")),
    }
}

/// Counts the newlines read so far, to say where a bad item in an array is.
struct CountLines<R> {
    inner: R,
    newlines: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let found = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        self.newlines.set(self.newlines.get() + found);
        Ok(n)
    }
}

struct ArraySeed<'r, T, F> {
    rows: &'r mut Rows<T, F>,
    newlines: Rc<Cell<u64>>,
}

/// An array item: an object we can read, or anything else (a bad row, not a fatal error).
#[derive(Deserialize)]
#[serde(untagged)]
enum Item {
    // Boxed: a row is seven JSON values, the other variant nothing.
    Row(Box<JsonRow>),
    Other(IgnoredAny),
}

impl<'de, T: ReadRow, F: FnMut(T)> DeserializeSeed<'de> for ArraySeed<'_, T, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de, T: ReadRow, F: FnMut(T)> Visitor<'de> for ArraySeed<'_, T, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of battle objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Item>()? {
            let line = self.newlines.get() + 1;
            let row = match item {
                Item::Row(row) => T::from_json(*row),
                Item::Other(_) => Err("not a JSON object".to_string()),
            };
            if let Err(e) = self.rows.take(line, row) {
                self.rows.failure = Some(e.clone());
                return Err(serde::de::Error::custom(e));
            }
        }
        Ok(())
    }
}

/// Column positions of the fields we read.
struct Columns {
    model_a: usize,
    model_b: usize,
    winner: usize,
    tstamp: Option<usize>,
    anony: Option<usize>,
    turn: Option<usize>,
}

fn read_csv<T: ReadRow, F: FnMut(T)>(
    reader: impl Read,
    rows: &mut Rows<T, F>,
) -> Result<(), String> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(reader);
    let header = csv
        .byte_headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .clone();
    let find = |name: &str| {
        header
            .iter()
            .position(|h| h.trim_ascii() == name.as_bytes())
    };
    let need = |name: &str| {
        find(name).ok_or_else(|| format!("the header has no '{name}' column (line 1)"))
    };
    let cols = Columns {
        model_a: need("model_a")?,
        model_b: need("model_b")?,
        winner: need("winner")?,
        tstamp: find("tstamp"),
        anony: find("anony"),
        turn: find("turn"),
    };
    let mut record = csv::ByteRecord::new();
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map_or(0, csv::Position::line);
                rows.take(line, T::from_csv(&record, &cols))?;
            }
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => rows.take(
                        line,
                        Err(format!("{len} fields, the header has {expected_len}")),
                    )?,
                    _ => return Err(format!("line {line}: {e}")),
                }
            }
        }
    }
}

fn csv_battle(record: &csv::ByteRecord, cols: &Columns) -> Result<Battle, String> {
    let field = |i: usize| -> Result<&str, String> {
        std::str::from_utf8(&record[i]).map_err(|_| format!("field {} is not UTF-8", i + 1))
    };
    let opt = |i: Option<usize>| i.map(field).transpose();
    battle_from_text(
        Some(field(cols.model_a)?),
        Some(field(cols.model_b)?),
        Some(field(cols.winner)?),
        opt(cols.tstamp)?,
        opt(cols.anony)?,
        opt(cols.turn)?,
    )
}

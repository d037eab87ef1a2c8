//! The two migration folders describe one schema. `migrations/postgres` and `migrations/sqlite`
//! hold the same file names, and each pair of files reads line for line the same once the
//! dialect differences below are normalised, so a change made to one folder and forgotten in
//! the other fails here.
//!
//! What may differ, and nothing else (the list is what the files need today; a new difference
//! needs a new rule here, and a rule no file uses any more fails as stale):
//! - whole-line `--` comments (they document, the schema does not depend on them);
//! - a `BOOLEAN NOT NULL` column's default false: `DEFAULT FALSE` in Postgres, `DEFAULT 0` in
//!   SQLite;
//! - the UTC day of a Unix-millisecond column `c`:
//!   `CAST(to_char(to_timestamp(c / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS TEXT)` in
//!   Postgres, `date(c / 1000, 'unixepoch')` in SQLite.
//!
//! Everything else compares exactly, except trailing blanks: types, constraints, casts, case.

use std::path::{Path, PathBuf};

use regex::Regex;

/// One allowed difference: what each dialect writes, and the text both become.
struct Rule {
    name: &'static str,
    postgres: &'static str,
    sqlite: &'static str,
    canonical: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        name: "a BOOLEAN column defaulting to false",
        postgres: r"\bBOOLEAN NOT NULL DEFAULT FALSE\b",
        sqlite: r"\bBOOLEAN NOT NULL DEFAULT 0\b",
        canonical: "BOOLEAN NOT NULL DEFAULT <false>",
    },
    Rule {
        name: "UTC day of Unix milliseconds",
        postgres: r"CAST\(to_char\(to_timestamp\(([a-z_][a-z0-9_.]*) / 1000\.0\) AT TIME ZONE 'UTC', 'YYYY-MM-DD'\) AS TEXT\)",
        sqlite: r"\bdate\(([a-z_][a-z0-9_.]*) / 1000, 'unixepoch'\)",
        canonical: "<utc-day>($1)",
    },
];

#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Postgres,
    Sqlite,
}

/// The file's lines as compared: (line number, text with the dialect's rules applied), and
/// which rules fired.
fn normalise(sql: &str, dialect: Dialect) -> (Vec<(usize, String)>, Vec<&'static str>) {
    let rules: Vec<(&Rule, Regex)> = RULES
        .iter()
        .map(|r| {
            let pattern = match dialect {
                Dialect::Postgres => r.postgres,
                Dialect::Sqlite => r.sqlite,
            };
            (r, Regex::new(pattern).expect("a valid rule"))
        })
        .collect();
    let mut fired = Vec::new();
    let lines = sql
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("--"))
        .map(|(i, line)| {
            let mut text = line.trim_end().to_string();
            for (rule, re) in &rules {
                if re.is_match(&text) {
                    fired.push(rule.name);
                    text = re.replace_all(&text, rule.canonical).into_owned();
                }
            }
            (i + 1, text)
        })
        .collect();
    (lines, fired)
}

/// Compares one pair of files; the error names the first line that differs. Returns the rules
/// that fired.
fn compare(name: &str, postgres: &str, sqlite: &str) -> Result<Vec<&'static str>, String> {
    let (pg, mut fired) = normalise(postgres, Dialect::Postgres);
    let (lite, fired_lite) = normalise(sqlite, Dialect::Sqlite);
    fired.extend(fired_lite);
    for (a, b) in pg.iter().zip(&lite) {
        if a.1 != b.1 {
            return Err(format!(
                "{name}: postgres line {} and sqlite line {} differ beyond the dialect rules:\n  postgres: {}\n  sqlite:   {}",
                a.0, b.0, a.1, b.1
            ));
        }
    }
    if pg.len() != lite.len() {
        let (longer, extra) = if pg.len() > lite.len() {
            ("postgres", &pg[lite.len()])
        } else {
            ("sqlite", &lite[pg.len()])
        };
        return Err(format!(
            "{name}: {longer} has more statements, from line {}: {}",
            extra.0, extra.1
        ));
    }
    Ok(fired)
}

fn folder(dialect: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(dialect)
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn both_folders_hold_the_same_migrations_up_to_the_dialect() {
    let (pg_dir, lite_dir) = (folder("postgres"), folder("sqlite"));
    let names = file_names(&pg_dir);
    assert!(!names.is_empty(), "no migrations in {}", pg_dir.display());
    assert_eq!(
        names,
        file_names(&lite_dir),
        "migrations/postgres and migrations/sqlite must hold the same files"
    );
    let mut fired = Vec::new();
    for name in &names {
        let read = |dir: &Path| std::fs::read_to_string(dir.join(name)).unwrap();
        match compare(name, &read(&pg_dir), &read(&lite_dir)) {
            Ok(rules) => fired.extend(rules),
            Err(e) => panic!("{e}"),
        }
    }
    // Rules stay as narrow as the files: one that nothing uses any more is removed.
    for rule in RULES {
        assert!(
            fired.contains(&rule.name),
            "the rule '{}' is no longer used: remove it",
            rule.name
        );
    }
}

#[test]
fn a_change_made_to_one_dialect_only_fails() {
    let sqlite = std::fs::read_to_string(folder("sqlite").join("0001_arena.sql")).unwrap();
    let postgres = std::fs::read_to_string(folder("postgres").join("0001_arena.sql")).unwrap();
    assert!(compare("0001", &postgres, &sqlite).is_ok());
    // A column added to one side.
    let added = sqlite.replace(
        "    model       TEXT NOT NULL,\n",
        "    model       TEXT NOT NULL,\n    title       TEXT,\n",
    );
    assert_ne!(added, sqlite);
    let e = compare("0001", &postgres, &added).unwrap_err();
    assert!(e.contains("title"), "{e}");
    // A type, a constraint or a default changed on one side.
    for (from, to) in [
        (
            "created_ms  BIGINT NOT NULL",
            "created_ms  INTEGER NOT NULL",
        ),
        (
            "CHECK (mode IN ('battle', 'direct'))",
            "CHECK (mode IN ('battle'))",
        ),
        ("DEFAULT 0", "DEFAULT 1"),
    ] {
        let changed = sqlite.replacen(from, to, 1);
        assert_ne!(changed, sqlite, "{from}");
        assert!(compare("0001", &postgres, &changed).is_err(), "{from}");
    }
    // A statement dropped from one side.
    let dropped = postgres.replace("CREATE INDEX votes_created ON votes (created_ms);\n", "");
    assert_ne!(dropped, postgres);
    let e = compare("0001", &dropped, &sqlite).unwrap_err();
    assert!(e.contains("differ") || e.contains("more statements"), "{e}");
}

#[test]
fn only_the_listed_dialect_differences_are_allowed() {
    let same = |pg: &str, lite: &str| compare("t", pg, lite).is_ok();
    assert!(same(
        "  x BOOLEAN NOT NULL DEFAULT FALSE,",
        "  x BOOLEAN NOT NULL DEFAULT 0,"
    ));
    assert!(same(
        "SELECT CAST(to_char(to_timestamp(created_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS TEXT) AS day,",
        "SELECT date(created_ms / 1000, 'unixepoch') AS day,"
    ));
    assert!(same("-- Postgres says this", "-- SQLite says that"));
    // The wrong value, the wrong column, or a rule applied on the wrong side.
    assert!(!same(
        "  x BOOLEAN NOT NULL DEFAULT TRUE,",
        "  x BOOLEAN NOT NULL DEFAULT 0,"
    ));
    // Not needed yet, so not allowed yet.
    assert!(!same(
        "  x BOOLEAN NOT NULL DEFAULT TRUE,",
        "  x BOOLEAN NOT NULL DEFAULT 1,"
    ));
    assert!(!same(
        "  x BIGINT NOT NULL DEFAULT FALSE,",
        "  x BIGINT NOT NULL DEFAULT 0,"
    ));
    assert!(!same(
        "  x BOOLEAN NOT NULL DEFAULT 0,",
        "  x BOOLEAN NOT NULL DEFAULT FALSE,"
    ));
    assert!(!same(
        "SELECT CAST(to_char(to_timestamp(created_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS TEXT) AS day,",
        "SELECT date(tstamp_ms / 1000, 'unixepoch') AS day,"
    ));
    // Differences the rules do not name.
    assert!(!same(
        "  id BIGSERIAL PRIMARY KEY,",
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    ));
    assert!(!same("  at TIMESTAMPTZ NOT NULL,", "  at TEXT NOT NULL,"));
    assert!(!same("  x BOOLEAN,", "  x INTEGER,"));
    assert!(!same("DEFAULT NOW()", "DEFAULT CURRENT_TIMESTAMP"));
    assert!(!same("SELECT 1;", "select 1;"));
}

//! Question sets as JSON lines, in MT-bench's format (`{question_id, category, turns,
//! reference?}`, also Vicuna's) or Arena-Hard's (`{uid, category, prompt}`, or `turns` as
//! `[{"content": ...}]` objects).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::EvalError;

/// Categories whose questions carry reference answers the judge is shown (MT-bench's rule).
pub const REFERENCE_CATEGORIES: [&str; 3] = ["math", "reasoning", "coding"];

/// One question: its turns are the user's messages, asked one after the other.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// Its id as written (a number becomes its decimal text).
    pub id: String,
    /// Its category.
    pub category: String,
    /// The user's turns, at least one.
    pub turns: Vec<String>,
    /// Reference answers, one per turn, when the set gives them.
    pub reference: Option<Vec<String>>,
}

/// The text of a turn: a string, or an object with `content`.
fn turn_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

fn texts(v: &Value, field: &str) -> Result<Vec<String>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("'{field}' must be a list of strings"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, t)| turn_text(t).ok_or_else(|| format!("'{field}[{i}]' is not text")))
        .collect()
}

/// Reads one line of a question file.
pub fn parse_line(line: &str) -> Result<Question, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("a question must be a JSON object")?;
    let id = match obj.get("question_id").or_else(|| obj.get("uid")) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("no 'question_id' (or 'uid')".into()),
    };
    let category = obj
        .get("category")
        .and_then(Value::as_str)
        .unwrap_or("general")
        .to_string();
    let turns = match (obj.get("turns"), obj.get("prompt")) {
        (Some(t), _) => texts(t, "turns")?,
        (None, Some(p)) => vec![turn_text(p).ok_or("'prompt' is not text")?],
        (None, None) => return Err("no 'turns' (or 'prompt')".into()),
    };
    if turns.is_empty() || turns.iter().any(|t| t.trim().is_empty()) {
        return Err("every question needs at least one turn, and no turn may be empty".into());
    }
    let reference = match obj.get("reference") {
        None | Some(Value::Null) => None,
        Some(r) => Some(texts(r, "reference")?),
    };
    Ok(Question {
        id,
        category,
        turns,
        reference,
    })
}

/// The question set shipped with the project: 80 questions in 8 categories, two turns each.
pub const ARENA_80: &str = "arena-80";

/// A named list of questions.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionSet {
    /// Its name in the store: the file's stem (`mt_bench` for `mt_bench.jsonl`), or `arena-80`.
    pub name: String,
    /// Its questions, in file order.
    pub questions: Vec<Question>,
}

impl QuestionSet {
    /// `arena-80` (the shipped set) or the question file at `spec`.
    pub fn open(spec: &str) -> Result<Self, EvalError> {
        if spec == ARENA_80 {
            let questions = parse(
                include_str!("../questions/arena-80.jsonl"),
                Path::new("eval/questions/arena-80.jsonl"),
            )?;
            return Ok(Self {
                name: ARENA_80.to_string(),
                questions,
            });
        }
        let name = Self::name_of(spec);
        if name == crate::battles::ARENA_BATTLES {
            return Err(EvalError::Invalid(format!(
                "'{}' names the judged arena battles of `arena eval agree`: rename the question file",
                name
            )));
        }
        Ok(Self {
            name,
            questions: load(Path::new(spec))?,
        })
    }

    /// The name `open(spec)` gives its set, without reading it.
    pub fn name_of(spec: &str) -> String {
        Path::new(spec)
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty() && spec != ARENA_80)
            .unwrap_or(spec)
            .to_string()
    }

    /// The question with this id.
    pub fn get(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }
}

/// Reads a question file; blank lines are skipped, a bad line or a repeated id is an error
/// naming the line.
pub fn load(path: &Path) -> Result<Vec<Question>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Reads the lines of a question file whose errors name `path`.
fn parse(text: &str, path: &Path) -> Result<Vec<Question>, EvalError> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let q = parse_line(line).map_err(|reason| EvalError::BadQuestion {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        })?;
        if let Some(first) = seen.insert(q.id.clone(), i + 1) {
            return Err(EvalError::DuplicateId {
                path: path.to_path_buf(),
                line: i + 1,
                first,
                id: q.id,
            });
        }
        out.push(q);
    }
    if out.is_empty() {
        return Err(EvalError::Invalid(format!(
            "{} holds no questions",
            path.display()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt_bench_vicuna_and_arena_hard_lines_load() {
        let mt = parse_line(
            r#"{"question_id": 81, "category": "writing", "turns": ["Write.", "Rewrite."]}"#,
        )
        .unwrap();
        assert_eq!((mt.id.as_str(), mt.turns.len()), ("81", 2));
        assert_eq!(mt.reference, None);
        let with_ref = parse_line(
            r#"{"question_id": "m1", "category": "math", "turns": ["1+1?"], "reference": ["2"]}"#,
        )
        .unwrap();
        assert_eq!(with_ref.reference, Some(vec!["2".to_string()]));
        let hard = parse_line(r#"{"uid": "abc", "category": "hard_prompt", "prompt": "Explain."}"#)
            .unwrap();
        assert_eq!(hard.turns, vec!["Explain."]);
        let hard_v01 = parse_line(
            r#"{"question_id": "q", "category": "arena-hard-v0.1", "cluster": "x", "turns": [{"content": "Hi?"}]}"#,
        )
        .unwrap();
        assert_eq!(hard_v01.turns, vec!["Hi?"]);
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        for (line, needle) in [
            ("nope", "not JSON"),
            ("[1]", "JSON object"),
            (r#"{"category": "x", "turns": ["a"]}"#, "question_id"),
            (r#"{"question_id": 1, "turns": []}"#, "at least one turn"),
            (r#"{"question_id": 1, "turns": [" "]}"#, "at least one turn"),
            (
                r#"{"question_id": 1, "turns": [3]}"#,
                "'turns[0]' is not text",
            ),
            (r#"{"question_id": 1}"#, "no 'turns'"),
            (
                r#"{"question_id": 1, "turns": ["a"], "reference": "x"}"#,
                "'reference'",
            ),
        ] {
            let e = parse_line(line).unwrap_err();
            assert!(e.contains(needle), "{line}: {e}");
        }
    }

    #[test]
    fn files_name_the_bad_line_and_repeated_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.jsonl");
        std::fs::write(
            &path,
            "{\"question_id\": 1, \"turns\": [\"a\"]}\n\n{\"question_id\": 1, \"turns\": [\"b\"]}\n",
        )
        .unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(
            e.ends_with("q.jsonl:3: question id '1' was already used on line 1"),
            "{e}"
        );
        std::fs::write(&path, "{\"question_id\": 1, \"turns\": [\"a\"]}\n{oops\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("q.jsonl:2: not JSON"), "{e}");
        assert!(load(&dir.path().join("missing.jsonl"))
            .unwrap_err()
            .to_string()
            .starts_with("cannot read"));
    }
}

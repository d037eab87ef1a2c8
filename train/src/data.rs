//! Conversations to train on, read from ShareGPT JSON lines (`arena export --format sharegpt`,
//! `scripts/fetch-sft-data.sh`, or any ShareGPT file): `{"id", "conversations": [{"from",
//! "value"}]}`, or OpenAI's `{"messages": [{"role", "content"}]}`.

use std::io::{BufRead, Read};
use std::path::Path;

use arena_worker::text::template::{Message, Role};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Result, TrainError};

/// Bad lines listed by name in a report; the rest are counted.
pub const MAX_LISTED_BAD_LINES: usize = 10;

/// One conversation: an optional system message, then user and assistant turns alternating,
/// ending with the assistant.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// Its id in the file (`line N` when it has none).
    pub id: String,
    /// The messages.
    pub messages: Vec<Message>,
}

impl Conversation {
    /// Assistant turns in it.
    pub fn assistant_turns(&self) -> usize {
        self.messages
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .count()
    }
}

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    conversations: Option<Vec<ShareGptTurn>>,
    #[serde(default)]
    messages: Option<Vec<OpenAiTurn>>,
}

#[derive(Deserialize)]
struct ShareGptTurn {
    from: String,
    value: String,
}

#[derive(Deserialize)]
struct OpenAiTurn {
    role: String,
    content: String,
}

/// The role a ShareGPT `from` or OpenAI `role` names.
fn role(name: &str) -> Option<Role> {
    match name.to_ascii_lowercase().as_str() {
        "human" | "user" => Some(Role::User),
        "gpt" | "assistant" | "chatgpt" | "bard" | "bing" | "model" => Some(Role::Assistant),
        "system" => Some(Role::System),
        _ => None,
    }
}

/// Makes a conversation trainable, FastChat's way: a first turn from the assistant is dropped
/// (it answers nothing), a last turn from the user is dropped (nothing answers it), and the
/// rest must alternate user, assistant. Empty turns are refused.
fn normalise(mut messages: Vec<Message>) -> std::result::Result<Vec<Message>, String> {
    let system = match messages.first() {
        Some(m) if m.role == Role::System => Some(messages.remove(0)),
        _ => None,
    };
    if messages.first().is_some_and(|m| m.role == Role::Assistant) {
        messages.remove(0);
    }
    if messages.last().is_some_and(|m| m.role == Role::User) {
        messages.pop();
    }
    if messages.is_empty() {
        return Err("no user turn followed by an assistant turn".into());
    }
    for (i, m) in messages.iter().enumerate() {
        let expected = Role::of_turn(i);
        if m.role != expected {
            return Err(format!(
                "turn {} is {:?} where {:?} was expected (turns must alternate user, assistant)",
                i + 1,
                m.role,
                expected
            ));
        }
        if m.content.trim().is_empty() {
            return Err(format!("turn {} is empty", i + 1));
        }
    }
    Ok(system.into_iter().chain(messages).collect())
}

/// Parses one line of a conversations file.
pub fn parse_line(line: &str, number: usize) -> std::result::Result<Conversation, String> {
    let parsed: Line = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let messages: Vec<Message> = match (parsed.conversations, parsed.messages) {
        (Some(turns), _) => turns
            .into_iter()
            .map(|t| {
                role(&t.from)
                    .map(|r| Message::new(r, t.value))
                    .ok_or_else(|| format!("unknown speaker '{}'", t.from))
            })
            .collect::<std::result::Result<_, _>>()?,
        (None, Some(turns)) => turns
            .into_iter()
            .map(|t| {
                role(&t.role)
                    .map(|r| Message::new(r, t.content))
                    .ok_or_else(|| format!("unknown role '{}'", t.role))
            })
            .collect::<std::result::Result<_, _>>()?,
        (None, None) => return Err("neither \"conversations\" nor \"messages\"".into()),
    };
    let id = match parsed.id {
        Some(serde_json::Value::String(s)) => s,
        Some(v) if !v.is_null() => v.to_string(),
        _ => format!("line {number}"),
    };
    Ok(Conversation {
        id,
        messages: normalise(messages)?,
    })
}

/// Conversations read from a file, and the lines that were not.
#[derive(Debug, Default)]
pub struct Dataset {
    /// The usable conversations, in file order.
    pub conversations: Vec<Conversation>,
    /// `line N: why` for the first `MAX_LISTED_BAD_LINES` unusable lines.
    pub bad: Vec<String>,
    /// All unusable lines.
    pub bad_total: usize,
    /// The SHA-256 of the bytes read, hex: what a checkpoint's data must match. Hashed while
    /// reading, so a stream that can be read only once (`--data <(...)`) is hashed too.
    pub sha256: String,
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads a JSON-lines conversations file; blank lines are skipped, unusable ones listed.
/// An unreadable file, or one with no usable conversation, is an error.
pub fn read(path: &Path) -> Result<Dataset> {
    let file = std::fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
    let mut data = Dataset::default();
    let mut reader = std::io::BufReader::new(Hashing {
        inner: file,
        hasher: Sha256::new(),
    });
    for (i, line) in (&mut reader).lines().enumerate() {
        let line = line.map_err(|e| TrainError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line, i + 1) {
            Ok(c) => data.conversations.push(c),
            Err(why) => {
                data.bad_total += 1;
                if data.bad.len() < MAX_LISTED_BAD_LINES {
                    data.bad.push(format!("line {}: {why}", i + 1));
                }
            }
        }
    }
    data.sha256 = format!("{:x}", reader.into_inner().hasher.finalize());
    if data.conversations.is_empty() {
        return Err(TrainError::Data(format!(
            "{}: no usable conversation ({} unusable lines{})",
            path.display(),
            data.bad_total,
            data.bad.first().map_or(String::new(), |b| format!("; {b}"))
        )));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharegpt_and_openai_lines_are_read_and_made_trainable() {
        let c = parse_line(
            r#"{"id": "a", "conversations": [{"from": "gpt", "value": "hi"}, {"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}, {"from": "human", "value": "left over"}]}"#,
            1,
        )
        .unwrap();
        assert_eq!(c.id, "a");
        assert_eq!(
            c.messages,
            vec![
                Message::new(Role::User, "Q"),
                Message::new(Role::Assistant, "A")
            ]
        );
        let c = parse_line(
            r#"{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}"#,
            7,
        )
        .unwrap();
        assert_eq!(
            (c.id.as_str(), c.messages.len(), c.assistant_turns()),
            ("line 7", 3, 1)
        );
    }

    #[test]
    fn the_data_is_hashed_as_read_even_from_a_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let text = "{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \"A\"}]}\n\nnot json\n";
        let file = dir.path().join("d.jsonl");
        std::fs::write(&file, text).unwrap();
        let want = format!("{:x}", Sha256::digest(text.as_bytes()));
        assert_eq!(read(&file).unwrap().sha256, want);
        // A pipe can be read once: `--data <(...)` must still be told apart by its content.
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
        };
        let piped = read(&fifo).unwrap();
        writer.join().unwrap();
        assert_eq!((piped.sha256, piped.bad_total), (want, 1));
    }

    #[test]
    fn unusable_lines_say_why() {
        for (line, why) in [
            ("{", "not JSON"),
            (r#"{"id": 1}"#, "neither"),
            (
                r#"{"conversations": [{"from": "alien", "value": "x"}]}"#,
                "unknown speaker",
            ),
            (
                r#"{"conversations": [{"from": "human", "value": "x"}]}"#,
                "no user turn",
            ),
            (
                r#"{"conversations": [{"from": "human", "value": "x"}, {"from": "human", "value": "y"}, {"from": "gpt", "value": "z"}]}"#,
                "must alternate",
            ),
            (
                r#"{"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "  "}]}"#,
                "empty",
            ),
        ] {
            let e = parse_line(line, 1).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
    }
}

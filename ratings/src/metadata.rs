//! `conv_metadata`, the public Chatbot Arena dataset's record of both answers' length and
//! markdown: written by the arena's store at vote time, read back for style control.

use serde_json::{json, Map, Value};

use super::style::{markdown_counts, StyleCounts};

/// One side of a battle as it stood when the vote was cast.
#[derive(Debug, Clone, Default)]
pub struct AnswerSide<'a> {
    /// The text of each of its current answers, in turn order.
    pub answers: Vec<&'a str>,
    /// Tokens of those answers together; None when a count is unknown.
    pub tokens: Option<u64>,
    /// Prompt tokens of its last turn, as its model counted them; None when unknown.
    pub context_tokens: Option<u64>,
}

/// The `conv_metadata` of a battle with `turns` user turns, keyed as the public dataset is:
/// `sum_assistant_{a,b}_tokens`, `context_{a,b}_tokens`, `turns`, and per side
/// `header_count` (h1..h6), `list_count` (ordered, unordered) and `bold_count` (`**`, `__`),
/// counted over the side's answers joined by newlines (as FastChat joins them). An unknown
/// token count is null, and style control skips the battle rather than guess.
pub fn conv_metadata(a: &AnswerSide, b: &AnswerSide, turns: u64) -> Value {
    let mut meta = Map::new();
    meta.insert("sum_assistant_a_tokens".into(), json!(a.tokens));
    meta.insert("sum_assistant_b_tokens".into(), json!(b.tokens));
    meta.insert("context_a_tokens".into(), json!(a.context_tokens));
    meta.insert("context_b_tokens".into(), json!(b.context_tokens));
    meta.insert("turns".into(), json!(turns));
    for (s, side) in [("a", a), ("b", b)] {
        let m = markdown_counts(&side.answers.join("\n"));
        let headers: Map<String, Value> = (1..=6)
            .map(|level| (format!("h{level}"), json!(m.headers[level - 1])))
            .collect();
        meta.insert(format!("header_count_{s}"), Value::Object(headers));
        meta.insert(
            format!("list_count_{s}"),
            json!({"ordered": m.ordered, "unordered": m.unordered}),
        );
        meta.insert(
            format!("bold_count_{s}"),
            json!({"**": m.bold_stars, "__": m.bold_underscores}),
        );
    }
    Value::Object(meta)
}

/// Both answers' style from a `conv_metadata` object, counts given as numbers or as objects
/// of numbers (summed); an error says which key is missing or not a count.
pub fn styles_of(meta: &Value) -> Result<(StyleCounts, StyleCounts), String> {
    let meta = match meta {
        Value::Object(m) => m,
        Value::Null => {
            return Err("no conv_metadata (style control needs each answer's style)".into())
        }
        other => return Err(format!("conv_metadata is not an object: {other}")),
    };
    let side = |s: &str| -> Result<StyleCounts, String> {
        let count = |key: String| count_field(meta.get(&key), &key);
        Ok(StyleCounts {
            tokens: count(format!("sum_assistant_{s}_tokens"))?,
            headers: count(format!("header_count_{s}"))?,
            lists: count(format!("list_count_{s}"))?,
            bold: count(format!("bold_count_{s}"))?,
        })
    };
    Ok((side("a")?, side("b")?))
}

/// A count: a whole non-negative number, or an object of them (`{"h1": 2, "h2": 1}`) summed.
fn count_field(v: Option<&Value>, key: &str) -> Result<u64, String> {
    let whole = |v: &Value| {
        v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x < 9e15)
                .map(|x| x as u64)
        })
    };
    match v {
        None | Some(Value::Null) => Err(format!("conv_metadata has no '{key}'")),
        Some(Value::Object(parts)) => parts.values().try_fold(0u64, |sum, p| {
            whole(p)
                .map(|x| sum.saturating_add(x))
                .ok_or_else(|| format!("conv_metadata '{key}' holds {p}, not a count"))
        }),
        Some(other) => {
            whole(other).ok_or_else(|| format!("conv_metadata '{key}' is {other}, not a count"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_has_the_datasets_keys_and_reads_back_as_the_same_style() {
        let a = AnswerSide {
            answers: vec!["# Title\n- one\n- two", "**bold** and __under__\n1. x"],
            tokens: Some(42),
            context_tokens: Some(30),
        };
        let b = AnswerSide {
            answers: vec!["```\n# code\n```\nplain"],
            tokens: Some(7),
            context_tokens: None,
        };
        let meta = conv_metadata(&a, &b, 2);
        assert_eq!(meta["header_count_a"]["h1"], 1);
        assert_eq!(meta["header_count_b"]["h1"], 0);
        assert_eq!(meta["list_count_a"], json!({"ordered": 1, "unordered": 2}));
        assert_eq!(meta["bold_count_a"], json!({"**": 1, "__": 1}));
        assert_eq!(meta["context_b_tokens"], Value::Null);
        assert_eq!(meta["turns"], 2);
        let (sa, sb) = styles_of(&meta).unwrap();
        assert_eq!((sa.tokens, sa.headers, sa.lists, sa.bold), (42, 1, 3, 2));
        assert_eq!((sb.tokens, sb.headers, sb.lists, sb.bold), (7, 0, 0, 0));
    }

    #[test]
    fn an_unknown_token_count_is_refused_not_guessed() {
        let side = AnswerSide {
            answers: vec!["x"],
            tokens: None,
            context_tokens: None,
        };
        let meta = conv_metadata(&side, &side, 1);
        let e = styles_of(&meta).unwrap_err();
        assert!(e.contains("sum_assistant_a_tokens"), "{e}");
        assert!(styles_of(&json!([1]))
            .unwrap_err()
            .contains("not an object"));
        assert!(styles_of(&json!({"sum_assistant_a_tokens": -1})).is_err());
    }
}

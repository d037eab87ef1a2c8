//! One battle (a vote between two models) and the checks every input row goes through,
//! whatever file format it came from.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The outcome of a battle, spelled as FastChat and the Chatbot Arena dataset spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Winner {
    /// `model_a` won.
    #[serde(rename = "model_a")]
    ModelA,
    /// `model_b` won.
    #[serde(rename = "model_b")]
    ModelB,
    /// A tie (both good).
    #[serde(rename = "tie")]
    Tie,
    /// A tie where both were bad.
    #[serde(rename = "tie (bothbad)")]
    TieBothBad,
}

impl Winner {
    /// All outcomes, in the order `Winner::index` numbers them.
    pub const ALL: [Winner; 4] = [Self::ModelA, Self::ModelB, Self::Tie, Self::TieBothBad];

    /// Parses `model_a`, `model_b`, `tie` or `tie (bothbad)` (also spelled `both_bad`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "model_a" => Some(Self::ModelA),
            "model_b" => Some(Self::ModelB),
            "tie" => Some(Self::Tie),
            // The 2024-25 public datasets spell it as arena-rank does.
            "tie (bothbad)" | "both_bad" => Some(Self::TieBothBad),
            _ => None,
        }
    }

    /// The dataset spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ModelA => "model_a",
            Self::ModelB => "model_b",
            Self::Tie => "tie",
            Self::TieBothBad => "tie (bothbad)",
        }
    }

    /// Position in `Winner::ALL` (a dense index for count tables).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether this is either kind of tie.
    pub fn is_tie(self) -> bool {
        matches!(self, Self::Tie | Self::TieBothBad)
    }
}

/// One vote between two distinct models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Battle {
    /// The model shown on the left.
    pub model_a: String,
    /// The model shown on the right.
    pub model_b: String,
    /// The vote.
    pub winner: Winner,
    /// Unix seconds of the vote, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tstamp: Option<f64>,
    /// Whether the battle was anonymous, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anony: Option<bool>,
    /// The conversation turn the vote was cast at, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
}

impl Battle {
    /// A vote between `model_a` and `model_b`, without a time, anonymity flag or turn.
    pub fn new(model_a: impl Into<String>, model_b: impl Into<String>, winner: Winner) -> Self {
        Self {
            model_a: model_a.into(),
            model_b: model_b.into(),
            winner,
            tstamp: None,
            anony: None,
            turn: None,
        }
    }
}

/// The six columns we read from a JSON row, each still raw so that a wrong type becomes a
/// readable reason rather than a serde message without the field's name.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct JsonRow {
    model_a: Option<Value>,
    model_b: Option<Value>,
    winner: Option<Value>,
    tstamp: Option<Value>,
    anony: Option<Value>,
    turn: Option<Value>,
    /// The public dataset's per-answer style counts (read only for style control).
    pub(crate) conv_metadata: Option<Value>,
}

impl JsonRow {
    /// The battle, or why the row is not one.
    pub(crate) fn into_battle(mut self) -> Result<Battle, String> {
        self.battle()
    }

    /// The battle without consuming the row's other fields.
    pub(crate) fn battle(&mut self) -> Result<Battle, String> {
        let model_a = json_name(self.model_a.take(), "model_a")?;
        let model_b = json_name(self.model_b.take(), "model_b")?;
        let winner = match self.winner.take() {
            Some(Value::String(s)) => parse_winner(&s)?,
            None | Some(Value::Null) => return Err("missing winner".into()),
            Some(other) => return Err(format!("winner is not a string: {other}")),
        };
        let tstamp = match self.tstamp.take() {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(other) => return Err(format!("tstamp is not a number: {other}")),
        };
        let anony = match self.anony.take() {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(b),
            Some(other) => return Err(format!("anony is not true or false: {other}")),
        };
        let turn = match self.turn.take() {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(
                n.as_f64()
                    .and_then(whole_u32)
                    .ok_or_else(|| format!("turn is not a whole number: {n}"))?,
            ),
            Some(other) => return Err(format!("turn is not a number: {other}")),
        };
        finish(model_a, model_b, winner, tstamp, anony, turn)
    }
}

/// The battle from CSV fields (`None`: the column is absent from the header).
pub(crate) fn battle_from_text(
    model_a: Option<&str>,
    model_b: Option<&str>,
    winner: Option<&str>,
    tstamp: Option<&str>,
    anony: Option<&str>,
    turn: Option<&str>,
) -> Result<Battle, String> {
    let model_a = text_name(model_a, "model_a")?;
    let model_b = text_name(model_b, "model_b")?;
    let winner = match winner.map(str::trim) {
        None | Some("") => return Err("missing winner".into()),
        Some(w) => parse_winner(w)?,
    };
    let tstamp = match present(tstamp) {
        None => None,
        Some(t) => Some(
            t.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("tstamp is not a number: '{t}'"))?,
        ),
    };
    let anony = match present(anony) {
        None => None,
        Some("true" | "True" | "TRUE" | "1") => Some(true),
        Some("false" | "False" | "FALSE" | "0") => Some(false),
        Some(a) => return Err(format!("anony is not true or false: '{a}'")),
    };
    let turn = match present(turn) {
        None => None,
        Some(t) => Some(
            t.parse::<f64>()
                .ok()
                .and_then(whole_u32)
                .ok_or_else(|| format!("turn is not a whole number: '{t}'"))?,
        ),
    };
    finish(model_a, model_b, winner, tstamp, anony, turn)
}

fn finish(
    model_a: String,
    model_b: String,
    winner: Winner,
    tstamp: Option<f64>,
    anony: Option<bool>,
    turn: Option<u32>,
) -> Result<Battle, String> {
    if model_a == model_b {
        return Err(format!(
            "model_a and model_b are the same model '{model_a}'"
        ));
    }
    Ok(Battle {
        model_a,
        model_b,
        winner,
        tstamp,
        anony,
        turn,
    })
}

fn parse_winner(s: &str) -> Result<Winner, String> {
    Winner::parse(s).ok_or_else(|| {
        format!("unknown winner '{s}' (expected model_a, model_b, tie or tie (bothbad))")
    })
}

fn json_name(v: Option<Value>, field: &str) -> Result<String, String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        None | Some(Value::Null) => Err(format!("missing {field}")),
        Some(Value::String(_)) => Err(format!("{field} is empty")),
        Some(other) => Err(format!("{field} is not a string: {other}")),
    }
}

fn text_name(v: Option<&str>, field: &str) -> Result<String, String> {
    match v {
        None => Err(format!("missing {field}")),
        Some(s) if s.trim().is_empty() => Err(format!("{field} is empty")),
        Some(s) => Ok(s.to_string()),
    }
}

/// A CSV field with content; pandas writes missing values as empty fields (or `NaN`).
fn present(v: Option<&str>) -> Option<&str> {
    v.map(str::trim)
        .filter(|s| !s.is_empty() && *s != "NaN" && *s != "nan")
}

/// Pandas writes an integer column that has gaps as floats (`2.0`).
fn whole_u32(x: f64) -> Option<u32> {
    (x.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&x)).then_some(x as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(line: &str) -> Result<Battle, String> {
        serde_json::from_str::<JsonRow>(line)
            .map_err(|e| e.to_string())
            .and_then(JsonRow::into_battle)
    }

    #[test]
    fn json_rows_are_checked_field_by_field() {
        let b = json(r#"{"model_a":"x","model_b":"y","winner":"tie (bothbad)","tstamp":1.5,"turn":2.0,"anony":true,"extra":[1]}"#)
            .expect("valid row");
        assert_eq!(b.winner, Winner::TieBothBad);
        assert_eq!(
            (b.tstamp, b.anony, b.turn),
            (Some(1.5), Some(true), Some(2))
        );
        let reasons = [
            (r#"{"model_b":"y","winner":"tie"}"#, "missing model_a"),
            (
                r#"{"model_a":"x","model_b":"y","winner":"draw"}"#,
                "unknown winner 'draw'",
            ),
            (
                r#"{"model_a":"x","model_b":"x","winner":"tie"}"#,
                "same model 'x'",
            ),
            (
                r#"{"model_a":"x","model_b":"y","winner":"tie","tstamp":"soon"}"#,
                "tstamp is not a number",
            ),
            (
                r#"{"model_a":"x","model_b":"y","winner":"tie","turn":1.5}"#,
                "turn is not a whole number",
            ),
            (
                r#"{"model_a":3,"model_b":"y","winner":"tie"}"#,
                "model_a is not a string",
            ),
        ];
        for (line, reason) in reasons {
            let err = json(line).expect_err(line);
            assert!(err.contains(reason), "{line}: {err}");
        }
    }

    #[test]
    fn text_fields_accept_pandas_spellings() {
        let b = battle_from_text(
            Some("x"),
            Some("y"),
            Some("model_b"),
            Some("NaN"),
            Some("True"),
            Some("3.0"),
        )
        .expect("valid");
        assert_eq!((b.tstamp, b.anony, b.turn), (None, Some(true), Some(3)));
        let err = battle_from_text(Some("x"), Some("y"), Some("tie"), Some("12:00"), None, None)
            .expect_err("bad tstamp");
        assert!(err.contains("tstamp is not a number: '12:00'"), "{err}");
    }
}

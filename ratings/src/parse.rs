//! The two shapes of command-line values the project parses by hand: `NAME=NUMBER`
//! (`--anchor`, `--battle-weights`) and one word of a fixed list (`--format`). Each flag
//! keeps its own words in its messages; the parsing is done once, here.
//!
//! They live in this crate because the anchor and the output formats are the ratings' own,
//! and the other users (the store's export formats, the site's battle weights) sit above it.

/// One `NAME=NUMBER`, split at the last `=`, both sides trimmed. `what` names the flag in the
/// messages, `shape` shows what was expected: `name_value("x", "anchor", "MODEL=RATING")`
/// fails with "anchor 'x' is not MODEL=RATING".
pub fn name_value(item: &str, what: &str, shape: &str) -> Result<(String, f64), String> {
    let (name, value) = item
        .rsplit_once('=')
        .ok_or_else(|| format!("{what} '{item}' is not {shape}"))?;
    let number: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{what} '{item}': '{value}' is not a number"))?;
    Ok((name.trim().to_string(), number))
}

/// The value of the word `s` among `choices`; `what` names the list in the message:
/// "unknown format 'yaml' (use table, json or csv)".
pub fn one_of<T: Copy>(s: &str, what: &str, choices: &[(&str, T)]) -> Result<T, String> {
    if let Some((_, value)) = choices.iter().find(|(word, _)| *word == s) {
        return Ok(*value);
    }
    let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
    let listed = match words.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Err(format!("unknown {what} '{s}' (use {listed})"))
}

/// Implements `FromStr` for a fieldless enum from its words, failing with [`one_of`]'s
/// message: `arena_ratings::from_words!(Format, "format", "table" => Table, "csv" => Csv);`
#[macro_export]
macro_rules! from_words {
    ($ty:ty, $what:literal, $($word:literal => $variant:ident),+ $(,)?) => {
        impl ::std::str::FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::parse::one_of(s, $what, &[$(($word, Self::$variant)),+])
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_value_splits_at_the_last_equals_sign() {
        assert_eq!(
            name_value(" a=b = 1.5 ", "anchor", "MODEL=RATING"),
            Ok(("a=b".to_string(), 1.5))
        );
        assert_eq!(
            name_value("llama", "anchor", "MODEL=RATING").unwrap_err(),
            "anchor 'llama' is not MODEL=RATING"
        );
        assert_eq!(
            name_value("a= x", "battle weight", "NAME=WEIGHT").unwrap_err(),
            "battle weight 'a= x': ' x' is not a number"
        );
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Shape {
        Round,
        Square,
    }
    crate::from_words!(Shape, "shape", "round" => Round, "square" => Square);

    #[test]
    fn from_words_parses_an_enum() {
        assert_eq!("square".parse::<Shape>(), Ok(Shape::Square));
        assert_eq!("round".parse::<Shape>(), Ok(Shape::Round));
        assert_eq!(
            "oval".parse::<Shape>().unwrap_err(),
            "unknown shape 'oval' (use round or square)"
        );
    }

    #[test]
    fn one_of_lists_the_choices() {
        let formats = [("table", 1), ("json", 2), ("csv", 3)];
        assert_eq!(one_of("csv", "format", &formats), Ok(3));
        assert_eq!(
            one_of("yaml", "format", &formats).unwrap_err(),
            "unknown format 'yaml' (use table, json or csv)"
        );
        assert_eq!(
            one_of(
                "x",
                "export format",
                &[("chatbot-arena", 1), ("sharegpt", 2)]
            )
            .unwrap_err(),
            "unknown export format 'x' (use chatbot-arena or sharegpt)"
        );
        assert_eq!(
            one_of("x", "thing", &[("only", ())]).unwrap_err(),
            "unknown thing 'x' (use only)"
        );
    }
}

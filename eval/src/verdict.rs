//! Reading a judge's verdict from its text. A verdict is taken only when the text gives
//! exactly one: no match, or two different ones, is unparseable and never guessed.

use std::sync::LazyLock;

use regex::Regex;

use crate::prompts::Mode;

/// A single-answer grade's bracketed form, MT-bench's `Rating: [[N]]`.
static RATING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]").expect("a valid pattern"));
/// The single-bracket form judges sometimes write instead (`Rating: [7]`), MT-bench's backup.
static RATING_BACKUP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\s*(\d+(?:\.\d+)?)\s*\]").expect("a valid pattern"));
/// A pairwise verdict, `[[A]]`, `[[B]]` or `[[C]]` (tie).
static PAIRWISE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[\s*([ABC])\s*\]\]").expect("a valid pattern"));
/// An Arena-Hard verdict such as `[[A>>B]]` or `[[B > A]]`.
static FIVE_LEVEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[\s*([AB][\s<>=]+[AB])\s*\]\]").expect("a valid pattern"));

/// The one distinct value among `values`, if there is exactly one.
fn only<T: PartialEq>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut it = values.into_iter();
    let first = it.next()?;
    for v in it {
        if v != first {
            return None;
        }
    }
    Some(first)
}

/// A 1–10 grade from `Rating: [[N]]` (or `[N]` when no double brackets appear).
pub fn rating(text: &str) -> Option<f64> {
    let grades = |re: &Regex| -> Vec<f64> {
        re.captures_iter(text)
            .filter_map(|c| c[1].parse::<f64>().ok())
            .collect()
    };
    let mut found = grades(&RATING);
    if found.is_empty() {
        found = grades(&RATING_BACKUP);
    }
    only(found).filter(|g| (1.0..=10.0).contains(g))
}

/// Which answer a pairwise judge prefers, as it saw them (A first, B second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairwise {
    /// `[[A]]`.
    A,
    /// `[[B]]`.
    B,
    /// `[[C]]`: a tie.
    Tie,
}

/// A pairwise verdict from `[[A]]`, `[[B]]` or `[[C]]`.
pub fn pairwise(text: &str) -> Option<Pairwise> {
    only(PAIRWISE.captures_iter(text).map(|c| match &c[1] {
        "A" => Pairwise::A,
        "B" => Pairwise::B,
        _ => Pairwise::Tie,
    }))
}

/// Arena-Hard's five levels, as the judge saw the answers (A first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `[[A>>B]]`: A is significantly better.
    AMuchBetter,
    /// `[[A>B]]`.
    ABetter,
    /// `[[A=B]]`.
    Same,
    /// `[[B>A]]`.
    BBetter,
    /// `[[B>>A]]`.
    BMuchBetter,
}

impl Level {
    /// The same judgment with the answers' positions exchanged.
    pub fn swapped(self) -> Self {
        match self {
            Self::AMuchBetter => Self::BMuchBetter,
            Self::ABetter => Self::BBetter,
            Self::Same => Self::Same,
            Self::BBetter => Self::ABetter,
            Self::BMuchBetter => Self::AMuchBetter,
        }
    }
}

/// Reads `X>>Y`, `X>Y`, `X=Y`, `X<Y`, `X<<Y` (spaces ignored) with X, Y the two letters.
fn level_of(raw: &str) -> Option<Level> {
    let s: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let (left, rest) = s.split_at(1);
    let (op, right) = rest.split_at(rest.len().checked_sub(1)?);
    let a_first = match (left, right) {
        ("A", "B") => true,
        ("B", "A") => false,
        _ => return None,
    };
    let for_a_first = match op {
        ">>" => Level::AMuchBetter,
        ">" => Level::ABetter,
        "=" | "==" => Level::Same,
        "<" => Level::BBetter,
        "<<" => Level::BMuchBetter,
        _ => return None,
    };
    Some(if a_first {
        for_a_first
    } else {
        for_a_first.swapped()
    })
}

/// An Arena-Hard verdict such as `[[A>>B]]`; `[[B<A]]` and `[[A = B]]` read as written.
pub fn five_level(text: &str) -> Option<Level> {
    let levels: Vec<Option<Level>> = FIVE_LEVEL
        .captures_iter(text)
        .map(|c| level_of(&c[1]))
        .collect();
    if levels.iter().any(Option::is_none) {
        return None;
    }
    only(levels.into_iter().flatten())
}

impl Level {
    /// The verdict as stored: `A>>B`, `A>B`, `A=B`, `B>A` or `B>>A`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AMuchBetter => "A>>B",
            Self::ABetter => "A>B",
            Self::Same => "A=B",
            Self::BBetter => "B>A",
            Self::BMuchBetter => "B>>A",
        }
    }
}

impl Pairwise {
    /// The verdict as stored: `A`, `B` or `C`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::B => "B",
            Self::Tie => "C",
        }
    }
}

/// What was read from one judge output, as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The verdict (`7`, `A`, `A>>B`, ...), None when unreadable.
    pub verdict: Option<String>,
    /// Single mode's grade.
    pub score: Option<f64>,
    /// Why nothing could be read.
    pub error: Option<String>,
}

/// Reads the verdict `mode` asks for from a judge's output.
pub fn read(mode: Mode, text: &str) -> Reading {
    let (verdict, score, expected) = match mode {
        Mode::Single => {
            let g = rating(text);
            (
                g.map(|g| g.to_string()),
                g,
                "one 'Rating: [[N]]' with N from 1 to 10",
            )
        }
        Mode::Pairwise => (
            pairwise(text).map(|v| v.as_str().to_string()),
            None,
            "one of [[A]], [[B]] or [[C]]",
        ),
        Mode::ArenaHard => (
            five_level(text).map(|v| v.as_str().to_string()),
            None,
            "one of [[A>>B]], [[A>B]], [[A=B]], [[B>A]] or [[B>>A]]",
        ),
    };
    let error = verdict
        .is_none()
        .then(|| format!("no readable verdict: expected exactly {expected}"));
    Reading {
        verdict,
        score,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_from_realistic_grades() {
        let judged = "The assistant's answer is accurate and well organised, though it omits \
                      the edge case of an empty list.\n\nRating: [[8]]";
        assert_eq!(rating(judged), Some(8.0));
        assert_eq!(rating("Rating: [[7.5]]"), Some(7.5));
        assert_eq!(rating("Bewertung: [[ 6 ]]"), Some(6.0));
        assert_eq!(rating("评分：[[9]]"), Some(9.0));
        // MT-bench's backup pattern when no double brackets appear.
        assert_eq!(rating("Rating: [4]"), Some(4.0));
        // The same grade repeated is one grade.
        assert_eq!(rating("[[5]] ... so, again, [[5]]"), Some(5.0));
    }

    #[test]
    fn unreadable_or_contradictory_grades_are_not_guessed() {
        for text in [
            "I would rate this highly.",
            "Rating: 8/10",
            "Rating: [[8]] or maybe [[9]]",
            "Rating: [[0]]",
            "Rating: [[11]]",
            "Rating: [[eight]]",
            "",
        ] {
            assert_eq!(rating(text), None, "{text}");
        }
        // Double brackets win over single ones: a cited list item is not the grade.
        assert_eq!(rating("Point [1] is wrong. Rating: [[3]]"), Some(3.0));
    }

    #[test]
    fn pairwise_verdicts() {
        let text = "Assistant A follows the instructions and cites the passage; Assistant B \
                    invents a date.\n\nFinal verdict: [[A]]";
        assert_eq!(pairwise(text), Some(Pairwise::A));
        assert_eq!(pairwise("[[B]]"), Some(Pairwise::B));
        assert_eq!(pairwise("It is a tie: [[C]]"), Some(Pairwise::Tie));
        assert_eq!(pairwise("Verdict: [[ A ]]"), Some(Pairwise::A));
        assert_eq!(pairwise("Urteil: [[B]]."), Some(Pairwise::B));
        for text in [
            "Assistant A is better.",
            "[A]",
            "Either [[A]] or [[B]], hard to say.",
            "[[D]]",
            "[[AB]]",
        ] {
            assert_eq!(pairwise(text), None, "{text}");
        }
    }

    #[test]
    fn five_level_verdicts_in_every_spelling() {
        assert_eq!(
            five_level("My final verdict is: [[A>>B]]"),
            Some(Level::AMuchBetter)
        );
        assert_eq!(five_level("[[A>B]]"), Some(Level::ABetter));
        assert_eq!(five_level("[[A=B]]"), Some(Level::Same));
        assert_eq!(five_level("[[B>A]]"), Some(Level::BBetter));
        assert_eq!(five_level("[[B>>A]]"), Some(Level::BMuchBetter));
        assert_eq!(five_level("[[ B > A ]]"), Some(Level::BBetter));
        assert_eq!(five_level("[[A<<B]]"), Some(Level::BMuchBetter));
        assert_eq!(five_level("[[B<A]]"), Some(Level::ABetter));
        assert_eq!(five_level("[[A>B]] ... [[A>B]]"), Some(Level::ABetter));
        for text in [
            "A is slightly better",
            "[[A>B]] then [[B>A]]",
            "[[A>>>B]]",
            "[[A>A]]",
            "[[A]]",
            "[[C>B]]",
        ] {
            assert_eq!(five_level(text), None, "{text}");
        }
        assert_eq!(Level::AMuchBetter.swapped().swapped(), Level::AMuchBetter);
    }

    #[test]
    fn readings_store_what_the_summary_reads_back() {
        let r = read(Mode::Single, "Good.\nRating: [[7.5]]");
        assert_eq!(
            (r.verdict.as_deref(), r.score, r.error),
            (Some("7.5"), Some(7.5), None)
        );
        let r = read(Mode::Single, "Rating: [[10]]");
        assert_eq!(r.verdict.as_deref(), Some("10"));
        let r = read(Mode::Pairwise, "Assistant B is better. [[B]]");
        assert_eq!(r.verdict.as_deref(), Some("B"));
        assert_eq!(
            pairwise(&format!("[[{}]]", r.verdict.unwrap())),
            Some(Pairwise::B)
        );
        for level in [
            Level::AMuchBetter,
            Level::ABetter,
            Level::Same,
            Level::BBetter,
            Level::BMuchBetter,
        ] {
            assert_eq!(five_level(&format!("[[{}]]", level.as_str())), Some(level));
        }
        let r = read(Mode::ArenaHard, "My final verdict is tie: [[A=B]]");
        assert_eq!(r.verdict.as_deref(), Some("A=B"));
        let r = read(Mode::Pairwise, "I cannot decide.");
        assert_eq!(r.verdict, None);
        assert!(r.error.unwrap().contains("[[A]], [[B]] or [[C]]"));
    }
}

//! The judge's prompts: Jinja templates shipped in `eval/prompts/`, each replaceable by a file
//! of the same name in a folder the user gives. Every prompt asks for a verdict in the form
//! [`crate::verdict`] reads.

use std::path::Path;

use minijinja::{context, Environment};
use serde::Serialize;

use crate::EvalError;

/// How the judge is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One answer graded 1–10 (`Rating: [[N]]`).
    Single,
    /// Two answers, `[[A]]`, `[[B]]` or `[[C]]`.
    Pairwise,
    /// Two answers on Arena-Hard's five levels (`[[A>>B]]` … `[[B>>A]]`).
    ArenaHard,
}

impl Mode {
    /// Every mode.
    pub const ALL: [Mode; 3] = [Mode::Single, Mode::Pairwise, Mode::ArenaHard];

    /// The template's file name.
    pub fn file_name(self) -> &'static str {
        match self {
            Mode::Single => "single.jinja",
            Mode::Pairwise => "pairwise.jinja",
            Mode::ArenaHard => "arena-hard.jinja",
        }
    }

    /// Its name in the store and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::Pairwise => "pairwise",
            Mode::ArenaHard => "arena-hard",
        }
    }

    fn builtin(self) -> &'static str {
        match self {
            Mode::Single => include_str!("../prompts/single.jinja"),
            Mode::Pairwise => include_str!("../prompts/pairwise.jinja"),
            Mode::ArenaHard => include_str!("../prompts/arena-hard.jinja"),
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown mode '{s}': use single, pairwise or arena-hard"))
    }
}

/// One turn of a conversation with one answer, for [`Mode::Single`].
#[derive(Debug, Clone, Serialize)]
pub struct SingleTurn<'a> {
    /// The user's message.
    pub question: &'a str,
    /// The graded model's answer.
    pub answer: &'a str,
    /// The reference answer, for reference categories.
    pub reference: Option<&'a str>,
}

/// One turn with two answers, for [`Mode::Pairwise`] and [`Mode::ArenaHard`].
#[derive(Debug, Clone, Serialize)]
pub struct PairTurn<'a> {
    /// The user's message.
    pub question: &'a str,
    /// The answer shown first.
    pub answer_a: &'a str,
    /// The answer shown second.
    pub answer_b: &'a str,
    /// The reference answer, for reference categories.
    pub reference: Option<&'a str>,
}

/// The three prompts, checked to parse.
#[derive(Debug)]
pub struct JudgePrompts {
    env: Environment<'static>,
}

fn bad_prompt(name: &str, e: impl std::fmt::Display) -> EvalError {
    EvalError::Prompt(format!(
        "the judge prompt {name} is not a valid template: {e}"
    ))
}

impl JudgePrompts {
    /// The prompts shipped with the project.
    pub fn builtin() -> Result<Self, EvalError> {
        Self::with(|_| Ok(None))
    }

    /// The shipped prompts, each replaced by the file of the same name in `dir` when there is
    /// one (`single.jinja`, `pairwise.jinja`, `arena-hard.jinja`).
    pub fn from_dir(dir: &Path) -> Result<Self, EvalError> {
        Self::with(|mode| {
            let path = dir.join(mode.file_name());
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(EvalError::Read { path, source }),
            }
        })
    }

    fn with(
        mut replacement: impl FnMut(Mode) -> Result<Option<String>, EvalError>,
    ) -> Result<Self, EvalError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for mode in Mode::ALL {
            let source = replacement(mode)?.unwrap_or_else(|| mode.builtin().to_string());
            env.add_template_owned(mode.file_name().trim_end_matches(".jinja"), source)
                .map_err(|e| bad_prompt(mode.file_name(), e))?;
        }
        Ok(Self { env })
    }

    fn render(&self, mode: Mode, ctx: minijinja::Value) -> Result<String, EvalError> {
        let name = mode.file_name().trim_end_matches(".jinja");
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| {
                EvalError::Prompt(format!(
                    "rendering the judge prompt {}: {e}",
                    mode.file_name()
                ))
            })
    }

    /// The prompt grading the last turn of `turns`.
    pub fn single(&self, turns: &[SingleTurn<'_>]) -> Result<String, EvalError> {
        let reference = turns.iter().any(|t| t.reference.is_some());
        self.render(
            Mode::Single,
            context! { turns => turns, reference => reference },
        )
    }

    /// The prompt comparing two answers to the last turn of `turns` (`mode` is
    /// [`Mode::Pairwise`] or [`Mode::ArenaHard`]).
    pub fn pair(&self, mode: Mode, turns: &[PairTurn<'_>]) -> Result<String, EvalError> {
        let reference = turns.iter().any(|t| t.reference.is_some());
        self.render(mode, context! { turns => turns, reference => reference })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict;

    fn pair<'a>(q: &'a str, a: &'a str, b: &'a str) -> PairTurn<'a> {
        PairTurn {
            question: q,
            answer_a: a,
            answer_b: b,
            reference: None,
        }
    }

    #[test]
    fn shipped_prompts_show_every_turn_and_ask_for_a_readable_verdict() {
        let p = JudgePrompts::builtin().unwrap();
        let turns = [
            SingleTurn {
                question: "What is 12 * 12?",
                answer: "144",
                reference: Some("144"),
            },
            SingleTurn {
                question: "And 13 * 13?",
                answer: "169",
                reference: Some("169"),
            },
        ];
        let text = p.single(&turns).unwrap();
        for needle in [
            "What is 12 * 12?",
            "And 13 * 13?",
            "reference answer",
            "169",
            "last turn",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        // The format the prompt asks for is the one the parser reads.
        assert_eq!(verdict::rating("Rating: [[5]]"), Some(5.0));
        assert!(text.contains("\"Rating: [[5]]\""), "{text}");
        let one = p.single(&turns[..1]).unwrap();
        assert!(!one.contains("last turn"), "{one}");

        let text = p
            .pair(Mode::Pairwise, &[pair("Q?", "first", "second")])
            .unwrap();
        assert!(text.contains("first") && text.contains("second"), "{text}");
        assert!(!text.contains("reference answer"), "{text}");
        assert!(
            text.contains("\"[[A]]\"") && text.contains("\"[[C]]\""),
            "{text}"
        );
        let hard = p
            .pair(Mode::ArenaHard, &[pair("Q?", "first", "second")])
            .unwrap();
        assert!(
            hard.contains("[[A>>B]]") && hard.contains("[[B>>A]]"),
            "{hard}"
        );
        // Answers are text: nothing in them is escaped or interpreted.
        let text = p
            .pair(
                Mode::Pairwise,
                &[pair("<b>Q</b> {{ x }}", "a & b", "\"c\"")],
            )
            .unwrap();
        assert!(
            text.contains("<b>Q</b> {{ x }}") && text.contains("a & b"),
            "{text}"
        );
    }

    #[test]
    fn a_folder_replaces_only_the_prompts_it_holds_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("single.jinja"),
            "Grade: {{ turns[-1].answer }} as Rating: [[N]]",
        )
        .unwrap();
        let p = JudgePrompts::from_dir(dir.path()).unwrap();
        let turn = SingleTurn {
            question: "q",
            answer: "my answer",
            reference: None,
        };
        assert_eq!(
            p.single(&[turn]).unwrap(),
            "Grade: my answer as Rating: [[N]]"
        );
        assert!(p
            .pair(Mode::Pairwise, &[pair("q", "a", "b")])
            .unwrap()
            .contains("[[C]]"));
        std::fs::write(dir.path().join("pairwise.jinja"), "{% if %}").unwrap();
        let e = JudgePrompts::from_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("pairwise.jinja is not a valid template"), "{e}");
        std::fs::write(dir.path().join("pairwise.jinja"), "{{ nope }}").unwrap();
        let p = JudgePrompts::from_dir(dir.path()).unwrap();
        let e = p
            .pair(Mode::Pairwise, &[pair("q", "a", "b")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rendering the judge prompt pairwise.jinja"),
            "{e}"
        );
    }
}

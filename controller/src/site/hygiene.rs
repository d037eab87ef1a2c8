//! Vote hygiene at vote time: a vote counts for the leaderboard only when both answers ended
//! normally and neither revealed a model's identity (FastChat only filtered these offline).
//! The client rules (delay, votes per hour, same-side streaks) are the store's, applied with
//! the voter locked.

use arena_store::{Exclusion, ExclusionRule};

/// True when `needle` occurs in `haystack` (both lower case) as a whole word or phrase.
fn contains_word(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let bytes = haystack.as_bytes();
    let is_word = |i: usize| bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric());
    haystack.match_indices(needle).any(|(at, _)| {
        let before = at.checked_sub(1).is_some_and(is_word);
        !before && !is_word(at + needle.len())
    })
}

/// The names a model may go by: the served name and its stem before a parenthesis
/// (`smollm2-135m (vicuna template)` is also `smollm2-135m`).
fn name_forms(name: &str) -> Vec<String> {
    let lower = name.to_lowercase();
    let stem = lower.split(" (").next().unwrap_or("").trim().to_string();
    let mut forms = vec![lower.trim().to_string()];
    if !stem.is_empty() && stem != forms[0] {
        forms.push(stem);
    }
    forms
}

/// What in `answer` reveals an identity, if anything: one of the `models`' names or one of
/// the identity `phrases`, matched case-insensitively as whole words.
pub fn identity_leak(answer: &str, models: &[String], phrases: &[String]) -> Option<String> {
    let text = answer.to_lowercase();
    models
        .iter()
        .flat_map(|m| name_forms(m))
        .chain(phrases.iter().map(|p| p.to_lowercase()))
        .find(|needle| contains_word(&text, needle.trim()))
}

/// Why a vote on a battle whose names were shown does not count: the voter was no blind judge.
pub fn names_shown() -> Exclusion {
    Exclusion {
        rule: ExclusionRule::NamesShown,
        reason: "the names were shown (side-by-side battle), so the vote does not rank models"
            .into(),
    }
}

/// Why a vote on these answers does not count, or None when it does. `answers` are
/// (side, text, finish_reason) of every current answer in the battle.
pub fn exclusion_reason(
    answers: &[(char, &str, Option<&str>)],
    models: &[String],
    phrases: &[String],
) -> Option<Exclusion> {
    if let Some((side, _, _)) = answers.iter().find(|(_, _, f)| *f == Some("error")) {
        return Some(Exclusion {
            rule: ExclusionRule::AnswerError,
            reason: format!(
                "model {}'s answer ended in an error",
                side.to_ascii_uppercase()
            ),
        });
    }
    answers.iter().find_map(|(side, text, _)| {
        identity_leak(text, models, phrases).map(|what| Exclusion {
            rule: ExclusionRule::IdentityLeak,
            reason: format!(
                "model {}'s answer revealed a model identity (\"{what}\")",
                side.to_ascii_uppercase()
            ),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn names_and_phrases_are_found_as_whole_words() {
        let models = s(&["smollm2-135m (vicuna template)", "tiny"]);
        let phrases = s(&["hugging face"]);
        assert_eq!(
            identity_leak("I am SMOLLM2-135M, nice.", &models, &phrases).as_deref(),
            Some("smollm2-135m")
        );
        assert_eq!(
            identity_leak("Trained by Hugging Face!", &models, &phrases).as_deref(),
            Some("hugging face")
        );
        assert_eq!(
            identity_leak("I am Tiny.", &models, &phrases).as_deref(),
            Some("tiny")
        );
        // Inside another word is not a mention.
        assert_eq!(
            identity_leak("Destiny and tinyness", &models, &phrases),
            None
        );
        assert_eq!(identity_leak("Paris.", &models, &phrases), None);
    }

    #[test]
    fn errors_come_before_leaks_and_clean_answers_count() {
        let models = s(&["alpha", "beta"]);
        let none: Vec<String> = Vec::new();
        let r = exclusion_reason(
            &[('a', "I am beta", Some("stop")), ('b', "", Some("error"))],
            &models,
            &none,
        )
        .unwrap();
        assert_eq!(r.rule, ExclusionRule::AnswerError);
        assert_eq!(r.reason, "model B's answer ended in an error");
        let r = exclusion_reason(
            &[
                ('a', "Hi", Some("stop")),
                ('b', "I am Alpha.", Some("length")),
            ],
            &models,
            &none,
        )
        .unwrap();
        assert_eq!(r.rule, ExclusionRule::IdentityLeak);
        assert_eq!(
            r.reason,
            "model B's answer revealed a model identity (\"alpha\")"
        );
        assert_eq!(names_shown().rule, ExclusionRule::NamesShown);
        assert_eq!(
            exclusion_reason(
                &[('a', "Hi", Some("stop")), ('b', "Hello", Some("stop"))],
                &models,
                &none
            ),
            None
        );
    }
}

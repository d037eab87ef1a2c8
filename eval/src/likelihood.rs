//! Verdicts read from a judge's likelihoods instead of its text. The judge's reply is begun for
//! it (`[[`, a prefill), it is asked for one token with the log-probabilities of its likeliest
//! tokens, and the verdict is the one of `A`, `B` and `C` it most likely writes next. A small
//! local judge that never writes a verdict in the asked form still gives one this way (the idea
//! of G-Eval's probability-weighted scores, applied to MT-bench's pairwise verdicts). The
//! judgment's score keeps the preference for the answer shown first, P(A) − P(B) as shares of
//! the three letters, so the two orders of a pair are combined position-balanced
//! ([`crate::swap::combine_games`]).

use crate::prompts::Mode;
use crate::verdict::{Pairwise, Reading};
use crate::EvalError;

/// The reply's beginning given to the judge: the verdict letter comes next.
pub const PREFILL: &str = "[[";
/// How many of the likeliest next tokens the judge is asked for (OpenAI's most).
pub const ALTERNATIVES: u32 = 20;

/// Where a verdict is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerdictFrom {
    /// The judge's written output (MT-bench's way).
    #[default]
    Text,
    /// The judge's likelihoods of the verdict letters after [`PREFILL`].
    Likelihood,
}

impl VerdictFrom {
    /// The judge's name in the store: likelihood verdicts are kept apart from written ones,
    /// so neither run skips the other's judgments.
    pub fn stored_judge(self, judge: &str) -> String {
        match self {
            Self::Text => judge.to_string(),
            Self::Likelihood => format!("{judge} (likelihood)"),
        }
    }

    /// Refuses modes whose verdicts are not one token.
    pub fn check(self, mode: Mode) -> Result<(), EvalError> {
        if self == Self::Likelihood && mode != Mode::Pairwise {
            return Err(EvalError::Invalid(format!(
                "verdicts from likelihoods need one-token verdicts: use --mode pairwise ([[A]], [[B]] or [[C]]), not {}",
                mode.name()
            )));
        }
        Ok(())
    }
}

impl std::str::FromStr for VerdictFrom {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "likelihood" => Ok(Self::Likelihood),
            other => Err(format!(
                "unknown verdict source '{other}' (use text or likelihood)"
            )),
        }
    }
}

/// The pairwise verdict from the judge's likeliest next tokens `(token, logprob)`, and the
/// output stored for it (the verdict and each letter's probability).
pub fn read_pairwise(alternatives: &[(String, f64)]) -> (Reading, String) {
    let mut p = [0.0f64; 3];
    for (token, logprob) in alternatives {
        let slot = match token.trim() {
            "A" => 0,
            "B" => 1,
            "C" => 2,
            _ => continue,
        };
        if logprob.is_finite() {
            p[slot] += logprob.exp();
        }
    }
    let shown = format!(
        "likelihoods after \"{PREFILL}\": A {:.4}, B {:.4}, C {:.4}",
        p[0], p[1], p[2]
    );
    let best = (0..3).fold(0, |b, i| if p[i] > p[b] { i } else { b });
    let unique = p.iter().filter(|x| **x == p[best]).count() == 1;
    if p[best] <= 0.0 || !unique {
        let why = if p[best] <= 0.0 {
            format!(
                "no readable verdict: none of A, B or C among the judge's {} likeliest next tokens",
                ALTERNATIVES
            )
        } else {
            "no readable verdict: the likeliest letters are equally likely".to_string()
        };
        return (
            Reading {
                verdict: None,
                score: None,
                error: Some(why),
            },
            shown,
        );
    }
    let verdict = [Pairwise::A, Pairwise::B, Pairwise::Tie][best];
    let mass: f64 = p.iter().sum();
    (
        Reading {
            verdict: Some(verdict.as_str().to_string()),
            score: Some((p[0] - p[1]) / mass),
            error: None,
        },
        format!("[[{}]] ({shown})", verdict.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alts(list: &[(&str, f64)]) -> Vec<(String, f64)> {
        list.iter().map(|(t, p)| (t.to_string(), p.ln())).collect()
    }

    #[test]
    fn the_likeliest_letter_is_the_verdict_with_spellings_summed() {
        // "B" and " B" are one letter: 0.25 + 0.2 beats A's 0.4.
        let (r, out) = read_pairwise(&alts(&[
            ("A", 0.4),
            ("B", 0.25),
            (" B", 0.2),
            ("The", 0.1),
            ("C", 0.05),
        ]));
        assert_eq!(r.verdict.as_deref(), Some("B"));
        assert!(out.starts_with("[[B]]"), "{out}");
        assert!(out.contains("B 0.4500"), "{out}");
        // The preference for the first-shown answer, as a share of the letters' mass.
        let pref = r.score.unwrap();
        assert!((pref - (0.4 - 0.45) / 0.9).abs() < 1e-9, "{pref}");
        let (r, _) = read_pairwise(&alts(&[("C", 0.3), ("A", 0.2)]));
        assert_eq!(r.verdict.as_deref(), Some("C"));
    }

    #[test]
    fn no_letter_or_a_dead_heat_is_unreadable_never_guessed() {
        let (r, out) = read_pairwise(&alts(&[("The", 0.9), ("AB", 0.1)]));
        assert_eq!(r.verdict, None);
        assert!(r.error.unwrap().contains("none of A, B or C"));
        assert!(out.contains("A 0.0000"), "{out}");
        let (r, _) = read_pairwise(&alts(&[("A", 0.3), ("B", 0.3)]));
        assert_eq!(r.verdict, None);
        let (r, _) = read_pairwise(&[("A".into(), f64::NAN), ("B".into(), f64::NEG_INFINITY)]);
        assert_eq!(r.verdict, None);
    }

    #[test]
    fn only_pairwise_mode_reads_likelihoods_and_the_store_keeps_them_apart() {
        assert!(VerdictFrom::Likelihood.check(Mode::Pairwise).is_ok());
        for mode in [Mode::Single, Mode::ArenaHard] {
            let err = VerdictFrom::Likelihood.check(mode).unwrap_err();
            assert!(err.to_string().contains("--mode pairwise"), "{err}");
            assert!(VerdictFrom::Text.check(mode).is_ok());
        }
        assert_eq!(VerdictFrom::Text.stored_judge("j"), "j");
        assert_eq!(VerdictFrom::Likelihood.stored_judge("j"), "j (likelihood)");
        assert_eq!("likelihood".parse(), Ok(VerdictFrom::Likelihood));
        assert!("logits".parse::<VerdictFrom>().is_err());
    }
}

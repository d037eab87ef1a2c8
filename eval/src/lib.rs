//! LLM-as-a-judge, the Vicuna / MT-bench / Arena-Hard method: question sets, the judge's
//! verdicts read from its text, and pairwise judgments made twice with positions swapped.
//! Talks to no server itself: answer generation and judging build on these pieces.
#![forbid(unsafe_code)]

mod error;
pub mod prompts;
pub mod questions;
pub mod report;
pub mod swap;
pub mod verdict;

pub use error::EvalError;

//! LLM-as-a-judge, the Vicuna / MT-bench / Arena-Hard method: question sets, the judge's
//! verdicts read from its text, and pairwise judgments made twice with positions swapped.
//! Answers and judgments go to the store's ledger (`arena_store::EvalLedger`) as they come, so
//! every run resumes; contestants and judges are any OpenAI-compatible endpoint.
#![forbid(unsafe_code)]

pub mod agreement;
pub mod battles;
pub mod chart;
pub mod client;
mod error;
pub mod generate;
pub mod judge;
pub mod likelihood;
pub mod progress;
pub mod prompts;
pub mod questions;
pub mod render;
pub mod report;
pub mod summary;
pub mod swap;
pub mod verdict;

pub use error::EvalError;

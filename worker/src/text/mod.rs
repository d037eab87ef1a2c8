//! Text <-> ids: the tokenizer, conversation templates and stop strings.

pub mod guard;
pub mod stop;
pub mod template;
pub mod tokenizer;

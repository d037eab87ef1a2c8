//! `arena tokenize`: a text's token ids.

use std::path::PathBuf;

use clap::Args;

/// Flags of `arena tokenize`.
#[derive(Args, Debug)]
pub struct TokenizeArgs {
    /// A `.gguf` file or a Hugging Face folder.
    #[arg(long)]
    pub model: PathBuf,
    /// The text to tokenize.
    #[arg(long)]
    pub text: String,
    /// Add BOS/EOS as the model's tokenizer would for a prompt.
    #[arg(long)]
    pub add_special: bool,
}

impl TokenizeArgs {
    /// Prints the ids as one JSON array.
    pub fn run(self) -> anyhow::Result<()> {
        let json = arena_worker::run::tokenize(&self.model, &self.text, self.add_special)?;
        println!("{json}");
        Ok(())
    }
}

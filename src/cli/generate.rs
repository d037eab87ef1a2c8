//! `arena generate`: text from a model file, locally.

use arena_worker::generate::params::RawParams;
use arena_worker::run::{self, GenerateOptions};
use arena_worker::serve::served::Input;
use clap::Args;

use super::ModelArgs;

/// Sampling flags shared by local generation.
#[derive(Args, Debug)]
pub struct SamplingArgs {
    /// New tokens at most.
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: u32,
    /// Temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Top-k cut-off (0: off).
    #[arg(long, default_value_t = 0)]
    pub top_k: u32,
    /// Repetition penalty (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// Seed for reproducible sampling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop string (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
}

/// Flags of `arena generate`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["prompt", "chat"])))]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Raw prompt, tokenized as is.
    #[arg(long)]
    pub prompt: Option<String>,
    /// One user message, rendered with the conversation template.
    #[arg(long)]
    pub chat: Option<String>,
    /// System message replacing the template's default.
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

impl GenerateArgs {
    /// Generates, writing the text alone to stdout.
    pub async fn run(self) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout();
        run::generate(self.options(), &mut stdout).await?;
        Ok(())
    }

    /// Library options for these flags.
    fn options(self) -> GenerateOptions {
        let s = self.sampling;
        let input = match (self.prompt, self.chat) {
            (Some(p), _) => Input::Prompt(p),
            (None, Some(c)) => run::chat_input(&c),
            (None, None) => run::chat_input(""),
        };
        GenerateOptions {
            model: self.model.options(None),
            input,
            system: self.system,
            params: RawParams {
                temperature: Some(s.temperature),
                top_p: Some(s.top_p),
                top_k: Some(s.top_k),
                repetition_penalty: Some(s.repetition_penalty),
                max_new_tokens: Some(s.max_new_tokens),
                stop: s.stop,
                stop_token_ids: Vec::new(),
                seed: s.seed,
            },
        }
    }
}

//! `arena train sft`: fine-tune a model on conversations (the Vicuna recipe).

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// What to train.
#[derive(Subcommand, Debug)]
pub enum TrainCommand {
    /// Supervised fine-tuning on ShareGPT conversations, loss on the assistant's tokens only;
    /// writes a Hugging Face folder `arena worker --model DIR` serves.
    Sft(SftArgs),
}

impl TrainCommand {
    /// Runs the training and prints its report.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Sft(args) => args.run().await,
        }
    }
}

/// Flags of `arena train sft`.
#[derive(Args, Debug)]
pub struct SftArgs {
    /// The model to start from: a `.gguf` file (dequantized to f32) or a Hugging Face folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Conversations as JSON lines: ShareGPT (`arena export --format sharegpt`,
    /// scripts/fetch-sft-data.sh) or OpenAI `messages`.
    #[arg(long)]
    pub data: PathBuf,
    /// The folder to write (config.json, model.safetensors, tokenizer files).
    #[arg(long)]
    pub out: PathBuf,
    /// Passes over the training conversations.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Peak learning rate (FastChat's recipe: 2e-5).
    #[arg(long, default_value_t = 2e-5)]
    pub lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Share of the steps spent warming the learning rate up, before the cosine decay.
    #[arg(long, default_value_t = 0.03)]
    pub warmup_ratio: f64,
    /// Sequences per optimizer step (gradient accumulation).
    #[arg(long, default_value_t = 8)]
    pub grad_accum: usize,
    /// Longest training sequence in tokens; longer conversations are cut into pieces.
    #[arg(long, default_value_t = 512)]
    pub max_len: usize,
    /// Clip the gradients' global norm to this (0: off).
    #[arg(long, default_value_t = 1.0)]
    pub clip: f64,
    /// Share of the conversations held out to measure the loss on.
    #[arg(long, default_value_t = 0.05)]
    pub eval_fraction: f64,
    /// Seed of the held-out split and the shuffles.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop after this many optimizer steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// A built-in conversation template instead of the model's own.
    #[arg(long)]
    pub template: Option<String>,
    /// Train low-rank adapters of this rank on the attention and MLP projections instead of
    /// every weight (0: full fine-tuning); they are merged into the weights on save.
    #[arg(long, default_value_t = 0)]
    pub lora_rank: usize,
    /// LoRA's alpha: the update is scaled by alpha / rank (default: twice the rank).
    #[arg(long)]
    pub lora_alpha: Option<f64>,
    /// Save a checkpoint to OUT/checkpoint every this many optimizer steps (0: never); the
    /// same command run again resumes from it.
    #[arg(long, default_value_t = 20)]
    pub checkpoint_every: usize,
    /// Stop after this many steps of this run, leaving a checkpoint to resume from.
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Start over, discarding a checkpoint in OUT.
    #[arg(long)]
    pub fresh: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl SftArgs {
    async fn run(self) -> anyhow::Result<()> {
        let mut opts = arena_train::run::SftOptions::new(self.model, self.data, self.out);
        opts.epochs = self.epochs;
        opts.lr = self.lr;
        opts.weight_decay = self.weight_decay;
        opts.warmup_ratio = self.warmup_ratio;
        opts.grad_accum = self.grad_accum;
        opts.max_len = self.max_len;
        opts.clip = self.clip;
        opts.eval_fraction = self.eval_fraction;
        opts.seed = self.seed;
        opts.max_steps = self.max_steps;
        opts.template = self.template;
        opts.lora_rank = self.lora_rank;
        opts.lora_alpha = self.lora_alpha;
        opts.checkpoint_every = self.checkpoint_every;
        opts.stop_after = self.stop_after;
        opts.fresh = self.fresh;
        opts.progress = !self.json;
        let out = opts.out.clone();
        let report = tokio::task::spawn_blocking(move || arena_train::run::sft(&opts)).await??;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(());
        }
        let loss = |l: Option<f64>| l.map_or("-".to_string(), |l| format!("{l:.4}"));
        if let Some(step) = report.resumed_from {
            println!("resumed from the checkpoint at step {step}");
        }
        if !report.finished {
            println!(
                "stopped at step {} of {} ({} tokens, {:.0} s so far); run the same command \
                 again to go on from the checkpoint in {}",
                report.steps,
                report.total_steps,
                report.train_tokens,
                report.train_seconds,
                out.join("checkpoint").display()
            );
            return Ok(());
        }
        println!(
            "trained {} parameters ({}) on {} conversations ({} sequences, {} tokens) in {} steps, \
             {:.0} s ({:.0} tokens/s)\nheld-out loss ({} conversations): {} before, {} after\n\
             wrote {}",
            report.parameters,
            match report.tuning {
                arena_train::model::Tuning::Full => "every weight".to_string(),
                arena_train::model::Tuning::Lora { rank, alpha } =>
                    format!("LoRA rank {rank}, alpha {alpha}, merged"),
            },
            report.train_conversations,
            report.train_sequences,
            report.train_tokens,
            report.steps,
            report.train_seconds,
            report.train_tokens as f64 / report.train_seconds.max(1e-9),
            report.eval_conversations,
            loss(report.eval_loss_before),
            loss(report.eval_loss_after),
            out.display()
        );
        Ok(())
    }
}

//! `arena export`: the store's votes or conversations as JSON lines.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// Flags of `arena export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// chatbot-arena (one vote per line) or sharegpt (one conversation per line).
    #[arg(long)]
    pub format: arena_store::export::Format,
    /// The arena's database (default: sqlite://$ARENA_HOME/arena.db).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Also export votes that do not count for the leaderboard (chatbot-arena).
    #[arg(long)]
    pub all: bool,
    /// Leave out conversations begun without accepting the page's terms of use (API clients,
    /// older rows), and votes on battles with such a conversation.
    #[arg(long)]
    pub accepted_terms_only: bool,
    /// Write here instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

impl ExportArgs {
    /// Writes the export and counts its rows on stderr.
    pub async fn run(self) -> anyhow::Result<()> {
        let store =
            arena_store::connect(&super::database_url_or_default(self.database_url)).await?;
        let mut out: Box<dyn std::io::Write + Send> = match &self.output {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            )),
            None => Box::new(std::io::BufWriter::new(std::io::stdout())),
        };
        let filter = arena_store::ExportFilter {
            all_votes: self.all,
            accepted_terms_only: self.accepted_terms_only,
        };
        let n = arena_store::export::export(&*store, self.format, filter, &mut *out).await?;
        eprintln!("arena export: {n} rows");
        Ok(())
    }
}

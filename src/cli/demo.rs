//! `arena demo`: a controller and two contestants on this machine (`arena_launch::demo`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Flags of `arena demo`; the controller's other settings come from their environment
/// variables (DATABASE_URL, ARENA_HOME, ...).
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the web page and the APIs listen.
    #[arg(long, env = "ARENA_HTTP_ADDR", default_value = arena_controller::config::DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,
    /// Where the model is kept (default: ~/.cache/arena/models).
    #[arg(long, env = "ARENA_MODELS")]
    pub models_dir: Option<PathBuf>,
    /// Model catalog shown on the page (default: the demo models' own, as in models.toml).
    #[arg(long, env = "ARENA_MODEL_INFO", value_name = "FILE")]
    pub model_info: Option<PathBuf>,
    /// Serve SmolLM2 fine-tuned on the AlpacaEval answers (`smollm2-135m-alpaca`) beside
    /// the original, fine-tuning it first on the first run (about an hour on 2 cores, then
    /// cached in the models folder; interrupted runs resume).
    #[arg(long)]
    pub train: bool,
}

impl DemoArgs {
    /// Runs the demo until `shutdown` resolves; `threads` is the global `--threads`.
    pub async fn run(
        self,
        threads: Option<usize>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let opts = arena_launch::demo::DemoOptions {
            arena: super::current_exe()?,
            http_addr: self.http_addr,
            models_dir: self.models_dir.unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".cache/arena/models")
            }),
            // Two contestants share the cores unless --threads says otherwise.
            threads_per_worker: threads.unwrap_or((cores / 2).max(1)),
            model_info: self.model_info.filter(|p| !p.as_os_str().is_empty()),
            train: self.train,
        };
        arena_launch::demo::run(opts, shutdown).await?;
        Ok(())
    }
}

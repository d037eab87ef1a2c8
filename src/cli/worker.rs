//! `arena worker`: one model served over gRPC.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use arena_worker::run::{TlsFiles, WorkerOptions};
use clap::Args;

use super::ModelArgs;

/// Flags of `arena worker`.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Name the model is served under (default: the file or folder name).
    #[arg(long, env = "ARENA_MODEL_NAME")]
    pub name: Option<String>,
    /// gRPC listen address; port 0 picks a free port.
    #[arg(long, env = "ARENA_WORKER_LISTEN", default_value = "127.0.0.1:21002")]
    pub listen: SocketAddr,
    /// URL the controller dials to reach this worker (default: http://<listen address>, or
    /// https:// with --tls-cert).
    #[arg(long, env = "ARENA_WORKER_ADVERTISE")]
    pub advertise: Option<String>,
    /// Controller gRPC URL, e.g. http://127.0.0.1:21001; standalone when absent.
    #[arg(long, env = "ARENA_CONTROLLER")]
    pub controller: Option<String>,
    /// Shared secret presented on registration and required of every caller of this worker
    /// (the controller sends it).
    #[arg(long, env = "ARENA_WORKER_TOKEN", hide_env_values = true)]
    pub worker_token: Option<String>,
    /// Serve gRPC over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "ARENA_WORKER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "ARENA_WORKER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificate (PEM) trusted beside the system roots when --controller is https://.
    #[arg(long, env = "ARENA_CONTROLLER_CA")]
    pub controller_ca: Option<PathBuf>,
    /// Worker id (default: the model name plus a random suffix).
    #[arg(long, env = "ARENA_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Sequences generated at once; more requests wait in a queue.
    #[arg(long, env = "ARENA_MAX_CONCURRENCY", default_value_t = 8)]
    pub max_concurrency: usize,
    /// MiB of finished sequences' keys and values kept, so that the next turn of a
    /// conversation (which re-sends the whole conversation) prefills only what is new; least
    /// recently used first out; 0 turns it off.
    #[arg(long, env = "ARENA_PREFIX_CACHE_MIB", default_value_t = 512)]
    pub prefix_cache: usize,
    /// Every row's logits exactly as if it were computed alone, whatever shares its step (a
    /// prefix-cache hit then answers bit for bit as a fresh prefill): quantized and f32 models
    /// always are; F16/BF16 prompts leave AMX tiles (and, on AVX2, the f32 GEMM) for slower
    /// kernels that add as decode does.
    #[arg(long, env = "ARENA_BATCH_INVARIANT")]
    pub batch_invariant: bool,
    /// Heartbeat period in milliseconds, unless the controller sets one.
    #[arg(long, env = "ARENA_HEARTBEAT_MS", default_value_t = 2000)]
    pub heartbeat_ms: u64,
    /// Seconds to let running requests finish on SIGTERM before exiting.
    #[arg(long, env = "ARENA_DRAIN_TIMEOUT_S", default_value_t = 30)]
    pub drain_timeout_s: u64,
}

impl WorkerArgs {
    /// Serves until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        arena_worker::run::run_worker(self.options(), shutdown).await?;
        Ok(())
    }

    /// Library options for these flags.
    fn options(self) -> WorkerOptions {
        WorkerOptions {
            model: self.model.options(self.name),
            listen: self.listen,
            advertise: self.advertise,
            controller: self.controller,
            token: self.worker_token.filter(|t| !t.is_empty()),
            tls: self
                .tls_cert
                .zip(self.tls_key)
                .map(|(cert, key)| TlsFiles { cert, key }),
            controller_ca: self.controller_ca,
            worker_id: self.worker_id,
            max_concurrency: self.max_concurrency,
            prefix_cache_bytes: self.prefix_cache.saturating_mul(1 << 20),
            batch_invariant: self.batch_invariant,
            heartbeat_interval: Duration::from_millis(self.heartbeat_ms.max(1)),
            drain_timeout: Duration::from_secs(self.drain_timeout_s),
        }
    }
}

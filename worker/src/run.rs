//! The worker's commands: `arena worker`, `arena generate`, `arena tokenize`.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use arena_proto::v1::worker_server::WorkerServer;
use tokio::sync::{oneshot, watch};
use tonic::transport::{Identity, ServerTlsConfig};

use crate::error::{Result, WorkerError};
use crate::generate::engine::{EngineOptions, Event};
use crate::generate::params::RawParams;
use crate::model::loader::{self, LoadedModel};
use crate::serve::auth::RequireToken;
use crate::serve::registration::{self, Registration};
use crate::serve::served::{Input, ServedModel};
use crate::serve::server::WorkerService;
use crate::text::template::{Message, Role, Template};

/// Where the model comes from and how it is presented.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// A `.gguf` file or a Hugging Face folder.
    pub path: PathBuf,
    /// Served name (default: the file or folder name).
    pub name: Option<String>,
    /// Template name, or `model` for the model's own.
    pub template: Option<String>,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Whether special tokens written in raw prompts are control tokens.
    pub allow_special_tokens: bool,
}

/// Options of `arena worker`.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The model.
    pub model: ModelOptions,
    /// gRPC listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// URL the controller should dial (default: `http://` + the bound address).
    pub advertise: Option<String>,
    /// Controller URL; standalone when absent.
    pub controller: Option<String>,
    /// The worker token: presented on registration, and required of every caller of the
    /// Worker service (the controller sends it).
    pub token: Option<String>,
    /// Certificate and key to serve gRPC over TLS (for workers on other hosts).
    pub tls: Option<TlsFiles>,
    /// Extra CA (PEM) trusted, beside the system roots, when the controller URL is `https://`.
    pub controller_ca: Option<PathBuf>,
    /// Worker id (default: name plus a random suffix).
    pub worker_id: Option<String>,
    /// Running sequences at most.
    pub max_concurrency: usize,
    /// Bytes of finished sequences' KV kept so a conversation's next turn prefills only what
    /// is new (0: off).
    pub prefix_cache_bytes: usize,
    /// Whether every row is multiplied as it would be alone
    /// ([`crate::model::half::keep_rows_alike`]).
    pub batch_invariant: bool,
    /// Heartbeat period unless the controller sets one.
    pub heartbeat_interval: Duration,
    /// How long to wait for running requests on shutdown.
    pub drain_timeout: Duration,
}

/// A PEM certificate (chain) and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
}

/// Reads a file named by a flag, saying which flag when it cannot be read.
fn read_flag_file(flag: &str, path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| WorkerError::Server(format!("cannot read {flag} {}: {e}", path.display())))
}

/// The server's TLS set-up from its PEM files; a bad file stops start-up with the reason.
fn server_tls(files: &TlsFiles) -> Result<ServerTlsConfig> {
    let cert = read_flag_file("--tls-cert", &files.cert)?;
    let key = read_flag_file("--tls-key", &files.key)?;
    Ok(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
}

/// Loads the model off the async threads and picks its template.
async fn load(opts: &ModelOptions) -> Result<(LoadedModel, String, Template)> {
    let device = loader::parse_device(&opts.device)?;
    let path = opts.path.clone();
    let started = Instant::now();
    let loaded = tokio::task::spawn_blocking(move || loader::load(&path, &device))
        .await
        .map_err(|e| WorkerError::Server(e.to_string()))??;
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| loader::default_name(&opts.path));
    let template = Template::select(opts.template.as_deref(), loaded.own_template.clone(), &name)?;
    let cfg = loaded.model.config();
    tracing::info!(
        model = %name,
        format = loaded.format,
        layers = cfg.num_layers,
        hidden = cfg.hidden_size,
        context = cfg.context_length,
        template = template.name(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "model loaded"
    );
    Ok((loaded, name, template))
}

/// Serves the model over gRPC until `shutdown` resolves (the binary passes SIGINT/SIGTERM),
/// registered with the controller if given.
pub async fn run_worker(
    opts: WorkerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // Bad TLS files fail before the (slow) model load.
    let mut builder = tonic::transport::Server::builder();
    if let Some(files) = &opts.tls {
        builder = builder
            .tls_config(server_tls(files)?)
            .map_err(|e| WorkerError::Server(format!("TLS (--tls-cert, --tls-key): {e}")))?;
    }
    let controller_ca = match &opts.controller_ca {
        Some(path) => Some(read_flag_file("--controller-ca", path)?),
        None => None,
    };
    if opts.batch_invariant {
        crate::model::half::keep_rows_alike();
    }
    let (loaded, name, template) = load(&opts.model).await?;
    let served = ServedModel::start(
        loaded,
        name.clone(),
        template,
        EngineOptions {
            max_concurrency: opts.max_concurrency,
            prefix_cache_bytes: opts.prefix_cache_bytes,
        },
        opts.model.allow_special_tokens,
    )?;
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let addr = listener.local_addr()?;
    let worker_id = opts
        .worker_id
        .clone()
        .unwrap_or_else(|| format!("{name}-{:08x}", rand::random::<u32>()));
    let service = WorkerService::new(served.clone(), worker_id.clone());
    warn_if_exposed(addr, &opts);
    let router = match opts.token.as_deref() {
        Some(token) => builder.add_service(WorkerServer::with_interceptor(
            service,
            RequireToken::new(token),
        )),
        None => builder.add_service(WorkerServer::new(service)),
    };
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    let server = tokio::spawn(router.serve_with_incoming_shutdown(
        tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        async {
            let _ = server_stopped.await;
        },
    ));
    // A stable line on stderr that scripts and tests wait for.
    eprintln!("{}{addr}", crate::READY_LINE);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut registration = opts.controller.clone().map(|controller| {
        let reg = Registration {
            controller,
            worker_id,
            address: opts
                .advertise
                .clone()
                .unwrap_or_else(|| format!("{scheme}://{addr}")),
            models: vec![name.clone()],
            context_length: served.info().context_length as u32,
            max_concurrency: served.engine().max_concurrency() as u32,
            token: opts.token.clone(),
            controller_ca,
            heartbeat_interval: opts.heartbeat_interval,
        };
        tokio::spawn(registration::run(
            reg,
            served.engine().stats().clone(),
            shutdown_rx,
        ))
    });
    let refused = {
        let reg_done = async {
            match registration.as_mut() {
                Some(task) => task.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown => None,
            done = reg_done => Some(done),
        }
    };
    if let Some(done) = refused {
        let _ = stop_server.send(());
        return match done {
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => Ok(()),
            Err(e) => Err(WorkerError::Server(e.to_string())),
        };
    }
    tracing::info!("shutting down: draining running requests");
    served.stop_accepting();
    let deadline = Instant::now() + opts.drain_timeout;
    let stats = served.engine().stats().clone();
    while (stats.in_flight() + stats.queue_length()) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = shutdown_tx.send(true);
    if let Some(task) = registration {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let _ = stop_server.send(());
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Err(e))) => Err(WorkerError::Server(e.to_string())),
        _ => Ok(()),
    }
}

/// Warns when the port is reachable from other hosts without a token (anyone may generate,
/// skipping the controller's keys, limits and moderation) or without TLS (the token and the
/// prompts cross the network in clear).
fn warn_if_exposed(addr: SocketAddr, opts: &WorkerOptions) {
    if addr.ip().is_loopback() {
        return;
    }
    if opts.token.is_none() {
        tracing::warn!(%addr, "no worker token set: this worker answers anyone who can reach {addr} (set ARENA_WORKER_TOKEN on it and on the controller)");
    }
    if opts.tls.is_none() {
        tracing::warn!(%addr, "no TLS: requests, answers and the worker token travel unencrypted (set --tls-cert and --tls-key for workers on other hosts)");
    }
}

/// Options of `arena generate`.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// The model.
    pub model: ModelOptions,
    /// Chat message (templated) or raw prompt.
    pub input: Input,
    /// System message override.
    pub system: Option<String>,
    /// Sampling parameters.
    pub params: RawParams,
}

/// Generates locally and writes the text alone to `out` as it streams.
pub async fn generate(opts: GenerateOptions, out: &mut (dyn Write + Send)) -> Result<()> {
    let (loaded, name, template) = load(&opts.model).await?;
    let engine = EngineOptions {
        max_concurrency: 1,
        prefix_cache_bytes: 0,
    };
    let served = ServedModel::start(
        loaded,
        name,
        template,
        engine,
        opts.model.allow_special_tokens,
    )?;
    let (ids, params) = served.prepare(&opts.input, opts.system.as_deref(), &opts.params, false)?;
    let mut rx = served.engine().submit(ids, params)?;
    while let Some(event) = rx.recv().await {
        match event {
            Event::Token { text, .. } => {
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
            Event::Done {
                finish,
                prompt_tokens,
                completion_tokens,
                ..
            } => {
                tracing::info!(?finish, prompt_tokens, completion_tokens, "done");
                break;
            }
            Event::Error(e) => return Err(WorkerError::Server(e)),
        }
    }
    out.write_all(b"\n")?;
    Ok(())
}

/// A single user message as chat input.
pub fn chat_input(text: &str) -> Input {
    Input::Chat(vec![Message::new(Role::User, text)])
}

/// Token ids of `text` as a JSON array.
pub fn tokenize(path: &std::path::Path, text: &str, add_special: bool) -> Result<String> {
    let tok = loader::load_tokenizer(path)?;
    let ids = tok.encode(text, add_special)?;
    serde_json::to_string(&ids).map_err(|e| WorkerError::Tokenizer(e.to_string()))
}

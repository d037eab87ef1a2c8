//! Registering with the controller and heartbeating, resilient to the controller being down.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arena_proto::v1::controller_client::ControllerClient;
use arena_proto::v1::{DeregisterRequest, HeartbeatRequest, RegisterRequest};
use tokio::sync::watch;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Code;

use crate::error::{Result, WorkerError};
use crate::generate::engine::EngineStats;

/// First retry delay while the controller is unreachable.
const BACKOFF_START: Duration = Duration::from_millis(250);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long one controller call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the worker tells the controller about itself.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Controller gRPC URL, e.g. `http://127.0.0.1:21001`.
    pub controller: String,
    /// This worker's id.
    pub worker_id: String,
    /// URL the controller dials to reach this worker.
    pub address: String,
    /// Served model names.
    pub models: Vec<String>,
    /// Context length in tokens.
    pub context_length: u32,
    /// Running sequences at most.
    pub max_concurrency: u32,
    /// Shared secret, when the controller requires one.
    pub token: Option<String>,
    /// Extra CA certificate (PEM) trusted beside the system roots for an `https://` controller.
    pub controller_ca: Option<Vec<u8>>,
    /// Heartbeat period when the controller does not set one.
    pub heartbeat_interval: Duration,
}

/// Registers, heartbeats and re-registers until `shutdown` turns true, then deregisters.
///
/// Returns an error only when the controller refuses the worker (bad token); an unreachable
/// controller is retried with backoff forever.
pub async fn run(
    reg: Registration,
    stats: Arc<EngineStats>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let mut endpoint = Endpoint::from_shared(reg.controller.clone())
        .map_err(|e| WorkerError::Server(format!("bad controller URL '{}': {e}", reg.controller)))?
        .connect_timeout(CALL_TIMEOUT)
        .timeout(CALL_TIMEOUT);
    if reg.controller.starts_with("https://") {
        endpoint = endpoint
            .tls_config(client_tls(reg.controller_ca.as_deref())?)
            .map_err(|e| WorkerError::Server(format!("TLS to '{}': {e}", reg.controller)))?;
    }
    let client = ControllerClient::new(endpoint.connect_lazy());
    let mut interval = reg.heartbeat_interval;
    let mut registered = false;
    let mut backoff = BACKOFF_START;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let wait = if !registered {
            match register(&mut client.clone(), &reg).await {
                Ok(server_interval) => {
                    registered = true;
                    backoff = BACKOFF_START;
                    if let Some(i) = server_interval {
                        interval = i;
                    }
                    tracing::info!(controller = %reg.controller, worker_id = %reg.worker_id, "registered with the controller");
                    interval
                }
                Err(status)
                    if matches!(
                        status.code(),
                        Code::Unauthenticated | Code::PermissionDenied
                    ) =>
                {
                    tracing::error!(controller = %reg.controller, "registration refused: {}", status.message());
                    return Err(WorkerError::RegistrationRefused(
                        status.message().to_string(),
                    ));
                }
                Err(status) => {
                    tracing::warn!(controller = %reg.controller, "controller unreachable ({}); retrying in {:?}", status.message(), backoff);
                    let wait = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    wait
                }
            }
        } else {
            let beat = HeartbeatRequest {
                worker_id: reg.worker_id.clone(),
                queue_length: stats.queue_length() as u32,
                in_flight: stats.in_flight() as u32,
                token: reg.token.clone().unwrap_or_default(),
            };
            match client.clone().heartbeat(beat).await {
                Ok(reply) if reply.get_ref().known => interval,
                Ok(_) => {
                    tracing::info!("the controller does not know this worker; registering again");
                    registered = false;
                    Duration::ZERO
                }
                Err(status)
                    if matches!(
                        status.code(),
                        Code::Unauthenticated | Code::PermissionDenied
                    ) =>
                {
                    tracing::error!(controller = %reg.controller, "heartbeat refused: {}", status.message());
                    return Err(WorkerError::RegistrationRefused(
                        status.message().to_string(),
                    ));
                }
                Err(status) => {
                    tracing::warn!("heartbeat failed: {}", status.message());
                    interval
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
    if registered {
        let req = DeregisterRequest {
            worker_id: reg.worker_id.clone(),
            token: reg.token.clone().unwrap_or_default(),
        };
        match client.clone().deregister(req).await {
            Ok(_) => tracing::info!("deregistered from the controller"),
            Err(s) => tracing::warn!("deregistration failed: {}", s.message()),
        }
    }
    Ok(())
}

/// TLS that trusts the system roots (when the machine has any: a slim container may have none,
/// and tonic refuses to build the connection then, even with `ca` given) plus `ca`.
fn client_tls(ca: Option<&[u8]>) -> Result<ClientTlsConfig> {
    static SYSTEM_ROOTS: OnceLock<bool> = OnceLock::new();
    let mut tls = ClientTlsConfig::new();
    if *SYSTEM_ROOTS.get_or_init(|| !rustls_native_certs::load_native_certs().certs.is_empty()) {
        tls = tls.with_native_roots();
    }
    if let Some(pem) = ca {
        // tonic skips what is not PEM without a word; say so here rather than fail later
        // with an unknown-issuer error.
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(WorkerError::Server(
                "--controller-ca holds no PEM certificate".into(),
            ));
        }
        tls = tls.ca_certificate(Certificate::from_pem(pem));
    }
    Ok(tls)
}

async fn register(
    client: &mut ControllerClient<Channel>,
    reg: &Registration,
) -> Result<Option<Duration>, tonic::Status> {
    let reply = client
        .register(RegisterRequest {
            worker_id: reg.worker_id.clone(),
            address: reg.address.clone(),
            models: reg.models.clone(),
            context_length: reg.context_length,
            max_concurrency: reg.max_concurrency,
            token: reg.token.clone().unwrap_or_default(),
        })
        .await?;
    let ms = reply.get_ref().heartbeat_interval_ms;
    Ok((ms > 0).then(|| Duration::from_millis(ms.into())))
}

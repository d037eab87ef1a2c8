//! The gRPC links with workers, secured: every call to a worker carries the worker token
//! (a worker with a token refuses calls without it, so nobody reaches it around the
//! controller's keys, limits and moderation), `https://` workers are dialed over TLS, and the
//! controller's own gRPC port may serve TLS for workers on other hosts.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use arena_proto::v1::worker_client::WorkerClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig,
};
use tonic::{Request, Status};

use crate::error::ControllerError;

/// How long a call to a worker may take to connect, unless
/// [`WorkerDialer::with_connect_timeout`] says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The metadata key the token travels in; the worker reads the same one.
const HEADER: &str = "authorization";

/// A gRPC client of one worker that sends the worker token on every call.
pub type WorkerRpc = WorkerClient<InterceptedService<Channel, AddToken>>;

/// A tonic interceptor adding `authorization: Bearer <token>` to every call (nothing without
/// a token).
#[derive(Clone, Default)]
pub struct AddToken(Option<MetadataValue<Ascii>>);

impl std::fmt::Debug for AddToken {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "AddToken(..)"
        } else {
            "AddToken(None)"
        })
    }
}

impl AddToken {
    /// Sends `token`, when there is one.
    pub fn new(token: Option<&str>) -> Result<Self, ControllerError> {
        let Some(token) = token else {
            return Ok(Self(None));
        };
        let mut value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
            ControllerError::Config(
                "the worker token must be printable ASCII (it travels as gRPC metadata)".into(),
            )
        })?;
        // Keeps it out of HPACK's tables and out of debug output.
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }
}

impl Interceptor for AddToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert(HEADER, value.clone());
        }
        Ok(request)
    }
}

/// Makes worker clients: the token on every call, TLS for `https://` addresses.
#[derive(Debug, Clone)]
pub struct WorkerDialer {
    token: AddToken,
    tls: ClientTlsConfig,
    connect_timeout: Duration,
}

impl Default for WorkerDialer {
    /// No token; the system roots for `https://` workers.
    fn default() -> Self {
        Self {
            token: AddToken::default(),
            tls: system_roots(),
            connect_timeout: CONNECT_TIMEOUT,
        }
    }
}

impl WorkerDialer {
    /// Sends `token` on every call and trusts the system roots plus `ca` (PEM) for
    /// `https://` workers.
    pub fn new(token: Option<&str>, ca: Option<&[u8]>) -> Result<Self, ControllerError> {
        let mut tls = system_roots();
        if let Some(pem) = ca {
            // tonic skips what is not PEM without a word; say so at start rather than fail
            // each call later with an unknown-issuer error.
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(ControllerError::Config(
                    "--worker-ca holds no PEM certificate".into(),
                ));
            }
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        Ok(Self {
            token: AddToken::new(token)?,
            tls,
            connect_timeout: CONNECT_TIMEOUT,
        })
    }

    /// The same dialer, whose clients give up connecting after `timeout`
    /// (`--connect-timeout-ms`).
    pub fn with_connect_timeout(self, timeout: Duration) -> Self {
        Self {
            connect_timeout: timeout,
            ..self
        }
    }

    /// [`WorkerDialer::new`] with the CA read from `ca_file`.
    pub fn with_ca_file(
        token: Option<&str>,
        ca_file: Option<&Path>,
    ) -> Result<Self, ControllerError> {
        let ca = ca_file
            .map(|p| read_flag_file("--worker-ca", p))
            .transpose()?;
        Self::new(token, ca.as_deref())
    }

    /// A client of the worker at `address` (`http://` or `https://`); connects on first use.
    pub fn client(&self, address: &str) -> Result<WorkerRpc, ControllerError> {
        let bad = |e: &dyn std::fmt::Display| {
            ControllerError::BadAddress(address.to_string(), e.to_string())
        };
        let mut endpoint = Endpoint::from_shared(address.to_string())
            .map_err(|e| bad(&e))?
            .connect_timeout(self.connect_timeout);
        if address.starts_with("https://") {
            endpoint = endpoint.tls_config(self.tls.clone()).map_err(|e| bad(&e))?;
        }
        Ok(WorkerClient::with_interceptor(
            endpoint.connect_lazy(),
            self.token.clone(),
        ))
    }
}

/// TLS trusting the system roots when the machine has any: a slim container may have none,
/// and tonic then refuses to build any TLS connection, even one to a `--worker-ca` worker.
fn system_roots() -> ClientTlsConfig {
    static HAS_ROOTS: OnceLock<bool> = OnceLock::new();
    let has = *HAS_ROOTS.get_or_init(|| !rustls_native_certs::load_native_certs().certs.is_empty());
    if has {
        ClientTlsConfig::new().with_native_roots()
    } else {
        ClientTlsConfig::new()
    }
}

/// Reads a file named by a flag, saying which flag when it cannot be read.
fn read_flag_file(flag: &str, path: &Path) -> Result<Vec<u8>, ControllerError> {
    std::fs::read(path)
        .map_err(|e| ControllerError::Config(format!("cannot read {flag} {}: {e}", path.display())))
}

/// The gRPC server workers register with: over TLS with `cert` and `key` (PEM) when given.
pub fn grpc_server(cert: Option<&Path>, key: Option<&Path>) -> Result<Server, ControllerError> {
    let server = Server::builder();
    match (cert, key) {
        (None, None) => Ok(server),
        (Some(cert), Some(key)) => {
            let identity = Identity::from_pem(
                read_flag_file("--tls-cert", cert)?,
                read_flag_file("--tls-key", key)?,
            );
            server
                .tls_config(ServerTlsConfig::new().identity(identity))
                .map_err(|e| ControllerError::Config(format!("TLS (--tls-cert, --tls-key): {e}")))
        }
        _ => Err(ControllerError::Config(
            "--tls-cert and --tls-key go together".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(token: Option<&str>) -> Option<String> {
        let req = AddToken::new(token)
            .unwrap()
            .call(Request::new(()))
            .unwrap();
        req.metadata()
            .get(HEADER)
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn the_token_is_added_to_every_call() {
        assert_eq!(header_of(Some("s3cret")).as_deref(), Some("Bearer s3cret"));
        assert_eq!(header_of(None), None);
        assert!(AddToken::new(Some("bad\ntoken")).is_err());
        assert!(!format!("{:?}", AddToken::new(Some("s3cret")).unwrap()).contains("s3cret"));
    }

    #[tokio::test]
    async fn clients_for_http_and_https_addresses() {
        let d = WorkerDialer::default();
        assert!(d.client("http://127.0.0.1:1").is_ok());
        assert!(d.client("https://127.0.0.1:1").is_ok());
        assert!(d.client("not a url").is_err());
        assert!(WorkerDialer::new(None, Some(b"not pem")).is_err());
    }

    #[test]
    fn tls_files_go_in_pairs() {
        assert!(grpc_server(None, None).is_ok());
        assert!(grpc_server(Some(Path::new("/nonexistent/cert.pem")), None).is_err());
        let e = grpc_server(
            Some(Path::new("/nonexistent/cert.pem")),
            Some(Path::new("/nonexistent/key.pem")),
        )
        .unwrap_err();
        assert!(e.to_string().contains("--tls-cert"), "{e}");
    }
}

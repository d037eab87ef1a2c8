//! The gRPC `arena.v1.Controller` service workers call to register and heartbeat.

use std::sync::Arc;
use std::time::Duration;

use arena_proto::v1::controller_server::Controller;
use arena_proto::v1::{
    DeregisterRequest, DeregisterResponse, HeartbeatRequest, HeartbeatResponse, RegisterRequest,
    RegisterResponse,
};
use tonic::{Request, Response, Status};

use crate::registry::{Registry, WorkerInfo};

/// Registration and heartbeats, checked against the shared worker token when one is set.
pub struct ControllerService {
    registry: Arc<Registry>,
    token: Option<String>,
    heartbeat_interval: Duration,
}

impl ControllerService {
    /// A service over `registry`; workers must present `token` when it is set.
    pub fn new(
        registry: Arc<Registry>,
        token: Option<String>,
        heartbeat_interval: Duration,
    ) -> Self {
        Self {
            registry,
            token,
            heartbeat_interval,
        }
    }
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[tonic::async_trait]
impl Controller for ControllerService {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let peer = request.remote_addr();
        let req = request.into_inner();
        if let Some(expected) = &self.token {
            if !same_secret(&req.token, expected) {
                tracing::warn!(worker_id = %req.worker_id, ?peer, "refused a worker registration: wrong or missing token");
                return Err(Status::unauthenticated(
                    "wrong or missing worker token (set --worker-token / ARENA_WORKER_TOKEN to the controller's)",
                ));
            }
        }
        if req.worker_id.is_empty()
            || req.models.is_empty()
            || req.models.iter().any(String::is_empty)
        {
            return Err(Status::invalid_argument(
                "a worker needs an id and at least one model name",
            ));
        }
        let info = WorkerInfo {
            id: req.worker_id,
            address: req.address,
            models: req.models,
            context_length: req.context_length,
            max_concurrency: req.max_concurrency,
        };
        tracing::info!(worker_id = %info.id, address = %info.address, models = ?info.models, "worker registered");
        self.registry
            .register(info)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Response::new(RegisterResponse {
            heartbeat_interval_ms: self.heartbeat_interval.as_millis() as u32,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let req = request.into_inner();
        let known = self.registry.heartbeat(&req.worker_id, req.queue_length);
        Ok(Response::new(HeartbeatResponse { known }))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let id = request.into_inner().worker_id;
        if self.registry.deregister(&id) {
            tracing::info!(worker_id = %id, "worker deregistered");
        }
        Ok(Response::new(DeregisterResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "x"));
    }
}

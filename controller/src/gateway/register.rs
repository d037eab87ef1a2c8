//! The gRPC `arena.v1.Controller` service workers call to register and heartbeat.

use std::sync::Arc;
use std::time::Duration;

use arena_proto::v1::controller_server::Controller;
use arena_proto::v1::{
    DeregisterRequest, DeregisterResponse, HeartbeatRequest, HeartbeatResponse, RegisterRequest,
    RegisterResponse,
};
use tonic::{Request, Response, Status};

use super::registry::{Registry, WorkerInfo};
use super::shared::SharedRegistry;

/// Registration and heartbeats, checked against the shared worker token when one is set.
pub struct ControllerService {
    registry: Arc<Registry>,
    store: Option<Arc<dyn SharedRegistry>>,
    token: Option<String>,
    heartbeat_interval: Duration,
}

impl ControllerService {
    /// A service over `registry`, shared through `store` when given; workers must present
    /// `token` when it is set.
    pub fn new(
        registry: Arc<Registry>,
        store: Option<Arc<dyn SharedRegistry>>,
        token: Option<String>,
        heartbeat_interval: Duration,
    ) -> Self {
        Self {
            registry,
            store,
            token,
            heartbeat_interval,
        }
    }

    /// Shares a worker's current record with the other replicas.
    async fn publish(&self, id: &str) {
        if let (Some(store), Some(record)) = (&self.store, self.registry.record(id)) {
            if let Err(e) = store.put(&record).await {
                tracing::warn!(worker_id = %id, "could not share the worker with other replicas: {e}");
            }
        }
    }
}

impl ControllerService {
    /// Refuses a call whose token does not match the configured one.
    fn check_token(&self, presented: &str, worker_id: &str, call: &str) -> Result<(), Status> {
        match &self.token {
            Some(expected) if !same_secret(presented, expected) => {
                tracing::warn!(worker_id = %worker_id, "refused a worker {call}: wrong or missing token");
                Err(Status::unauthenticated(
                    "wrong or missing worker token (set --worker-token / ARENA_WORKER_TOKEN to the controller's)",
                ))
            }
            _ => Ok(()),
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
        let req = request.into_inner();
        self.check_token(&req.token, &req.worker_id, "registration")?;
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
        let id = info.id.clone();
        self.registry
            .register(info)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        self.publish(&id).await;
        Ok(Response::new(RegisterResponse {
            heartbeat_interval_ms: self.heartbeat_interval.as_millis() as u32,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let req = request.into_inner();
        self.check_token(&req.token, &req.worker_id, "heartbeat")?;
        let known = self.registry.heartbeat(&req.worker_id, req.queue_length);
        if known {
            self.publish(&req.worker_id).await;
        }
        Ok(Response::new(HeartbeatResponse { known }))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let req = request.into_inner();
        self.check_token(&req.token, &req.worker_id, "deregistration")?;
        let id = req.worker_id;
        if self.registry.deregister(&id) {
            tracing::info!(worker_id = %id, "worker deregistered");
        }
        if let Some(store) = &self.store {
            if let Err(e) = store.remove(&id).await {
                tracing::warn!(worker_id = %id, "could not remove the worker from the shared registry: {e}");
            }
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

//! The gateway to the models: the registry of workers and how one is picked, the clients
//! that stream from a worker or an API-hosted contestant, the registry shared through Redis,
//! and the gRPC service workers register with. [`Gateway::start_generation`] is the one way
//! every caller (the OpenAI API, the arena) starts a generation.

pub mod affinity;
pub mod api_client;
pub mod api_stream;
pub mod breaker;
pub mod contestants;
pub mod dispatch;
pub mod register;
pub mod registry;
pub mod shared;
pub mod stream;
pub mod worker_auth;
pub mod worker_client;

use std::sync::Arc;

use arena_proto::v1::GenerateRequest;

use crate::config::Timeouts;
use crate::error::ApiError;
use crate::metrics::Metrics;
use contestants::Endpoints;
use dispatch::Policy;
use registry::Registry;
use stream::Started;

/// Everything needed to reach a model: the workers, the API-hosted contestants, and how to
/// pick among them.
pub struct Gateway {
    /// The worker registry.
    pub registry: Arc<Registry>,
    /// Where dispatch and generation are counted.
    pub metrics: Arc<Metrics>,
    /// How workers are picked.
    pub policy: Policy,
    /// API-hosted contestants by served name (`--endpoints`).
    pub endpoints: Endpoints,
    /// HTTP client for the contestants.
    pub http: reqwest::Client,
    /// How long calls to workers and contestants may wait.
    pub timeouts: Timeouts,
    /// The worker that served each recent conversation's last turn.
    pub affinity: affinity::Affinity,
}

impl Gateway {
    /// Starts `req` on a worker or the API-hosted contestant serving its model. Battle-only
    /// contestants are reachable only when `in_battle`. The turns of one `session` (a
    /// conversation) go to the worker that served its last turn while it can take them, and
    /// only they meet each other in its prefix cache.
    pub async fn start_generation(
        &self,
        mut req: GenerateRequest,
        in_battle: bool,
        session: Option<&str>,
    ) -> Result<Started, ApiError> {
        match self
            .endpoints
            .get(&req.model)
            .filter(|e| in_battle || !e.battle_only)
        {
            Some(endpoint) => api_client::start(&self.http, endpoint, req, &self.timeouts).await,
            None => {
                let model = req.model.clone();
                req.cache_scope = Some(affinity::cache_scope(session));
                worker_client::start(
                    &self.registry,
                    self.policy,
                    &self.metrics,
                    &self.timeouts,
                    &model,
                    req,
                    session.map(|s| (&self.affinity, s)),
                )
                .await
            }
        }
    }

    /// Every model a client may ask for: the workers' and the contestants' (battle-only ones
    /// only when `in_battle`), sorted.
    pub fn served_models(&self, in_battle: bool) -> Vec<String> {
        let mut names = self.registry.models();
        names.extend(
            self.endpoints
                .values()
                .filter(|e| in_battle || !e.battle_only)
                .map(|e| e.name.clone()),
        );
        names.sort();
        names.dedup();
        names
    }
}

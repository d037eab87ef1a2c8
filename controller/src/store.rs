//! Where the registry is shared between controller replicas: nowhere (one controller), or
//! Redis, behind one trait.
//!
//! Each replica keeps its own in-process registry for dispatch and pushes every registration,
//! heartbeat and deregistration it receives to the store; a background task pulls the store's
//! records into the local registry, so a worker registered with one replica is routable from
//! all of them. Records expire in Redis after the worker expiry, like in the registry.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::error::ControllerError;
use crate::registry::WorkerInfo;

/// A worker as stored for the other replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// Worker id.
    pub id: String,
    /// URL the controller dials.
    pub address: String,
    /// Served models.
    pub models: Vec<String>,
    /// Context length.
    pub context_length: u32,
    /// Capacity.
    pub max_concurrency: u32,
    /// Queue length from its last heartbeat.
    pub queue_length: u32,
    /// Unix milliseconds of its last heartbeat.
    pub heartbeat_unix_ms: u64,
}

impl WorkerRecord {
    /// The registration part of the record.
    pub fn info(&self) -> WorkerInfo {
        WorkerInfo {
            id: self.id.clone(),
            address: self.address.clone(),
            models: self.models.clone(),
            context_length: self.context_length,
            max_concurrency: self.max_concurrency,
        }
    }
}

/// Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A place replicas share worker records through.
#[tonic::async_trait]
pub trait RegistryStore: Send + Sync {
    /// Stores or refreshes a record.
    async fn put(&self, record: &WorkerRecord) -> Result<(), ControllerError>;
    /// Removes a worker.
    async fn remove(&self, id: &str) -> Result<(), ControllerError>;
    /// Every live record.
    async fn load(&self) -> Result<Vec<WorkerRecord>, ControllerError>;
    /// What to call it in logs.
    fn name(&self) -> &'static str;
}

/// Redis: one key per worker, `arena:worker:{id}`, JSON, expiring after the worker expiry,
/// and the set `arena:workers` of ids (pruned of ids whose key has expired).
pub struct RedisStore {
    conn: ConnectionManager,
    ttl: Duration,
}

const PREFIX: &str = "arena:worker:";
const IDS: &str = "arena:workers";

fn redis_err(e: redis::RedisError) -> ControllerError {
    ControllerError::Store(format!("redis: {e}"))
}

impl RedisStore {
    /// Connects, failing with a clear message when Redis cannot be reached.
    pub async fn connect(url: &str, ttl: Duration) -> Result<Self, ControllerError> {
        let shown = arena_store::redact(url);
        let client = redis::Client::open(url)
            .map_err(|e| ControllerError::Store(format!("bad REDIS_URL '{shown}': {e}")))?;
        let conn = tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new(client))
            .await
            .map_err(|_| {
                ControllerError::Store(format!("redis at {shown} did not answer within 5 s"))
            })?
            .map_err(|e| {
                ControllerError::Store(format!("cannot connect to redis at {shown}: {e}"))
            })?;
        Ok(Self { conn, ttl })
    }

    /// A handle on the same connection, for other shared state (rate limits).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

#[tonic::async_trait]
impl RegistryStore for RedisStore {
    async fn put(&self, record: &WorkerRecord) -> Result<(), ControllerError> {
        let json =
            serde_json::to_string(record).map_err(|e| ControllerError::Store(e.to_string()))?;
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            .pset_ex(
                format!("{PREFIX}{}", record.id),
                json,
                self.ttl.as_millis() as u64,
            )
            .sadd(IDS, &record.id)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), ControllerError> {
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            .del(format!("{PREFIX}{id}"))
            .srem(IDS, id)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok(())
    }

    async fn load(&self) -> Result<Vec<WorkerRecord>, ControllerError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.smembers(IDS).await.map_err(redis_err)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| format!("{PREFIX}{id}")).collect();
        let values: Vec<Option<String>> = conn.mget(&keys).await.map_err(redis_err)?;
        let expired: Vec<&String> = ids
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(id, _)| id)
            .collect();
        if !expired.is_empty() {
            let _: () = conn.srem(IDS, expired).await.map_err(redis_err)?;
        }
        Ok(values
            .into_iter()
            .flatten()
            .filter_map(|v| match serde_json::from_str(&v) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!("ignoring a malformed worker record in redis: {e}");
                    None
                }
            })
            .collect())
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

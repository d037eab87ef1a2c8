//! Where the registry is shared between controller replicas: nowhere (one controller), or
//! Redis, behind one trait.
//!
//! Each replica keeps its own in-process registry for dispatch and pushes every registration,
//! heartbeat and deregistration it receives to Redis; a background task pulls the shared
//! records into the local registry, so a worker registered with one replica is routable from
//! all of them. Records expire in Redis after the worker expiry, like in the registry.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use super::registry::WorkerRecord;
use crate::error::ControllerError;

/// A place replicas share worker records through.
#[tonic::async_trait]
pub trait SharedRegistry: Send + Sync {
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
pub struct RedisRegistry {
    conn: ConnectionManager,
    ttl: Duration,
}

const PREFIX: &str = "arena:worker:";
const IDS: &str = "arena:workers";

fn redis_err(e: redis::RedisError) -> ControllerError {
    ControllerError::Redis(format!("redis: {e}"))
}

impl RedisRegistry {
    /// Connects, failing with a clear message when Redis cannot be reached; `shown` is the URL
    /// as messages may show it (its password masked).
    pub async fn connect(url: &str, shown: &str, ttl: Duration) -> Result<Self, ControllerError> {
        let client = redis::Client::open(url)
            .map_err(|e| ControllerError::Redis(format!("bad REDIS_URL '{shown}': {e}")))?;
        let conn = tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new(client))
            .await
            .map_err(|_| {
                ControllerError::Redis(format!("redis at {shown} did not answer within 5 s"))
            })?
            .map_err(|e| {
                ControllerError::Redis(format!("cannot connect to redis at {shown}: {e}"))
            })?;
        Ok(Self { conn, ttl })
    }

    /// A handle on the same connection, for other shared state (rate limits).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

#[tonic::async_trait]
impl SharedRegistry for RedisRegistry {
    async fn put(&self, record: &WorkerRecord) -> Result<(), ControllerError> {
        let json =
            serde_json::to_string(record).map_err(|e| ControllerError::Redis(e.to_string()))?;
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

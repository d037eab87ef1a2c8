//! The registry of workers: who serves what, where, how loaded they are, and whether their
//! circuit breaker lets requests through.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use prometheus::IntCounter;
use serde::{Deserialize, Serialize};

use super::breaker::{Breaker, Circuit};
use super::worker_auth::{WorkerDialer, WorkerRpc};
use crate::config::BreakerSettings;
use crate::error::ControllerError;
use arena_ratings::clock::unix_ms;

/// What a worker says about itself when it registers.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// Unique id.
    pub id: String,
    /// URL the controller dials.
    pub address: String,
    /// Served model names.
    pub models: Vec<String>,
    /// Context length in tokens.
    pub context_length: u32,
    /// Running sequences at most.
    pub max_concurrency: u32,
}

/// What the requests to one worker have shown: how many run, and its breaker. Shared with the
/// guards of its running requests, which report how each went.
struct Health {
    worker_id: String,
    in_flight: AtomicUsize,
    breaker: Mutex<Breaker>,
    /// Counts breakers opening (`arena_worker_circuit_open_total`).
    opened: Option<IntCounter>,
}

impl Health {
    fn new(worker_id: &str, settings: BreakerSettings, opened: Option<IntCounter>) -> Self {
        Self {
            worker_id: worker_id.to_string(),
            in_flight: AtomicUsize::new(0),
            breaker: Mutex::new(Breaker::new(settings)),
            opened,
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records how a request went: a success closes the breaker, failures may open it.
    fn verdict(&self, ok: bool) {
        let mut breaker = self.breaker();
        if ok {
            breaker.on_success();
        } else if breaker.on_failure(Instant::now()) {
            drop(breaker);
            if let Some(c) = &self.opened {
                c.inc();
            }
            tracing::warn!(worker_id = %self.worker_id, "circuit breaker open: the worker failed repeatedly; dispatch skips it for a while");
        }
    }
}

struct Entry {
    info: WorkerInfo,
    client: WorkerRpc,
    last_heartbeat: Instant,
    queue_length: u32,
    health: Arc<Health>,
    failed: bool,
}

impl Entry {
    fn load(&self) -> usize {
        self.health.in_flight.load(Ordering::Relaxed) + self.queue_length as usize
    }

    fn candidate(&self) -> Candidate {
        Candidate {
            id: self.info.id.clone(),
            client: self.client.clone(),
            load: self.load(),
            capacity: self.info.max_concurrency,
            health: self.health.clone(),
        }
    }
}

impl super::dispatch::Load for Entry {
    fn load(&self) -> usize {
        Entry::load(self)
    }
    fn capacity(&self) -> u32 {
        self.info.max_concurrency
    }
}

/// A worker that can take a request now.
#[derive(Clone)]
pub struct Candidate {
    /// Worker id.
    pub id: String,
    /// gRPC client (cheap to clone); sends the worker token.
    pub client: WorkerRpc,
    /// Requests this controller has running on it plus the queue it reported.
    pub load: usize,
    /// The worker's `max_concurrency`.
    pub capacity: u32,
    health: Arc<Health>,
}

impl Candidate {
    /// Counts a request as running on this worker until the guard drops.
    pub fn start(&self) -> InFlight {
        self.health.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            health: self.health.clone(),
            judged: false,
        }
    }
}

/// A request running on a worker: decrements the worker's in-flight count when dropped, and
/// tells the worker's breaker how the request went (once; later verdicts are ignored).
pub struct InFlight {
    health: Arc<Health>,
    judged: bool,
}

impl InFlight {
    /// The worker answered well (a whole generation, or a refusal of a bad request).
    pub fn succeeded(&mut self) {
        self.judge(true);
    }

    /// The worker failed, broke off or timed out.
    pub fn failed(&mut self) {
        self.judge(false);
    }

    fn judge(&mut self, ok: bool) {
        if !std::mem::replace(&mut self.judged, true) {
            self.health.verdict(ok);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.health.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A worker as `/api/workers` shows it.
#[derive(Debug, Serialize)]
pub struct WorkerView {
    /// Worker id.
    pub id: String,
    /// Its address.
    pub address: String,
    /// Its models.
    pub models: Vec<String>,
    /// Context length.
    pub context_length: u32,
    /// Capacity.
    pub max_concurrency: u32,
    /// Requests this controller has running on it.
    pub in_flight: usize,
    /// Queue length from its last heartbeat.
    pub queue_length: u32,
    /// Milliseconds since its last heartbeat.
    pub last_heartbeat_ms: u64,
    /// False after a failed call, until its next heartbeat, and while its breaker is not
    /// closed.
    pub healthy: bool,
    /// Its circuit breaker: `closed`, `open` (skipped by dispatch) or `half_open` (one trial
    /// request decides).
    pub circuit: Circuit,
    /// Failures in a row counted toward opening the breaker.
    pub consecutive_failures: u32,
}

/// The in-process registry.
pub struct Registry {
    workers: RwLock<HashMap<String, Entry>>,
    expiry: Duration,
    dialer: WorkerDialer,
    breaker: BreakerSettings,
    circuit_opened: Option<IntCounter>,
}

impl Registry {
    /// A registry that forgets workers silent for longer than `expiry` and calls them
    /// without a token.
    pub fn new(expiry: Duration) -> Self {
        Self::with_dialer(expiry, WorkerDialer::default())
    }

    /// A registry whose worker clients `dialer` makes (the worker token, TLS).
    pub fn with_dialer(expiry: Duration, dialer: WorkerDialer) -> Self {
        Self {
            workers: RwLock::new(HashMap::new()),
            expiry,
            dialer,
            breaker: BreakerSettings::default(),
            circuit_opened: None,
        }
    }

    /// The same registry, with per-worker breakers set by `settings` whose openings count in
    /// `opened`.
    pub fn with_breaker(self, settings: BreakerSettings, opened: IntCounter) -> Self {
        Self {
            breaker: settings,
            circuit_opened: Some(opened),
            ..self
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Entry>> {
        self.workers.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.workers.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds or replaces a worker.
    pub fn register(&self, info: WorkerInfo) -> Result<(), ControllerError> {
        let client = self.dialer.client(&info.address)?;
        let mut workers = self.write();
        // A re-registering worker keeps the count of requests still running on it, and its
        // breaker: re-registering must not clear a record of hanging.
        let health = workers
            .get(&info.id)
            .map(|e| e.health.clone())
            .unwrap_or_else(|| {
                Arc::new(Health::new(
                    &info.id,
                    self.breaker,
                    self.circuit_opened.clone(),
                ))
            });
        workers.insert(
            info.id.clone(),
            Entry {
                info,
                client,
                last_heartbeat: Instant::now(),
                queue_length: 0,
                health,
                failed: false,
            },
        );
        Ok(())
    }

    /// Records a heartbeat; false when the worker is unknown and must register again.
    pub fn heartbeat(&self, id: &str, queue_length: u32) -> bool {
        match self.write().get_mut(id) {
            Some(e) => {
                e.last_heartbeat = Instant::now();
                e.queue_length = queue_length;
                e.failed = false;
                true
            }
            None => false,
        }
    }

    /// Removes a worker.
    pub fn deregister(&self, id: &str) -> bool {
        self.write().remove(id).is_some()
    }

    /// Takes a worker out of dispatch until its next heartbeat.
    pub fn mark_failed(&self, id: &str) {
        if let Some(e) = self.write().get_mut(id) {
            e.failed = true;
        }
    }

    /// Forgets workers whose last heartbeat is older than the expiry; returns their ids.
    pub fn expire(&self) -> Vec<String> {
        let now = Instant::now();
        let mut gone = Vec::new();
        self.write().retain(|id, e| {
            let alive = now.duration_since(e.last_heartbeat) <= self.expiry;
            if !alive {
                gone.push(id.clone());
            }
            alive
        });
        gone
    }

    /// Live, healthy workers serving `model` (tests observe dispatch state through it).
    #[cfg(test)]
    pub(crate) fn candidates(&self, model: &str) -> Vec<Candidate> {
        let now = Instant::now();
        self.read()
            .values()
            .filter(|e| !e.failed && now.duration_since(e.last_heartbeat) <= self.expiry)
            .filter(|e| e.info.models.iter().any(|m| m == model))
            .map(Entry::candidate)
            .collect()
    }

    /// The shareable record of a worker.
    pub fn record(&self, id: &str) -> Option<WorkerRecord> {
        let now = unix_ms();
        self.read().get(id).map(|e| WorkerRecord {
            id: e.info.id.clone(),
            address: e.info.address.clone(),
            models: e.info.models.clone(),
            context_length: e.info.context_length,
            max_concurrency: e.info.max_concurrency,
            queue_length: e.queue_length,
            heartbeat_unix_ms: now.saturating_sub(e.last_heartbeat.elapsed().as_millis() as u64),
        })
    }

    /// Makes the registry match the shared store's records: adds workers registered with
    /// other replicas, takes newer heartbeats, and drops workers the store no longer has.
    pub fn sync_from(&self, records: &[WorkerRecord]) {
        let now_ms = unix_ms();
        let now = Instant::now();
        for r in records {
            let age = Duration::from_millis(now_ms.saturating_sub(r.heartbeat_unix_ms));
            let beat = now.checked_sub(age).unwrap_or(now);
            let known_same = self
                .read()
                .get(&r.id)
                .is_some_and(|e| e.info.address == r.address && e.info.models == r.models);
            if !known_same {
                if let Err(e) = self.register(r.info()) {
                    tracing::warn!(worker_id = %r.id, "ignoring a shared worker record: {e}");
                    continue;
                }
            }
            if let Some(e) = self.write().get_mut(&r.id) {
                if !known_same || beat > e.last_heartbeat {
                    e.last_heartbeat = beat;
                    e.queue_length = r.queue_length;
                    e.failed = false;
                }
            }
        }
        self.write()
            .retain(|id, _| records.iter().any(|r| &r.id == id));
    }

    /// Picks a live, healthy worker of `model` whose breaker admits a request, by `policy`,
    /// skipping `exclude`, in one pass under the read lock; only the chosen one is cloned.
    /// When half-open, the chosen worker's breaker counts this request as its one trial.
    pub fn pick(
        &self,
        model: &str,
        policy: super::dispatch::Policy,
        exclude: &[String],
    ) -> Option<Candidate> {
        self.pick_preferring(model, policy, exclude, None)
    }

    /// As [`Registry::pick`], but `preferred` (the worker that served the conversation's
    /// last turn) when it is eligible and has a free slot: it holds the conversation in its
    /// prefix cache. A busy or failing preferred worker gives way to `policy`.
    pub fn pick_preferring(
        &self,
        model: &str,
        policy: super::dispatch::Policy,
        exclude: &[String],
        preferred: Option<&str>,
    ) -> Option<Candidate> {
        let now = Instant::now();
        let workers = self.read();
        if let Some(e) = preferred.and_then(|id| workers.get(id)) {
            let eligible = !e.failed
                && now.duration_since(e.last_heartbeat) <= self.expiry
                && e.info.models.iter().any(|m| m == model)
                && !exclude.contains(&e.info.id)
                && e.load() < e.info.max_concurrency as usize
                && e.health.breaker().admits(now);
            if eligible && e.health.breaker().try_dispatch(now) {
                return Some(e.candidate());
            }
        }
        // Another request may take a half-open worker's one trial between the filter and the
        // choice: then choose again without it.
        let mut lost: Vec<&str> = Vec::new();
        loop {
            let eligible = workers.values().filter(|e| {
                !e.failed
                    && now.duration_since(e.last_heartbeat) <= self.expiry
                    && e.info.models.iter().any(|m| m == model)
                    && !exclude.contains(&e.info.id)
                    && !lost.contains(&e.info.id.as_str())
                    && e.health.breaker().admits(now)
            });
            let chosen = super::dispatch::choose(policy, eligible)?;
            if chosen.health.breaker().try_dispatch(now) {
                return Some(chosen.candidate());
            }
            lost.push(&chosen.info.id);
        }
    }

    /// How many workers of `model` their breaker keeps out of dispatch now.
    pub fn paused(&self, model: &str) -> usize {
        let now = Instant::now();
        self.read()
            .values()
            .filter(|e| e.info.models.iter().any(|m| m == model))
            .filter(|e| !e.health.breaker().admits(now))
            .count()
    }

    /// Whether any registered worker (healthy or not) serves `model`.
    pub fn knows_model(&self, model: &str) -> bool {
        self.read()
            .values()
            .any(|e| e.info.models.iter().any(|m| m == model))
    }

    /// Served model names, sorted.
    pub fn models(&self) -> Vec<String> {
        let mut m: Vec<String> = self
            .read()
            .values()
            .flat_map(|e| e.info.models.iter().cloned())
            .collect();
        m.sort();
        m.dedup();
        m
    }

    /// Every worker and its state.
    pub fn snapshot(&self) -> Vec<WorkerView> {
        let now = Instant::now();
        let mut v: Vec<WorkerView> = self
            .read()
            .values()
            .map(|e| {
                let breaker = e.health.breaker();
                let circuit = breaker.circuit(now);
                WorkerView {
                    id: e.info.id.clone(),
                    address: e.info.address.clone(),
                    models: e.info.models.clone(),
                    context_length: e.info.context_length,
                    max_concurrency: e.info.max_concurrency,
                    in_flight: e.health.in_flight.load(Ordering::Relaxed),
                    queue_length: e.queue_length,
                    last_heartbeat_ms: now.duration_since(e.last_heartbeat).as_millis() as u64,
                    healthy: !e.failed && circuit == Circuit::Closed,
                    circuit,
                    consecutive_failures: breaker.failures(),
                }
            })
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }
}

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

#[cfg(test)]
mod tests;

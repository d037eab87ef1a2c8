//! Battles folded into counts as they arrive: per ordered pair of models, how often each
//! outcome happened, plus the online Elo. Memory grows with the number of model pairs,
//! never with the number of battles.

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::battle::{Battle, Winner};
use super::elo::OnlineElo;
use super::ipw::Propensities;
use super::read::{read_battles, ReadReport};
use crate::error::RatingsError;

/// Battles of one unordered pair `i < j` as the Bradley-Terry fit needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PairCounts {
    /// Lower model index.
    pub i: u32,
    /// Higher model index.
    pub j: u32,
    /// Battles `i` won.
    pub wins_i: u64,
    /// Battles `j` won.
    pub wins_j: u64,
    /// Ties of either kind.
    pub ties: u64,
}

impl PairCounts {
    /// Battles of the pair, ties included.
    pub(crate) fn total(&self) -> u64 {
        self.wins_i + self.wins_j + self.ties
    }
}

/// The models that played in some pair (a pair with at least one battle), numbered 0, 1, ...
/// in order of first appearance: the fits solve over these only, which keeps their systems
/// small and regular (a model without battles would make them singular).
pub(crate) struct Active {
    local: Vec<usize>,
    /// Model index of each compact index.
    pub models: Vec<usize>,
}

impl Active {
    /// The active models of `n` in `pairs`.
    pub(crate) fn of(n: usize, pairs: &[PairCounts]) -> Self {
        let mut local = vec![usize::MAX; n];
        let mut models = Vec::new();
        for p in pairs.iter().filter(|p| p.total() > 0) {
            for m in [p.i as usize, p.j as usize] {
                if local[m] == usize::MAX {
                    local[m] = models.len();
                    models.push(m);
                }
            }
        }
        Self { local, models }
    }

    /// The compact indices of a pair's two models.
    pub(crate) fn pair(&self, p: &PairCounts) -> (usize, usize) {
        (self.local[p.i as usize], self.local[p.j as usize])
    }
}

#[cfg(test)]
impl PairCounts {
    /// Models 0 and 1 with these counts (unit tests).
    pub(crate) fn two(wins_i: u64, wins_j: u64, ties: u64) -> Self {
        Self {
            i: 0,
            j: 1,
            wins_i,
            wins_j,
            ties,
        }
    }
}

/// Everything the ratings need from a stream of battles.
#[derive(Debug, Clone, Default)]
pub struct Aggregate {
    names: Vec<String>,
    index: HashMap<String, u32>,
    /// Keyed by (model_a, model_b) as shown; counts in `Winner::index` order.
    cells: HashMap<(u32, u32), [u64; 4]>,
    elo: OnlineElo,
    battles: u64,
    /// SHA-256 of the battles so far, in order (see `vote_set_sha256`).
    digest: Sha256,
    /// Models whose names the digest holds (indices below this).
    hashed_names: usize,
    /// The battles' stored pair probabilities, for inverse-propensity weighting.
    pub(crate) propensities: Propensities,
}

impl Aggregate {
    /// An empty aggregate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a battles file straight into an aggregate (see `read_battles`).
    pub fn from_file(path: &Path, strict: bool) -> Result<(Self, ReadReport), RatingsError> {
        let mut agg = Self::new();
        // The reader only hands over battles between two distinct models, the one thing
        // `add` refuses, so nothing is lost by ignoring its result here.
        let report = read_battles(path, strict, |b| {
            let _ = agg.add(&b);
        })?;
        Ok((agg, report))
    }

    /// Folds in one battle: its counts and its online Elo update, in arrival order.
    pub fn add(&mut self, battle: &Battle) -> Result<(), RatingsError> {
        if battle.model_a == battle.model_b {
            return Err(RatingsError::SelfBattle {
                model: battle.model_a.clone(),
            });
        }
        let a = self.model_index(&battle.model_a);
        let b = self.model_index(&battle.model_b);
        self.add_indexed(a, b, battle.winner);
        Ok(())
    }

    /// `add` for models already known by index (the benchmark's generator).
    pub(crate) fn add_indexed(&mut self, a: u32, b: u32, winner: Winner) {
        // A name enters the digest once, when its index is first used; each battle is then
        // nine bytes, which keeps hashing off the cost of folding a million votes.
        while self.hashed_names <= a.max(b) as usize {
            let name = &self.names[self.hashed_names];
            self.digest.update((name.len() as u32).to_le_bytes());
            self.digest.update(name.as_bytes());
            self.hashed_names += 1;
        }
        let mut record = [0u8; 9];
        record[..4].copy_from_slice(&a.to_le_bytes());
        record[4..8].copy_from_slice(&b.to_le_bytes());
        record[8] = winner.index() as u8;
        self.digest.update(record);
        self.cells.entry((a, b)).or_default()[winner.index()] += 1;
        self.elo.update(a as usize, b as usize, winner);
        self.battles += 1;
    }

    /// The index of a model, adding it when new.
    pub(crate) fn model_index(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }

    /// Models in order of first appearance.
    pub fn models(&self) -> &[String] {
        &self.names
    }

    /// Whether a model has played.
    pub fn has_model(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Battles folded in.
    pub fn battles(&self) -> u64 {
        self.battles
    }

    /// The SHA-256 (hex) of exactly the battles folded in, in order. Models are numbered in
    /// order of first appearance; the digest reads, battle by battle, the name of each model
    /// when it first appears (a 4-byte little-endian length, then the UTF-8 bytes), then the
    /// two numbers (4 bytes each, little-endian) and the winner's index in `Winner::ALL`
    /// (1 byte). That names the votes and their order exactly; the same votes in the same
    /// order give the same hash, on any machine.
    pub fn vote_set_sha256(&self) -> String {
        crate::snapshot::hex(self.digest.clone().finalize())
    }

    /// The online Elo rating of model `i` after all battles so far.
    pub fn online_elo(&self, i: usize) -> f64 {
        self.elo.rating(i)
    }

    /// Outcome counts per ordered pair (model_a, model_b), in `Winner::ALL` order, sorted.
    pub fn cells(&self) -> Vec<((u32, u32), [u64; 4])> {
        let mut cells: Vec<_> = self.cells.iter().map(|(&k, &v)| (k, v)).collect();
        cells.sort_unstable_by_key(|&(k, _)| k);
        cells
    }

    /// Outcome counts of the ordered pair (model_a, model_b), in `Winner::ALL` order.
    pub(crate) fn cell(&self, a: u32, b: u32) -> [u64; 4] {
        self.cells.get(&(a, b)).copied().unwrap_or_default()
    }

    /// Per unordered pair, wins each way and ties; sorted so that fits and bootstrap draws
    /// are the same on every run.
    pub(crate) fn pair_counts(&self) -> Vec<PairCounts> {
        let mut pairs: HashMap<(u32, u32), PairCounts> = HashMap::new();
        for (&(a, b), c) in &self.cells {
            let (i, j) = (a.min(b), a.max(b));
            let p = pairs.entry((i, j)).or_insert(PairCounts {
                i,
                j,
                wins_i: 0,
                wins_j: 0,
                ties: 0,
            });
            let (wins_a, wins_b) = (c[Winner::ModelA.index()], c[Winner::ModelB.index()]);
            let (wi, wj) = if a == i {
                (wins_a, wins_b)
            } else {
                (wins_b, wins_a)
            };
            p.wins_i += wi;
            p.wins_j += wj;
            p.ties += c[Winner::Tie.index()] + c[Winner::TieBothBad.index()];
        }
        let mut pairs: Vec<PairCounts> = pairs.into_values().collect();
        pairs.sort_unstable_by_key(|p| (p.i, p.j));
        pairs
    }
}

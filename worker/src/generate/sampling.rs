//! Choosing the next token from logits, with FastChat's semantics.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Temperatures below this are greedy (FastChat's threshold).
const GREEDY_TEMPERATURE: f32 = 1e-5;
/// top_p below this is greedy too.
const GREEDY_TOP_P: f32 = 1e-8;

/// How to pick tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingConfig {
    /// Softmax temperature; below 1e-5 means greedy.
    pub temperature: f32,
    /// Nucleus mass in [0, 1]; 1 disables it.
    pub top_p: f32,
    /// Keep only the k most likely tokens; 0 disables it.
    pub top_k: usize,
    /// HF-style repetition penalty over prompt and output; 1 disables it.
    pub repetition_penalty: f32,
    /// Seed for reproducible sampling; random when absent.
    pub seed: Option<u64>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_p: 1.0,
            top_k: 0,
            repetition_penalty: 1.0,
            seed: None,
        }
    }
}

impl SamplingConfig {
    /// Whether this configuration always picks the most likely token.
    pub fn is_greedy(&self) -> bool {
        self.temperature < GREEDY_TEMPERATURE || self.top_p < GREEDY_TOP_P
    }
}

/// A sampler for one sequence (it owns the sequence's random state).
#[derive(Debug)]
pub struct Sampler {
    cfg: SamplingConfig,
    rng: StdRng,
}

impl Sampler {
    /// A sampler seeded from the config, or from the OS when unseeded.
    pub fn new(cfg: SamplingConfig) -> Self {
        let rng = match cfg.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Self { cfg, rng }
    }

    /// Picks the next token. `logits` are changed (penalty, temperature): a caller that needs
    /// the model's own distribution reads it first.
    pub fn sample(&mut self, logits: &mut [f32], previous: &[u32]) -> u32 {
        if self.cfg.repetition_penalty != 1.0 {
            apply_repetition_penalty(logits, previous, self.cfg.repetition_penalty);
        }
        if self.cfg.is_greedy() {
            return argmax(logits);
        }
        let inv_t = 1.0 / self.cfg.temperature;
        logits.iter_mut().for_each(|l| *l *= inv_t);
        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i as u32, l))
            .collect();
        if candidates.is_empty() {
            return argmax(logits);
        }
        candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if self.cfg.top_k > 0 && self.cfg.top_k < candidates.len() {
            candidates.truncate(self.cfg.top_k);
        }
        let max = candidates[0].1;
        let mut probs: Vec<f32> = candidates.iter().map(|(_, l)| (l - max).exp()).collect();
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if self.cfg.top_p < 1.0 {
            // Keep the smallest prefix whose mass reaches top_p (at least one token).
            let mut mass = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                mass += p;
                if mass >= self.cfg.top_p {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
            candidates.truncate(keep);
            let total: f32 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= total);
        }
        let r: f32 = self.rng.random();
        let mut acc = 0.0;
        for (i, p) in probs.iter().enumerate() {
            acc += p;
            if r < acc {
                return candidates[i].0;
            }
        }
        candidates[probs.len() - 1].0
    }
}

/// Divides positive logits and multiplies negative ones of every token already seen.
pub fn apply_repetition_penalty(logits: &mut [f32], previous: &[u32], penalty: f32) {
    let mut seen = vec![false; logits.len()];
    for &t in previous {
        let i = t as usize;
        if i < logits.len() && !seen[i] {
            seen[i] = true;
            let l = &mut logits[i];
            *l = if *l < 0.0 { *l * penalty } else { *l / penalty };
        }
    }
}

/// Index of the largest logit, the lowest index on ties.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(temperature: f32, top_p: f32, top_k: usize, seed: u64) -> SamplingConfig {
        SamplingConfig {
            temperature,
            top_p,
            top_k,
            repetition_penalty: 1.0,
            seed: Some(seed),
        }
    }

    #[test]
    fn greedy_picks_the_max_and_lowest_index_on_ties() {
        let mut s = Sampler::new(cfg(0.0, 1.0, 0, 1));
        assert_eq!(s.sample(&mut [0.1, 3.0, 3.0, -1.0], &[]), 1);
        let mut s = Sampler::new(cfg(1.0, 0.0, 0, 1));
        assert_eq!(s.sample(&mut [0.1, 0.2, 5.0], &[]), 2, "top_p 0 is greedy");
    }

    #[test]
    fn top_k_one_is_greedy_even_when_hot() {
        let mut s = Sampler::new(cfg(5.0, 1.0, 1, 7));
        for _ in 0..50 {
            assert_eq!(s.sample(&mut [0.0, 1.0, 0.5], &[]), 1);
        }
    }

    #[test]
    fn top_p_cuts_the_tail() {
        // probabilities ~ 0.64, 0.24, 0.09, 0.03: top_p 0.7 keeps only the first two
        let mut s = Sampler::new(cfg(1.0, 0.7, 0, 3));
        let logits = [3.0f32, 2.0, 1.0, 0.0];
        for _ in 0..500 {
            let id = s.sample(&mut logits.clone(), &[]);
            assert!(id <= 1, "sampled {id}");
        }
    }

    #[test]
    fn sampling_follows_the_distribution_and_is_reproducible() {
        let logits = [0.0f32, (3.0f32).ln()]; // p = 0.25, 0.75
        let mut s = Sampler::new(cfg(1.0, 1.0, 0, 42));
        let draws: Vec<u32> = (0..4000)
            .map(|_| s.sample(&mut logits.clone(), &[]))
            .collect();
        let ones = draws.iter().filter(|&&d| d == 1).count() as f32 / 4000.0;
        assert!((ones - 0.75).abs() < 0.03, "{ones}");
        let mut again = Sampler::new(cfg(1.0, 1.0, 0, 42));
        let replay: Vec<u32> = (0..4000)
            .map(|_| again.sample(&mut logits.clone(), &[]))
            .collect();
        assert_eq!(draws, replay);
    }

    #[test]
    fn repetition_penalty_matches_transformers() {
        let mut logits = [2.0f32, -2.0, 1.0];
        apply_repetition_penalty(&mut logits, &[0, 1, 1], 2.0);
        assert_eq!(logits, [1.0, -4.0, 1.0]);
    }
}

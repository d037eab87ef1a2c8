//! Online Elo, exactly as FastChat's `compute_elo`: one pass over the battles in the order
//! given, keeping only the running ratings.

use super::battle::Winner;

/// K-factor: how far one battle moves a rating.
pub const K: f64 = 4.0;
/// Rating points per factor `BASE` in the odds.
pub const SCALE: f64 = 400.0;
/// Odds base.
pub const BASE: f64 = 10.0;
/// Everyone's rating before their first battle.
pub const INIT_RATING: f64 = 1000.0;

/// Running online Elo ratings, indexed like the aggregate's models.
#[derive(Debug, Clone, Default)]
pub struct OnlineElo {
    ratings: Vec<f64>,
}

impl OnlineElo {
    /// Applies one battle between models `a` and `b` (indices; new ones start at 1000).
    pub fn update(&mut self, a: usize, b: usize, winner: Winner) {
        let need = a.max(b) + 1;
        if self.ratings.len() < need {
            self.ratings.resize(need, INIT_RATING);
        }
        let (ra, rb) = (self.ratings[a], self.ratings[b]);
        // Both expectations are computed separately, as FastChat does, so that the sums
        // round identically and the fixture agrees to the last digits.
        let ea = 1.0 / (1.0 + BASE.powf((rb - ra) / SCALE));
        let eb = 1.0 / (1.0 + BASE.powf((ra - rb) / SCALE));
        let sa = match winner {
            Winner::ModelA => 1.0,
            Winner::ModelB => 0.0,
            Winner::Tie | Winner::TieBothBad => 0.5,
        };
        self.ratings[a] += K * (sa - ea);
        self.ratings[b] += K * (1.0 - sa - eb);
    }

    /// The rating of model `i` (1000 if it has not played).
    pub fn rating(&self, i: usize) -> f64 {
        self.ratings.get(i).copied().unwrap_or(INIT_RATING)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_battle_moves_both_by_half_k() {
        let mut elo = OnlineElo::default();
        elo.update(0, 1, Winner::ModelA);
        assert_eq!((elo.rating(0), elo.rating(1)), (1002.0, 998.0));
        elo.update(1, 2, Winner::Tie);
        // 998 vs 1000 tie: model 1 gains K * (0.5 - e), e = 1 / (1 + 10^(2/400)).
        let e = 1.0 / (1.0 + 10f64.powf(2.0 / 400.0));
        assert!((elo.rating(1) - (998.0 + 4.0 * (0.5 - e))).abs() < 1e-12);
        assert!((elo.rating(1) + elo.rating(2) - 1998.0).abs() < 1e-9);
    }
}

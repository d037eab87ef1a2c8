//! Holds an anonymous battle's streamed text back into whole words at a steady pace, so the
//! page cannot see token boundaries (which tell tokenizers, hence models, apart) or each
//! token's timing.

use std::time::Duration;

use tokio::time::Instant;

/// The least time between two deltas of one side.
pub const INTERVAL: Duration = Duration::from_millis(40);

/// How long a word may be held back waiting for its end.
pub const MAX_HOLD: Duration = Duration::from_millis(250);

/// Text received but not yet sent, released at word ends no more often than [`INTERVAL`].
#[derive(Debug)]
pub struct Coalescer {
    pending: String,
    last_sent: Instant,
    held_since: Option<Instant>,
}

impl Default for Coalescer {
    fn default() -> Self {
        Self {
            pending: String::new(),
            last_sent: Instant::now(),
            held_since: None,
        }
    }
}

impl Coalescer {
    /// Takes new text; returns what may be sent now: everything up to the last whitespace,
    /// once [`INTERVAL`] has passed since the previous delta.
    pub fn push(&mut self, text: &str, now: Instant) -> Option<String> {
        if text.is_empty() {
            return None;
        }
        self.pending.push_str(text);
        self.held_since.get_or_insert(now);
        if now.duration_since(self.last_sent) < INTERVAL {
            return None;
        }
        let cut = self
            .pending
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map(|(i, c)| i + c.len_utf8())?;
        let out: String = self.pending.drain(..cut).collect();
        self.sent(now);
        Some(out)
    }

    /// When held text must go out even without a word end (None when nothing is held).
    pub fn deadline(&self) -> Option<Instant> {
        self.held_since.map(|t| t + MAX_HOLD)
    }

    /// Everything held, for the end of the answer or a passed deadline.
    pub fn flush(&mut self, now: Instant) -> Option<String> {
        if self.pending.is_empty() {
            self.held_since = None;
            return None;
        }
        let out = std::mem::take(&mut self.pending);
        self.sent(now);
        Some(out)
    }

    fn sent(&mut self, now: Instant) {
        self.last_sent = now;
        self.held_since = (!self.pending.is_empty()).then_some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_out_as_whole_words_at_most_every_interval() {
        let start = Instant::now();
        let mut c = Coalescer::default();
        let at = |ms: u64| start + Duration::from_millis(ms);
        // Sub-word tokens arriving every 10 ms.
        let mut sent = Vec::new();
        for (i, tok) in ["Hel", "lo", " wor", "ld", ",", " how", " are", " you"]
            .iter()
            .enumerate()
        {
            if let Some(out) = c.push(tok, at(10 * (i as u64 + 1))) {
                sent.push(out);
            }
        }
        sent.extend(c.flush(at(100)));
        assert_eq!(sent.concat(), "Hello world, how are you");
        // No delta ends inside a word except the final flush.
        for d in &sent[..sent.len() - 1] {
            assert!(d.ends_with(char::is_whitespace), "{sent:?}");
        }
        assert!(sent.len() < 8, "{sent:?}");
    }

    #[test]
    fn a_long_word_is_released_at_the_deadline() {
        let start = Instant::now();
        let mut c = Coalescer::default();
        assert_eq!(c.deadline(), None);
        assert_eq!(c.push("Supercalifragilistic", start + INTERVAL), None);
        assert_eq!(c.deadline(), Some(start + INTERVAL + MAX_HOLD));
        assert_eq!(
            c.flush(start + INTERVAL + MAX_HOLD).as_deref(),
            Some("Supercalifragilistic")
        );
        assert_eq!(c.deadline(), None);
        assert_eq!(c.flush(start + MAX_HOLD * 2), None);
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries() {
        let start = Instant::now();
        let mut c = Coalescer::default();
        let out = c.push("日本語\u{3000}です", start + INTERVAL * 2).unwrap();
        assert_eq!(out, "日本語\u{3000}");
        assert_eq!(c.flush(start + INTERVAL * 3).as_deref(), Some("です"));
    }
}

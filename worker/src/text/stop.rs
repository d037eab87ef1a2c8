//! Stop strings: cut from the output, and never streamed in part.

/// Holds back text that could be the start of a stop string.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    pending: String,
}

/// What to send after pushing text.
#[derive(Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// Send this text and go on.
    Continue(String),
    /// A stop string was found: send this text (everything before it) and finish.
    Stopped(String),
}

impl StopMatcher {
    /// A matcher for these stop strings (empty strings are ignored).
    pub fn new(stops: impl IntoIterator<Item = String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            pending: String::new(),
        }
    }

    /// Adds newly decoded text.
    pub fn push(&mut self, text: &str) -> StopOutcome {
        self.pending.push_str(text);
        if let Some(pos) = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min()
        {
            let out = self.pending[..pos].to_string();
            self.pending.clear();
            return StopOutcome::Stopped(out);
        }
        let hold = self
            .stops
            .iter()
            .map(|s| longest_suffix_prefix(&self.pending, s))
            .max()
            .unwrap_or(0);
        let cut = self.pending.len() - hold;
        let out = self.pending[..cut].to_string();
        self.pending.drain(..cut);
        StopOutcome::Continue(out)
    }

    /// The held-back text, when generation ends for another reason.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

/// Length of the longest proper prefix of `stop` that `text` ends with.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    stop.char_indices()
        .map(|(i, _)| i)
        .skip(1)
        .filter(|&k| text.ends_with(&stop[..k]))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut m = StopMatcher::new(stops.iter().map(|s| s.to_string()));
        let mut out = String::new();
        for p in pieces {
            match m.push(p) {
                StopOutcome::Continue(t) => out.push_str(&t),
                StopOutcome::Stopped(t) => {
                    out.push_str(&t);
                    return (out, true);
                }
            }
        }
        out.push_str(&m.finish());
        (out, false)
    }

    #[test]
    fn stop_string_split_across_tokens_is_cut() {
        assert_eq!(
            run(&["###"], &["Hello", " #", "#", "# Human"]),
            ("Hello ".into(), true)
        );
    }

    #[test]
    fn partial_stop_is_never_streamed() {
        let mut m = StopMatcher::new(["</s>".to_string()]);
        assert_eq!(m.push("ab<"), StopOutcome::Continue("ab".into()));
        assert_eq!(m.push("/"), StopOutcome::Continue("".into()));
        assert_eq!(m.push("x"), StopOutcome::Continue("</x".into()));
    }

    #[test]
    fn unfinished_prefix_is_released_at_the_end() {
        assert_eq!(run(&["STOP"], &["a", "ST"]), ("aST".into(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(
            run(&["world", "lo"], &["hello world"]),
            ("hel".into(), true)
        );
    }

    #[test]
    fn multibyte_stop_strings() {
        assert_eq!(run(&["é!"], &["café", "!x"]), ("caf".into(), true));
        assert_eq!(run(&["日本"], &["今日", "日本語"]), ("今日".into(), true));
    }
}

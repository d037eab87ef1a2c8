//! Style features of a battle, as LMArena computes them for style control: for each of the
//! answer's token count and its markdown header, list and bold counts, the normalised
//! difference `(a - b) / (a + b)` (0 when both are 0), then standardised over all battles
//! (arena-rank's `ContextualPairDataset` with `normalize_features`).

use serde::{Deserialize, Serialize};

/// Features per battle.
pub const STYLE_FEATURES: usize = 4;

/// Their names, in `StyleCounts::values` order (the public dataset's `conv_metadata` keys).
pub const STYLE_FEATURE_NAMES: [&str; STYLE_FEATURES] = [
    "sum_assistant_tokens",
    "header_count",
    "list_count",
    "bold_count",
];

/// One answer's style, counted with code blocks stripped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StyleCounts {
    /// Tokens of the answer (all assistant turns).
    pub tokens: u64,
    /// Markdown headers (`#` to `######`).
    pub headers: u64,
    /// List items, ordered and unordered.
    pub lists: u64,
    /// Bold spans (`**x**` and `__x__`).
    pub bold: u64,
}

impl StyleCounts {
    /// The counts in `STYLE_FEATURE_NAMES` order.
    pub fn values(&self) -> [u64; STYLE_FEATURES] {
        [self.tokens, self.headers, self.lists, self.bold]
    }
}

/// The style of an answer of `tokens` tokens, counted as FastChat's `add_markdown_info.py`
/// counts it for the public dataset's `conv_metadata`: fenced code blocks (```` ```…``` ````
/// without a backtick inside) removed first; a header is a line of 1 to 6 `#` and then
/// whitespace; a list item a line of optional whitespace, then `-`, `*` or `+`, or digits and
/// `.`, then whitespace; bold is `**…**` or `__…__` within a line. (Its regular expressions'
/// `\d` also takes non-ASCII digits; ours takes ASCII ones.)
pub fn style_counts(text: &str, tokens: u64) -> StyleCounts {
    markdown_counts(text).with_tokens(tokens)
}

/// One answer's markdown elements by kind, as the public dataset's `conv_metadata` keeps
/// them (`header_count: {h1..h6}`, `list_count: {ordered, unordered}`, `bold_count: {**, __}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MarkdownCounts {
    /// Headers of levels 1 to 6.
    pub headers: [u64; 6],
    /// Numbered list items.
    pub ordered: u64,
    /// `-`, `*` and `+` list items.
    pub unordered: u64,
    /// `**x**` spans.
    pub bold_stars: u64,
    /// `__x__` spans.
    pub bold_underscores: u64,
}

impl MarkdownCounts {
    /// The totals `style_features` takes, with the answer's token count.
    pub fn with_tokens(&self, tokens: u64) -> StyleCounts {
        StyleCounts {
            tokens,
            headers: self.headers.iter().sum(),
            lists: self.ordered + self.unordered,
            bold: self.bold_stars + self.bold_underscores,
        }
    }
}

/// The markdown elements of `text` as `style_counts` counts them.
pub fn markdown_counts(text: &str) -> MarkdownCounts {
    let text = strip_code_blocks(text);
    let mut counts = MarkdownCounts::default();
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        // A newline after the line is whitespace to the patterns' trailing `\s`.
        let newline = lines.peek().is_some();
        let spaced = |rest: &str| rest.chars().next().map_or(newline, char::is_whitespace);
        let hashes = line.len() - line.trim_start_matches('#').len();
        if (1..=6).contains(&hashes) && spaced(&line[hashes..]) {
            counts.headers[hashes - 1] += 1;
        }
        let item = line.trim_start();
        let digits = item.len() - item.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if item.starts_with(['-', '*', '+']) && spaced(&item[1..]) {
            counts.unordered += 1;
        } else if digits > 0 && item[digits..].starts_with('.') && spaced(&item[digits + 1..]) {
            counts.ordered += 1;
        }
    }
    counts.bold_stars = spans(&text, b'*');
    counts.bold_underscores = spans(&text, b'_');
    counts
}

/// `text` without its fenced code blocks (FastChat's pattern ```` ```[^`]*``` ````).
fn strip_code_blocks(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut from, mut p) = (0, 0);
    while let Some(at) = text[p..].find("```").map(|i| p + i) {
        let close = bytes[at + 3..]
            .iter()
            .position(|&b| b == b'`')
            .map(|i| at + 3 + i);
        match close.filter(|&c| text[c..].starts_with("```")) {
            Some(c) => {
                out.push_str(&text[from..at]);
                from = c + 3;
                p = from;
            }
            None => p = at + 1,
        }
    }
    out.push_str(&text[from..]);
    out
}

/// Non-overlapping `MM x MM` spans (`M` the marker twice, `x` one or more bytes that are
/// neither the marker nor a newline), left to right as a regular expression finds them.
fn spans(text: &str, marker: u8) -> u64 {
    let b = text.as_bytes();
    let (mut count, mut p) = (0, 0);
    while p + 1 < b.len() {
        if b[p] == marker && b[p + 1] == marker {
            let inner = b[p + 2..]
                .iter()
                .take_while(|&&c| c != marker && c != b'\n')
                .count();
            let end = p + 2 + inner;
            if inner > 0 && b.get(end) == Some(&marker) && b.get(end + 1) == Some(&marker) {
                count += 1;
                p = end + 2;
                continue;
            }
        }
        p += 1;
    }
    count
}

/// The standardised feature matrix (row-major, `STYLE_FEATURES` per battle) of battles
/// given as `(answer a, answer b)`. A feature equal in every battle stays 0.
pub fn style_features(pairs: &[(StyleCounts, StyleCounts)]) -> Vec<f64> {
    let k = STYLE_FEATURES;
    let mut x = Vec::with_capacity(pairs.len() * k);
    for (a, b) in pairs {
        for (va, vb) in a.values().into_iter().zip(b.values()) {
            let (va, vb) = (va as f64, vb as f64);
            let total = if va + vb == 0.0 { 1.0 } else { va + vb };
            x.push((va - vb) / total);
        }
    }
    let rows = pairs.len().max(1) as f64;
    for f in 0..k {
        let mean = x.iter().skip(f).step_by(k).sum::<f64>() / rows;
        let var = x
            .iter()
            .skip(f)
            .step_by(k)
            .map(|v| (v - mean).powi(2))
            .sum::<f64>()
            / rows;
        let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
        x.iter_mut()
            .skip(f)
            .step_by(k)
            .for_each(|v| *v = (*v - mean) / sd);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(tokens: u64, headers: u64) -> StyleCounts {
        StyleCounts {
            tokens,
            headers,
            ..StyleCounts::default()
        }
    }

    /// FastChat's regular expressions on the same texts (run with Python's `re`).
    #[test]
    fn counts_match_fastchats_markdown_patterns() {
        let cases = [
            ("# Title\n\nSome **bold** and __also__ text.\n\n## Part\n1. one\n2. two\n- a\n* b\n+ c\n", (2, 5, 2)),
            ("```python\n# not a header\n- not a list\n**not bold**\n```\n### Real\n", (1, 0, 0)),
            ("####### seven\n#no space\n#\n##\n-\n- x\n  3. indented\n***not***\n**a** **b**\n__x__y__\n", (2, 3, 4)),
            ("text ``` unclosed\n# h\n", (1, 0, 0)),
            ("a `inline` b\n```x`y```\n- after\n", (0, 1, 0)),
            ("   \n- item after blank\n1.\n", (0, 2, 0)),
        ];
        for (text, (headers, lists, bold)) in cases {
            let c = style_counts(text, 7);
            assert_eq!(
                (c.headers, c.lists, c.bold, c.tokens),
                (headers, lists, bold, 7),
                "{text:?}"
            );
        }
    }

    #[test]
    fn features_are_standardised_normalised_differences() {
        let x = style_features(&[
            (counts(300, 0), counts(100, 0)),
            (counts(100, 2), counts(300, 0)),
        ]);
        // Tokens: +0.5 and -0.5, so ±1 once standardised; headers: 0 and 1 → -1 and +1;
        // lists and bold never differ and stay 0.
        assert_eq!(x, vec![1.0, -1.0, 0.0, 0.0, -1.0, 1.0, 0.0, 0.0]);
    }
}

//! A conversation as training tokens: rendered with the model's own chat template, tokenized,
//! and marked so the loss counts only what the assistant wrote and the marker that ends its
//! turn (FastChat's recipe: system prompt, user turns and the role headers are masked).

use arena_worker::text::template::{Message, Role, Template};
use arena_worker::text::tokenizer::Tokenizer;

use crate::data::Conversation;
use crate::error::{Result, TrainError};

/// A tokenized conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Per token: whether the model is trained to produce it.
    pub supervised: Vec<bool>,
}

impl Example {
    /// Tokens the loss counts.
    pub fn supervised_tokens(&self) -> usize {
        self.supervised.iter().filter(|s| **s).count()
    }

    /// Pieces of at most `max_len` tokens, in order, each trained on its own (the context
    /// before a cut is lost; a piece with nothing supervised is dropped).
    pub fn split(&self, max_len: usize) -> Vec<Example> {
        let max_len = max_len.max(2);
        (0..self.ids.len())
            .step_by(max_len)
            .map(|at| {
                let end = (at + max_len).min(self.ids.len());
                Example {
                    ids: self.ids[at..end].to_vec(),
                    supervised: self.supervised[at..end].to_vec(),
                }
            })
            // The first token of a piece has no context to be predicted from.
            .filter(|e| e.ids.len() >= 2 && e.supervised[1..].iter().any(|s| *s))
            .collect()
    }
}

/// Where the text of each rendered message lies, and what ends an assistant turn.
struct Layout {
    /// Byte range of each assistant message's text together with its end-of-turn marker.
    assistant: Vec<(usize, usize)>,
}

/// The text that may end an assistant turn right after its content: the end-of-sequence
/// tokens and the template's stop strings, longest first.
fn end_markers(template: &Template, tokenizer: &Tokenizer) -> Vec<String> {
    let mut markers: Vec<String> = tokenizer
        .eos_ids()
        .iter()
        .filter_map(|&id| tokenizer.id_to_token(id))
        .chain(template.stop_strings())
        .filter(|m| !m.is_empty())
        .collect();
    markers.sort_by_key(|m| std::cmp::Reverse(m.len()));
    markers.dedup();
    markers
}

/// Renders `messages` (and one placeholder user turn after them, so the template, which
/// renders a prompt for the next reply, writes the last assistant turn's end marker) and
/// finds each assistant turn's text.
fn layout(
    messages: &[Message],
    template: &Template,
    markers: &[String],
) -> Result<(arena_worker::text::guard::Rendered, Layout)> {
    let mut with_next = messages.to_vec();
    with_next.push(Message::new(Role::User, "next"));
    let rendered = template.render(&with_next, None)?;
    if rendered.untrusted.len() != with_next.len() {
        return Err(TrainError::Data(format!(
            "the chat template rendered {} message texts for {} messages: it drops or repeats \
             some, so the assistant's tokens cannot be told apart",
            rendered.untrusted.len(),
            with_next.len()
        )));
    }
    let mut assistant = Vec::new();
    for (m, span) in with_next.iter().zip(&rendered.untrusted) {
        if m.role != Role::Assistant {
            continue;
        }
        let after = &rendered.text[span.end..];
        let gap = after.len() - after.trim_start_matches([' ', '\t']).len();
        let end = markers
            .iter()
            .find(|mk| after[gap..].starts_with(mk.as_str()))
            .map_or(span.end, |mk| span.end + gap + mk.len());
        assistant.push((span.start, end));
    }
    Ok((rendered, Layout { assistant }))
}

/// Renders, tokenizes and marks one conversation.
pub fn encode(conv: &Conversation, template: &Template, tokenizer: &Tokenizer) -> Result<Example> {
    let markers = end_markers(template, tokenizer);
    let (rendered, layout) = layout(&conv.messages, template, &markers)
        .map_err(|e| TrainError::Data(format!("conversation {}: {e}", conv.id)))?;
    let tokens = tokenizer.encode_rendered_with_offsets(&rendered)?;
    // Builtin templates leave BOS to the tokenizer; Jinja templates write their own.
    let mut ids: Vec<u32> = if template.tokenizer_adds_bos() {
        tokenizer.encode("", true)?
    } else {
        Vec::new()
    };
    let mut supervised = vec![false; ids.len()];
    for (id, (start, end)) in tokens {
        ids.push(id);
        supervised.push(layout.assistant.iter().any(|&(s, e)| end > s && start < e));
    }
    // Nothing after the last assistant turn is trained on: drop the placeholder turn.
    let keep = supervised.iter().rposition(|s| *s).map_or(0, |i| i + 1);
    ids.truncate(keep);
    supervised.truncate(keep);
    Ok(Example { ids, supervised })
}

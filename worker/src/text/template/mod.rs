//! Conversation templates: the built-in FastChat formats and Jinja `chat_template`s.

use minijinja::{context, Environment, Error as JinjaError, ErrorKind};
use serde::Serialize;

use crate::error::{Result, WorkerError};
use crate::text::guard::{self, Rendered};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the assistant.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// Parses "system", "user" or "assistant".
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "system" => Ok(Self::System),
            "user" => Ok(Self::User),
            "assistant" => Ok(Self::Assistant),
            other => Err(WorkerError::param(
                "messages",
                format!("unknown role '{other}' (expected system, user or assistant)"),
            )),
        }
    }

    /// The role of turn `i` (from 0) of a conversation whose turns alternate user, assistant.
    pub fn of_turn(i: usize) -> Self {
        if i.is_multiple_of(2) {
            Self::User
        } else {
            Self::Assistant
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Its author.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

const VICUNA_SYSTEM: &str = "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";
const ALPACA_SYSTEM: &str = "Below is an instruction that describes a task. Write a response that appropriately completes the request.";
const ZERO_SHOT_SYSTEM: &str = "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";

/// The built-in formats, byte-exact with FastChat's renderings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `vicuna_v1.1`.
    VicunaV11,
    /// Stanford Alpaca.
    Alpaca,
    /// `llama-2` chat.
    Llama2,
    /// LLaMA base models: `### Human:` / `### Assistant:`.
    ZeroShot,
    /// ChatML (`<|im_start|>` / `<|im_end|>`).
    ChatMl,
}

impl Builtin {
    /// All built-ins, for listing.
    pub const ALL: [Builtin; 5] = [
        Self::VicunaV11,
        Self::Alpaca,
        Self::Llama2,
        Self::ZeroShot,
        Self::ChatMl,
    ];

    /// The name used by `--template`.
    pub fn name(self) -> &'static str {
        match self {
            Self::VicunaV11 => "vicuna_v1.1",
            Self::Alpaca => "alpaca",
            Self::Llama2 => "llama-2",
            Self::ZeroShot => "zero_shot",
            Self::ChatMl => "chatml",
        }
    }
}

/// A conversation template.
#[derive(Debug, Clone)]
pub enum Template {
    /// One of the built-in formats.
    Builtin(Builtin),
    /// A Jinja template carried by the model.
    Jinja {
        /// The template source.
        source: String,
        /// Text of the BOS token, exposed to the template as `bos_token`.
        bos_token: String,
        /// Text of the EOS token, exposed as `eos_token`.
        eos_token: String,
    },
}

impl Template {
    /// A built-in template by its `--template` name.
    pub fn by_name(name: &str) -> Result<Self> {
        Builtin::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .map(Self::Builtin)
            .ok_or_else(|| {
                let names: Vec<_> = Builtin::ALL.iter().map(|b| b.name()).collect();
                WorkerError::Template(format!(
                    "unknown template '{name}' (known: {}, or 'model' for the model's own)",
                    names.join(", ")
                ))
            })
    }

    /// Picks the template: explicit name, else the model's own, else by model name.
    pub fn select(explicit: Option<&str>, own: Option<Template>, model_name: &str) -> Result<Self> {
        match explicit {
            Some("model") => own
                .ok_or_else(|| WorkerError::Template("the model carries no chat template".into())),
            Some(name) => Self::by_name(name),
            None => Ok(own.unwrap_or_else(|| Self::Builtin(builtin_for_name(model_name)))),
        }
    }

    /// The name shown in `Info` and logs.
    pub fn name(&self) -> &str {
        match self {
            Self::Builtin(b) => b.name(),
            Self::Jinja { .. } => "model (jinja)",
        }
    }

    /// Whether the tokenizer should add BOS: Jinja templates write their own.
    pub fn tokenizer_adds_bos(&self) -> bool {
        matches!(self, Self::Builtin(_))
    }

    /// Stop strings the format implies besides EOS. Besides the end-of-turn marker, each
    /// template stops where the next user turn would start: a model not trained on the format
    /// (SmolLM2 under the Vicuna template, say) never emits its `</s>` and would otherwise
    /// write the user's next message itself.
    pub fn stop_strings(&self) -> Vec<String> {
        let stops: &[&str] = match self {
            Self::Builtin(Builtin::ZeroShot) => &["###"],
            Self::Builtin(Builtin::ChatMl) => &["<|im_end|>", "<|im_start|>"],
            Self::Builtin(Builtin::VicunaV11) => &["</s>", "USER:"],
            Self::Builtin(Builtin::Alpaca) => &["</s>", "### Instruction:"],
            Self::Builtin(Builtin::Llama2) => &["</s>", "[INST]"],
            Self::Jinja { .. } => &[],
        };
        stops.iter().map(|s| s.to_string()).collect()
    }

    /// Renders the prompt for the assistant's next reply, recording which bytes came from
    /// the messages (and a caller's system prompt) so they are never read as special tokens.
    /// A conversation ending with an assistant message is a prefill: the prompt ends with
    /// that message's text, which the reply continues.
    pub fn render(&self, messages: &[Message], system: Option<&str>) -> Result<Rendered> {
        let (own_system, turns) = split_system(messages)?;
        let prefill = turns.last().is_some_and(|m| m.role == Role::Assistant);
        let system = system.or(own_system).map(guard::wrap);
        let last = turns.len() - 1;
        let turns: Vec<Message> = turns
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let content = if prefill && i == last {
                    guard::wrap_open_ended(&m.content)
                } else {
                    guard::wrap(&m.content)
                };
                Message::new(m.role, content)
            })
            .collect();
        let marked = match self {
            Self::Builtin(b) => render_builtin(*b, system.as_deref(), &turns),
            Self::Jinja {
                source,
                bos_token,
                eos_token,
            } => render_jinja(
                source,
                bos_token,
                eos_token,
                system.as_deref(),
                &turns,
                !prefill,
            )?,
        };
        if !prefill {
            return Ok(guard::unwrap(&marked));
        }
        let cut = guard::cut_at_end(&marked).ok_or_else(|| {
            WorkerError::Template(
                "this model's chat template leaves out a final assistant message, so it cannot be continued".into(),
            )
        })?;
        Ok(guard::unwrap(cut))
    }
}

/// FastChat's name-based choice for models without their own template.
fn builtin_for_name(name: &str) -> Builtin {
    let n = name.to_lowercase();
    if n.contains("vicuna") {
        Builtin::VicunaV11
    } else if n.contains("alpaca") {
        Builtin::Alpaca
    } else if n.contains("llama-2") || n.contains("llama2") {
        Builtin::Llama2
    } else {
        Builtin::ZeroShot
    }
}

/// Separates an optional leading system message and checks the turns alternate user/assistant,
/// starting with the user (the last may be the assistant's, to be continued).
fn split_system(messages: &[Message]) -> Result<(Option<&str>, &[Message])> {
    let (system, turns) = match messages.split_first() {
        Some((first, rest)) if first.role == Role::System => (Some(first.content.as_str()), rest),
        _ => (None, messages),
    };
    if turns.is_empty() {
        return Err(WorkerError::param(
            "messages",
            "at least one user message is required",
        ));
    }
    for (i, m) in turns.iter().enumerate() {
        if m.role != Role::of_turn(i) {
            return Err(WorkerError::param(
                "messages",
                format!(
                    "message {} has role {:?}; after an optional first system message, roles must alternate user, assistant, user, ...",
                    i + usize::from(system.is_some()),
                    m.role
                ),
            ));
        }
    }
    Ok((system, turns))
}

/// How a built-in template writes the turns: each role's text between its two strings, then
/// the opening of the answer to come.
struct Turns {
    user: (&'static str, &'static str),
    assistant: (&'static str, &'static str),
    next: &'static str,
}

impl Turns {
    /// Appends `turns` (alternating, from the user) and the opening of the next answer.
    fn write(&self, out: &mut String, turns: &[Message]) {
        for m in turns {
            let (open, close) = if m.role == Role::User {
                self.user
            } else {
                self.assistant
            };
            out.push_str(open);
            out.push_str(&m.content);
            out.push_str(close);
        }
        out.push_str(self.next);
    }
}

fn render_builtin(b: Builtin, system: Option<&str>, turns: &[Message]) -> String {
    let mut out = String::new();
    match b {
        Builtin::VicunaV11 => {
            out.push_str(system.unwrap_or(VICUNA_SYSTEM));
            out.push(' ');
            Turns {
                user: ("USER: ", " "),
                assistant: ("ASSISTANT: ", "</s>"),
                next: "ASSISTANT:",
            }
            .write(&mut out, turns);
        }
        Builtin::Alpaca => {
            out.push_str(system.unwrap_or(ALPACA_SYSTEM));
            out.push_str("\n\n");
            Turns {
                user: ("### Instruction:\n", "\n\n"),
                assistant: ("### Response:\n", "</s>\n\n"),
                next: "### Response:\n",
            }
            .write(&mut out, turns);
        }
        Builtin::Llama2 => {
            match system.filter(|s| !s.is_empty()) {
                Some(s) => {
                    out.push_str("[INST] <<SYS>>\n");
                    out.push_str(s);
                    out.push_str("\n<</SYS>>\n\n");
                }
                None => out.push_str("[INST] "),
            }
            for (i, m) in turns.iter().enumerate() {
                match m.role {
                    Role::User if i == 0 => {
                        out.push_str(&m.content);
                        out.push(' ');
                    }
                    Role::User => {
                        out.push_str("[INST] ");
                        out.push_str(&m.content);
                        out.push(' ');
                    }
                    _ => {
                        out.push_str("[/INST] ");
                        out.push_str(&m.content);
                        out.push_str(" </s><s>");
                    }
                }
            }
            out.push_str("[/INST]");
        }
        Builtin::ZeroShot => {
            out.push_str(system.unwrap_or(ZERO_SHOT_SYSTEM));
            out.push('\n');
            Turns {
                user: ("### Human: ", "\n"),
                assistant: ("### Assistant: ", "\n"),
                next: "### Assistant:",
            }
            .write(&mut out, turns);
        }
        Builtin::ChatMl => {
            if let Some(s) = system.filter(|s| !s.is_empty()) {
                out.push_str("<|im_start|>system\n");
                out.push_str(s);
                out.push_str("<|im_end|>\n");
            }
            Turns {
                user: ("<|im_start|>user\n", "<|im_end|>\n"),
                assistant: ("<|im_start|>assistant\n", "<|im_end|>\n"),
                next: "<|im_start|>assistant\n",
            }
            .write(&mut out, turns);
        }
    }
    out
}

fn render_jinja(
    source: &str,
    bos_token: &str,
    eos_token: &str,
    system: Option<&str>,
    turns: &[Message],
    add_generation_prompt: bool,
) -> Result<String> {
    // Hugging Face renders chat templates with trim_blocks and lstrip_blocks on, and
    // templates call Python string methods, so both are enabled here.
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<String, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_template("chat", source).map_err(|e| {
        WorkerError::Template(format!("the model's chat template does not parse: {e}"))
    })?;
    let mut messages: Vec<Message> = Vec::with_capacity(turns.len() + 1);
    if let Some(s) = system {
        messages.push(Message::new(Role::System, s));
    }
    messages.extend_from_slice(turns);
    let tmpl = env
        .get_template("chat")
        .map_err(|e| WorkerError::Template(e.to_string()))?;
    tmpl.render(context! {
        messages => messages,
        add_generation_prompt => add_generation_prompt,
        bos_token => bos_token,
        eos_token => eos_token,
    })
    .map_err(|e| WorkerError::Template(format!("rendering the model's chat template failed: {e}")))
}

#[cfg(test)]
mod tests;

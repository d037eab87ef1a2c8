//! Conversations as clients send them: chat `messages` and Responses `input` items, each with
//! its content as a string or a list of text parts, turned into the worker's messages.

use arena_proto::v1::ChatMessage;
use serde_json::Value;

use super::fields::{kind, parse, wrong_shape, Fields};
use crate::error::ApiError;

/// Which API's conversation shape is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `/v1/chat/completions` `messages`: text parts are `{"type": "text"}`.
    Chat,
    /// `/v1/responses` `input` items: text parts are `input_text` / `output_text`.
    Responses,
}

impl Dialect {
    fn field(self) -> &'static str {
        match self {
            Self::Chat => "messages",
            Self::Responses => "input",
        }
    }
}

/// Chat's `messages`: at least one, roles system, developer (read as system), user and
/// assistant.
pub fn chat_messages(v: Value) -> Result<Vec<ChatMessage>, ApiError> {
    let items: Vec<Value> = parse(v, "messages")?;
    if items.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "'messages' must hold at least one message",
        ));
    }
    let messages = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| message(item, i, Dialect::Chat))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(merge_leading_system(messages))
}

/// Responses' `input` (a string, or a list of message items) with `instructions` as the
/// system message.
pub fn response_input(
    input: Value,
    instructions: Option<String>,
) -> Result<Vec<ChatMessage>, ApiError> {
    let mut messages: Vec<ChatMessage> = instructions
        .map(|content| ChatMessage {
            role: "system".into(),
            content,
        })
        .into_iter()
        .collect();
    match input {
        Value::String(content) => messages.push(ChatMessage {
            role: "user".into(),
            content,
        }),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ApiError::invalid_param(
                    "input",
                    "'input' must hold at least one item",
                ));
            }
            for (i, item) in items.into_iter().enumerate() {
                messages.push(message(item, i, Dialect::Responses)?);
            }
        }
        other => {
            return Err(wrong_shape(
                "input",
                format!(
                    "'input' must be a string or a list of items, got {}",
                    kind(&other)
                ),
            ))
        }
    }
    Ok(merge_leading_system(messages))
}

/// One message (chat) or input item (Responses).
fn message(item: Value, i: usize, dialect: Dialect) -> Result<ChatMessage, ApiError> {
    let path = format!("{}[{i}]", dialect.field());
    let mut f = Fields::new(item, &path)?;
    if dialect == Dialect::Responses {
        match f.take::<String>("type")?.as_deref() {
            None | Some("message") => {}
            Some(other) => {
                return Err(ApiError::unsupported_param(
                    &f.path("type"),
                    format!("input items of type '{other}' are not supported: only messages"),
                ))
            }
        }
        // Echoed back from an earlier response's output: nothing to do with them.
        f.take::<String>("id")?;
        f.take::<String>("status")?;
    }
    let role: String = f.require("role")?;
    let role = match role.as_str() {
        "system" | "developer" => "system",
        "user" => "user",
        "assistant" => "assistant",
        "tool" | "function" => {
            return Err(ApiError::unsupported_param(
                &f.path("role"),
                format!("role '{role}' is not supported: this server has no tool calling"),
            ))
        }
        _ => {
            return Err(ApiError::invalid_param(
                &f.path("role"),
                format!("unsupported role '{role}' (use system, developer, user or assistant)"),
            ))
        }
    };
    let content_path = f.path("content");
    let content = match f.raw("content") {
        Some(v) => content(v, &content_path, dialect)?,
        None => {
            return Err(ApiError::invalid_param(
                &content_path,
                format!("'{content_path}' is required"),
            ))
        }
    };
    if dialect == Dialect::Chat {
        for name in ["tool_calls", "function_call", "audio", "refusal"] {
            f.only_noop(
                name,
                |_| false,
                "this server has no tools, audio or refusals",
            )?;
        }
        f.only_noop(
            "annotations",
            |v| v.as_array().is_some_and(Vec::is_empty),
            "annotations are not read",
        )?;
    }
    f.finish()?;
    Ok(ChatMessage {
        role: role.into(),
        content,
    })
}

/// Content: a string, or a list of text parts joined with newlines (as vLLM and llama.cpp
/// join them). Any other part (an image, audio, a file) is refused, naming its `type`.
fn content(v: Value, path: &str, dialect: Dialect) -> Result<String, ApiError> {
    let parts = match v {
        Value::String(s) => return Ok(s),
        Value::Array(parts) => parts,
        other => {
            return Err(wrong_shape(
                path,
                format!(
                    "'{path}' must be a string or a list of content parts, got {}",
                    kind(&other)
                ),
            ))
        }
    };
    if parts.is_empty() {
        return Err(ApiError::invalid_param(
            path,
            format!("'{path}' must hold at least one content part"),
        ));
    }
    let mut texts = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let mut p = Fields::new(part, &format!("{path}[{j}]"))?;
        let ty: String = p.require("type")?;
        let is_text = match dialect {
            Dialect::Chat => ty == "text",
            Dialect::Responses => ty == "input_text" || ty == "output_text",
        };
        if !is_text {
            return Err(ApiError::unsupported_param(
                &p.path("type"),
                format!("content parts of type '{ty}' are not supported: only text"),
            ));
        }
        texts.push(p.require::<String>("text")?);
        if ty == "output_text" {
            // Part of an earlier response's output sent back: its extras are not read.
            p.take::<Value>("annotations")?;
            p.take::<Value>("logprobs")?;
        }
        p.finish()?;
    }
    Ok(texts.join("\n"))
}

/// Joins the leading system messages (instructions, then system and developer messages) into
/// one: the worker's templates take a single system message, first.
fn merge_leading_system(messages: Vec<ChatMessage>) -> Vec<ChatMessage> {
    let lead = messages.iter().take_while(|m| m.role == "system").count();
    if lead < 2 {
        return messages;
    }
    let mut rest = messages.into_iter();
    let system: Vec<String> = rest.by_ref().take(lead).map(|m| m.content).collect();
    std::iter::once(ChatMessage {
        role: "system".into(),
        content: system.join("\n\n"),
    })
    .chain(rest)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> ApiError {
        chat_messages(v).unwrap_err()
    }

    #[test]
    fn roles_and_content_parts() {
        let m = chat_messages(json!([
            {"role": "developer", "content": "Be brief."},
            {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}]},
            {"role": "assistant", "content": "hello", "refusal": null, "tool_calls": null},
        ]))
        .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].role.as_str(), m[0].content.as_str()),
            ("system", "Be brief.\n\nBe kind.")
        );
        assert_eq!(m[1].content, "hi\nthere");
        assert_eq!(m[2].role, "assistant");
    }

    #[test]
    fn what_is_refused_is_named() {
        for (v, param, code, status) in [
            (json!([]), "messages", "invalid_parameter", 400),
            (json!("hi"), "messages", "invalid_parameter", 422),
            (
                json!([{"role": "robot", "content": "x"}]),
                "messages[0].role",
                "invalid_parameter",
                400,
            ),
            (
                json!([{"role": "tool", "content": "x"}]),
                "messages[0].role",
                "unsupported_parameter",
                400,
            ),
            (
                json!([{"content": "x"}]),
                "messages[0].role",
                "invalid_parameter",
                422,
            ),
            (
                json!([{"role": "user"}]),
                "messages[0].content",
                "invalid_parameter",
                400,
            ),
            (
                json!([{"role": "user", "content": 3}]),
                "messages[0].content",
                "invalid_parameter",
                422,
            ),
            (
                json!([{"role": "user", "content": [{"type": "text", "text": "a"},
                    {"type": "image_url", "image_url": {"url": "http://x"}}]}]),
                "messages[0].content[1].type",
                "unsupported_parameter",
                400,
            ),
            (
                json!([{"role": "user", "content": [{"type": "text"}]}]),
                "messages[0].content[0].text",
                "invalid_parameter",
                422,
            ),
            (
                json!([{"role": "user", "content": "x", "name": "bob"}]),
                "messages[0].name",
                "unsupported_parameter",
                400,
            ),
            (
                json!([{"role": "assistant", "content": "x", "tool_calls": [{}]}]),
                "messages[0].tool_calls",
                "unsupported_parameter",
                400,
            ),
        ] {
            let e = err(v.clone());
            assert_eq!(e.param.as_deref(), Some(param), "{v}");
            assert_eq!((e.code, e.status.as_u16()), (code, status), "{v}");
        }
        assert!(err(json!([{"role": "robot", "content": "x"}]))
            .message
            .contains("robot"));
    }

    #[test]
    fn responses_input_and_instructions() {
        let m = response_input(json!("hi"), Some("Be brief.".into())).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].role.as_str(), m[1].content.as_str()),
            ("system", "hi")
        );
        let m = response_input(
            json!([
                {"role": "developer", "content": "Terse."},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": "hello", "annotations": []}]},
                {"role": "user", "content": "again"},
            ]),
            Some("Be brief.".into()),
        )
        .unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].content, "Be brief.\n\nTerse.");
        assert_eq!(m[2].content, "hello");
        for (v, param) in [
            (
                json!([{"type": "function_call_output", "call_id": "c", "output": "x"}]),
                "input[0].type",
            ),
            (
                json!([{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]),
                "input[0].content[0].type",
            ),
            (
                json!([{"role": "user", "content": [{"type": "text", "text": "x"}]}]),
                "input[0].content[0].type",
            ),
            (json!(3), "input"),
            (json!([]), "input"),
        ] {
            let e = response_input(v.clone(), None).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{v}");
        }
    }
}

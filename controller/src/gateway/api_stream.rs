//! Reading an OpenAI-compatible chat-completion stream: server-sent events split into their
//! `data:` payloads, each payload turned into the message a worker would send, and the usage
//! at the end: the endpoint's own, or counted here when it sends none.

use arena_proto::v1::{FinishReason, GenerateResponse, Usage};
use serde_json::Value;
use tonic::Status;

/// Server-sent events from a byte stream: chunks may split lines, line endings (CRLF, LF or
/// CR, as the SSE format allows; sse-starlette, behind llama-cpp-python, sends CRLF) and
/// UTF-8 characters anywhere, so bytes are kept until an event is complete.
#[derive(Debug, Default)]
pub struct SseEvents {
    /// Bytes received, line endings already made `\n`.
    buf: Vec<u8>,
    /// The last byte was a CR, already taken as a line end: a LF right after it (perhaps
    /// in the next chunk) is part of the same line end.
    after_cr: bool,
}

impl SseEvents {
    /// Adds bytes from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\r' => self.buf.push(b'\n'),
                _ => self.buf.push(b),
            }
        }
    }

    /// The data of the next complete event (its `data:` lines joined by newlines), skipping
    /// events without data (comments such as keep-alive pings, bare `event:` lines).
    pub fn next_data(&mut self) -> Option<String> {
        loop {
            let end = self.buf.windows(2).position(|w| w == b"\n\n")?;
            let event: Vec<u8> = self.buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                return Some(data.join("\n"));
            }
        }
    }
}

/// What one chat-completion stream has said so far.
#[derive(Debug, Default)]
pub struct ChatStream {
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    /// Non-empty content deltas received: the completion's token count when the endpoint
    /// reports none, since OpenAI-style servers stream about one token per chunk.
    content_chunks: u32,
}

impl ChatStream {
    /// Parses one `data:` payload (not `[DONE]`) into a message; `None` for chunks with
    /// nothing to say (a role, a finish reason, the usage).
    pub fn parse(&mut self, data: &str) -> Result<Option<GenerateResponse>, Status> {
        let v: Value = serde_json::from_str(data)
            .map_err(|e| Status::internal(format!("bad chunk from the endpoint: {e}")))?;
        if let Some(err) = v.get("error") {
            let msg = err["message"]
                .as_str()
                .unwrap_or("unknown error")
                .to_string();
            return Ok(Some(GenerateResponse {
                finish_reason: FinishReason::Error as i32,
                error: msg,
                ..Default::default()
            }));
        }
        // A usage without a completion count tells nothing the chunks do not.
        let reported = v.get("usage").filter(|u| u["completion_tokens"].is_u64());
        if let Some(u) = reported {
            let count = |v: &Value| v.as_u64().map_or(0, |n| n.min(u64::from(u32::MAX)) as u32);
            self.usage = Some(Usage {
                prompt_tokens: count(&u["prompt_tokens"]),
                completion_tokens: count(&u["completion_tokens"]),
                // OpenAI's own count of prompt tokens its cache served.
                cached_tokens: count(&u["prompt_tokens_details"]["cached_tokens"]),
                // Without a prompt count the prompt is unknown, not empty.
                estimated: !u["prompt_tokens"].is_u64(),
            });
        }
        let choice = &v["choices"][0];
        match choice["finish_reason"].as_str() {
            Some("length") => self.finish = Some(FinishReason::Length),
            Some(_) => self.finish = Some(FinishReason::Stop),
            None => {}
        }
        let text = choice["delta"]["content"]
            .as_str()
            .filter(|t| !t.is_empty());
        Ok(text.map(|t| {
            self.content_chunks = self.content_chunks.saturating_add(1);
            GenerateResponse {
                text: t.to_string(),
                ..Default::default()
            }
        }))
    }

    /// The last message, at `[DONE]`: the finish reason (stop when none came) and the usage,
    /// the endpoint's when it sent one, else the content chunks counted and marked estimated.
    pub fn last(&self) -> GenerateResponse {
        let usage = self.usage.unwrap_or(Usage {
            prompt_tokens: 0,
            completion_tokens: self.content_chunks,
            cached_tokens: 0,
            estimated: true,
        });
        GenerateResponse {
            finish_reason: self.finish.unwrap_or(FinishReason::Stop) as i32,
            usage: Some(usage),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs SSE `text` through a fresh reader in chunks of `size` bytes: the text streamed
    /// and the last message.
    fn run(text: &str, size: usize) -> (String, GenerateResponse) {
        let (mut events, mut stream) = (SseEvents::default(), ChatStream::default());
        let mut out = String::new();
        for chunk in text.as_bytes().chunks(size) {
            events.push(chunk);
            while let Some(data) = events.next_data() {
                if data == "[DONE]" {
                    return (out, stream.last());
                }
                if let Some(m) = stream.parse(&data).unwrap() {
                    out.push_str(&m.text);
                }
            }
        }
        panic!("no [DONE] in {text:?}");
    }

    fn delta(t: &str) -> String {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]})
        )
    }

    const ROLE: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n";
    const STOP: &str =
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    #[test]
    fn the_endpoints_usage_is_taken_as_it_is() {
        let usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":5,\
                     \"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n";
        let text = [
            ROLE,
            &delta("Hel"),
            &delta("lo"),
            &delta(""),
            STOP,
            usage,
            DONE,
        ]
        .concat();
        let (out, last) = run(&text, 1 << 16);
        assert_eq!(out, "Hello");
        assert_eq!(last.finish_reason, FinishReason::Stop as i32);
        let u = last.usage.unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.cached_tokens,
                u.estimated
            ),
            (7, 5, 4, false)
        );
    }

    #[test]
    fn without_usage_the_non_empty_content_chunks_are_counted() {
        // An empty delta is no token; the finish chunk carries no content.
        let text = [
            ROLE,
            &delta("Par"),
            &delta(""),
            &delta("is"),
            &delta("."),
            STOP,
            DONE,
        ]
        .concat();
        let (out, last) = run(&text, 1 << 16);
        assert_eq!(out, "Paris.");
        let u = last.usage.unwrap();
        assert_eq!((u.completion_tokens, u.estimated), (3, true));
        assert_eq!(u.prompt_tokens, 0, "unknown, and marked so");
        // A stream that said nothing has a real zero.
        let (out, last) = run(&[ROLE, STOP, DONE].concat(), 1 << 16);
        assert_eq!(out, "");
        assert_eq!(last.usage.unwrap().completion_tokens, 0);
        // A usage without a completion count is no usage; one without a prompt count says
        // the prompt is unknown.
        let partial = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3}}\n\n";
        let (_, last) = run(&[&delta("a"), partial, DONE].concat(), 1 << 16);
        assert_eq!(last.usage.unwrap().completion_tokens, 1);
        let no_prompt = "data: {\"choices\":[],\"usage\":{\"completion_tokens\":9}}\n\n";
        let (_, last) = run(&[&delta("a"), no_prompt, DONE].concat(), 1 << 16);
        let u = last.usage.unwrap();
        assert_eq!((u.completion_tokens, u.estimated), (9, true));
    }

    #[test]
    fn events_are_read_whatever_the_line_endings_and_chunk_sizes() {
        let lf = [
            ROLE,
            &delta("héllo "),
            &delta("wörld"),
            STOP,
            ": ping\n\n",
            DONE,
        ]
        .concat();
        let crlf = lf.replace('\n', "\r\n");
        let cr = lf.replace('\n', "\r");
        for text in [&lf, &crlf, &cr] {
            // One byte at a time splits every CRLF and every two-byte character.
            for size in [1, 2, 3, 7, 1 << 16] {
                let (out, last) = run(text, size);
                assert_eq!(out, "héllo wörld", "{text:?} in chunks of {size}");
                assert_eq!(last.usage.unwrap().completion_tokens, 2);
            }
        }
        // Data split over two lines is one payload.
        let mut e = SseEvents::default();
        e.push(b"event: message\ndata: {\"a\":\ndata: 1}\n\n");
        assert_eq!(e.next_data().as_deref(), Some("{\"a\":\n1}"));
        assert_eq!(e.next_data(), None);
    }

    #[test]
    fn chunks_become_messages() {
        let mut s = ChatStream::default();
        let m = s
            .parse(r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#)
            .unwrap();
        assert_eq!(m.unwrap().text, "Hi");
        assert!(s
            .parse(r#"{"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#)
            .unwrap()
            .is_none());
        s.parse(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#)
            .unwrap();
        assert_eq!(s.last().finish_reason, FinishReason::Length as i32);
        let e = s.parse(r#"{"error":{"message":"boom"}}"#).unwrap().unwrap();
        assert_eq!(e.finish_reason, FinishReason::Error as i32);
        assert_eq!(e.error, "boom");
        assert!(s.parse("{oops").is_err());
    }
}

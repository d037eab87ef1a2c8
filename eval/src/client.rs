//! A client for any OpenAI-compatible `/chat/completions` endpoint (our controller, OpenAI,
//! vLLM, llama.cpp's server, ...), for contestants and judges alike. Overloaded or failing
//! endpoints are retried with exponential backoff, honouring `Retry-After`; a request the
//! endpoint refuses (bad model name, bad key) fails at once with the endpoint's own message.

use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EvalError;

/// How failed calls are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Calls in all, the first included.
    pub attempts: u32,
    /// The wait before the first retry; it doubles each time.
    pub base_delay: Duration,
    /// The longest wait, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Six calls, waits of 1, 2, 4, 8 and 16 s, never more than two minutes.
    fn default() -> Self {
        Self {
            attempts: 6,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(120),
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// `user` or `assistant` (or `system`).
    pub role: String,
    /// Its text.
    pub content: String,
}

impl Message {
    /// A message of `role`.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// What one call asks for.
#[derive(Debug, Clone, Serialize)]
pub struct ChatRequest<'a> {
    /// The model's name at the endpoint.
    pub model: &'a str,
    /// The conversation so far.
    pub messages: &'a [Message],
    /// Sampling temperature.
    pub temperature: f64,
    /// The longest answer, in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Whether to ask for each generated token's log-probability.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub logprobs: bool,
    /// How many of the likeliest tokens to report at each step (with `logprobs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    /// The conversation the call belongs to (OpenAI's `user`): an arena controller sends its
    /// calls to one worker, where they start from each other's keys and values (and from no
    /// one else's); without one a call gets no prefix cache there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
}

/// The answer of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatReply {
    /// The answer's text.
    pub content: String,
    /// `stop`, `length`, ...
    pub finish_reason: Option<String>,
    /// Prompt tokens, when the endpoint reports usage.
    pub prompt_tokens: Option<i64>,
    /// Generated tokens.
    pub completion_tokens: Option<i64>,
    /// Milliseconds the successful call took.
    pub latency_ms: i64,
    /// The likeliest tokens at the first generated step, `(token, logprob)`, when asked for.
    pub first_alternatives: Vec<(String, f64)>,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ReplyMessage,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    logprobs: Option<ChoiceLogprobs>,
}

#[derive(Deserialize)]
struct ChoiceLogprobs {
    #[serde(default)]
    content: Option<Vec<TokenLogprobs>>,
}

#[derive(Deserialize)]
struct TokenLogprobs {
    #[serde(default)]
    top_logprobs: Vec<Alternative>,
}

#[derive(Deserialize)]
struct Alternative {
    token: String,
    logprob: f64,
}

#[derive(Deserialize)]
struct ReplyMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<i64>,
    #[serde(default)]
    completion_tokens: Option<i64>,
}

/// A client of one endpoint.
#[derive(Debug, Clone)]
pub struct ChatClient {
    http: reqwest::Client,
    url: String,
    api_key: Option<String>,
    retry: RetryPolicy,
}

/// Whether a status is worth another try: overload, timeouts and server faults.
fn retryable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        408 | 409 | 425 | 429 | 500 | 502 | 503 | 504
    )
}

/// The wait a `Retry-After` header asks for, in seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The endpoint's own error message from an OpenAI-shaped body, else the body's start.
fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error"))
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    from_json.unwrap_or_else(|| {
        body.chars()
            .take(300)
            .collect::<String>()
            .trim()
            .to_string()
    })
}

impl ChatClient {
    /// A client of the endpoint at `base_url` (e.g. `http://127.0.0.1:8080/v1`); each call
    /// gives up after `timeout`.
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, EvalError> {
        let base = base_url.trim_end_matches('/');
        let parsed = reqwest::Url::parse(base)
            .map_err(|e| EvalError::Endpoint(format!("'{base_url}' is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(EvalError::Endpoint(format!(
                "'{base_url}' is not an http:// or https:// URL"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| EvalError::Endpoint(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            http,
            url: format!("{base}/chat/completions"),
            api_key: api_key.filter(|k| !k.is_empty()),
            retry,
        })
    }

    /// The `/chat/completions` URL it calls.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One chat completion, retried while the endpoint is overloaded or failing.
    pub async fn chat(&self, req: &ChatRequest<'_>) -> Result<ChatReply, EvalError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let started = Instant::now();
            let (why, wait) = match self.call(req).await {
                Ok(Ok(completion)) => return self.reply(req, completion, started),
                Ok(Err((status, headers, body))) => {
                    let message = format!(
                        "{} answered {status} for model '{}': {}",
                        self.url,
                        req.model,
                        error_message(&body)
                    );
                    if !retryable(status) {
                        return Err(EvalError::Endpoint(message));
                    }
                    (message, retry_after(&headers, SystemTime::now()))
                }
                Err(e) => (format!("{} for model '{}': {e}", self.url, req.model), None),
            };
            if attempt >= self.retry.attempts {
                return Err(EvalError::Endpoint(format!(
                    "{why} (gave up after {attempt} attempts)"
                )));
            }
            let backoff = self
                .retry
                .base_delay
                .saturating_mul(2u32.saturating_pow(attempt - 1));
            let delay = wait.unwrap_or(backoff).min(self.retry.max_delay);
            tracing::warn!(
                attempt,
                delay_ms = delay.as_millis() as u64,
                "{why}; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One HTTP call: the parsed completion, or the refusal's status, headers and body.
    async fn call(
        &self,
        req: &ChatRequest<'_>,
    ) -> Result<Result<Completion, (StatusCode, HeaderMap, String)>, reqwest::Error> {
        let mut builder = self.http.post(&self.url).json(req);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        let response = builder.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await?;
        if !status.is_success() {
            return Ok(Err((status, headers, body)));
        }
        // A 200 whose body is not a completion is a faulty endpoint: retried like a 502.
        match serde_json::from_str::<Completion>(&body) {
            Ok(c) => Ok(Ok(c)),
            Err(e) => Ok(Err((
                StatusCode::BAD_GATEWAY,
                headers,
                format!("the answer is not a chat completion ({e}): {body}"),
            ))),
        }
    }

    fn reply(
        &self,
        req: &ChatRequest<'_>,
        c: Completion,
        started: Instant,
    ) -> Result<ChatReply, EvalError> {
        let choice = c.choices.into_iter().next().ok_or_else(|| {
            EvalError::Endpoint(format!(
                "{} answered no choices for model '{}'",
                self.url, req.model
            ))
        })?;
        let usage = c.usage.unwrap_or(Usage {
            prompt_tokens: None,
            completion_tokens: None,
        });
        let first_alternatives = choice
            .logprobs
            .and_then(|l| l.content)
            .and_then(|c| c.into_iter().next())
            .map(|t| {
                t.top_logprobs
                    .into_iter()
                    .map(|a| (a.token, a.logprob))
                    .collect()
            })
            .unwrap_or_default();
        Ok(ChatReply {
            first_alternatives,
            content: choice.message.content.unwrap_or_default(),
            finish_reason: choice.finish_reason,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            latency_ms: started.elapsed().as_millis() as i64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("0.5"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(500)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        // A date already past asks for no wait; nonsense asks for nothing.
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&past).unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("-3"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn the_endpoints_own_message_is_kept() {
        assert_eq!(
            error_message(
                r#"{"error":{"message":"model 'x' is not served","type":"invalid_request_error"}}"#
            ),
            "model 'x' is not served"
        );
        assert_eq!(
            error_message("<html>Bad Gateway</html>"),
            "<html>Bad Gateway</html>"
        );
        assert!(retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(retryable(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!retryable(StatusCode::NOT_FOUND));
        assert!(!retryable(StatusCode::UNAUTHORIZED));
    }

    #[test]
    fn only_http_urls_are_endpoints() {
        let make =
            |u: &str| ChatClient::new(u, None, Duration::from_secs(1), RetryPolicy::default());
        assert_eq!(
            make("http://127.0.0.1:8080/v1/").unwrap().url(),
            "http://127.0.0.1:8080/v1/chat/completions"
        );
        assert!(make("ftp://x/v1")
            .unwrap_err()
            .to_string()
            .contains("not an http://"));
        assert!(make("not a url")
            .unwrap_err()
            .to_string()
            .contains("not a URL"));
    }
}

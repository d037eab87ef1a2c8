//! The controller's errors: internal ones, and the OpenAI-shaped HTTP errors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Internal controller errors.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// A worker advertised an address that is not a URL.
    #[error("invalid worker address '{0}': {1}")]
    BadAddress(String, String),
    /// The registry shared through Redis failed.
    #[error("registry store error: {0}")]
    Redis(String),
    /// A configuration file is wrong.
    #[error("configuration error: {0}")]
    Config(String),
    /// Binding or serving failed.
    #[error("server error: {0}")]
    Server(String),
    /// The arena's SQL store failed, cannot be reached, or refused a write as a conflict
    /// (`StoreError::Conflict`: a write lost a race or repeated a unique fact). Shown as the
    /// store shows it.
    #[error(transparent)]
    Database(#[from] arena_store::StoreError),
    /// The served leaderboard could not be produced (the ratings task failed, the rows could
    /// not be written as JSON).
    #[error("ratings: {0}")]
    Leaderboard(String),
    /// A leaderboard category with no counted votes.
    #[error("{0}")]
    UnknownCategory(String),
    /// Ratings could not be computed from the battles (bad input, no finite optimum).
    #[error(transparent)]
    Ratings(#[from] arena_ratings::RatingsError),
    /// An I/O error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// An HTTP error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What a person should read.
    pub message: String,
    /// The parameter at fault, when there is one.
    pub param: Option<String>,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// Seconds to wait before retrying (429), sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// 400 about one request parameter.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param: Some(param.to_string()),
            code: "invalid_parameter",
            retry_after: None,
        }
    }

    /// 400 for a parameter (or a value of it) this server does not support.
    pub fn unsupported_param(param: &str, message: impl Into<String>) -> Self {
        Self {
            code: "unsupported_parameter",
            ..Self::invalid_param(param, message)
        }
    }

    /// 400 about the request as a whole.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param: None,
            code: "invalid_request",
            retry_after: None,
        }
    }

    /// 401 for a missing or wrong API key.
    pub fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: "missing or invalid API key: send 'Authorization: Bearer <key>'".into(),
            param: None,
            code: "invalid_api_key",
            retry_after: None,
        }
    }

    /// 404 for a model no worker serves.
    pub fn model_not_found(model: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("the model '{model}' does not exist or no worker serves it (GET /v1/models lists the models)"),
            param: Some("model".into()),
            code: "model_not_found",
            retry_after: None,
        }
    }

    /// 503 when the model's workers are all unavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            param: None,
            code: "worker_unavailable",
            retry_after: None,
        }
    }

    /// 500 for a failure inside the system.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            param: None,
            code: "internal_error",
            retry_after: None,
        }
    }

    /// 404 for a missing resource (battle, chat).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            ..Self::bad_request(message)
        }
    }

    /// 409 for a request that conflicts with the resource's state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code,
            ..Self::bad_request(message)
        }
    }

    /// 429 with the seconds to wait.
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limit_exceeded",
            retry_after: Some(retry_after),
            ..Self::bad_request(format!(
                "too many requests from this client: try again in {retry_after} s"
            ))
        }
    }

    /// A body that is not JSON is 400; JSON of the wrong shape (a missing field, a wrong
    /// type, an unknown field) is 422 naming the field.
    pub fn from_json_rejection(e: &axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection;
        let text = e.body_text();
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                ..Self::bad_request(
                    "the request body is too large (the server's limit is set with --max-body-bytes)",
                )
            };
        }
        match e {
            JsonRejection::JsonDataError(_) => {
                let detail = text
                    .split_once("target type: ")
                    .map_or(text.as_str(), |(_, d)| d);
                Self {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    param: field_of(detail),
                    ..Self::invalid_param("", format!("invalid request body: {detail}"))
                }
            }
            _ => Self::bad_request(format!("invalid request body: {text}")),
        }
    }

    /// OpenAI's error `type` for this status.
    pub fn kind(&self) -> &'static str {
        match self.status.as_u16() {
            400 | 404 | 409 | 413 | 422 => "invalid_request_error",
            401 => "authentication_error",
            429 => "rate_limit_error",
            503 => "service_unavailable",
            _ => "server_error",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind(),
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

/// The field a serde error is about: its path (`temperature: invalid type...`) or the name in
/// `missing field `x`` / `unknown field `x``.
fn field_of(detail: &str) -> Option<String> {
    for marker in ["missing field `", "unknown field `"] {
        if let Some(rest) = detail.split_once(marker).map(|(_, r)| r) {
            return rest.split('`').next().map(str::to_string);
        }
    }
    let (path, _) = detail.split_once(": ")?;
    let is_path = !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
    is_path.then(|| path.to_string())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::{field_of, ControllerError};
    use arena_store::StoreError;
    use std::error::Error;

    #[test]
    fn store_errors_read_as_the_store_shows_them() {
        // The store's own tests pin each text; here the wrapper must add nothing and drop
        // nothing, causes included (`{e:#}` prints them: only the i/o error has one).
        let cases = || {
            [
                StoreError::Database("db down".into()),
                StoreError::Conflict("taken".into()),
                StoreError::Config("bad URL".into()),
                StoreError::Io(std::io::Error::other("disk full")),
            ]
        };
        for (store, wrapped) in cases().into_iter().zip(cases().map(ControllerError::from)) {
            assert_eq!(wrapped.to_string(), store.to_string());
            assert_eq!(
                wrapped.source().map(|c| c.to_string()),
                store.source().map(|c| c.to_string())
            );
        }
        assert_eq!(
            ControllerError::from(StoreError::Io(std::io::Error::other("disk full")))
                .source()
                .map(|c| c.to_string()),
            Some("disk full".into())
        );
    }

    #[test]
    fn serde_errors_name_their_field() {
        assert_eq!(
            field_of("temperature: invalid type: string \"hot\", expected f32 at line 1 column 20")
                .as_deref(),
            Some("temperature")
        );
        assert_eq!(
            field_of("messages[0].role: invalid type: integer `1`, expected a string").as_deref(),
            Some("messages[0].role")
        );
        assert_eq!(
            field_of("missing field `text` at line 1 column 2").as_deref(),
            Some("text")
        );
        assert_eq!(
            field_of("unknown field `foo`, expected `text`").as_deref(),
            Some("foo")
        );
        assert_eq!(field_of("expected value at line 1 column 1"), None);
    }
}

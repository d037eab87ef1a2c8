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
    /// The shared registry store (Redis) failed.
    #[error("registry store error: {0}")]
    Store(String),
    /// A configuration file is wrong.
    #[error("configuration error: {0}")]
    Config(String),
    /// Binding or serving failed.
    #[error("server error: {0}")]
    Server(String),
    /// The arena's database failed or cannot be reached.
    #[error("{0}")]
    Database(String),
    /// A write lost a race or repeated a unique fact (a second vote on one turn).
    #[error("conflict: {0}")]
    Conflict(String),
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

    /// OpenAI's error `type` for this status.
    pub fn kind(&self) -> &'static str {
        match self.status.as_u16() {
            400 | 404 | 409 | 422 => "invalid_request_error",
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

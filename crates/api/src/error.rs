//! API errors and their RFC 9457 problem documents.
//!
//! User errors (4xx) are answered and logged at debug level only; internal
//! errors (5xx) are logged once, here, with their cause, and the client gets
//! a generic detail.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sixgate_store::StoreError;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No valid token.
    #[error("a valid API token is required")]
    Unauthorized,
    /// The token's scope does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing (or not visible to this token).
    #[error("{0}")]
    NotFound(String),
    /// The endpoint exists, the method does not.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// The thing exists already.
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but breaks a rule (zone content, names, TTLs).
    #[error("{0}")]
    Unprocessable(String),
    /// The body is larger than allowed.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not of the type the endpoint takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request body stopped coming.
    #[error("the request body stopped coming")]
    Timeout,
    /// The token is over its rate limit.
    #[error("rate limit exceeded; retry in {0} s")]
    TooManyRequests(u64),
    /// A write asked to wait for the secondaries, and some did not serve
    /// it in time (the write itself is committed and served here).
    #[error("{detail}")]
    SecondariesBehind {
        /// What happened, for people.
        detail: String,
        /// The write's serial.
        serial: u32,
        /// Each secondary's state (JSON), as `GET .../secondaries` shows it.
        secondaries: serde_json::Value,
    },
    /// Something failed on our side.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            // The secondaries are the upstream that did not answer in
            // time; 504 rather than 202, since the write is not pending:
            // it is done here, only its propagation is late.
            ApiError::SecondariesBehind { .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short, stable problem type name (the last part of the `type` URI).
    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "invalid",
            ApiError::TooLarge(_) => "too-large",
            ApiError::UnsupportedMediaType(_) => "unsupported-media-type",
            ApiError::Timeout => "timeout",
            ApiError::TooManyRequests(_) => "rate-limited",
            ApiError::SecondariesBehind { .. } => "secondaries-behind",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The text shown to the client.
    pub fn detail(&self) -> String {
        match self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "API request failed");
                "internal error; see the server log".into()
            }
            e => {
                tracing::debug!(error = %e, "API request refused");
                e.to_string()
            }
        }
    }

    /// Headers that go with the status.
    fn decorate(&self, resp: &mut Response) {
        match self {
            // Only Bearer is offered: a Basic challenge makes a browser
            // prompt for credentials and then send them with every request
            // to this origin, cross-site ones included. lego's httpreq sends
            // Basic without being asked.
            ApiError::Unauthorized => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"sixgate\""));
            }
            ApiError::TooManyRequests(secs) => {
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
    }

    /// The same error in PowerDNS's format (`{"error": "..."}`), which the
    /// tools written for it parse.
    pub fn into_pdns(self) -> Response {
        let body = serde_json::json!({ "error": self.detail() });
        let mut resp = (self.status(), axum::Json(body)).into_response();
        self.decorate(&mut resp);
        resp
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = serde_json::json!({
            "type": format!("https://sixgate.invalid/problems/{}", self.kind()),
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "detail": self.detail(),
        });
        // RFC 9457 §3.2: extension members say who is behind.
        if let (ApiError::SecondariesBehind { serial, secondaries, .. }, Some(o)) =
            (&self, body.as_object_mut())
        {
            o.insert("serial".into(), (*serial).into());
            o.insert("secondaries".into(), secondaries.clone());
        }
        let mut resp = (status, body.to_string()).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        self.decorate(&mut resp);
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NoSuchZone(_) | StoreError::NotFound(_) => ApiError::NotFound(e.to_string()),
            StoreError::ZoneExists(_) | StoreError::Conflict(_) => ApiError::Conflict(e.to_string()),
            StoreError::Invalid(_) | StoreError::Limit(_) => ApiError::Unprocessable(e.to_string()),
            // Overlap with another account's zone: the neutral 409, as for
            // any name that is taken. Reserved names (root, TLD, public
            // suffix) break a rule that names no one: 422.
            StoreError::Claim(sixgate_store::ClaimError::Unavailable(_)) => ApiError::Conflict(e.to_string()),
            StoreError::Claim(_) => ApiError::Unprocessable(e.to_string()),
            StoreError::BadInput(_) => ApiError::BadRequest(e.to_string()),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

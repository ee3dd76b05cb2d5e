//! Request bodies: their type, size and read errors.
//!
//! A body is read only in the type its endpoint takes: `application/json`
//! ([`Body`]; parameters such as `charset` allowed) or, for zone files,
//! `text/dns` ([RFC 4027](https://www.rfc-editor.org/rfc/rfc4027)
//! §3, [`ZoneText`]). Anything else is refused with 415 before a byte of it
//! is read. Both types are outside the three a cross-site HTML form can
//! send (`application/x-www-form-urlencoded`, `multipart/form-data`,
//! `text/plain`; the Fetch standard's CORS-safelisted request headers), so
//! a page on another origin cannot make a browser send such a request
//! without a CORS preflight, which sixgate never grants. `text/plain` is
//! refused for zone files for that reason, although a zone file is text.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt as _, Limited};

use crate::conn::PhaseTimeout;
use crate::{ApiError, AppState, offload};

/// JSON bodies up to this size are parsed where they are, larger ones on
/// a blocking thread.
const INLINE_JSON: usize = 64 << 10;

/// A JSON request body (or none).
pub(crate) struct Body(pub(crate) Bytes);

/// A zone file request body.
pub(crate) struct ZoneText(pub(crate) Bytes);

/// The media type of `headers`' `Content-Type`, lowercased, without
/// parameters; `None` when there is none.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(v.as_bytes());
    Some(text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

fn refused(wanted: &str, got: Option<&str>) -> ApiError {
    ApiError::UnsupportedMediaType(match got {
        Some(t) => format!("this endpoint takes {wanted} bodies, not {t}"),
        None => format!("this endpoint takes {wanted} bodies; send Content-Type: {wanted}"),
    })
}

/// Reads the whole body, at most `[api] max_body` octets.
async fn read(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let max = state.settings().max_body;
    match Limited::new(req.into_body(), max).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::TooLarge(max)),
        Err(e) if caused_by::<PhaseTimeout>(&*e) => Err(ApiError::Timeout),
        Err(e) => Err(ApiError::BadRequest(format!("failed to read the request body: {e}"))),
    }
}

fn caused_by<E: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<E>() {
            return true;
        }
        cause = c.source();
    }
    false
}

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        const JSON: &str = "application/json";
        let ctype = media_type(req.headers());
        if ctype.as_deref().is_some_and(|t| t != JSON) {
            return Err(refused(JSON, ctype.as_deref()));
        }
        let body = read(req, state).await?;
        // No type is fine only for no body (a POST that takes an optional
        // one, such as enabling DNSSEC with the default policy).
        if ctype.is_none() && !body.is_empty() {
            return Err(refused(JSON, None));
        }
        Ok(Body(body))
    }
}

impl FromRequest<AppState> for ZoneText {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        const DNS: &str = "text/dns";
        let ctype = media_type(req.headers());
        if ctype.as_deref() != Some(DNS) {
            return Err(refused(DNS, ctype.as_deref()));
        }
        Ok(ZoneText(read(req, state).await?))
    }
}

impl Body {
    /// Parses the body as JSON; a large one on a blocking thread.
    pub(crate) async fn json<T: serde::de::DeserializeOwned + Send + 'static>(self) -> Result<T, ApiError> {
        let inline = self.0.len() <= INLINE_JSON;
        let parse = move || {
            serde_json::from_slice(&self.0).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
        };
        if inline { parse() } else { offload(parse).await }
    }
}

//! Who is calling, and what their token allows.
//!
//! A token arrives as `Authorization: Bearer TOKEN` everywhere; on the
//! PowerDNS dialect also as `X-API-Key: TOKEN` ([`PdnsCaller`]), and on
//! lego's httpreq endpoints also as the password of HTTP Basic
//! authentication ([`HttpreqCaller`]; the user name is ignored), which is
//! what those clients send. Basic is taken nowhere else: a browser that has
//! cached Basic credentials sends them with any request to the origin,
//! cross-site ones included, while a Bearer or `X-API-Key` header is only
//! ever set by a script the origin allowed (CORS). Unknown tokens are
//! refused without saying whether a token exists. Customer tokens are rate
//! limited; admin tokens are the operator's and are not.
//!
//! Zones a token may not see answer "not found", exactly as zones that do
//! not exist, so one account cannot probe for another's zones.

use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_store::{OPERATOR_ACCOUNT, Scope, Store, TOKEN_PREFIX, Token, ZoneOwner, is_acme_challenge};

use crate::{ApiError, AppState};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) token: Token,
}

impl Caller {
    /// The caller as the journal records it.
    pub(crate) fn actor(&self) -> sixgate_store::Actor {
        sixgate_store::Actor::Token(self.token.id)
    }
}

/// Longest token accepted before looking anything up.
const MAX_TOKEN: usize = 256;

/// Which clients an endpoint serves, and so how their token may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// The native API: `Authorization: Bearer`.
    Native,
    /// PowerDNS's: `X-API-Key`, or Bearer.
    PowerDns,
    /// lego's httpreq: HTTP Basic with the token as password, or Bearer.
    Httpreq,
}

fn secret(parts: &Parts, dialect: Dialect) -> Option<String> {
    if dialect == Dialect::PowerDns
        && let Some(v) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok())
    {
        return Some(v.trim().to_string());
    }
    let auth = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if dialect == Dialect::Httpreq && scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
        let text = String::from_utf8(raw).ok()?;
        return text.split_once(':').map(|(_, pass)| pass.to_string());
    }
    None
}

async fn authenticate(parts: &Parts, state: &AppState, dialect: Dialect) -> Result<Caller, ApiError> {
    // What cannot be a token is refused before any store is touched.
    let secret = secret(parts, dialect)
        .filter(|t| t.starts_with(TOKEN_PREFIX) && t.len() <= MAX_TOKEN)
        .ok_or(ApiError::Unauthorized)?;
    let token = state.read(move |s| Ok(s.token_by_secret(&secret)?)).await?.ok_or(ApiError::Unauthorized)?;
    if token.scope != Scope::Admin {
        state.inner.limiter.take(token.id, Instant::now()).map_err(ApiError::TooManyRequests)?;
    }
    Ok(Caller { token })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(parts, state, Dialect::Native).await
    }
}

/// The caller of a PowerDNS-dialect endpoint.
pub(crate) struct PdnsCaller(pub(crate) Caller);

impl FromRequestParts<AppState> for PdnsCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(parts, state, Dialect::PowerDns).await.map(PdnsCaller)
    }
}

/// The caller of a lego httpreq endpoint.
pub(crate) struct HttpreqCaller(pub(crate) Caller);

impl FromRequestParts<AppState> for HttpreqCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        authenticate(parts, state, Dialect::Httpreq).await.map(HttpreqCaller)
    }
}

/// What a caller may do inside one zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Everything: records, zone file, deletion.
    Full,
    /// Only some records (acme or ptr scope); see [`Caller::may_write`].
    Records,
}

impl Caller {
    pub(crate) fn is_admin(&self) -> bool {
        self.token.scope == Scope::Admin
    }

    pub(crate) fn account(&self) -> i64 {
        self.token.account_id
    }

    /// Fails unless the caller is an admin.
    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() { Ok(()) } else { Err(ApiError::Forbidden("this needs an admin token".into())) }
    }

    /// The caller's access to a zone, `None` if it may not see it at all.
    pub(crate) fn access(&self, apex_l: &[u8], owner: &ZoneOwner) -> Option<Access> {
        let own = owner.account_id == self.token.account_id;
        match &self.token.scope {
            Scope::Admin => Some(Access::Full),
            Scope::Account => own.then_some(Access::Full),
            Scope::Zone(z) => (own && z[..] == *apex_l).then_some(Access::Full),
            Scope::Acme(z) => (own && z[..] == *apex_l).then_some(Access::Records),
            // The reverse zone may be larger (a /32 zone, a /48 prefix) or
            // smaller than the prefix; either way they overlap.
            Scope::Ptr { reverse, .. } => (own
                && (name::is_at_or_below(reverse, apex_l) || name::is_at_or_below(apex_l, reverse)))
            .then_some(Access::Records),
        }
    }

    /// Looks up a zone the caller may see: its owner, its access, or "not
    /// found" (also for zones of other accounts).
    pub(crate) fn zone(&self, store: &Store, apex: &[u8]) -> Result<(ZoneOwner, Access), ApiError> {
        let apex_l = name::to_lowercase(apex);
        let not_found = || ApiError::NotFound(format!("zone {} does not exist", name::to_text(apex)));
        let owner = store.zone_owner(&apex_l)?.ok_or_else(not_found)?;
        let access = self.access(&apex_l, &owner).ok_or_else(not_found)?;
        Ok((owner, access))
    }

    /// Like [`Caller::zone`], requiring full access.
    pub(crate) fn zone_full(&self, store: &Store, apex: &[u8]) -> Result<ZoneOwner, ApiError> {
        match self.zone(store, apex)? {
            (owner, Access::Full) => Ok(owner),
            (_, Access::Records) => Err(ApiError::Forbidden(format!(
                "this token may change only {} records in {}",
                self.record_kind(),
                name::to_text(apex)
            ))),
        }
    }

    fn record_kind(&self) -> &'static str {
        match self.token.scope {
            Scope::Ptr { .. } => "PTR",
            _ => "_acme-challenge TXT",
        }
    }

    /// May the caller change the RRset `owner`/`rtype` in a zone it can see?
    pub(crate) fn may_write(&self, access: Access, owner: &[u8], rtype: u16) -> Result<(), ApiError> {
        let ok = match (&self.token.scope, access) {
            (_, Access::Full) => true,
            (Scope::Acme(_), Access::Records) => is_acme_challenge(owner, rtype),
            (Scope::Ptr { reverse, .. }, Access::Records) => {
                rtype == code::PTR && name::is_at_or_below(&name::to_lowercase(owner), reverse)
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this token may not change {} {}: it is limited to {} records{}",
                name::to_text(owner),
                sixgate_dns::zonefile::type_text(rtype),
                self.record_kind(),
                match &self.token.scope {
                    Scope::Ptr { prefix, .. } => format!(" inside {prefix}"),
                    _ => String::new(),
                }
            )))
        }
    }

    /// The account new zones and tokens of this caller belong to.
    pub(crate) fn home_account(&self) -> i64 {
        if self.is_admin() { OPERATOR_ACCOUNT } else { self.token.account_id }
    }
}

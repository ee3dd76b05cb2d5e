//! `/v1/accounts` and `/v1/tokens`: accounts (admins only), their backend
//! prefixes (admins only), and scoped tokens. A token's secret is in the
//! creation response and nowhere else.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sixgate_dns::name;
use sixgate_store::{Account, BackendPrefix, OPERATOR_ACCOUNT, Scope, Store, Token, ip6_arpa};

use crate::auth::Caller;
use crate::records::parse_name;
use crate::{ApiError, AppState, Body};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/accounts", get(accounts).post(create_account))
        .route("/v1/accounts/{account}/prefixes", get(prefixes).put(set_prefixes))
        .route("/v1/account", get(own_account))
        .route("/v1/tokens", get(tokens).post(create_token))
        .route("/v1/tokens/{id}", delete(revoke))
}

#[derive(Debug, Serialize)]
struct AccountJson {
    id: i64,
    name: String,
    zones: u64,
    /// What the account's zones must be delegated to at the registry:
    /// its own names when per-account names are configured.
    nameservers: Vec<String>,
}

fn account_json(store: &Store, shared: &[Box<[u8]>], a: Account) -> Result<AccountJson, ApiError> {
    let ns = crate::zones::account_nameservers(store, shared, a.id)?;
    let nameservers = ns.iter().map(|n| name::to_text(n)).collect();
    Ok(AccountJson { id: a.id, name: a.name, zones: a.zones, nameservers })
}

async fn accounts(State(st): State<AppState>, caller: Caller) -> Result<Json<Vec<AccountJson>>, ApiError> {
    caller.require_admin()?;
    let shared = st.settings().nameservers.clone();
    let list =
        st.read(move |s| s.accounts()?.into_iter().map(|a| account_json(s, &shared, a)).collect()).await?;
    Ok(Json(list))
}

/// `GET /v1/account`: the caller's own account, so a customer learns the
/// nameservers to give the registry. Any token may ask.
async fn own_account(State(st): State<AppState>, caller: Caller) -> Result<Json<AccountJson>, ApiError> {
    let shared = st.settings().nameservers.clone();
    let id = caller.home_account();
    let a = st
        .read(move |s| {
            let a = s
                .account_by_id(id)?
                .ok_or_else(|| ApiError::NotFound("the token's account is gone".into()))?;
            account_json(s, &shared, a)
        })
        .await?;
    Ok(Json(a))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAccount {
    name: String,
}

async fn create_account(
    State(st): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_admin()?;
    let req: CreateAccount = body.json().await?;
    let shared = st.settings().nameservers.clone();
    let a = st
        .write(move |s| {
            let a = s.create_account(&req.name)?;
            tracing::info!(account = %a.name, ns_label = %a.ns_label, "account created");
            account_json(s, &shared, a)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// An account's backend prefixes: where the proxy may send its hostnames.
#[derive(Debug, Serialize)]
struct PrefixesJson {
    account: String,
    prefixes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPrefixes {
    prefixes: Vec<String>,
}

/// `GET /v1/accounts/{account}/prefixes` (admin).
async fn prefixes(
    State(st): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
) -> Result<Json<PrefixesJson>, ApiError> {
    caller.require_admin()?;
    let json = st
        .read(move |s| {
            let a = s.account(&account)?;
            if a.id == OPERATOR_ACCOUNT {
                return Err(ApiError::BadRequest(
                    "the operator account's backend prefixes are the server's configuration ([proxy] allow_backend)"
                        .into(),
                ));
            }
            let prefixes = s.backend_prefixes(a.id)?.iter().map(ToString::to_string).collect();
            Ok(PrefixesJson { account: a.name, prefixes })
        })
        .await?;
    Ok(Json(json))
}

/// `PUT /v1/accounts/{account}/prefixes` (admin): replaces the account's
/// backend prefixes; the running proxy routes by them at once.
async fn set_prefixes(
    State(st): State<AppState>,
    caller: Caller,
    Path(account): Path<String>,
    body: Body,
) -> Result<Json<PrefixesJson>, ApiError> {
    caller.require_admin()?;
    let req: SetPrefixes = body.json().await?;
    // A list far over the quota is refused before anything is parsed.
    if req.prefixes.len() as u64 > 4 * sixgate_store::MAX_BACKEND_PREFIXES {
        return Err(ApiError::Unprocessable(format!(
            "at most {} backend prefixes per account",
            sixgate_store::MAX_BACKEND_PREFIXES
        )));
    }
    let list = req.prefixes.iter().map(|p| BackendPrefix::parse(p)).collect::<Result<Vec<_>, _>>()?;
    let json = st
        .write(move |s| {
            let a = s.account(&account)?;
            let stored = s.set_backend_prefixes(a.id, &list)?;
            tracing::info!(account = %a.name, prefixes = stored.len(), by = caller.token.id, "backend prefixes set");
            Ok(PrefixesJson { account: a.name, prefixes: stored.iter().map(ToString::to_string).collect() })
        })
        .await?;
    st.poke();
    Ok(Json(json))
}

/// A token as listed (without its secret).
#[derive(Serialize)]
pub(crate) struct TokenJson {
    id: i64,
    account: String,
    scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    /// Only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl std::fmt::Debug for TokenJson {
    // The secret of a new token stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenJson")
            .field("id", &self.id)
            .field("account", &self.account)
            .field("scope", &self.scope)
            .field("zone", &self.zone)
            .field("prefix", &self.prefix)
            .field("token", &self.token.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

fn token_json(store: &Store, t: Token, secret: Option<String>) -> Result<TokenJson, ApiError> {
    let account =
        store.accounts()?.into_iter().find(|a| a.id == t.account_id).map_or_else(String::new, |a| a.name);
    let (scope, zone, prefix) = match t.scope {
        Scope::Admin => ("admin", None, None),
        Scope::Account => ("account", None, None),
        Scope::Zone(z) => ("zone", Some(name::to_text(&z)), None),
        Scope::Acme(z) => ("acme", Some(name::to_text(&z)), None),
        Scope::Ptr { prefix, .. } => ("ptr", None, Some(prefix)),
    };
    Ok(TokenJson { id: t.id, account, scope, zone, prefix, token: secret })
}

async fn tokens(State(st): State<AppState>, caller: Caller) -> Result<Json<Vec<TokenJson>>, ApiError> {
    if !caller.is_admin() && caller.token.scope != Scope::Account {
        return Err(ApiError::Forbidden("this token may not list tokens".into()));
    }
    let list = st
        .read(move |s| {
            let filter = (!caller.is_admin()).then_some(caller.account());
            s.tokens(filter)?.into_iter().map(|t| token_json(s, t, None)).collect()
        })
        .await?;
    Ok(Json(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    /// `admin`, `account`, `zone`, `acme` or `ptr`.
    scope: String,
    /// Account name (admins; default: the zone's account, else operator).
    account: Option<String>,
    /// For `zone` and `acme`.
    zone: Option<String>,
    /// For `ptr`: an IPv6 prefix, e.g. `2001:db8:42::/48`.
    prefix: Option<String>,
}

/// Resolves what a caller asks for into an account and a scope, checking
/// the caller may hand that out: admins anything, account tokens narrower
/// tokens for their own account, nobody else anything.
fn plan_token(store: &Store, caller: &Caller, req: &CreateToken) -> Result<(i64, Scope), ApiError> {
    if !caller.is_admin() && caller.token.scope != Scope::Account {
        return Err(ApiError::Forbidden("this token may not create tokens".into()));
    }
    let zone_scope = |store: &Store| -> Result<(i64, Box<[u8]>), ApiError> {
        let text = req
            .zone
            .as_deref()
            .ok_or_else(|| ApiError::BadRequest(format!("scope {} needs \"zone\"", req.scope)))?;
        let apex = parse_name(text)?;
        let (owner, _) = caller.zone(store, &apex)?;
        Ok((owner.account_id, name::to_lowercase(&apex)))
    };
    let named_account = |store: &Store| -> Result<Option<i64>, ApiError> {
        match &req.account {
            Some(_) if !caller.is_admin() => {
                Err(ApiError::Forbidden("only admin tokens may pick the account".into()))
            }
            Some(a) => Ok(Some(store.account(a)?.id)),
            None => Ok(None),
        }
    };
    let plan = match req.scope.as_str() {
        "admin" => {
            caller.require_admin()?;
            (OPERATOR_ACCOUNT, Scope::Admin)
        }
        "account" => {
            caller.require_admin()?;
            (named_account(store)?.unwrap_or(OPERATOR_ACCOUNT), Scope::Account)
        }
        "zone" => {
            let (acct, z) = zone_scope(store)?;
            (acct, Scope::Zone(z))
        }
        "acme" => {
            let (acct, z) = zone_scope(store)?;
            (acct, Scope::Acme(z))
        }
        "ptr" => {
            let prefix = req
                .prefix
                .clone()
                .ok_or_else(|| ApiError::BadRequest("scope ptr needs \"prefix\"".into()))?;
            let reverse = ip6_arpa(&prefix).map_err(ApiError::Unprocessable)?;
            let acct = named_account(store)?.unwrap_or(caller.home_account());
            (acct, Scope::Ptr { reverse, prefix })
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "scope must be admin, account, zone, acme or ptr, not {other:?}"
            )));
        }
    };
    Ok(plan)
}

async fn create_token(
    State(st): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let req: CreateToken = body.json().await?;
    let json = st
        .write(move |s| {
            let (account, scope) = plan_token(s, &caller, &req)?;
            let (t, secret) = s.create_token(account, scope)?;
            tracing::info!(id = t.id, account, by = caller.token.id, "token created");
            token_json(s, t, Some(secret))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json)))
}

async fn revoke(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if !caller.is_admin() && caller.token.scope != Scope::Account && caller.token.id != id {
        return Err(ApiError::Forbidden("this token may only revoke itself".into()));
    }
    let filter = (!caller.is_admin()).then_some(caller.account());
    if st.write(move |s| Ok(s.revoke_token(id, filter)?)).await? {
        tracing::info!(id, "token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("token {id} does not exist")))
    }
}

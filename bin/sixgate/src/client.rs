//! Client commands that go through the HTTP API: `--api URL` or
//! `$SIXGATE_API`, with the token in `$SIXGATE_TOKEN`.

use anyhow::{anyhow, bail};
use serde_json::{Value, json};

/// An API endpoint and token.
pub(crate) struct Api {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Api {
    /// From `--api` or the environment; `None` if no API URL is given.
    pub(crate) fn from_env(flag: Option<&str>) -> anyhow::Result<Option<Api>> {
        let Some(base) =
            flag.map(str::to_string).or_else(|| std::env::var("SIXGATE_API").ok()).filter(|s| !s.is_empty())
        else {
            return Ok(None);
        };
        let token =
            std::env::var("SIXGATE_TOKEN").map_err(|_| anyhow!("set SIXGATE_TOKEN to an API token"))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(60)))
            .build()
            .into();
        Ok(Some(Api { base: base.trim_end_matches('/').to_string(), token, agent }))
    }

    /// Like [`Api::from_env`], failing when no API is given.
    pub(crate) fn required(flag: Option<&str>) -> anyhow::Result<Api> {
        Api::from_env(flag)?.ok_or_else(|| anyhow!("give --api URL or set SIXGATE_API"))
    }

    /// Sends a request; returns the JSON body (Null for none) or the
    /// problem's detail as the error.
    pub(crate) fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let req = ureq::http::Request::builder().method(method).uri(&url).header("authorization", auth);
        let resp = match body {
            Some(b) => self.agent.run(req.header("content-type", "application/json").body(b.to_string())?),
            None => self.agent.run(req.body(())?),
        }
        .map_err(|e| anyhow!("{url}: {e}"))?;
        let status = resp.status();
        let text = resp.into_body().read_to_string().unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = json["detail"].as_str().or(json["error"].as_str()).unwrap_or(text.trim());
            bail!("{} {}: {}", status.as_u16(), status.canonical_reason().unwrap_or(""), detail);
        }
        Ok(json)
    }
}

fn seg(s: &str) -> String {
    // Names and types are safe in a path except for '/', '%', '?' and '#'.
    s.replace('%', "%25").replace('/', "%2F").replace('?', "%3F").replace('#', "%23")
}

pub(crate) fn record_set(
    api: &Api,
    zone: &str,
    owner: &str,
    rtype: &str,
    ttl: u32,
    data: &[String],
) -> anyhow::Result<()> {
    let v = api.call(
        "PUT",
        &format!("/v1/zones/{}/rrsets/{}/{}", seg(zone), seg(owner), seg(rtype)),
        Some(json!({"ttl": ttl, "records": data})),
    )?;
    eprintln!("serial {}", v["serial"]);
    Ok(())
}

pub(crate) fn record_delete(api: &Api, zone: &str, owner: &str, rtype: &str) -> anyhow::Result<()> {
    api.call("DELETE", &format!("/v1/zones/{}/rrsets/{}/{}", seg(zone), seg(owner), seg(rtype)), None)?;
    Ok(())
}

pub(crate) fn record_list(api: &Api, zone: &str) -> anyhow::Result<()> {
    let v = api.call("GET", &format!("/v1/zones/{}/rrsets", seg(zone)), None)?;
    for set in v.as_array().into_iter().flatten() {
        for r in set["records"].as_array().into_iter().flatten() {
            println!(
                "{}\t{}\tIN\t{}\t{}",
                set["name"].as_str().unwrap_or_default(),
                set["ttl"],
                set["type"].as_str().unwrap_or_default(),
                r.as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}

pub(crate) fn token_revoke(api: &Api, id: i64) -> anyhow::Result<()> {
    api.call("DELETE", &format!("/v1/tokens/{id}"), None)?;
    Ok(())
}

pub(crate) fn account_create(api: &Api, account: &str) -> anyhow::Result<()> {
    let v = api.call("POST", "/v1/accounts", Some(json!({"name": account})))?;
    println!("{}", v["name"].as_str().unwrap_or(account));
    Ok(())
}

/// An account's nameservers as the API lists them.
fn nameservers_of(a: &Value) -> Vec<String> {
    a["nameservers"].as_array().into_iter().flatten().filter_map(|n| n.as_str().map(str::to_string)).collect()
}

pub(crate) fn account_list(api: &Api) -> anyhow::Result<()> {
    let v = api.call("GET", "/v1/accounts", None)?;
    for a in v.as_array().into_iter().flatten() {
        let ns = nameservers_of(a);
        let ns = if ns.is_empty() { "-".to_string() } else { ns.join(",") };
        println!("{}\t{}\t{}\t{ns}", a["name"].as_str().unwrap_or_default(), a["id"], a["zones"]);
    }
    Ok(())
}

/// `account show`: the token's own account, or (admins) the named one.
pub(crate) fn account_show(api: &Api, name: Option<&str>) -> anyhow::Result<()> {
    let a = match name {
        None => api.call("GET", "/v1/account", None)?,
        Some(n) => api
            .call("GET", "/v1/accounts", None)?
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["name"] == n)
            .cloned()
            .ok_or_else(|| anyhow!("account {n} does not exist"))?,
    };
    crate::authcmd::print_account(
        a["name"].as_str().unwrap_or_default(),
        &a["id"].to_string(),
        &a["zones"].to_string(),
        &nameservers_of(&a),
    );
    Ok(())
}

/// `account prefixes set|show NAME` through the API (admin tokens).
pub(crate) fn account_prefixes(api: &Api, account: &str, set: Option<&[String]>) -> anyhow::Result<()> {
    let path = format!("/v1/accounts/{}/prefixes", seg(account));
    let v = match set {
        Some(list) => api.call("PUT", &path, Some(json!({ "prefixes": list })))?,
        None => api.call("GET", &path, None)?,
    };
    for p in v["prefixes"].as_array().into_iter().flatten() {
        println!("{}", p.as_str().unwrap_or_default());
    }
    Ok(())
}

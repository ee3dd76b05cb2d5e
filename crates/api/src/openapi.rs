//! The OpenAPI 3.1 document of the native API, at `/v1/openapi.json`.
//! Written by hand next to the handlers; a test checks that every route
//! the router serves under `/v1` is described here.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v1/openapi.json", get(|| async { Json(document()) }))
}

fn op(summary: &str, ok: &str, body: Option<&str>) -> Value {
    let mut o = json!({
        "summary": summary,
        "responses": {
            ok: { "description": "success" },
            "default": { "description": "error", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } }
        }
    });
    if let (Some(schema), Some(obj)) = (body, o.as_object_mut()) {
        obj.insert(
            "requestBody".into(),
            json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } }),
        );
    }
    o
}

/// A write that may wait for the secondaries: `wait` and `timeout`
/// (or the `Sixgate-Wait` header), and 504 when they do not catch up.
fn waits(mut o: Value) -> Value {
    if let Some(obj) = o.as_object_mut() {
        obj.insert("parameters".into(), json!([
            { "name": "wait", "in": "query", "schema": { "enum": ["secondaries"] },
              "description": "Answer only once every secondary that carries the zone reports the write's serial (also: header Sixgate-Wait: secondaries). The answer lists each secondary's serial: `secondaries` in a JSON body, or the Sixgate-Secondaries header (ADDRESS=SERIAL, ...) on a 204." },
            { "name": "timeout", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 60, "default": 10 },
              "description": "Seconds to wait for the secondaries; then 504 with `secondaries` showing who is behind (the write is committed and served here either way)." }
        ]));
        if let Some(r) = obj.get_mut("responses").and_then(Value::as_object_mut) {
            r.insert("504".into(), json!({ "description": "committed and served here, but not every secondary serves it within the timeout; `serial` and `secondaries` say who is behind", "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } }));
        }
    }
    o
}

/// An httpreq operation: the only ones that also take HTTP Basic.
fn httpreq(mut o: Value) -> Value {
    if let Some(obj) = o.as_object_mut() {
        obj.insert("security".into(), json!([{ "bearer": [] }, { "basic": [] }]));
    }
    o
}

/// Paths described by the document, for the coverage test.
#[cfg(test)]
pub(crate) const PATHS: &[&str] = &[
    "/v1/zones",
    "/v1/zones/{zone}",
    "/v1/zones/{zone}/zonefile",
    "/v1/zones/{zone}/anames",
    "/v1/zones/{zone}/audit",
    "/v1/zones/{zone}/secondaries",
    "/v1/zones/{zone}/dnssec",
    "/v1/zones/{zone}/dnssec/rollover",
    "/v1/zones/{zone}/rrsets",
    "/v1/zones/{zone}/rrsets/{name}/{type}",
    "/v1/accounts",
    "/v1/accounts/{account}/prefixes",
    "/v1/account",
    "/v1/tokens",
    "/v1/tokens/{id}",
    "/v1/acme/httpreq/present",
    "/v1/acme/httpreq/cleanup",
];

pub(crate) fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "sixgate API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Zones, RRsets, accounts and scoped tokens. Every write is durable and served by DNS when it is acknowledged. JSON request bodies need Content-Type: application/json (415 otherwise). See docs/api.md."
        },
        "security": [ { "bearer": [] } ],
        "paths": {
            "/v1/zones": {
                "get": op("List the zones this token may see", "200", None),
                "post": op("Create a zone (default SOA and NS, or a zone file)", "201", Some("CreateZone")),
            },
            "/v1/zones/{zone}": {
                "get": op("Show a zone", "200", None),
                "delete": op("Delete a zone", "204", None),
            },
            "/v1/zones/{zone}/zonefile": {
                "get": op("Export the zone file (text/dns)", "200", None),
                "put": waits(json!({
                    "summary": "Replace the zone's content with a zone file (Content-Type: text/dns; anything else is refused with 415)",
                    "requestBody": { "required": true, "content": { "text/dns": { "schema": { "type": "string" } } } },
                    "responses": { "200": { "description": "success" } }
                })),
            },
            "/v1/zones/{zone}/anames": {
                "get": op("Each ANAME's addresses, last success, last error and next refresh", "200", None),
            },
            "/v1/zones/{zone}/audit": {
                "get": op("The zone's audit log, newest first (`?limit=N`, at most 1000): id, time, serial, kind, actor (token:ID, tsig:KEY, cli:USER, task:NAME) and the records added and removed", "200", None),
            },
            "/v1/zones/{zone}/secondaries": {
                "get": op("Each secondary that carries the zone: address, the serial it reports (SOA query) and when, the last NOTIFY (time, serial, acknowledged, tries), in_sync and lag_seconds; `serial` is the one served here", "200", None),
            },
            "/v1/zones/{zone}/dnssec": {
                "get": op("DNSSEC status: keys and states, next event, the DS for the registry, the parent's DS, the verdict and the chain of trust", "200", None),
                "post": op("Sign the zone (the one switch); body optional: algorithm, nsec3, layout, policy", "200", Some("EnableDnssec")),
                "delete": op("Go insecure: CDS/CDNSKEY delete, unsigned once the parent's DS is gone (?now=true: at once, refused with 409 while a DS of the parent may be cached; &force=true, admin only, even then)", "200", None),
            },
            "/v1/zones/{zone}/dnssec/rollover": {
                "post": op("Start a rollover: kind ksk, zsk or algorithm (with algorithm)", "200", Some("Rollover")),
            },
            "/v1/zones/{zone}/rrsets": {
                "get": op("List RRsets", "200", None),
                "post": waits(op("Apply a batch of RRset changes atomically", "200", Some("Batch"))),
            },
            "/v1/zones/{zone}/rrsets/{name}/{type}": {
                "get": op("Get one RRset", "200", None),
                "put": waits(op("Replace one RRset", "200", Some("PutRrSet"))),
                "delete": waits(op("Delete one RRset", "204", None)),
            },
            "/v1/accounts": {
                "get": op("List accounts (admin), each with the nameservers its zones are delegated to", "200", None),
                "post": op("Create an account (admin)", "201", Some("CreateAccount")),
            },
            "/v1/accounts/{account}/prefixes": {
                "get": op("A customer account's backend prefixes (admin): the IPv6 networks its proxied hostnames may reach", "200", None),
                "put": op("Replace a customer account's backend prefixes (admin; at most 64, none overlapping another account's; an empty list stops its hostnames being proxied); the running proxy routes by them at once", "200", Some("BackendPrefixes")),
            },
            "/v1/account": {
                "get": op("The token's own account: name, zones and the nameservers to give the registry", "200", None),
            },
            "/v1/tokens": {
                "get": op("List tokens (without secrets)", "200", None),
                "post": op("Create a token; the secret is shown only in this response", "201", Some("CreateToken")),
            },
            "/v1/tokens/{id}": { "delete": op("Revoke a token", "204", None) },
            "/v1/acme/httpreq/present": { "post": httpreq(waits(op("lego httpreq: add a challenge TXT value; waits for the secondaries when the server sets [secondaries] httpreq_wait", "200", Some("Challenge")))) },
            "/v1/acme/httpreq/cleanup": { "post": httpreq(op("lego httpreq: remove that TXT value", "200", Some("Challenge"))) },
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "basic": { "type": "http", "scheme": "basic", "description": "The token as password; lego httpreq endpoints only" },
                "apiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key", "description": "The PowerDNS-compatible API (/api/v1) only" }
            },
            "schemas": {
                "Problem": { "type": "object", "description": "RFC 9457", "properties": {
                    "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" }, "detail": { "type": "string" } } },
                "RrSet": { "type": "object", "required": ["name", "type", "ttl", "records"], "properties": {
                    "name": { "type": "string" }, "type": { "type": "string" }, "ttl": { "type": "integer", "minimum": 0, "maximum": 2147483647 },
                    "records": { "type": "array", "items": { "type": "string", "description": "record data in presentation format" } } } },
                "PutRrSet": { "type": "object", "required": ["ttl", "records"], "additionalProperties": false, "properties": {
                    "ttl": { "type": "integer" }, "records": { "type": "array", "items": { "type": "string" } } } },
                "Batch": { "type": "array", "items": { "type": "object", "required": ["name", "type"], "properties": {
                    "changetype": { "enum": ["replace", "delete"] }, "name": { "type": "string" }, "type": { "type": "string" },
                    "ttl": { "type": "integer" }, "records": { "type": "array", "items": { "type": "string" } } } } },
                "CreateZone": { "type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": { "type": "string" }, "account": { "type": "string" },
                    "nameservers": { "type": "array", "items": { "type": "string" } }, "zonefile": { "type": "string" } } },
                "CreateAccount": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string" } } },
                "BackendPrefixes": { "type": "object", "required": ["prefixes"], "additionalProperties": false, "properties": {
                    "prefixes": { "type": "array", "maxItems": 64, "items": { "type": "string", "description": "IPv6 prefix, ADDR/LEN, e.g. 2001:db8:42::/48" } } } },
                "CreateToken": { "type": "object", "required": ["scope"], "properties": {
                    "scope": { "enum": ["admin", "account", "zone", "acme", "ptr"] }, "account": { "type": "string" },
                    "zone": { "type": "string" }, "prefix": { "type": "string", "description": "IPv6 prefix for ptr tokens" } } },
                "Challenge": { "type": "object", "required": ["fqdn", "value"], "properties": {
                    "fqdn": { "type": "string" }, "value": { "type": "string" } } },
                "EnableDnssec": { "type": "object", "additionalProperties": false, "properties": {
                    "algorithm": { "enum": ["ecdsap256sha256", "ed25519"] }, "nsec3": { "type": "boolean" },
                    "layout": { "enum": ["csk", "ksk_zsk"] },
                    "policy": { "type": "object", "description": "signature_validity, signature_refresh, signature_jitter, dnskey_ttl, propagation_delay, zsk_lifetime, ksk_lifetime, parent_ds_ttl, parent_propagation_delay, ds_check_interval, key_retention (seconds); see docs/dnssec.md" } } },
                "Rollover": { "type": "object", "required": ["kind"], "additionalProperties": false, "properties": {
                    "kind": { "enum": ["ksk", "zsk", "algorithm"] }, "algorithm": { "enum": ["ecdsap256sha256", "ed25519"] } } }
            }
        }
    })
}

//! Router tests: requests go through the whole app with `oneshot`, no
//! sockets, against a real store in a temporary directory.

use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use sixgate_dns::{name, zonefile};
use sixgate_store::{OPERATOR_ACCOUNT, Scope, Store};
use tower::ServiceExt as _;

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
    app: Router,
    admin: String,
    alice: String,
    bob: String,
}

fn fixture() -> Fixture {
    fixture_with(|_| {})
}

/// The fixture, with `setup` run on the store before the app gets it.
fn fixture_with(setup: impl FnOnce(&mut Store)) -> Fixture {
    fixture_full(setup, None)
}

/// The fixture whose API reads the secondaries' status from `status`.
fn fixture_full(
    setup: impl FnOnce(&mut Store),
    status: Option<(Arc<sixgate_control::notify::Status>, Option<std::time::Duration>)>,
) -> Fixture {
    fixture_custom(setup, move |state| match status {
        Some((status, httpreq_wait)) => state.with_secondaries(status, httpreq_wait),
        None => state,
    })
}

/// The fixture, with `customise` applied to the state before it is shared.
fn fixture_custom(setup: impl FnOnce(&mut Store), customise: impl FnOnce(AppState) -> AppState) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    setup(&mut store);
    let apex = name::from_text("example.test.", None).unwrap();
    let text = "@ 300 SOA ns1.sixgate.test. hostmaster 1 2 3 4 300\n@ 300 NS ns1.sixgate.test.\nwww 300 A 192.0.2.1\nmail 300 MX 10 www\n";
    let alice_acct = store.create_account("alice").unwrap().id;
    let bob_acct = store.create_account("bob").unwrap().id;
    store
        .by(sixgate_store::Actor::Task("test"))
        .create_zone(&apex, zonefile::parse(text, &apex).unwrap(), alice_acct, true)
        .unwrap();
    let (_, admin) = store.create_token(OPERATOR_ACCOUNT, Scope::Admin).unwrap();
    let (_, alice) = store.create_token(alice_acct, Scope::Account).unwrap();
    let (_, bob) = store.create_token(bob_acct, Scope::Account).unwrap();
    let settings = ApiSettings {
        nameservers: vec![name::from_text("ns1.sixgate.test.", None).unwrap()],
        rate_limit: 1000,
        rate_burst: 1000,
        max_body: 64 * 1024,
    };
    let state = customise(AppState::new(store, settings, None, || {}).unwrap());
    let app = app(state.clone());
    Fixture { _dir: dir, state, app, admin, alice, bob }
}

impl Fixture {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let raw = body.map(|b| b.to_string());
        self.call_raw(method, uri, token.map(|t| ("authorization", format!("Bearer {t}"))), raw).await
    }

    /// A request with `auth` (a header) and, if given, a JSON body.
    async fn call_raw(
        &self,
        method: &str,
        uri: &str,
        auth: Option<(&str, String)>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut headers: Vec<(&str, String)> = auth.into_iter().collect();
        if body.is_some() {
            headers.push(("content-type", "application/json".into()));
        }
        self.send(method, uri, &headers, body).await
    }

    /// A zone file request with `token` as Bearer.
    async fn zonefile(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut headers = vec![("authorization", format!("Bearer {token}"))];
        if body.is_some() {
            headers.push(("content-type", "text/dns".into()));
        }
        self.send(method, uri, &headers, body).await
    }

    /// A request with exactly `headers`.
    async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, String)],
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        for (h, v) in headers {
            req = req.header(*h, v);
        }
        let req = req.body(HttpBody::from(body.unwrap_or_default())).unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let ctype = resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        if status.is_client_error() && !uri.starts_with("/api") {
            assert_eq!(ctype.as_deref(), Some("application/problem+json"), "{method} {uri}: {status}");
        }
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v)
    }
}

#[tokio::test]
async fn rrsets_are_replaced_read_and_deleted() {
    let f = fixture();
    let uri = "/v1/zones/example.test/rrsets/api.example.test./A";
    let (s, v) = f
        .call("PUT", uri, Some(&f.alice), Some(json!({"ttl": 60, "records": ["192.0.2.7", "192.0.2.8"]})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = f.call("GET", uri, Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"name": "api.example.test.", "type": "A", "ttl": 60, "records": ["192.0.2.7", "192.0.2.8"]})
    );
    let (s, v) =
        f.call("PUT", uri, Some(&f.alice), Some(json!({"ttl": 120, "records": ["192.0.2.8"]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = f.call("GET", uri, Some(&f.alice), None).await;
    assert_eq!(v["records"], json!(["192.0.2.8"]));
    assert_eq!(v["ttl"], 120);
    let (s, _) = f.call("DELETE", uri, Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = f.call("GET", uri, Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_batch_is_all_or_nothing() {
    let f = fixture();
    let batch = json!([
        {"name": "a.example.test", "type": "A", "ttl": 60, "records": ["192.0.2.1"]},
        {"name": "a.example.test", "type": "CNAME", "ttl": 60, "records": ["www"]},
    ]);
    let (s, v) = f.call("POST", "/v1/zones/example.test/rrsets", Some(&f.alice), Some(batch)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("CNAME"), "{v}");
    let (s, _) = f.call("GET", "/v1/zones/example.test/rrsets/a.example.test/A", Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing of a refused batch is written");
    let batch = json!([
        {"name": "a.example.test", "type": "A", "ttl": 60, "records": ["192.0.2.1"]},
        {"changetype": "delete", "name": "www.example.test", "type": "A"},
    ]);
    let (s, v) = f.call("POST", "/v1/zones/example.test/rrsets", Some(&f.alice), Some(batch)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = f.call("GET", "/v1/zones/example.test/rrsets", Some(&f.alice), None).await;
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"a.example.test.") && !names.contains(&"www.example.test."), "{names:?}");
}

#[tokio::test]
async fn bad_input_gets_a_specific_problem_and_changes_nothing() {
    let f = fixture();
    let uri = |n: &str, t: &str| format!("/v1/zones/example.test/rrsets/{n}/{t}");
    let cases: Vec<(String, Option<String>, StatusCode, &str)> = vec![
        (
            uri("www.example.org", "A"),
            Some(r#"{"ttl":60,"records":["192.0.2.1"]}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "outside the zone",
        ),
        (
            uri("www.example.test", "CNAME"),
            Some(r#"{"ttl":60,"records":["mail"]}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "CNAME",
        ),
        (
            uri("x.example.test", "A"),
            Some(r#"{"ttl":60,"records":["300.1.1.1"]}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid A record data",
        ),
        (
            uri("x.example.test", "A"),
            Some(r#"{"ttl":4294967296,"records":["192.0.2.1"]}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "TTL",
        ),
        (
            uri("x.example.test", "A"),
            Some(r#"{"ttl":2147483648,"records":["192.0.2.1"]}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "TTL",
        ),
        (
            uri("x.example.test", "A"),
            Some(r#"{"ttl":60,"records":["192.0.2.1","192.0.2.1"]}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "duplicate",
        ),
        (
            uri("x.example.test", "A"),
            Some(r#"{"ttl":60,"records":["192.0.2.1\nevil 60 A 192.0.2.2"]}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "line break",
        ),
        (
            uri("x.example.test", "A"),
            Some(r#"{"ttl":60,"records":[}"#.into()),
            StatusCode::BAD_REQUEST,
            "invalid JSON",
        ),
        (
            uri("x.example.test", "A"),
            Some(r#"{"ttl":60,"records":["192.0.2.1"],"extra":1}"#.into()),
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            uri("x..example.test", "A"),
            Some(r#"{"ttl":60,"records":["192.0.2.1"]}"#.into()),
            StatusCode::BAD_REQUEST,
            "invalid domain name",
        ),
        (
            uri("x.example.test", "BOGUS"),
            Some(r#"{"ttl":60,"records":["192.0.2.1"]}"#.into()),
            StatusCode::BAD_REQUEST,
            "unknown record type",
        ),
        (
            uri("x.example.test", "ANY"),
            Some(r#"{"ttl":60,"records":["192.0.2.1"]}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot be stored",
        ),
        (
            uri("x.example.test", "A"),
            Some(format!(r#"{{"ttl":60,"records":["{}"]}}"#, "1".repeat(70_000))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than",
        ),
    ];
    let (_, before) = f.call("GET", "/v1/zones/example.test", Some(&f.alice), None).await;
    for (u, body, status, needle) in cases {
        let (s, v) =
            f.call_raw("PUT", &u, Some(("authorization", format!("Bearer {}", f.alice))), body).await;
        assert_eq!(s, status, "{u}: {v}");
        assert!(v["detail"].as_str().unwrap_or_default().contains(needle), "{u}: {v}");
        assert_eq!(v["status"], status.as_u16());
    }
    let (_, after) = f.call("GET", "/v1/zones/example.test", Some(&f.alice), None).await;
    assert_eq!(before["serial"], after["serial"], "no refused request changed the zone");
}

#[tokio::test]
async fn tokens_are_required_and_scoped() {
    let f = fixture();
    let (s, _) = f.call("GET", "/v1/zones", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = f.call("GET", "/v1/zones", Some("sgt_0000"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Bob cannot see, read or change Alice's zone: it does not exist for him.
    let (_, v) = f.call("GET", "/v1/zones", Some(&f.bob), None).await;
    assert_eq!(v, json!([]));
    for (m, u) in [
        ("GET", "/v1/zones/example.test"),
        ("GET", "/v1/zones/example.test/rrsets"),
        ("DELETE", "/v1/zones/example.test"),
    ] {
        let (s, _) = f.call(m, u, Some(&f.bob), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {u}");
    }
    let (s, _) = f
        .call(
            "PUT",
            "/v1/zones/example.test/rrsets/www.example.test/A",
            Some(&f.bob),
            Some(json!({"ttl": 1, "records": ["192.0.2.66"]})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Nor make a zone inside hers.
    let (s, v) = f.call("POST", "/v1/zones", Some(&f.bob), Some(json!({"name": "shop.example.test"}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    // Customers cannot manage accounts.
    let (s, _) = f.call("POST", "/v1/accounts", Some(&f.alice), Some(json!({"name": "mallory"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // An acme token changes only _acme-challenge TXT records of its zone.
    let (s, v) = f
        .call("POST", "/v1/tokens", Some(&f.alice), Some(json!({"scope": "acme", "zone": "example.test"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let acme = v["token"].as_str().unwrap().to_string();
    let put = |n: &str, t: &str| format!("/v1/zones/example.test/rrsets/{n}/{t}");
    let (s, v) = f
        .call(
            "PUT",
            &put("_acme-challenge.example.test", "TXT"),
            Some(&acme),
            Some(json!({"ttl": 60, "records": ["\"abc\""]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for (n, t, rd) in [
        ("example.test", "MX", "10 www"),
        ("www.example.test", "A", "192.0.2.9"),
        ("_acme-challenge.example.test", "A", "192.0.2.9"),
    ] {
        let (s, v) = f.call("PUT", &put(n, t), Some(&acme), Some(json!({"ttl": 60, "records": [rd]}))).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{n} {t}: {v}");
    }
    let (s, _) = f.call("DELETE", "/v1/zones/example.test", Some(&acme), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = f
        .call("POST", "/v1/tokens", Some(&acme), Some(json!({"scope": "zone", "zone": "example.test"})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a narrow token cannot mint a wider one");
    // Bob cannot mint a token for Alice's zone.
    let (s, _) = f
        .call("POST", "/v1/tokens", Some(&f.bob), Some(json!({"scope": "acme", "zone": "example.test"})))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn customer_zones_start_unverified_and_operator_zones_verified() {
    let f = fixture();
    let (s, v) = f.call("POST", "/v1/zones", Some(&f.bob), Some(json!({"name": "bob.test"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["verified"], false);
    assert_eq!(v["account"], "bob");
    let (_, v) = f.call("GET", "/v1/zones/bob.test/rrsets/bob.test/NS", Some(&f.bob), None).await;
    assert_eq!(v["records"], json!(["ns1.sixgate.test."]));
    let (s, v) = f.call("POST", "/v1/zones", Some(&f.admin), Some(json!({"name": "op.test"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!((v["verified"].clone(), v["account"].clone()), (json!(true), json!("operator")));
    let (s, _) = f.call("POST", "/v1/zones", Some(&f.bob), Some(json!({"name": "bob.test"}))).await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test]
async fn zone_files_round_trip_and_bad_ones_name_the_line() {
    let f = fixture();
    let (s, text) = f.zonefile("GET", "/v1/zones/example.test/zonefile", &f.alice, None).await;
    assert_eq!(s, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    assert!(text.contains("192.0.2.1"), "{text}");
    let bad = format!("{text}bad 300 A 300.0.0.1\n");
    let (s, v) = f.zonefile("PUT", "/v1/zones/example.test/zonefile", &f.alice, Some(bad)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["detail"].as_str().unwrap().starts_with("line "), "{v}");
    let (s, v) = f.zonefile("PUT", "/v1/zones/example.test/zonefile", &f.alice, Some(text.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v.get("warnings").is_none(), "{v}");
}

#[tokio::test]
async fn data_below_a_delegation_is_imported_with_a_warning_naming_the_line() {
    let f = fixture();
    let (_, text) = f.zonefile("GET", "/v1/zones/example.test/zonefile", &f.alice, None).await;
    let text = text.as_str().unwrap().to_string();
    let lines = text.lines().count();
    let occluded = format!("{text}sub 300 NS ns.sub\nns.sub 300 A 192.0.2.53\nx.sub 300 TXT hidden\n");
    let (s, v) = f.zonefile("PUT", "/v1/zones/example.test/zonefile", &f.alice, Some(occluded)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let warnings = v["warnings"].as_array().unwrap_or_else(|| panic!("no warnings: {v}"));
    assert_eq!(warnings.len(), 1, "only the TXT, not the glue: {v}");
    let w = warnings[0].as_str().unwrap();
    assert!(w.starts_with(&format!("line {}: ", lines + 3)) && w.contains("x.sub.example.test."), "{w}");
    assert_eq!(v["name"], json!("example.test."), "the zone is still answered: {v}");
}

#[tokio::test]
async fn httpreq_adds_and_removes_single_values_with_basic_auth() {
    let f = fixture();
    let basic = |t: &str| {
        use base64::Engine as _;
        (
            "authorization",
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("lego:{t}"))),
        )
    };
    for v in ["one", "two"] {
        let body = json!({"fqdn": "_acme-challenge.example.test.", "value": v}).to_string();
        let (s, r) = f.call_raw("POST", "/v1/acme/httpreq/present", Some(basic(&f.alice)), Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{r}");
    }
    let body = json!({"fqdn": "_acme-challenge.example.test.", "value": "one"}).to_string();
    let (s, _) = f.call_raw("POST", "/v1/acme/httpreq/cleanup", Some(basic(&f.alice)), Some(body)).await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = f
        .call("GET", "/v1/zones/example.test/rrsets/_acme-challenge.example.test/TXT", Some(&f.alice), None)
        .await;
    assert_eq!(v["records"], json!(["\"two\""]));
    let body = json!({"fqdn": "_acme-challenge.example.test.", "value": "x"}).to_string();
    let (s, _) = f.call_raw("POST", "/v1/acme/httpreq/present", Some(basic(&f.bob)), Some(body)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "bob has no zone containing the name");
}

#[tokio::test]
async fn powerdns_subset_works_for_lego() {
    let f = fixture();
    let key = |t: &str| Some(("x-api-key", t.to_string()));
    let (s, v) = f.call_raw("GET", "/api", key(&f.alice), None).await;
    assert_eq!((s, v[0]["version"].clone()), (StatusCode::OK, json!(1)));
    let (_, v) = f.call_raw("GET", "/api/v1/servers/localhost/zones", key(&f.alice), None).await;
    assert_eq!(v[0]["id"], "example.test.");
    assert_eq!(v[0]["url"], "/api/v1/servers/localhost/zones/example.test.");
    let patch = json!({"rrsets": [{"name": "_acme-challenge.example.test.", "type": "TXT", "ttl": 120, "changetype": "REPLACE",
        "records": [{"content": "\"tok\"", "disabled": false}]}]});
    let (s, v) = f
        .call_raw(
            "PATCH",
            "/api/v1/servers/localhost/zones/example.test.",
            key(&f.alice),
            Some(patch.to_string()),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (_, v) =
        f.call_raw("GET", "/api/v1/servers/localhost/zones/example.test.", key(&f.alice), None).await;
    let txt = v["rrsets"].as_array().unwrap().iter().find(|r| r["type"] == "TXT").unwrap();
    assert_eq!(txt["records"][0]["content"], "\"tok\"");
    let (s, _) =
        f.call_raw("PUT", "/api/v1/servers/localhost/zones/example.test./notify", key(&f.alice), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = f
        .call_raw("GET", "/api/v1/servers/localhost/zones/example.test./cryptokeys", key(&f.alice), None)
        .await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    assert!(v["error"].as_str().unwrap().contains("docs/api.md"));
    let (s, v) = f.call_raw("GET", "/api/v1/servers/localhost/zones/example.test.", key(&f.bob), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"].is_string(), "PowerDNS error shape: {v}");
    let bad = json!({"rrsets": [{"name": "www.example.test.", "type": "A", "ttl": 60, "changetype": "REPLACE",
        "records": [{"content": "192.0.2.1", "disabled": true}]}]});
    let (s, _) = f
        .call_raw(
            "PATCH",
            "/api/v1/servers/localhost/zones/example.test.",
            key(&f.alice),
            Some(bad.to_string()),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_openapi_document_describes_every_native_route() {
    let f = fixture();
    let (s, v) = f.call("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["openapi"], "3.1.0");
    for p in openapi::PATHS {
        assert!(v["paths"].get(*p).is_some(), "{p} is not described");
    }
    // And every described path is routed (not 404 for lack of a route).
    for p in openapi::PATHS {
        let uri = p
            .replace("{zone}", "example.test")
            .replace("{name}", "www.example.test")
            .replace("{account}", "alice")
            .replace("{type}", "A")
            .replace("{id}", "1");
        let (s, _) = f.call("GET", &uri, Some(&f.admin), None).await;
        assert_ne!(s, StatusCode::NOT_FOUND, "{uri}");
    }
}

#[tokio::test]
async fn customer_tokens_are_rate_limited_and_admins_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let acct = store.create_account("alice").unwrap().id;
    let (_, alice) = store.create_token(acct, Scope::Account).unwrap();
    let (_, admin) = store.create_token(OPERATOR_ACCOUNT, Scope::Admin).unwrap();
    let settings = ApiSettings { rate_limit: 1, rate_burst: 3, ..ApiSettings::default() };
    let state = AppState::new(store, settings, None, || {}).unwrap();
    let f = Fixture { _dir: dir, app: app(state.clone()), state, admin, alice, bob: String::new() };
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(f.call("GET", "/v1/zones", Some(&f.alice), None).await.0);
    }
    assert_eq!(&statuses[..3], &[StatusCode::OK; 3], "{statuses:?}");
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    for _ in 0..10 {
        assert_eq!(f.call("GET", "/v1/zones", Some(&f.admin), None).await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn ptr_tokens_change_only_ptr_records_inside_their_prefix() {
    let f = fixture();
    let rev = "@ 300 SOA ns1.sixgate.test. hostmaster 1 2 3 4 300\n@ 300 NS ns1.sixgate.test.\n";
    let (s, v) = f
        .call(
            "POST",
            "/v1/zones",
            Some(&f.alice),
            Some(json!({"name": "8.b.d.0.1.0.0.2.ip6.arpa", "zonefile": rev})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = f
        .call(
            "POST",
            "/v1/tokens",
            Some(&f.alice),
            Some(json!({"scope": "ptr", "prefix": "2001:db8:42::/48"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let ptr = v["token"].as_str().unwrap().to_string();
    let base = "/v1/zones/8.b.d.0.1.0.0.2.ip6.arpa/rrsets";
    let inside = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.4.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
    let outside = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
    let (s, v) = f
        .call(
            "PUT",
            &format!("{base}/{inside}/PTR"),
            Some(&ptr),
            Some(json!({"ttl": 300, "records": ["host.example.test."]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = f
        .call(
            "PUT",
            &format!("{base}/{outside}/PTR"),
            Some(&ptr),
            Some(json!({"ttl": 300, "records": ["host.example.test."]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = f
        .call(
            "PUT",
            &format!("{base}/{inside}/TXT"),
            Some(&ptr),
            Some(json!({"ttl": 300, "records": ["\"x\""]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // It sees no forward zone at all.
    let (s, _) = f.call("GET", "/v1/zones/example.test", Some(&ptr), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dnssec_is_one_switch_with_status_ds_and_chain() {
    let f = fixture();
    // Unsigned at first.
    let (s, v) = f.call("GET", "/v1/zones/example.test/dnssec", Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["signed"], false);
    assert_eq!(v["verdict"], "insecure");
    // Another account's token does not see the zone.
    let (s, _) = f.call("POST", "/v1/zones/example.test/dnssec", Some(&f.bob), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Nonsense policies are refused with a reason, and nothing changes.
    for (body, words) in [
        (json!({"policy": {"signature_validity": 3600, "signature_refresh": 7200}}), "refresh"),
        (json!({"policy": {"signature_validity": 0}}), "validity"),
        (json!({"policy": {"dnskey_ttl": 0}}), "ttl"),
        (json!({"algorithm": "rsasha1"}), "rsasha1"),
        (json!({"policy": {"no_such_field": 1}}), "no_such_field"),
        // Refused, not accepted and ignored (RFC 9276 advises against it).
        (json!({"nsec3": true, "policy": {"denial": {"type": "nsec3", "opt_out": true}}}), "opt-out"),
        (json!({"policy": {"denial": {"type": "nsec3", "opt_out": true}}}), "opt-out"),
    ] {
        let (s, v) =
            f.call("POST", "/v1/zones/example.test/dnssec", Some(&f.alice), Some(body.clone())).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert!(v["detail"].as_str().unwrap().to_ascii_lowercase().contains(words), "{body}: {v}");
    }
    let (_, v) = f.call("GET", "/v1/zones/example.test/dnssec", Some(&f.alice), None).await;
    assert_eq!(v["signed"], false);
    // The switch.
    let (s, v) = f
        .call(
            "POST",
            "/v1/zones/example.test/dnssec",
            Some(&f.alice),
            Some(json!({"algorithm": "ed25519", "nsec3": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["signed"], true);
    assert_eq!(v["algorithm"], "ed25519");
    assert_eq!(v["denial"], "NSEC3");
    assert_eq!(v["verdict"], "waiting for DS");
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["role"], "csk");
    assert_eq!(keys[0]["state"], "active");
    let ds = v["ds"][0].as_str().unwrap();
    assert!(ds.starts_with(&format!("example.test. 3600 IN DS {} 15 2 ", keys[0]["key_tag"])), "{ds}");
    let after = v["ds_publish_after"][0].as_str().unwrap();
    assert!(after.len() == 20 && after.ends_with('Z'), "{after}");
    // The chain: the DNSKEY, and signatures over each type with windows.
    let chain = &v["chain"];
    assert_eq!(chain["dnskey"][0]["secure_entry_point"], true);
    assert_eq!(chain["dnskey"][0]["named_by_parent_ds"], false);
    let types: Vec<&str> =
        chain["signatures"].as_array().unwrap().iter().map(|s| s["type"].as_str().unwrap()).collect();
    for t in ["SOA", "NS", "A", "MX", "DNSKEY", "NSEC3", "NSEC3PARAM"] {
        assert!(types.contains(&t), "{t} not in {types:?}");
    }
    let soa = chain["signatures"].as_array().unwrap().iter().find(|s| s["type"] == "SOA").unwrap();
    assert!(soa["earliest_inception"].as_str().unwrap() < soa["earliest_expiration"].as_str().unwrap());
    // The zone file export stays unsigned.
    let (s, v) = f.call("GET", "/v1/zones/example.test/rrsets", Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!v.to_string().contains("RRSIG"), "{v}");
    // A rollover request, then going insecure the safe way.
    let (s, v) = f
        .call("POST", "/v1/zones/example.test/dnssec/rollover", Some(&f.alice), Some(json!({"kind": "ksk"})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = f.call("DELETE", "/v1/zones/example.test/dnssec", Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "going insecure");
    assert!(v["ds"].as_array().unwrap().is_empty());
    // The parent was never asked: unsigning at once is refused (it may
    // serve a DS), and only an admin may force it.
    let (s, v) = f.call("DELETE", "/v1/zones/example.test/dnssec?now=true", Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = f.call("DELETE", "/v1/zones/example.test/dnssec?now=true", Some(&f.admin), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) =
        f.call("DELETE", "/v1/zones/example.test/dnssec?now=true&force=true", Some(&f.admin), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["signed"], false);
}

/// Regression: `DELETE …/dnssec?now=true` unsigned at once for any token,
/// and deleting a zone dropped its keys, whatever the parent's DS. Both are
/// refused while validators may hold a DS of the parent for the zone, with
/// the reason; a customer token can never force them, an admin token can.
#[tokio::test]
async fn a_customer_cannot_unsign_or_delete_a_zone_the_parent_may_vouch_for() {
    let f = fixture();
    let (s, v) = f.call("POST", "/v1/zones/example.test/dnssec", Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = f.call("DELETE", "/v1/zones/example.test/dnssec?now=true", Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("refused unsigning it now") && detail.contains("parent"), "{detail}");
    let (s, v) =
        f.call("DELETE", "/v1/zones/example.test/dnssec?now=true&force=true", Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = f.call("DELETE", "/v1/zones/example.test", Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("refused deleting it with its keys"), "{v}");
    let (s, v) = f.call("DELETE", "/v1/zones/example.test?force=true", Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // Still signed, still there.
    let (_, v) = f.call("GET", "/v1/zones/example.test/dnssec", Some(&f.alice), None).await;
    assert_eq!(v["signed"], true);
    let (s, _) = f.call("DELETE", "/v1/zones/example.test?force=true", Some(&f.admin), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

/// Regression (issue 11, fault 3), through every dialect that creates
/// zones: a customer may not claim the root, a TLD, a public suffix, or a
/// parent or child of another account's zone, and the refusal names no
/// other account's zone. Admin tokens may.
#[tokio::test]
async fn a_customer_cannot_claim_com_or_a_parent_of_another_accounts_zone() {
    let f = fixture();
    let (s, v) =
        f.call("POST", "/v1/zones", Some(&f.alice), Some(json!({"name": "shop.corp.example"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let pdns = |t: &str| Some(("x-api-key", t.to_string()));
    let mut shapes = Vec::new();
    for zone in [".", "com.", "co.uk.", "corp.example.", "deep.shop.corp.example.", "shop.corp.example."] {
        let native = f.call("POST", "/v1/zones", Some(&f.bob), Some(json!({"name": zone}))).await;
        let body = json!({"name": zone, "kind": "Native", "nameservers": ["ns1.sixgate.test."]}).to_string();
        let (s, v) = f.call_raw("POST", "/api/v1/servers/localhost/zones", pdns(&f.bob), Some(body)).await;
        let pdns_detail = v["error"].as_str().unwrap_or_default().to_string();
        for (dialect, status, detail) in [
            ("native", native.0, native.1["detail"].as_str().unwrap_or_default().to_string()),
            ("pdns", s, pdns_detail),
        ] {
            assert!(
                status == StatusCode::CONFLICT || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{dialect} {zone}: {status} {detail}"
            );
            let rest = if zone == "." { detail.clone() } else { detail.replace(zone, "ZONE") };
            assert!(
                !rest.contains("shop.corp.example") && !rest.contains("example.test"),
                "{dialect} {zone}: {detail}"
            );
            if zone.ends_with("corp.example.") {
                shapes.push(rest);
            }
        }
        // Importing a zone file never creates a zone.
        let file =
            format!("$ORIGIN {zone}\n@ 60 SOA ns1.sixgate.test. h 1 2 3 4 5\n@ 60 NS ns1.sixgate.test.\n");
        let uri = format!("/v1/zones/{}/zonefile", zone.trim_end_matches('.'));
        let uri = if zone == "." { "/v1/zones/./zonefile".to_string() } else { uri };
        let (s, v) = f.zonefile("PUT", &uri, &f.bob, Some(file)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "import {zone}: {v}");
    }
    assert!(shapes.windows(2).all(|w| w[0] == w[1]), "one neutral refusal: {shapes:?}");
    let (_, v) = f.call("GET", "/v1/zones", Some(&f.bob), None).await;
    assert_eq!(v, json!([]), "bob got nothing");
    // Another account's zone "exists" just as any unavailable name does.
    let (s, v) = f.call("POST", "/v1/zones", Some(&f.bob), Some(json!({"name": "example.test"}))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(!v["detail"].as_str().unwrap().contains("exists"), "{v}");
    for zone in [".", "com.", "co.uk.", "corp.example.", "deep.shop.corp.example."] {
        let (s, v) = f.call("POST", "/v1/zones", Some(&f.admin), Some(json!({"name": zone}))).await;
        assert_eq!(s, StatusCode::CREATED, "admin {zone}: {v}");
    }
}

/// Sitting ducks, design (a): with per-account nameserver names
/// configured, each account is told its own names and its new zones are
/// delegated to them by default.
#[tokio::test]
async fn accounts_show_their_own_nameservers_and_new_zones_use_them() {
    let f = fixture_with(|s| {
        let domain = name::from_text("ns.sixgate.test.", None).unwrap();
        let scheme = sixgate_store::AccountNameservers { domain, count: 2 };
        s.set_account_nameserver_scheme(Some(&scheme)).unwrap();
    });
    let (s, me) = f.call("GET", "/v1/account", Some(&f.bob), None).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "bob");
    let ns = me["nameservers"].as_array().unwrap().clone();
    assert_eq!(ns.len(), 2, "{me}");
    let label =
        ns[0].as_str().unwrap().strip_prefix("ns1.").unwrap().strip_suffix(".ns.sixgate.test.").unwrap();
    assert_eq!(ns[1], format!("ns2.{label}.ns.sixgate.test."));
    let (_, alice) = f.call("GET", "/v1/account", Some(&f.alice), None).await;
    assert_ne!(alice["nameservers"], me["nameservers"], "every account has names of its own");
    // The admin's list shows the same; the operator keeps the shared names.
    let (_, all) = f.call("GET", "/v1/accounts", Some(&f.admin), None).await;
    let of =
        |n: &str| all.as_array().unwrap().iter().find(|a| a["name"] == n).unwrap()["nameservers"].clone();
    assert_eq!(of("bob"), me["nameservers"]);
    assert_eq!(of("operator"), json!(["ns1.sixgate.test."]));
    let (s, created) = f.call("POST", "/v1/accounts", Some(&f.admin), Some(json!({"name": "carol"}))).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(created["nameservers"].as_array().map(Vec::len), Some(2), "{created}");
    // New zones, native and PowerDNS, are delegated to the account's names.
    let (s, v) = f.call("POST", "/v1/zones", Some(&f.bob), Some(json!({"name": "bob.test"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v) = f.call("GET", "/v1/zones/bob.test/rrsets/bob.test/NS", Some(&f.bob), None).await;
    assert_eq!(v["records"], me["nameservers"]);
    let body = json!({"name": "bob2.test.", "kind": "Native", "nameservers": []}).to_string();
    let (s, v) = f
        .call_raw("POST", "/api/v1/servers/localhost/zones", Some(("x-api-key", f.bob.clone())), Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v) = f.call("GET", "/v1/zones/bob2.test/rrsets/bob2.test/NS", Some(&f.bob), None).await;
    assert_eq!(v["records"], me["nameservers"]);
    // The operator's zones keep the shared names.
    let (_, _) = f.call("POST", "/v1/zones", Some(&f.admin), Some(json!({"name": "op.test"}))).await;
    let (_, v) = f.call("GET", "/v1/zones/op.test/rrsets/op.test/NS", Some(&f.admin), None).await;
    assert_eq!(v["records"], json!(["ns1.sixgate.test."]));
}

/// Regression: one mutex over the store serialised every request, token
/// checks included, so one long write (a big signed import, a store busy
/// behind another process's write) stalled every tenant. With the writer
/// held, token checks and reads of other requests go on.
#[tokio::test]
async fn a_write_in_progress_does_not_hold_up_token_checks_or_reads() {
    let f = fixture();
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let st = f.state.clone();
    let writer = tokio::spawn(async move {
        st.write(move |_| {
            let _ = entered_tx.send(());
            let _ = release_rx.recv();
            Ok(())
        })
        .await
    });
    entered_rx.await.unwrap();
    let reads = async {
        let zones = f.call("GET", "/v1/zones", Some(&f.alice), None).await;
        let rrsets = f.call("GET", "/v1/zones/example.test/rrsets", Some(&f.alice), None).await;
        let refused = f.call("GET", "/v1/zones", Some("sgt_0000"), None).await;
        (zones.0, rrsets.0, refused.0)
    };
    let got = tokio::time::timeout(std::time::Duration::from_secs(20), reads).await;
    release_tx.send(()).unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(
        got.ok(),
        Some((StatusCode::OK, StatusCode::OK, StatusCode::UNAUTHORIZED)),
        "reads waited for the writer"
    );
}

/// Zone files and large bodies are parsed through `offload`: on a thread
/// of the blocking pool, not on the async worker that polls the request.
#[tokio::test]
async fn offloaded_work_runs_off_the_async_worker() {
    let here = std::thread::current().id();
    let there = offload(|| Ok(std::thread::current().id())).await.unwrap();
    assert_ne!(here, there);
}

/// Regression: bodies of any content type were accepted, so a cross-site
/// HTML form (`application/x-www-form-urlencoded`, `multipart/form-data`,
/// `text/plain`: no CORS preflight) could post JSON-shaped text with the
/// credentials a browser had cached. JSON bodies need `application/json`
/// (415 otherwise), zone files `text/dns`; nothing of a refused request
/// is written.
#[tokio::test]
async fn a_body_a_cross_site_form_can_send_is_refused_415() {
    let f = fixture();
    let bearer = ("authorization", format!("Bearer {}", f.alice));
    let zone = r#"{"name":"csrf.test"}"#.to_string();
    for ctype in [
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        None,
    ] {
        let mut headers = vec![bearer.clone()];
        headers.extend(ctype.map(|c| ("content-type", c.to_string())));
        let (s, v) = f.send("POST", "/v1/zones", &headers, Some(zone.clone())).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ctype:?}: {v}");
        assert!(v["detail"].as_str().unwrap().contains("application/json"), "{v}");
    }
    let challenge = r#"{"fqdn":"_acme-challenge.example.test.","value":"v"}"#.to_string();
    let headers = [bearer.clone(), ("content-type", "text/plain".into())];
    let (s, _) = f.send("POST", "/v1/acme/httpreq/present", &headers, Some(challenge)).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (_, text) = f.zonefile("GET", "/v1/zones/example.test/zonefile", &f.alice, None).await;
    let text = format!("{}evil 300 A 192.0.2.66\n", text.as_str().unwrap());
    for ctype in ["text/plain", "application/x-www-form-urlencoded", "application/json"] {
        let headers = [bearer.clone(), ("content-type", ctype.into())];
        let (s, v) = f.send("PUT", "/v1/zones/example.test/zonefile", &headers, Some(text.clone())).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ctype}: {v}");
        assert!(v["detail"].as_str().unwrap().contains("text/dns"), "{v}");
    }
    let (_, v) = f.call("GET", "/v1/zones", Some(&f.alice), None).await;
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    let (s, _) =
        f.call("GET", "/v1/zones/example.test/rrsets/evil.example.test/A", Some(&f.alice), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // What real clients send is accepted, parameters and case included.
    for ctype in ["application/json", "application/json; charset=utf-8", "Application/JSON"] {
        let headers = [bearer.clone(), ("content-type", ctype.into())];
        let body = r#"{"ttl":60,"records":["192.0.2.7"]}"#.to_string();
        let (s, v) =
            f.send("PUT", "/v1/zones/example.test/rrsets/ok.example.test/A", &headers, Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{ctype}: {v}");
    }
    let headers = [bearer, ("content-type", "text/dns; charset=utf-8".into())];
    let (s, v) = f.send("PUT", "/v1/zones/example.test/zonefile", &headers, Some(text)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Regression: HTTP Basic was accepted on every endpoint, and offered in
/// `WWW-Authenticate`, so a browser that had cached it sent it with any
/// cross-site request. Only lego's httpreq endpoints take it; elsewhere a
/// token comes as `Bearer`, and for the PowerDNS dialect as `X-API-Key`.
#[tokio::test]
async fn basic_auth_is_accepted_only_where_lego_httpreq_sends_it() {
    let f = fixture();
    let basic = |t: &str| {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("lego:{t}"));
        ("authorization", format!("Basic {b}"))
    };
    for (m, u) in [
        ("GET", "/v1/zones"),
        ("GET", "/v1/zones/example.test/zonefile"),
        ("GET", "/api/v1/servers/localhost/zones"),
        ("GET", "/metrics"),
    ] {
        let token = if u == "/metrics" { &f.admin } else { &f.alice };
        let (s, _) = f.send(m, u, &[basic(token)], None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "Basic on {m} {u}");
    }
    let (s, v) =
        f.call_raw("POST", "/v1/zones", Some(basic(&f.alice)), Some(r#"{"name":"b.test"}"#.into())).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // X-API-Key belongs to the PowerDNS dialect.
    let (s, _) = f.send("GET", "/v1/zones", &[("x-api-key", f.alice.clone())], None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) =
        f.send("GET", "/api/v1/servers/localhost/zones", &[("x-api-key", f.alice.clone())], None).await;
    assert_eq!(s, StatusCode::OK);
    // A 401 offers only Bearer: no browser login prompt to cache.
    let req = Request::builder().uri("/v1/zones").body(HttpBody::empty()).unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let offered = resp.headers().get(header::WWW_AUTHENTICATE).unwrap().to_str().unwrap().to_string();
    assert!(!offered.to_ascii_lowercase().contains("basic"), "{offered}");
    // lego's httpreq keeps working with Basic (and Bearer).
    let body = r#"{"fqdn":"_acme-challenge.example.test.","value":"v1"}"#.to_string();
    let (s, v) = f.call_raw("POST", "/v1/acme/httpreq/present", Some(basic(&f.alice)), Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let body = r#"{"fqdn":"_acme-challenge.example.test.","value":"v1"}"#.to_string();
    let bearer = ("authorization", format!("Bearer {}", f.alice));
    let (s, v) = f.call_raw("POST", "/v1/acme/httpreq/cleanup", Some(bearer), Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// A body that stalls past its deadline (the listener's `TimedBody`) is
/// answered 408, not taken for a malformed request.
#[tokio::test]
async fn a_body_that_stops_coming_is_answered_408() {
    struct Stalled;
    impl axum::body::HttpBody for Stalled {
        type Data = axum::body::Bytes;
        type Error = Box<dyn std::error::Error + Send + Sync>;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            let stalled = crate::conn::PhaseTimeout(sixgate_listen::Phase::Body);
            std::task::Poll::Ready(Some(Err(Box::new(stalled))))
        }
    }
    let f = fixture();
    let req = Request::builder()
        .method("POST")
        .uri("/v1/zones")
        .header("authorization", format!("Bearer {}", f.alice))
        .header(header::CONTENT_TYPE, "application/json")
        .body(HttpBody::new(Stalled))
        .unwrap();
    let resp = f.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
}

/// Backend prefixes are per account and only admins set or read them;
/// bad prefixes, overlaps and lists over the quota are refused with what
/// is wrong.
#[tokio::test]
async fn account_backend_prefixes_are_set_and_read_by_admins_only() {
    let f = fixture();
    let uri = "/v1/accounts/bob/prefixes";
    let (s, v) = f.call("GET", uri, Some(&f.admin), None).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"account": "bob", "prefixes": []})));
    let body = json!({"prefixes": ["2001:db8:b0b::/48", "::1/128"]});
    let (s, v) = f.call("PUT", uri, Some(&f.admin), Some(body.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["prefixes"], json!(["::1/128", "2001:db8:b0b::/48"]));
    assert_eq!(f.call("GET", uri, Some(&f.admin), None).await.1, v);
    for token in [&f.bob, &f.alice] {
        assert_eq!(f.call("GET", uri, Some(token), None).await.0, StatusCode::FORBIDDEN);
        assert_eq!(f.call("PUT", uri, Some(token), Some(body.clone())).await.0, StatusCode::FORBIDDEN);
    }
    let cases = [
        (json!({"prefixes": ["2001:db8::1/32"]}), StatusCode::BAD_REQUEST, "the network is 2001:db8::/32"),
        (json!({"prefixes": ["192.0.2.0/24"]}), StatusCode::BAD_REQUEST, "not an IPv6 prefix"),
        (json!({"prefixes": ["2001:db8:b0b:1::/64"]}), StatusCode::CONFLICT, "account bob"),
        (json!({"prefix": []}), StatusCode::BAD_REQUEST, "prefix"),
    ];
    for (body, want, says) in cases {
        let (s, v) = f.call("PUT", "/v1/accounts/alice/prefixes", Some(&f.admin), Some(body.clone())).await;
        assert_eq!(s, want, "{body}: {v}");
        assert!(v["detail"].as_str().unwrap_or_default().contains(says), "{body}: {v}");
    }
    let many: Vec<String> = (0..65).map(|i| format!("2001:db8:a:{i:x}::/64")).collect();
    let (s, v) =
        f.call("PUT", "/v1/accounts/alice/prefixes", Some(&f.admin), Some(json!({"prefixes": many}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _) = f.call("PUT", "/v1/accounts/operator/prefixes", Some(&f.admin), Some(body)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        f.call("GET", "/v1/accounts/nobody/prefixes", Some(&f.admin), None).await.0,
        StatusCode::NOT_FOUND
    );
}

mod secondaries_tests {
    //! `GET .../secondaries` and writes that wait for the secondaries,
    //! against a status table the test fills as the NOTIFY task would.

    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use sixgate_control::notify::Status;
    use sixgate_control::secondaries::Secondaries;
    use sixgate_store::Secondary;

    use super::*;

    const A: &str = "127.0.0.1:5301";
    const B: &str = "[::1]:5302";

    fn apex() -> Box<[u8]> {
        name::from_text("example.test.", None).unwrap()
    }

    /// Two secondaries carrying every zone, both at `serial`.
    fn status(serial: u32) -> Arc<Status> {
        let status = Status::new();
        let list = [A, B]
            .iter()
            .map(|a| Secondary { address: a.parse().unwrap(), key: None, catalog: false, zones: vec![] })
            .collect();
        status.set_secondaries(Arc::new(Secondaries {
            generation: 1,
            list,
            catalog: name::from_text("catalog.invalid.", None).unwrap(),
            keys: vec![],
        }));
        status.set_served(&apex(), Some(serial));
        for a in [A, B] {
            let key = (a.parse::<SocketAddr>().unwrap(), apex());
            status.notify_sent(&key, serial, true);
            status.notify_done(&key, serial, true);
            status.reported(&key, Ok(serial));
        }
        status
    }

    /// Plays the secondaries: once the zone's served serial moves past
    /// `from`, each secondary in `catch_up` reports it.
    fn follow(status: Arc<Status>, from: u32, catch_up: &'static [&'static str]) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let served = status.zone(&apex()).map(|z| z.serial).unwrap_or(from);
                if served != from {
                    for a in catch_up {
                        status.reported(&(a.parse().unwrap(), apex()), Ok(served));
                    }
                    return;
                }
            }
        });
    }

    #[tokio::test]
    async fn the_secondaries_of_a_zone_are_shown_to_who_may_see_the_zone() {
        let f = fixture_full(|_| {}, Some((status(1), None)));
        let (s, v) = f.call("GET", "/v1/zones/example.test/secondaries", Some(&f.alice), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["serial"], 1);
        let list = v["secondaries"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["address"], A);
        assert_eq!(list[1]["address"], B);
        assert_eq!(list[0]["serial"], 1);
        assert_eq!(list[0]["in_sync"], true);
        assert_eq!(list[0]["lag_seconds"], Value::Null);
        assert_eq!(list[0]["last_notify"]["acked"], true);
        assert_eq!(list[0]["last_notify"]["serial"], 1);
        // Another account's token sees no such zone.
        let (s, _) = f.call("GET", "/v1/zones/example.test/secondaries", Some(&f.bob), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = f.call("GET", "/v1/zones/example.test/secondaries", None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }

    /// Stands in for the publisher and the NOTIFY task's view of it:
    /// serves the zone's new serial once a write has committed one.
    fn serve_the_next_serial(f: &Fixture, status: Arc<Status>) {
        let state = f.state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let Ok(serial) = state.read(|s| Ok(s.serial(&apex())?)).await else { continue };
                if serial != 1 {
                    status.set_served(&apex(), Some(serial));
                    return;
                }
            }
        });
    }

    #[tokio::test]
    async fn a_write_that_waits_lists_each_secondarys_serial_once_all_have_it() {
        let st = status(1);
        let f = fixture_full(|_| {}, Some((st.clone(), None)));
        // Both secondaries take the new serial.
        serve_the_next_serial(&f, st.clone());
        follow(st.clone(), 1, &[A, B]);
        let body = json!({"ttl": 300, "records": ["192.0.2.9"]});
        let (s, v) = f
            .call(
                "PUT",
                "/v1/zones/example.test/rrsets/www.example.test/A?wait=secondaries&timeout=20",
                Some(&f.alice),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let serial = v["serial"].as_u64().unwrap();
        let list = v["secondaries"].as_array().unwrap();
        assert_eq!(list.len(), 2, "{v}");
        assert!(list.iter().all(|x| x["serial"].as_u64() == Some(serial)), "{v}");
        // Without the wait there is no list.
        let body = json!({"ttl": 300, "records": ["192.0.2.10"]});
        let (s, v) = f
            .call("PUT", "/v1/zones/example.test/rrsets/www.example.test/A", Some(&f.alice), Some(body))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(v.get("secondaries").is_none(), "{v}");
    }

    #[tokio::test]
    async fn a_powerdns_patch_that_waits_answers_204_with_the_serials_in_a_header() {
        let st = status(1);
        let f = fixture_full(|_| {}, Some((st.clone(), None)));
        serve_the_next_serial(&f, st.clone());
        follow(st.clone(), 1, &[A, B]);
        let patch = json!({"rrsets": [{"name": "_acme-challenge.example.test.", "type": "TXT", "ttl": 120, "changetype": "REPLACE",
            "records": [{"content": "\"tok\"", "disabled": false}]}]});
        let req = Request::builder()
            .method("PATCH")
            .uri("/api/v1/servers/localhost/zones/example.test.?wait=secondaries&timeout=20")
            .header("x-api-key", &f.alice)
            .header("content-type", "application/json")
            .body(HttpBody::from(patch.to_string()))
            .unwrap();
        let resp = f.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let serial = st.zone(&apex()).unwrap().serial;
        assert_ne!(serial, 1);
        let header = resp.headers().get("sixgate-secondaries").unwrap().to_str().unwrap().to_owned();
        assert_eq!(header, format!("{A}={serial}, {B}={serial}"));
    }

    #[tokio::test]
    async fn a_write_whose_secondaries_stay_behind_gets_504_naming_them() {
        let st = status(1);
        let f = fixture_full(|_| {}, Some((st.clone(), None)));
        // A catches up, B stays at 1.
        serve_the_next_serial(&f, st.clone());
        follow(st.clone(), 1, &[A]);
        let headers =
            [("authorization", format!("Bearer {}", f.alice)), ("sixgate-wait", "secondaries".into())];
        let (s, v) = f
            .send("DELETE", "/v1/zones/example.test/rrsets/mail.example.test/MX?timeout=1", &headers, None)
            .await;
        assert_eq!(s, StatusCode::GATEWAY_TIMEOUT, "{v}");
        assert_eq!(v["type"], "https://sixgate.invalid/problems/secondaries-behind");
        let serial = v["serial"].as_u64().unwrap();
        assert!(v["detail"].as_str().unwrap().contains("[::1]:5302"), "{v}");
        let list = v["secondaries"].as_array().unwrap();
        let by = |a: &str| list.iter().find(|x| x["address"] == a).unwrap()["serial"].as_u64().unwrap();
        assert_eq!((by(A), by(B)), (serial, 1));
        // The write is committed all the same.
        let (s, _) =
            f.call("GET", "/v1/zones/example.test/rrsets/mail.example.test/MX", Some(&f.alice), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_wait_on_a_zone_no_secondary_carries_answers_at_once() {
        let st = Status::new();
        let list = vec![Secondary {
            address: A.parse().unwrap(),
            key: None,
            catalog: false,
            zones: vec![name::from_text("other.test.", None).unwrap()],
        }];
        st.set_secondaries(Arc::new(Secondaries {
            generation: 1,
            list,
            catalog: name::from_text("catalog.invalid.", None).unwrap(),
            keys: vec![],
        }));
        st.set_served(&apex(), Some(1));
        let f = fixture_full(|_| {}, Some((st, None)));
        let headers = [("authorization", format!("Bearer {}", f.alice))];
        let mut req = Request::builder()
            .method("DELETE")
            .uri("/v1/zones/example.test/rrsets/mail.example.test/MX?wait=secondaries&timeout=5");
        for (h, v) in &headers {
            req = req.header(*h, v);
        }
        let resp = f.app.clone().oneshot(req.body(HttpBody::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(resp.headers().get("sixgate-secondaries").unwrap(), "");
    }

    #[tokio::test]
    async fn httpreq_present_waits_for_the_secondaries_when_the_server_says_so() {
        let st = status(1);
        let f = fixture_full(|_| {}, Some((st.clone(), Some(Duration::from_secs(1)))));
        serve_the_next_serial(&f, st.clone());
        // Nobody catches up: present, asked nothing, fails with 504 after
        // the server's timeout (lego reports the error before asking the
        // CA to validate).
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("u:{}", f.alice));
        let headers =
            [("authorization", format!("Basic {basic}")), ("content-type", "application/json".into())];
        let body = json!({"fqdn": "_acme-challenge.example.test.", "value": "abc"}).to_string();
        let (s, v) = f.send("POST", "/v1/acme/httpreq/present", &headers, Some(body.clone())).await;
        assert_eq!(s, StatusCode::GATEWAY_TIMEOUT, "{v}");
        assert!(v["detail"].as_str().unwrap().contains("5301"), "{v}");
        // cleanup never waits: nobody catches up, so a wait would end in
        // 504.
        let (s, _) = f.send("POST", "/v1/acme/httpreq/cleanup", &headers, Some(body)).await;
        assert_eq!(s, StatusCode::OK);
        // Without the setting, present does not wait (a wait would end in
        // 504: nobody catches up).
        let g = fixture_full(|_| {}, Some((status(1), None)));
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("u:{}", g.alice));
        let headers =
            [("authorization", format!("Basic {basic}")), ("content-type", "application/json".into())];
        let body = json!({"fqdn": "_acme-challenge.example.test.", "value": "abc"}).to_string();
        let (s, _) = g.send("POST", "/v1/acme/httpreq/present", &headers, Some(body)).await;
        assert_eq!(s, StatusCode::OK);
    }
}

/// Regression: `GET /health` was a 404, and nothing told a load balancer
/// or a supervisor whether a node was ready to serve.
#[tokio::test]
async fn health_and_ready_answer_without_a_token_and_ready_lists_held_zones() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let started = Arc::new(AtomicBool::new(false));
    let flag = started.clone();
    let f = fixture_custom(
        |s| {
            let apex = name::from_text("held.test.", None).unwrap();
            s.set_hold(&apex, Some("an rrset too large")).unwrap();
        },
        move |state| {
            state.with_readiness(move || (!flag.load(Ordering::Relaxed)).then(|| "starting".to_string()))
        },
    );
    let (s, v) = f.call("GET", "/health", None, None).await;
    assert_eq!((s, v), (StatusCode::OK, Value::String("ok\n".into())));
    let (s, v) = f.call("GET", "/ready", None, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["reason"], "starting");
    started.store(true, Ordering::Relaxed);
    let (s, v) = f.call("GET", "/ready", None, None).await;
    assert_eq!(s, StatusCode::OK, "a held zone does not make the node unready: {v}");
    assert_eq!(v["status"], "ready");
    assert_eq!(v["held_zones"], json!([{"zone": "held.test.", "reason": "an rrset too large"}]));
}

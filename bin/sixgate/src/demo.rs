//! The demo zone created on first start, so that a fresh `sixgate serve`
//! answers something real.

/// Name of the demo zone.
pub(crate) const DEMO_ZONE: &str = "demo.sixgate.test.";

/// Its content: a small zone showing the common record types.
pub(crate) const DEMO_ZONE_TEXT: &str = r#"$TTL 300
@       IN SOA  ns1 hostmaster ( 1 3600 900 1209600 300 )
        IN NS   ns1
        IN MX   10 mail
        IN TXT  "v=spf1 -all"
        IN CAA  0 issue "letsencrypt.org"
ns1     IN AAAA 2001:db8::53
        IN A    192.0.2.53
www     IN AAAA 2001:db8::80
        IN A    192.0.2.80
mail    IN AAAA 2001:db8::25
blog    IN CNAME www
*.apps  IN AAAA 2001:db8::8080
_https._tcp IN SRV 0 1 443 www
"#;

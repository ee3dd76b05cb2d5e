//! Test support: a lab DNS tree (a root, `test.`, a signed
//! `provider.test.` and an unsigned `plain.test.` delegated without DS),
//! signed now by sixgate's own signer, and an upstream resolver on a
//! loopback UDP socket that answers from it as a recursive resolver
//! would: each query from the deepest zone that holds the name (DS from
//! the parent side), with RRSIGs and proofs for DO queries. Queries for
//! names under `hole.test.` are read and never answered (a black hole).
//!
//! The upstream can be made to lie: [`Lie::Forge`] answers address
//! queries for `provider.test.` names from a copy of that zone with
//! other addresses signed by a key the DS does not name, [`Lie::Strip`]
//! sends the same copy without signatures, and [`Lie::Unproven`] answers
//! DS queries with a bare NODATA (no NSEC), as an attacker who wants a
//! signed zone taken for an insecure one would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use sixgate_dns::message::HEADER_LEN;
use sixgate_dns::name::{self, NameBuf};
use sixgate_dns::rtype::code;
use sixgate_dns::zone::{Record, Zone};
use sixgate_dns::{Catalog, Limits, Transport, respond, zonefile};
use sixgate_dnssec::denial::Nsec3Params;
use sixgate_dnssec::key::flags;
use sixgate_dnssec::sign::{ActiveKey, Signer};
use sixgate_dnssec::{Algorithm, KeyPair, ds};
use tokio::net::UdpSocket;

use crate::chain::TrustAnchor;

/// How the upstream lies, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lie {
    Honest,
    Forge,
    Strip,
    Unproven,
}

pub(crate) fn n(text: &str) -> Box<[u8]> {
    name::from_text(text, None).unwrap()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn records(apex: &str, text: &str) -> Vec<Record> {
    zonefile::parse(text, &n(apex)).unwrap()
}

/// The zone `apex` from `text`, signed by `key` (NSEC, or NSEC3 with
/// `nsec3`) unless `None`.
fn zone(apex: &str, mut recs: Vec<Record>, key: Option<&KeyPair>, nsec3: bool) -> Catalog {
    let a = n(apex);
    if let Some(k) = key {
        recs.push(Record { owner: a.clone(), rtype: code::DNSKEY, ttl: 300, rdata: k.dnskey_rdata().into() });
        let nsec3 = nsec3.then(Nsec3Params::default);
        if let Some(p) = &nsec3 {
            recs.push(Record {
                owner: a.clone(),
                rtype: code::NSEC3PARAM,
                ttl: 0,
                rdata: p.nsec3param_rdata().into(),
            });
        }
        let signer = Signer {
            apex: a.clone(),
            keys: vec![ActiveKey { key: k, tag: k.key_tag(), signs_keys: true, signs_zone: true }],
            nsec3,
            now: now(),
            inception_offset: 3600,
            validity: 86_400,
            jitter: 0,
        };
        let signed = signer.sign_zone(&recs, 1).unwrap();
        recs.extend(signed.records);
    }
    Catalog::new().with_zone(Arc::new(Zone::build(&a, recs, 1).unwrap()))
}

fn ds_of(owner: &str, key: &KeyPair) -> Record {
    let o = n(owner);
    Record {
        owner: o.clone(),
        rtype: code::DS,
        ttl: 300,
        rdata: ds::ds_rdata(&o, &key.dnskey_rdata(), ds::SHA256).unwrap().into(),
    }
}

const SOA: &str = "@ 300 SOA ns.test. h.test. 1 7200 3600 1209600 60\n";

/// The lab's zones and the root's key, as a trust anchor.
pub(crate) struct Lab {
    zones: Vec<(Box<[u8]>, Catalog)>,
    forged: Catalog,
    stripped: Catalog,
    pub(crate) anchor: TrustAnchor,
}

impl Lab {
    /// The lab, its zones signed with NSEC or, with `nsec3`, NSEC3.
    pub(crate) fn new(nsec3: bool) -> Lab {
        let key = || KeyPair::generate(Algorithm::EcdsaP256Sha256, flags::ZONE | flags::SEP).unwrap();
        let (root_key, test_key, provider_key, forger_key) = (key(), key(), key(), key());
        let mut root = records(
            ".",
            &format!("{SOA}@ 300 NS ns.test.\ntest. 300 NS ns.test.\nns.test. 300 A 192.0.2.53\n"),
        );
        root.push(ds_of("test.", &test_key));
        let mut test = records(
            "test.",
            &format!(
                "{SOA}@ 300 NS ns\nns 300 A 192.0.2.53\nprovider 300 NS ns.provider\nns.provider 300 A 192.0.2.54\n\
                 plain 300 NS ns.plain\nns.plain 300 A 192.0.2.55\n"
            ),
        );
        test.push(ds_of("provider.test.", &provider_key));
        let provider = |address: &str| {
            records(
                "provider.test.",
                &format!(
                    "{SOA}@ 300 NS ns\nns 300 A 192.0.2.54\nhost 300 A {address}\nhost 300 AAAA 2001:db8::10\n"
                ),
            )
        };
        let plain = records(
            "plain.test.",
            &format!("{SOA}@ 300 NS ns\nns 300 A 192.0.2.55\nhost 300 A 192.0.2.20\n"),
        );
        let anchor_text = format!(". 300 IN DNSKEY {}", dnskey_text(&root_key));
        Lab {
            zones: vec![
                (n("."), zone(".", root, Some(&root_key), nsec3)),
                (n("test."), zone("test.", test, Some(&test_key), nsec3)),
                (
                    n("provider.test."),
                    zone("provider.test.", provider("192.0.2.10"), Some(&provider_key), nsec3),
                ),
                (n("plain.test."), zone("plain.test.", plain, None, false)),
            ],
            forged: zone("provider.test.", provider("203.0.113.66"), Some(&forger_key), nsec3),
            stripped: zone("provider.test.", provider("203.0.113.66"), None, false),
            anchor: TrustAnchor::from_text(&anchor_text).unwrap(),
        }
    }

    /// The catalog that answers `qname` and `qtype`, lying as told.
    fn answering(&self, qname: &[u8], qtype: u16, lie: Lie) -> Option<&Catalog> {
        let qname = name::to_lowercase(qname);
        let (apex, catalog) = self
            .zones
            .iter()
            .filter(|(apex, _)| {
                name::is_at_or_below(&qname, apex) && !(qtype == code::DS && **apex == *qname)
            })
            .max_by_key(|(apex, _)| apex.len())?;
        let in_provider = **apex == *n("provider.test.");
        Some(match lie {
            Lie::Forge if in_provider && matches!(qtype, code::A | code::AAAA) => &self.forged,
            Lie::Strip if in_provider && matches!(qtype, code::A | code::AAAA) => &self.stripped,
            _ => catalog,
        })
    }
}

fn dnskey_text(k: &KeyPair) -> String {
    let rd = k.dnskey_rdata();
    let (fl, proto, alg, public) = sixgate_dnssec::key::decode_dnskey(&rd).unwrap();
    let b64 = base64_encode(public);
    format!("{fl} {proto} {alg} {b64}")
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The question of a query: name and type.
fn question(q: &[u8]) -> Option<(Box<[u8]>, u16)> {
    let mut owner = NameBuf::new();
    let pos = owner.decode(q, HEADER_LEN).ok()?;
    let t = u16::from_be_bytes([*q.get(pos)?, *q.get(pos + 1)?]);
    Some((owner.as_slice().into(), t))
}

/// Every question an upstream was asked.
pub(crate) type Asked = Arc<Mutex<Vec<(Box<[u8]>, u16)>>>;

/// An upstream resolver serving `lab` on a loopback port; `lie` says how
/// it answers now, and `asked` records every question.
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    pub(crate) lie: Arc<Mutex<Lie>>,
    pub(crate) asked: Asked,
}

impl Upstream {
    pub(crate) async fn start(lab: Lab) -> Upstream {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let lie = Arc::new(Mutex::new(Lie::Honest));
        let asked: Asked = Arc::new(Mutex::new(Vec::new()));
        let (l, a) = (lie.clone(), asked.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, from)) = sock.recv_from(&mut buf).await else { return };
                let q = buf[..len].to_vec();
                let Some((qname, qtype)) = question(&q) else { continue };
                a.lock().unwrap().push((qname.clone(), qtype));
                // Names under hole.test. are black-holed: read, never answered.
                if name::is_at_or_below(&name::to_lowercase(&qname), &n("hole.test.")) {
                    continue;
                }
                let lie = *l.lock().unwrap();
                let mut out = Vec::new();
                match lab.answering(&qname, qtype, lie) {
                    Some(c) => {
                        respond(c, &q, &mut out, Transport::Tcp, &Limits::default());
                        if lie == Lie::Unproven && qtype == code::DS {
                            out = bare_nodata(&q);
                        }
                    }
                    None => continue,
                }
                let _ = sock.send_to(&out, from).await;
            }
        });
        Upstream { addr, lie, asked }
    }

    pub(crate) fn lie(&self, lie: Lie) {
        *self.lie.lock().unwrap() = lie;
    }
}

/// A NOERROR answer with nothing in it: NODATA without any proof.
fn bare_nodata(q: &[u8]) -> Vec<u8> {
    let (qname, _) = question(q).unwrap();
    let end = HEADER_LEN + qname.len() + 4;
    let mut out = q[..end].to_vec();
    out[2] |= 0x80; // QR
    out[3] = 0x80; // RA, NOERROR
    out[6..12].copy_from_slice(&[0; 6]);
    out
}

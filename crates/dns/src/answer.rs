//! Answering queries from a catalog: RFC 1034 §4.3.2 with the
//! clarifications of RFC 2308 (negative answers), RFC 4592 (wildcards),
//! RFC 6604 (rcode after CNAME), RFC 8482 (ANY) and RFC 9471 (glue).
//!
//! With the DO bit set and a signed zone, answers carry the DNSSEC
//! records RFC 4035 §3.1 and RFC 5155 §7.2 ask for (`answer/dnssec.rs`).
//!
//! [`respond`] is a pure function: query bytes in, response bytes out (or
//! nothing for messages that must not be answered). It reads the catalog
//! without locks and, apart from growing the caller's buffer once, does
//! not allocate. [`respond_to`] is the same with the client's address and
//! the time given, which DNS cookies (RFC 7873) need; it also tells the
//! caller what the query's cookie proved.
//!
//! Cookies are answered as BIND answers them by default: a query with a
//! COOKIE option gets its normal answer with the client cookie and a
//! server cookie (a fresh one unless the one it sent is valid and recent,
//! RFC 7873 §5.2.3 to §5.2.5); a malformed option is a FORMERR (§5.2.2).
//! BADCOOKIE (§5.2.3) is sent only when the operator requires a valid
//! server cookie over UDP ([`Secrets::require`], BIND's
//! `require-server-cookie`), or when the caller asks for it with
//! [`badcookie_reply`] (a rate limiter can send it instead of a truncated
//! slip to a limited client that presented a client cookie: the client
//! learns a cookie that exempts it). Knot's module sends BADCOOKIE to
//! every UDP query without a valid server cookie; answering normally
//! costs a cookie-aware client nothing, and a spoofed source gains
//! nothing from it that the rate limiter does not already bound.

use std::net::IpAddr;

use crate::catalog::Catalog;
use crate::cookie::{self, Checked, CookieStatus, Secrets};
use crate::ident::{self, Nsid};
use crate::message::{self, Query, QueryError, decode_query, flags, rcode};
use crate::name::{self, NameBuf};
use crate::rtype::CLASS_ANY;
use crate::rtype::{CLASS_CH, CLASS_IN, code};
use crate::writer::{NoSpace, Opt, Owner, Section, Writer};
use crate::zone::{NodeRef, RrSetRef, Zone};

mod additional;
mod dnssec;
mod find;

use additional::Extras;
use dnssec::{Chain, Proof, Proofs};
use find::{Found, find_node};

/// Size limits applied to responses, and the server's own settings that
/// shape them: made once at start, read by every query.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest UDP response we send when the client allows more
    /// (RFC 6891 §6.2.5; 1232 per DNS Flag Day 2020). Also advertised in
    /// our OPT record.
    pub udp_payload: u16,
    /// The server's identifier: sent as NSID (RFC 5001) to queries that
    /// ask, and the answer to `id.server` and `hostname.bind` CH TXT (RFC
    /// 4892). `None`: neither is answered.
    pub nsid: Option<Nsid>,
    /// DNS cookies (RFC 7873, RFC 9018). `None`: COOKIE options are read
    /// (a malformed one is still a FORMERR) but not answered.
    pub cookies: Option<Secrets>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { udp_payload: 1232, nsid: None, cookies: None }
    }
}

/// Who sent a query, and when it is answered: what a cookie is made for
/// and checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The query's source address.
    pub ip: IpAddr,
    /// Unix seconds (a UDP worker reads the clock once per batch).
    pub now: u64,
}

/// What became of a query ([`respond_to`]), and what its cookie proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// What to do with the buffer.
    pub outcome: Outcome,
    /// The verdict on the query's COOKIE option; [`CookieStatus::Valid`]
    /// means the client receives answers at its address (response-rate
    /// limiting exempts it).
    pub cookie: CookieStatus,
    /// The reply is a BADCOOKIE (RFC 7873 §5.2.3).
    pub badcookie: bool,
}

impl Answered {
    fn plain(outcome: Outcome) -> Answered {
        Answered { outcome, cookie: CookieStatus::None, badcookie: false }
    }
}

/// The transport a query came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: responses are capped and truncated.
    Udp,
    /// TCP: responses up to 65535 octets, never truncated; an answer
    /// that does not fit is a SERVFAIL.
    Tcp,
}

/// Most links (CNAMEs, or DNAMEs with the CNAME synthesized from each) put
/// in one answer. The fifth link's target is still looked up and its data
/// answered; a sixth link is left out, with nothing after it. This is
/// Knot's `CNAME_CHAIN_MAX`, counted as Knot counts it, so both answer
/// alike.
pub const MAX_CNAME_CHAIN: usize = 5;
/// EDE "Not Authoritative" (RFC 8914 §4.21).
const EDE_NOT_AUTHORITATIVE: u16 = 20;
/// Largest DNS message.
const MAX_MESSAGE: usize = 65535;
/// Smallest UDP limit (RFC 1035 §2.3.4, RFC 6891 §6.2.5).
const MIN_UDP: usize = 512;

/// What became of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `buf` holds a response to send.
    Reply,
    /// Send nothing.
    Drop,
    /// The query is TSIG-signed (RFC 8945): nothing is written; answer it
    /// with [`respond_signed`], which needs the keys.
    Signed,
}

/// Answers `msg`, writing the response into `buf`. No client address is
/// known, so COOKIE options are not answered (see [`respond_to`]).
pub fn respond(
    catalog: &Catalog,
    msg: &[u8],
    buf: &mut Vec<u8>,
    transport: Transport,
    limits: &Limits,
) -> Outcome {
    respond_to(catalog, msg, buf, transport, limits, None).outcome
}

/// Answers `msg` from `client`, writing the response into `buf`. With
/// cookies on ([`Limits::cookies`]) and the client known, a COOKIE option
/// is checked and answered (RFC 7873 §5.2), and the verdict returned.
pub fn respond_to(
    catalog: &Catalog,
    msg: &[u8],
    buf: &mut Vec<u8>,
    transport: Transport,
    limits: &Limits,
    client: Option<&Client>,
) -> Answered {
    match decode_query(msg) {
        Ok(q) if q.signed => Answered::plain(Outcome::Signed),
        Ok(q) => {
            let checked = check_cookie(&q, limits, client);
            let status = checked.map_or(CookieStatus::None, |c| c.status);
            let opt = response_opt(&q, limits, checked.as_ref());
            if must_prove(limits, transport, status) {
                badcookie(msg, &q, buf, opt);
                return Answered { outcome: Outcome::Reply, cookie: status, badcookie: true };
            }
            answer(catalog, msg, &q, buf, transport, limits, 0, opt);
            Answered { outcome: Outcome::Reply, cookie: status, badcookie: false }
        }
        Err(QueryError::Drop) => Answered::plain(Outcome::Drop),
        Err(QueryError::Reject { rcode, question_end, edns }) => {
            let opt = edns.map(|e| Opt::new(limits.udp_payload, e.dnssec_ok));
            error_reply(msg, question_end, buf, rcode, opt);
            Answered::plain(Outcome::Reply)
        }
    }
}

/// Writes a BADCOOKIE reply to `msg` (RFC 7873 §5.2.3): the question, and
/// an OPT with the client cookie and a fresh server cookie, so that the
/// client can ask again with a valid one. `false`, with nothing written,
/// when cookies are off or the query has no cookie to answer (then only
/// a truncated reply would send the client elsewhere).
pub fn badcookie_reply(msg: &[u8], buf: &mut Vec<u8>, limits: &Limits, client: &Client) -> bool {
    let Ok(q) = decode_query(msg) else { return false };
    let Some(checked) = check_cookie(&q, limits, Some(client)) else { return false };
    badcookie(msg, &q, buf, response_opt(&q, limits, Some(&checked)));
    true
}

/// The query's cookie checked, when cookies are on, the client is known
/// and the query has one.
fn check_cookie(q: &Query, limits: &Limits, client: Option<&Client>) -> Option<Checked> {
    let (secrets, c, cookie) = (limits.cookies.as_ref()?, client?, q.cookie.as_ref()?);
    Some(cookie::check(secrets, cookie, c.ip, c.now))
}

/// Whether a query is answered with BADCOOKIE for want of a valid server
/// cookie: only over UDP (a TCP client has proved its address with the
/// handshake), only when the operator requires it, and only to a client
/// that sent a cookie (one without cannot learn one).
fn must_prove(limits: &Limits, transport: Transport, status: CookieStatus) -> bool {
    transport == Transport::Udp
        && limits.cookies.is_some_and(|s| s.require)
        && matches!(status, CookieStatus::ClientOnly | CookieStatus::Invalid)
}

/// The OPT record of the response to `q`: our payload size, the DO bit,
/// the NSID when asked for and configured (RFC 5001 §2.2), the cookie
/// when checked.
fn response_opt<'l>(q: &Query, limits: &'l Limits, checked: Option<&Checked>) -> Option<Opt<'l>> {
    q.edns.map(|e| Opt {
        nsid: limits.nsid.as_ref().filter(|_| q.nsid).map(Nsid::as_bytes),
        cookie: checked.map(|c| c.reply),
        ..Opt::new(limits.udp_payload, e.dnssec_ok)
    })
}

/// The BADCOOKIE reply itself: header, question and OPT. BADCOOKIE is an
/// extended rcode: its upper bits go in the OPT (RFC 6891 §6.1.3), which
/// a query with a cookie always has.
fn badcookie(msg: &[u8], q: &Query, buf: &mut Vec<u8>, opt: Option<Opt<'_>>) {
    error_reply(msg, Some(q.question_end), buf, cookie::BADCOOKIE, opt);
}

/// Answers a TSIG-signed query (RFC 8945 §5): the key its TSIG record
/// names is looked up with `key` (given the lowercased key name), the
/// request verified, and the answer signed with the request's MAC. A
/// request that does not verify gets the error response of §5.2:
/// NOTAUTH with BADKEY or BADSIG (unsigned), BADTIME or BADTRUNC
/// (signed), or FORMERR for a MAC of an impossible length. A UDP answer
/// leaves room for the TSIG record, truncated if need be.
///
/// The signature authenticates the client better than a cookie does; a
/// COOKIE option is still checked and answered, as for [`respond_to`],
/// and never with BADCOOKIE.
#[allow(clippy::too_many_arguments)] // respond_to's inputs and the keys
pub fn respond_signed<K: std::borrow::Borrow<crate::tsig::Key>>(
    catalog: &Catalog,
    msg: &[u8],
    buf: &mut Vec<u8>,
    transport: Transport,
    limits: &Limits,
    key: impl FnOnce(&[u8]) -> Option<K>,
    now: u64,
    client: Option<IpAddr>,
) -> Answered {
    use crate::tsig;
    let q = match decode_query(msg) {
        Ok(q) => q,
        Err(_) => return respond_to(catalog, msg, buf, transport, limits, None),
    };
    let who = client.map(|ip| Client { ip, now });
    let checked = check_cookie(&q, limits, who.as_ref());
    let done = Answered {
        outcome: Outcome::Reply,
        cookie: checked.map_or(CookieStatus::None, |c| c.status),
        badcookie: false,
    };
    let opt = response_opt(&q, limits, checked.as_ref());
    let Ok(Some(t)) = tsig::find(msg) else {
        error_reply(msg, Some(q.question_end), buf, rcode::FORMERR, opt);
        return done;
    };
    match tsig::verify_request(msg, &t, key, now) {
        Ok(v) => {
            let k: &tsig::Key = v.key.borrow();
            // Owner, type, class, TTL, rdata length; then algorithm, time
            // (6), fudge, MAC size, MAC, original ID, error, other length.
            let reserve = k.name.len() + 10 + k.algorithm.name_wire().len() + 16 + k.algorithm.mac_len();
            answer(catalog, msg, &q, buf, transport, limits, reserve, opt);
            if tsig::sign_response(buf, k, &v.mac, now, v.fudge, 0, &[]).is_err() {
                buf.clear();
                error_reply(msg, Some(q.question_end), buf, rcode::SERVFAIL, opt);
            }
        }
        Err(failure) => {
            error_reply(msg, Some(q.question_end), buf, failure.rcode(), opt);
            let _ = failure.append_tsig(buf, &t, now);
        }
    }
    done
}

/// A header-only (plus question) error response.
fn error_reply(msg: &[u8], question_end: Option<usize>, buf: &mut Vec<u8>, rc: u16, opt: Option<Opt<'_>>) {
    let end = question_end.unwrap_or(message::HEADER_LEN);
    let head = msg.get(..end).unwrap_or(&[]);
    let qname = msg.get(message::HEADER_LEN..end.saturating_sub(4)).unwrap_or(&[]);
    let w = Writer::new(buf, head, qname, MAX_MESSAGE);
    let fl = crate::octets::be16(msg, 2).unwrap_or(0);
    w.finish(response_flags(fl), rc, opt);
}

/// QR set, opcode and RD copied (RFC 1035 §4.1.1), CD copied (RFC 4035
/// §3.1.6: "MUST copy"; Knot clears it); AA/TC/RA/AD start clear.
pub(crate) fn response_flags(query_flags: u16) -> u16 {
    flags::QR | (query_flags & (flags::OPCODE_MASK | flags::RD | flags::CD))
}

struct Ctx<'a, 'b> {
    w: Writer<'a, 'b>,
    zone: &'a Zone,
    q: &'a Query,
    flags: u16,
    rcode: u16,
    truncated: bool,
    extras: Extras<'a>,
    dnames: [&'a [u8]; MAX_CNAME_CHAIN],
    dnames_len: usize,
    /// The zone's denial chain when the query has DO set and the zone is
    /// signed; `None` answers without DNSSEC records.
    chain: Option<Chain<'a>>,
    /// NSEC3 owner names are hidden (RFC 5155 §7.2.8).
    hide_nsec3: bool,
    proofs: Proofs<'a>,
}

#[allow(clippy::too_many_arguments)] // the query, its reply's shape and where it goes
fn answer(
    catalog: &Catalog,
    msg: &[u8],
    q: &Query,
    buf: &mut Vec<u8>,
    transport: Transport,
    limits: &Limits,
    reserve: usize,
    opt: Option<Opt<'_>>,
) {
    let head = msg.get(..q.question_end).unwrap_or(&[]);
    let qname_case = msg.get(message::HEADER_LEN..message::HEADER_LEN + q.qname_len).unwrap_or(&[]);
    let mut limit = match (transport, q.edns) {
        (Transport::Tcp, _) => MAX_MESSAGE,
        (Transport::Udp, None) => MIN_UDP,
        (Transport::Udp, Some(e)) => {
            (e.payload as usize).clamp(MIN_UDP, (limits.udp_payload as usize).max(MIN_UDP))
        }
    };
    if let Some(o) = &opt {
        // Room for the OPT and its options (NSID, COOKIE). An EDE option
        // is only added to responses without records, which always have
        // room for it: the longest question (271 octets), the longest
        // NSID, a cookie and an EDE come to 448 octets, under the 512 of
        // the smallest limit.
        limit = limit.saturating_sub(o.len());
    }
    // Room for a TSIG record to be appended.
    limit = limit.saturating_sub(reserve);
    let base_flags = response_flags(q.flags);

    let refuse = |buf: &mut Vec<u8>, rc: u16, ede: Option<u16>| {
        let w = Writer::new(buf, head, qname_case, limit);
        w.finish(base_flags, rc, opt.map(|o| Opt { ede, ..o }));
    };

    // RFC 4892: `id.server` and `hostname.bind` CH TXT name the server,
    // when it has an identifier; Knot and NSD answer them authoritatively
    // with TTL 0, so that no cache keeps one site's name for another's.
    if q.qclass == CLASS_CH
        && q.qtype == code::TXT
        && ident::is_identity_name(q.qname.as_slice())
        && let Some(nsid) = &limits.nsid
    {
        let mut w = Writer::new(buf, head, qname_case, limit);
        let flags =
            base_flags | flags::AA | if w.chaos_txt(nsid.as_bytes()).is_err() { flags::TC } else { 0 };
        return w.finish(flags, rcode::NOERROR, opt);
    }
    // Class ANY is answered like IN (as Knot does).
    if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
        return refuse(buf, rcode::REFUSED, None);
    }
    match (q.qtype, transport) {
        // Zone transfers are served by the transfer service; until a peer
        // is allowed they are refused as Knot does without an ACL.
        (code::AXFR, Transport::Udp) | (0, _) => return refuse(buf, rcode::NOTIMP, None),
        (code::AXFR | code::IXFR, _) => return refuse(buf, rcode::NOTAUTH, None),
        _ => {}
    }
    let qname = q.qname.as_slice();
    let Some(mut zone) = catalog.find(qname) else {
        return refuse(buf, rcode::REFUSED, Some(EDE_NOT_AUTHORITATIVE));
    };
    // RFC 4035 §3.1.4.1: DS lives on the parent side of a cut. When we also
    // serve the parent, answer DS at the child's apex from the parent.
    if q.qtype == code::DS
        && qname == zone.apex()
        && let Some(parent) = name::parent(qname).and_then(|p| catalog.find(p))
    {
        zone = parent;
    }

    let dnssec_ok = q.edns.is_some_and(|e| e.dnssec_ok);
    // Only a signed zone has a chain, and only a signed zone with NSEC3
    // records hides their owner names.
    let chain = if dnssec_ok || zone.has_nsec3() { dnssec::chain(zone) } else { None };
    let mut ctx = Ctx {
        w: Writer::new(buf, head, qname_case, limit),
        zone,
        q,
        flags: base_flags | flags::AA,
        rcode: rcode::NOERROR,
        truncated: false,
        extras: Extras::default(),
        dnames: [&[]; MAX_CNAME_CHAIN],
        dnames_len: 0,
        chain: chain.filter(|_| dnssec_ok),
        hide_nsec3: chain.is_some() && zone.has_nsec3(),
        proofs: Proofs::default(),
    };
    ctx.resolve();
    ctx.write_proofs();
    ctx.additional_signatures();
    let Ctx { w, mut flags, rcode, truncated, .. } = ctx;
    if truncated && transport == Transport::Tcp {
        // TC asks the client to retry over a transport that permits larger
        // replies (RFC 2181 §9). A TCP message holds 65535 octets (RFC 1035
        // §4.2.2) and there is nothing larger to retry on: the answer
        // cannot be given, and the query fails as Knot fails it, with
        // SERVFAIL and no records.
        return refuse(buf, rcode::SERVFAIL, None);
    }
    if truncated {
        flags |= flags::TC;
    }
    w.finish(flags, rcode, opt);
}

impl<'a> Ctx<'a, '_> {
    fn resolve(&mut self) {
        let q = self.q;
        let mut owner = Owner::Qname;
        let mut key = NameBuf::lowercased(q.qname.as_slice());
        // Names already answered for, to stop CNAME loops (each CNAME is
        // put in once, as Knot does).
        let mut visited: [&'a [u8]; MAX_CNAME_CHAIN] = [&[]; MAX_CNAME_CHAIN];
        let mut cnames = 0;
        loop {
            owner = match self.step(key.as_slice(), owner, cnames) {
                Step::Done => return,
                Step::Follow(target) => {
                    let seen = target.eq_ignore_ascii_case(q.qname.as_slice())
                        || visited.iter().take(cnames).any(|v| v.eq_ignore_ascii_case(target));
                    if seen {
                        return;
                    }
                    if let Some(slot) = visited.get_mut(cnames) {
                        *slot = target;
                    }
                    key = NameBuf::lowercased(target);
                    Owner::Name(target)
                }
                // The name lives in the writer, whose compression table
                // reads it back from the message.
                Step::FollowSynthesized => {
                    key = NameBuf::lowercased(self.w.synthesized());
                    Owner::Synthesized
                }
            };
            cnames += 1;
            // Out of zone: the resolver continues from here (RFC 1034
            // §4.3.2 step 3a); chains never cross into another zone.
            if !name::is_at_or_below(key.as_slice(), self.zone.apex()) {
                return;
            }
        }
    }

    /// One RFC 1034 §4.3.2 step 3 for `key` (lowercased).
    fn step(&mut self, key: &[u8], owner: Owner<'a>, cnames: usize) -> Step<'a> {
        let zone = self.zone;
        let qtype = self.q.qtype;
        let found = find_node(zone, key, self.hide_nsec3);
        // Step 3b: a delegation at or above the name refers, except for DS
        // at the cut itself, which is parent-side data (RFC 4035 §2.4).
        if let Found::Cut(cut) = found
            && !(cut.key() == key && qtype == code::DS)
        {
            self.referral(cut, cnames);
            return Step::Done;
        }
        if qtype == code::NSEC3
            && self.chain.is_some()
            && let Some(node) = zone.node(key).filter(|n| n.rrset(code::NSEC3).is_some())
        {
            // RFC 5155 §7.2.8: an NSEC3 owner name asked for its NSEC3 with
            // DO set gets it; otherwise the name does not exist.
            return self.at_node(node, owner, key, false, cnames);
        }
        match found {
            Found::Node(node) | Found::Cut(node) => self.at_node(node, owner, key, false, cnames),
            Found::Wildcard(node) => self.at_node(node, owner, key, true, cnames),
            Found::Dname(node) if cnames < MAX_CNAME_CHAIN => self.dname(node, key, owner),
            // A link past the limit is left out, and nothing follows it.
            Found::Dname(_) => Step::Done,
            Found::None { encloser } => {
                let encloser = key.get(key.len().saturating_sub(encloser)..).unwrap_or(&[]);
                self.negative(Proof::NxDomain { name: key, encloser });
                Step::Done
            }
        }
    }

    /// Step 3a (or a `wildcard` match, RFC 4592 §3.3.1): the node exists.
    /// `key` is the name asked for, lowercased; `cnames` the links of the
    /// chain so far.
    fn at_node(
        &mut self,
        node: NodeRef<'a>,
        owner: Owner<'a>,
        key: &[u8],
        wildcard: bool,
        cnames: usize,
    ) -> Step<'a> {
        let qtype = self.q.qtype;
        // What a negative answer here must prove (RFC 4035 §3.1.3.1,
        // §3.1.3.4).
        let nodata = if wildcard {
            Proof::WildcardNoData { name: key, wildcard: node.key() }
        } else {
            Proof::NoData { name: key }
        };
        let set = match qtype {
            // RFC 8482 §4.2: one RRset rather than all; the lowest type is
            // a stable choice and the one Knot makes. Signatures are not
            // an RRset of their own (RFC 4035 §2.2).
            code::ANY => node.rrsets().find(|s| s.rtype != code::RRSIG),
            code::RRSIG if dnssec::chain(self.zone).is_some() => {
                let proof = wildcard.then_some(Proof::WildcardAnswer { name: key, wildcard: node.key() });
                return self.rrsig_query(node, owner, nodata, proof);
            }
            // RFC 2181 §10.1: besides a CNAME a name holds only DNSSEC
            // records; its NSEC is answered from the name itself, as Knot
            // does, rather than after the alias.
            code::CNAME | code::NSEC => node.rrset(qtype),
            _ => match node.rrset(code::CNAME) {
                // A link past the limit is left out, and nothing follows
                // it (no SOA, no proof).
                Some(_) if cnames >= MAX_CNAME_CHAIN => return Step::Done,
                Some(cname) => {
                    if self.put_signed(Section::Answer, owner, node, &cname).is_err() {
                        return Step::Done;
                    }
                    if wildcard {
                        self.prove(Proof::WildcardAnswer { name: key, wildcard: node.key() });
                    }
                    return match cname.rdatas().next() {
                        Some(target) => Step::Follow(target),
                        None => Step::Done,
                    };
                }
                None => node.rrset(qtype),
            },
        };
        match set {
            Some(set) => {
                if self.put_signed(Section::Answer, owner, node, &set).is_ok() {
                    if wildcard {
                        self.prove(Proof::WildcardAnswer { name: key, wildcard: node.key() });
                    }
                    self.additional(&set);
                }
            }
            None => self.negative(nodata),
        }
        Step::Done
    }

    /// RFC 6672 §3.2: answer with the DNAME and a CNAME synthesized from
    /// it, then follow the new name.
    fn dname(&mut self, node: NodeRef<'a>, key: &[u8], owner: Owner<'a>) -> Step<'a> {
        let Some(dname) = node.rrset(code::DNAME) else {
            return Step::Done;
        };
        let Some(target) = dname.rdatas().next() else {
            return Step::Done;
        };
        // A DNAME RRset goes into the answer once, however often a loop
        // passes it (the synthesized CNAMEs are repeated, as Knot does).
        let seen = self.dnames.iter().take(self.dnames_len).any(|d| *d == node.key());
        if !seen {
            if self.put_signed(Section::Answer, Owner::Name(node.name()), node, &dname).is_err() {
                return Step::Done;
            }
            if let Some(slot) = self.dnames.get_mut(self.dnames_len) {
                *slot = node.key();
                self.dnames_len += 1;
            }
        }
        // The labels of the name below the DNAME owner, then the target.
        let prefix = key.get(..key.len().saturating_sub(node.key().len())).unwrap_or(&[]);
        let mut synth = [0u8; name::MAX_NAME_LEN];
        let len = prefix.len() + target.len();
        let Some(buf) = synth.get_mut(..len).filter(|_| len <= name::MAX_NAME_LEN) else {
            // §2.2: the substituted name would be too long.
            self.rcode = rcode::YXDOMAIN;
            return Step::Done;
        };
        if let Some((head, tail)) = buf.split_at_mut_checked(prefix.len()) {
            head.copy_from_slice(prefix);
            tail.copy_from_slice(target);
        }
        if self.truncated || self.w.synthesized_cname(owner, dname.ttl, buf).is_err() {
            self.truncated = true;
            return Step::Done;
        }
        // A CNAME query is answered by the synthesized CNAME itself.
        if self.q.qtype == code::CNAME { Step::Done } else { Step::FollowSynthesized }
    }

    /// Puts a required RRset; when it does not fit, sets TC and fails.
    fn put(&mut self, section: Section, owner: Owner<'a>, set: &RrSetRef<'a>) -> Result<(), NoSpace> {
        if self.truncated {
            return Err(NoSpace);
        }
        let r = self.w.rrset(section, owner, set, set.ttl);
        if r.is_err() {
            self.truncated = true;
        }
        r
    }

    /// Puts a required RRset of `node` followed, in a DNSSEC answer, by
    /// its signatures (RFC 4035 §3.1.1), which are required too.
    fn put_signed(
        &mut self,
        section: Section,
        owner: Owner<'a>,
        node: NodeRef<'a>,
        set: &RrSetRef<'a>,
    ) -> Result<(), NoSpace> {
        self.put(section, owner, set)?;
        self.signatures(section, owner, node, set.rtype, set.ttl, true)
    }

    /// A referral to the child zone at `cut` (RFC 1034 §4.3.2 step 3b).
    /// After a CNAME the answer stays authoritative for the CNAMEs.
    fn referral(&mut self, cut: NodeRef<'a>, cnames: usize) {
        if cnames == 0 {
            self.flags &= !flags::AA;
        }
        let Some(ns) = cut.rrset(code::NS) else {
            return;
        };
        self.write_proofs();
        // The NS RRset at a cut is the child's, and unsigned here.
        if self.put(Section::Authority, Owner::Name(cut.name()), &ns).is_err() {
            return;
        }
        if self.chain.is_some() && self.secure_delegation(cut).is_err() {
            return;
        }
        //
        // RFC 9471: glue for name servers inside the delegated zone must
        // fit, or the response is truncated; other addresses are optional.
        // Knot puts the mandatory glue first, then the rest, and keeps
        // adding glue that fits after a miss; so do we.
        for mandatory in [true, false] {
            for rd in ns.rdatas() {
                let Some(target) = rd.get(..name::wire_len(rd).unwrap_or(0)) else {
                    continue;
                };
                let in_domain = name::is_at_or_below(NameBuf::lowercased(target).as_slice(), cut.key());
                if in_domain == mandatory && self.extras.first_time(target) {
                    let _ = self.target_addresses(target, None, mandatory);
                }
            }
        }
    }

    /// NXDOMAIN or NODATA with the SOA (RFC 2308 §2.1, §2.2), and in a
    /// DNSSEC answer the records that prove it (RFC 4035 §3.1.3). An SOA
    /// that does not fit is left out without TC, as Knot does.
    fn negative(&mut self, proof: Proof<'_>) {
        if matches!(proof, Proof::NxDomain { .. }) {
            self.rcode = rcode::NXDOMAIN;
        }
        let zone = self.zone;
        let Some(apex) = zone.apex_node() else { return };
        if let Some(soa) = apex.rrset(code::SOA)
            && !self.truncated
        {
            let owner = Owner::Name(apex.name());
            let ttl = zone.negative_ttl();
            // The SOA's signatures take the TTL the SOA is sent with, as
            // Knot does (RFC 4035 §3.1.3 asks for them with the SOA).
            if self.w.rrset(Section::Authority, owner, &soa, ttl).is_ok() {
                let _ = self.signatures(Section::Authority, owner, apex, code::SOA, ttl, true);
            }
        }
        self.prove(proof);
    }
}

enum Step<'a> {
    Done,
    Follow(&'a [u8]),
    /// Follow the CNAME target the writer synthesized last.
    FollowSynthesized,
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "answer_cookie_tests.rs"]
mod cookie_tests;

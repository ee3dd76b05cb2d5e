//! Outgoing zone transfers over TCP: AXFR (RFC 5936) and IXFR (RFC 1995).
//!
//! The TCP listener hands every message for which [`xfr::is_transfer`]
//! holds to [`Transfers::serve`]. The encoding is `sixgate_dns::xfr`'s;
//! this module adds what needs the world outside a message:
//!
//! - who may transfer what: a [`TransferSource`] decides for the peer's
//!   address, the zone and the request's TSIG key name ([`Access`]). This
//!   crate does not open the store, so the control plane implements it
//!   (over its secondaries list and the journal).
//! - the zone as served: the [`SharedCatalog`] snapshot is the truth for
//!   the current serial and for a full transfer. The journal may already
//!   hold a version the publisher does not serve yet (or a zone may be held
//!   at an older version), so an IXFR sends the journal's versions only as
//!   far as the served serial ([`plan`]), and a full zone when they do not
//!   lead there exactly.
//! - the caps: transfers at once, in total and per client address. A
//!   request over a cap is answered REFUSED: the secondary retries after
//!   its retry interval (RFC 1034 §4.3.5), whereas a closed connection
//!   would look like a broken primary and the transfer already made would
//!   be lost to an unexplained reset.
//! - the metrics and logs: each transfer counted by kind and outcome, the
//!   messages and records sent, and one line per completed transfer;
//!   refusals logged at a bounded rate.
//!
//! The response is written one message at a time into one buffer and
//! through the connection's write deadline, so its memory is one message
//! whatever the zone's size, and a secondary that stops reading is cut
//! off like any client.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sixgate_dns::message::rcode;
use sixgate_dns::tsig::{self, Key, StreamSigner, Verified};
use sixgate_dns::xfr::{self, Delta, IxfrPlan, Kind, Options, Request, Transfer};
use sixgate_dns::{Catalog, name};
use sixgate_listen::ratelog::RateLog;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::SharedCatalog;

mod stats;

pub use stats::{TransferStats, XfrKind, XfrOutcome};

static REFUSED_LOG: RateLog = RateLog::new(5);
static FAILED_LOG: RateLog = RateLog::new(2);

/// Who may transfer a zone, as the [`TransferSource`] decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// An unsigned request is served: a secondary without a key at the
    /// peer's address carries the zone.
    Unsigned,
    /// A secondary at the peer's address carries the zone with this key:
    /// the request must verify with it, and every response message is
    /// signed with it.
    Key(Key),
    /// Signed with a key that no secondary at the peer's address that
    /// carries the zone has (RFC 8945 §5.2.1: BADKEY).
    UnknownKey,
    /// Refused (RFC 5936 §4.2), for this reason (a log field).
    Refused(&'static str),
}

/// What the transfer service needs from outside the listener.
pub trait TransferSource: Send + Sync + 'static {
    /// May `peer` transfer the zone `zone` (wire, lowercased) with a
    /// request signed by the key named `key` (lowercased), or unsigned
    /// (`None`)? Called on the async threads: it must not block.
    fn access(&self, peer: IpAddr, zone: &[u8], key: Option<&[u8]>) -> Access;

    /// The versions that lead the zone `zone` from serial `from` to the
    /// newest the journal holds, oldest first; `None` when the journal
    /// cannot (pruned, replaced since, unknown serial): the client gets the
    /// whole zone. Blocking (a database read): run on a blocking thread.
    fn history(&self, zone: &[u8], from: u32) -> Option<Vec<Delta>>;

    /// The key named `key` (lowercased) that a query may be signed with,
    /// to verify it and sign its answer (RFC 8945 §5.3). Called on the
    /// listeners' threads: it must not block.
    fn query_key(&self, key: &[u8]) -> Option<Key>;
}

/// Caps on the transfers running at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferCaps {
    /// In total.
    pub total: usize,
    /// From one client address.
    pub per_address: usize,
}

impl Default for TransferCaps {
    /// Knot's and BIND's defaults are near: BIND's `transfers-out` is 10;
    /// a secondary seldom runs more than a few transfers at once
    /// (BIND's `transfers-per-ns` is 2).
    fn default() -> Self {
        TransferCaps { total: 16, per_address: 4 }
    }
}

/// How to answer an IXFR, with the versions to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The current SOA alone (RFC 1995 §2).
    UpToDate,
    /// `deltas[from..to]`: from the client's version to the served one.
    Incremental {
        /// The client's version step.
        from: usize,
        /// Past the step that ends at the served serial.
        to: usize,
    },
    /// The whole zone (RFC 1995 §4).
    Full,
}

/// Chooses how to answer an IXFR from serial `client` when the zone is
/// served at serial `served` and the journal holds `deltas` from the
/// client's version on (oldest first). The journal may run past the
/// served version (a commit the publisher has not swapped in yet, or a
/// zone held at its last good version): the versions after the served
/// serial are cut off, so that the client ends exactly at what this
/// server answers. When no chain leads from `client` to `served`: the
/// whole zone.
pub fn plan(client: u32, served: u32, deltas: &[Delta]) -> Plan {
    // The last step that ends at the served serial; the chain is checked
    // backwards from there by plan_ixfr.
    let to = deltas.iter().rposition(|d| d.new_serial() == served).map_or(0, |i| i + 1);
    match xfr::plan_ixfr(client, served, deltas.get(..to).unwrap_or(&[])) {
        IxfrPlan::UpToDate => Plan::UpToDate,
        IxfrPlan::Incremental { from } => Plan::Incremental { from, to },
        IxfrPlan::Full => Plan::Full,
    }
}

/// What [`Transfers::check`] made of a request.
// Made once per transfer request and taken apart at once: the size of the
// request's names on the stack costs less than a box.
#[allow(clippy::large_enum_variant)]
enum Checked<'m> {
    /// Serve it from this zone, signed when `verified`.
    Serve { request: Request<'m>, zone: Arc<sixgate_dns::Zone>, verified: Option<Verified<Key>> },
    /// The answer (a refusal, an error) is in the buffer.
    Answered,
    /// Nothing to answer.
    Drop,
}

/// What the connection is to do after a transfer request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Answered: read the next message (RFC 5936 §4.1 allows more).
    Continue,
    /// Close the connection: a message that gets no answer, or a transfer
    /// cut short, which the client can only tell by the close.
    Close,
}

/// The transfer service of one server, shared by its TCP listeners.
pub struct Transfers {
    source: Arc<dyn TransferSource>,
    caps: TransferCaps,
    stats: Arc<TransferStats>,
    options: Options,
    /// Transfers running, by client address.
    running: Mutex<HashMap<IpAddr, usize>>,
}

impl std::fmt::Debug for Transfers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfers").field("caps", &self.caps).finish_non_exhaustive()
    }
}

/// A running transfer's place under the caps; freed on drop.
struct Running<'a> {
    transfers: &'a Transfers,
    ip: IpAddr,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut running = self.transfers.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.ip);
            }
        }
        self.transfers.stats.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Seconds since the epoch, the time a TSIG signs.
/// Answers a TSIG-signed query (`respond` said [`sixgate_dns::Outcome::Signed`]):
/// verified with the key of that name that `transfers`' source knows
/// (none without a source: BADKEY), and the answer signed (RFC 8945
/// §5.3). BIND, for one, refuses an unsigned answer to the signed SOA
/// query it sends before a transfer.
pub fn answer_signed(
    transfers: Option<&Transfers>,
    cat: &Catalog,
    msg: &[u8],
    out: &mut Vec<u8>,
    transport: sixgate_dns::Transport,
    limits: &sixgate_dns::Limits,
    client: Option<&sixgate_dns::Client>,
) -> sixgate_dns::Answered {
    let key = |name: &[u8]| {
        let k = transfers.and_then(|t| t.source.query_key(name));
        if k.is_none() {
            tracing::debug!(key = %name::to_text(name), "a query signed with an unknown key");
        }
        k
    };
    let now = client.map_or_else(unix_now, |c| c.now);
    sixgate_dns::respond_signed(cat, msg, out, transport, limits, key, now, client.map(|c| c.ip))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Transfers {
    /// A transfer service deciding with `source`, under `caps`, counting
    /// into `stats`.
    pub fn new(source: Arc<dyn TransferSource>, caps: TransferCaps, stats: Arc<TransferStats>) -> Transfers {
        Transfers { source, caps, stats, options: Options::default(), running: Mutex::new(HashMap::new()) }
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<TransferStats> {
        &self.stats
    }

    /// A place under the caps for a transfer from `ip`, if there is one.
    fn start(&self, ip: IpAddr) -> Option<Running<'_>> {
        let ip = ip.to_canonical();
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = running.values().sum();
        let mine = running.get(&ip).copied().unwrap_or(0);
        if total >= self.caps.total || mine >= self.caps.per_address {
            return None;
        }
        running.insert(ip, mine + 1);
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        Some(Running { transfers: self, ip })
    }

    /// Decodes `msg` and decides whether to serve it: the zone, the
    /// access decision, the TSIG. Anything but a request to serve leaves
    /// its answer in `buf` ([`Checked::Answered`]).
    fn check<'m>(
        &self,
        cat: &Catalog,
        msg: &'m [u8],
        peer: SocketAddr,
        edns_payload: u16,
        buf: &mut Vec<u8>,
        now: u64,
    ) -> Checked<'m> {
        let request = match xfr::decode_request(msg) {
            Ok(r) => r,
            Err(e) => {
                let Some(rc) = e.rcode() else { return Checked::Drop };
                tracing::debug!(%peer, error = %e, "malformed transfer request");
                if !xfr::reject_into(msg, rc, edns_payload, buf) {
                    return Checked::Drop;
                }
                return Checked::Answered;
            }
        };
        let asked = match request.kind {
            Kind::Axfr => XfrKind::Axfr,
            Kind::Ixfr { .. } => XfrKind::Ixfr,
        };
        let refuse = |rc: u16, outcome: XfrOutcome, reason: &'static str, buf: &mut Vec<u8>| {
            self.stats.count(asked, outcome);
            log_refusal(peer, &request, reason);
            xfr::reject_into(msg, rc, edns_payload, buf)
        };
        // A refusal of a request signed with a key this server knows is
        // signed too (RFC 8945 §5.3; BIND drops an unsigned one, "expected
        // a TSIG"), whatever the key may transfer: signing it grants
        // nothing.
        let sign_known = |buf: &mut Vec<u8>| {
            let Some(t) = &request.tsig else { return };
            let Some(key) = self.source.query_key(t.key_name.as_slice()) else { return };
            if let Ok(v) = tsig::verify_request(msg, t, |_| Some(key), now) {
                sign_refusal(buf, Some(&v), now);
            }
        };
        // As Knot: a zone not served here is NOTAUTH, before any access
        // check (RFC 5936 §4.2 leaves the rcode open).
        let Some(zone) = cat.zone(request.zone()).cloned() else {
            if refuse(rcode::NOTAUTH, XfrOutcome::NotAuth, "zone not served", buf) {
                sign_known(buf);
            }
            return Checked::Answered;
        };
        let key_name = request.tsig.as_ref().map(|t| t.key_name.as_slice());
        let verified = match (self.source.access(peer.ip(), request.zone(), key_name), &request.tsig) {
            (Access::Refused(reason), _) => {
                if refuse(rcode::REFUSED, XfrOutcome::Refused, reason, buf) {
                    sign_known(buf);
                }
                return Checked::Answered;
            }
            (Access::Unsigned, None) => None,
            (Access::Key(key), Some(tsig)) => match tsig::verify_request(msg, tsig, |_| Some(key), now) {
                Ok(v) => Some(v),
                Err(failure) => {
                    // RFC 8945 §5.2: NOTAUTH with the TSIG error.
                    refuse(failure.rcode(), XfrOutcome::NotAuth, tsig_reason(&failure), buf);
                    if let Err(e) = failure.append_tsig(buf, tsig, now) {
                        tracing::debug!(%peer, error = %e, "cannot add the tsig error record");
                    }
                    return Checked::Answered;
                }
            },
            (Access::UnknownKey | Access::Unsigned, Some(tsig)) => {
                // RFC 8945 §5.2.1: an unknown key is BADKEY.
                let failure = tsig::TsigFailure::<Key>::BadKey;
                refuse(failure.rcode(), XfrOutcome::NotAuth, "unknown tsig key", buf);
                let _ = failure.append_tsig(buf, tsig, now);
                return Checked::Answered;
            }
            (Access::Key(_) | Access::UnknownKey, None) => {
                refuse(rcode::REFUSED, XfrOutcome::Refused, "unsigned; the secondary has a key", buf);
                return Checked::Answered;
            }
        };
        Checked::Serve { request, zone, verified }
    }

    /// Answers a transfer request over UDP into `out`; false when nothing
    /// is to be sent. AXFR over UDP is not allowed (RFC 5936 §4.2): it is
    /// left to the query path, which answers NOTIMP, as Knot does. An
    /// allowed IXFR is answered with the current SOA alone, as Knot does:
    /// RFC 1995 §2 lets a server do so when the answer does not fit, and
    /// a client behind the current serial then retries over TCP. It is
    /// counted as `up_to_date`, the kind of answer it is.
    pub fn answer_udp(
        &self,
        cat: &Catalog,
        msg: &[u8],
        peer: SocketAddr,
        edns_payload: u16,
        out: &mut Vec<u8>,
    ) -> bool {
        if matches!(xfr::decode_request(msg), Ok(Request { kind: Kind::Axfr, .. })) {
            return false;
        }
        let now = unix_now();
        let (request, zone, verified) = match self.check(cat, msg, peer, edns_payload, out, now) {
            Checked::Serve { request, zone, verified } => (request, zone, verified),
            Checked::Answered => return true,
            Checked::Drop => return false,
        };
        let options = Options { max_message: usize::from(edns_payload.max(512)), ..self.options };
        let made = Transfer::soa_only(&zone, &request, &options)
            .map(|t| match &verified {
                Some(v) => t.signed(StreamSigner::for_request(v)),
                None => t,
            })
            .and_then(|mut t| t.next_message(out, now).map(|_| t.records()));
        match made {
            Ok(records) => {
                self.stats.count(XfrKind::UpToDate, XfrOutcome::Done);
                self.stats.messages.fetch_add(1, Ordering::Relaxed);
                self.stats.records.fetch_add(records as u64, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.stats.count(XfrKind::UpToDate, XfrOutcome::Failed);
                tracing::error!(%peer, zone = %name::to_text(request.zone()), error = %e, "cannot answer an ixfr over udp");
                xfr::reject_into(msg, rcode::SERVFAIL, edns_payload, out)
            }
        }
    }

    /// Answers the transfer request `msg` from `peer` on a TCP
    /// connection, writing framed messages to `w` through `buf`. An error
    /// is the connection's write error.
    pub(crate) async fn serve<W: AsyncWrite + Unpin>(
        &self,
        catalog: &SharedCatalog,
        msg: &[u8],
        peer: SocketAddr,
        edns_payload: u16,
        w: &mut W,
        buf: &mut Vec<u8>,
    ) -> io::Result<Next> {
        let now = unix_now();
        // The snapshot stays the same for the whole transfer, however
        // many versions the publisher swaps in meanwhile.
        let cat: Arc<Catalog> = catalog.load_full();
        let (request, zone, verified) = match self.check(&cat, msg, peer, edns_payload, buf, now) {
            Checked::Serve { request, zone, verified } => (request, zone, verified),
            Checked::Answered => {
                crate::tcp::write_framed(w, buf).await?;
                return Ok(Next::Continue);
            }
            Checked::Drop => return Ok(Next::Close),
        };
        let asked = match request.kind {
            Kind::Axfr => XfrKind::Axfr,
            Kind::Ixfr { .. } => XfrKind::Ixfr,
        };
        let Some(_running) = self.start(peer.ip()) else {
            self.stats.count(asked, XfrOutcome::Refused);
            log_refusal(peer, &request, "too many transfers at once");
            if xfr::reject_into(msg, rcode::REFUSED, edns_payload, buf) {
                sign_refusal(buf, verified.as_ref(), now);
                crate::tcp::write_framed(w, buf).await?;
            }
            return Ok(Next::Continue);
        };
        let served = zone.serial().unwrap_or(0);
        let mut history = Vec::new();
        let (kind, plan) = match request.kind {
            Kind::Axfr => (XfrKind::Axfr, Plan::Full),
            Kind::Ixfr { serial } if xfr::is_up_to_date(serial, served) => {
                (XfrKind::UpToDate, Plan::UpToDate)
            }
            Kind::Ixfr { serial } => {
                let source = self.source.clone();
                let apex: Box<[u8]> = request.zone().into();
                history = tokio::task::spawn_blocking(move || source.history(&apex, serial))
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                match plan(serial, served, &history) {
                    Plan::Full => (XfrKind::IxfrFull, Plan::Full),
                    p => (XfrKind::Ixfr, p),
                }
            }
        };
        let made = match plan {
            Plan::Full => Transfer::axfr(&zone, &request, &self.options),
            Plan::UpToDate => Transfer::soa_only(&zone, &request, &self.options),
            Plan::Incremental { from, to } => {
                Transfer::ixfr(history.get(from..to).unwrap_or(&[]), &request, &self.options)
            }
        };
        let mut transfer = match made {
            Ok(t) => t,
            Err(e) => {
                self.stats.count(kind, XfrOutcome::Failed);
                tracing::error!(%peer, zone = %name::to_text(request.zone()), kind = kind.label(), error = %e, "cannot start a transfer");
                if xfr::reject_into(msg, rcode::SERVFAIL, edns_payload, buf) {
                    sign_refusal(buf, verified.as_ref(), now);
                    crate::tcp::write_framed(w, buf).await?;
                }
                return Ok(Next::Continue);
            }
        };
        if let Some(v) = &verified {
            transfer = transfer.signed(StreamSigner::for_request(v));
        }
        let started = Instant::now();
        let sent = self.stream(&mut transfer, w, buf).await;
        self.stats.messages.fetch_add(transfer.messages() as u64, Ordering::Relaxed);
        self.stats.records.fetch_add(transfer.records() as u64, Ordering::Relaxed);
        let zone_text = name::to_text(request.zone());
        match sent {
            Ok(true) => {
                self.stats.count(kind, XfrOutcome::Done);
                tracing::info!(
                    %peer,
                    zone = %zone_text,
                    kind = kind.label(),
                    serial = served,
                    records = transfer.records(),
                    messages = transfer.messages(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "zone transfer sent"
                );
                Ok(Next::Continue)
            }
            Ok(false) => {
                self.stats.count(kind, XfrOutcome::Failed);
                Ok(Next::Close)
            }
            Err(e) => {
                self.stats.count(kind, XfrOutcome::Failed);
                if let Some(held) = FAILED_LOG.allow() {
                    tracing::warn!(%peer, zone = %zone_text, kind = kind.label(), records = transfer.records(), error = %e, held_back = held, "zone transfer cut short");
                }
                Err(e)
            }
        }
    }

    /// Writes every message of `transfer`. False when a message could not
    /// be made: the transfer is abandoned and the connection must close.
    async fn stream<W: AsyncWrite + Unpin>(
        &self,
        transfer: &mut Transfer<'_>,
        w: &mut W,
        buf: &mut Vec<u8>,
    ) -> io::Result<bool> {
        loop {
            match transfer.next_message(buf, unix_now()) {
                Ok(true) => crate::tcp::write_framed(w, buf).await?,
                Ok(false) => break,
                Err(e) => {
                    if let Some(held) = FAILED_LOG.allow() {
                        tracing::error!(error = %e, held_back = held, "cannot make a transfer message");
                    }
                    let _ = w.flush().await;
                    return Ok(false);
                }
            }
        }
        w.flush().await?;
        Ok(true)
    }
}

/// Signs an error answer to a verified request (RFC 8945 §5.3).
fn sign_refusal(buf: &mut Vec<u8>, verified: Option<&Verified<Key>>, now: u64) {
    if let Some(v) = verified
        && let Err(e) = tsig::sign_response(buf, &v.key, &v.mac, now, v.fudge, 0, &[])
    {
        tracing::debug!(error = %e, "cannot sign a transfer refusal");
    }
}

fn tsig_reason<K>(failure: &tsig::TsigFailure<K>) -> &'static str {
    match failure {
        tsig::TsigFailure::BadSig => "tsig signature does not match",
        tsig::TsigFailure::BadTime(_) => "tsig time outside the fudge",
        tsig::TsigFailure::BadTrunc(_) => "tsig mac truncated",
        tsig::TsigFailure::MacLength(_) => "tsig mac length",
        _ => "unknown tsig key",
    }
}

/// A refusal, logged at a bounded rate: a flood of requests from an
/// address that may not transfer must not flood the log.
fn log_refusal(peer: SocketAddr, request: &Request<'_>, reason: &'static str) {
    let kind = match request.kind {
        Kind::Axfr => "axfr",
        Kind::Ixfr { .. } => "ixfr",
    };
    let zone = name::to_text(request.zone());
    if let Some(held) = REFUSED_LOG.allow() {
        tracing::warn!(%peer, %zone, kind, reason, held_back = held, "zone transfer refused");
    } else {
        tracing::debug!(%peer, %zone, kind, reason, "zone transfer refused");
    }
}

#[cfg(test)]
#[path = "transfer_tests.rs"]
pub(crate) mod tests;

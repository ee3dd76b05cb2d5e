//! Writing a transfer response one message at a time.
//!
//! A [`Transfer`] walks a sequence of records (a zone snapshot's, or the
//! IXFR layout of some deltas) lazily, and packs them into messages of at
//! most [`Options::max_message`] octets with the response writer, so
//! owner and rdata names are compressed within each message. All it holds
//! between messages is the walk's position and the one record that did
//! not fit the last message: its memory is one message, not the zone.
//!
//! Names are compressed only against the same name in the same case, so
//! a secondary gets them as the zone has them.
//!
//! Every message repeats the request's header and question (RFC 5936
//! §2.2.1 allows it; Knot does it, and the question name is the first
//! target for compression), has AA set and RD copied, with AD and CD clear
//! (§2.2.1; Knot leaves AA clear, which clients ignore), carries an OPT when the
//! request had one (§2.2.5), and, for a signed request, a TSIG record
//! whose MAC chains to the previous message's (RFC 8945 §5.3.1).
//!
//! An RRset larger than the room left in a message goes on in the next
//! one (RFC 5936 §2.2: records, not RRsets, are the unit); a record that
//! alone passes the message size gets a message of its own, up to the
//! 65535 octets of any DNS message (RFC 1035 §4.2.2).

use std::iter::once;

use super::delta::Delta;
use super::request::Request;
use crate::message::{HEADER_LEN, flags, rcode};
use crate::name;
use crate::octets::be32;
use crate::rtype::code;
use crate::tsig::{SignError, StreamSigner};
use crate::writer::{Opt, Owner, Section, Writer};
use crate::zone::{Record, Zone};

/// The largest DNS message (RFC 1035 §4.2.2: TCP's two-octet length).
const MAX_MESSAGE: usize = 65535;
/// The OPT record we append: root owner, type, class, TTL, empty rdata.
const OPT_LEN: usize = 11;

/// How the messages of a transfer are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The size each message is filled up to, TSIG and OPT included.
    /// Taken between 512 and 65535. Smaller messages cost a little more
    /// header and signing per record; 16 KiB is what Knot sends.
    pub max_message: usize,
    /// The UDP payload size our OPT records advertise.
    pub edns_payload: u16,
}

impl Options {
    /// The default message size.
    pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024;
}

impl Default for Options {
    fn default() -> Self {
        Options { max_message: Self::DEFAULT_MAX_MESSAGE, edns_payload: 1232 }
    }
}

/// Why a transfer could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XfrError {
    /// The zone has no SOA at its apex, so no transfer can start or end.
    #[error("zone has no soa record")]
    NoSoa,
    /// An IXFR of no deltas, or of deltas that are not one chain (each
    /// new serial the next one's old serial).
    #[error("the deltas are not one chain of versions")]
    NotAChain,
    /// A record larger than the largest message.
    #[error("{owner} type {rtype}: the record does not fit in a message")]
    RecordTooLarge {
        /// The record's owner.
        owner: String,
        /// The record's type.
        rtype: u16,
    },
    /// A message could not be signed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// One record to send, borrowed from the zone or the deltas.
#[derive(Debug, Clone, Copy)]
struct Rr<'a> {
    owner: &'a [u8],
    rtype: u16,
    ttl: u32,
    rdata: &'a [u8],
}

impl<'a> From<&'a Record> for Rr<'a> {
    fn from(r: &'a Record) -> Self {
        Rr { owner: &r.owner, rtype: r.rtype, ttl: r.ttl, rdata: &r.rdata }
    }
}

/// A transfer response being written, one message per
/// [`Transfer::next_message`].
pub struct Transfer<'a> {
    records: Box<dyn Iterator<Item = Rr<'a>> + Send + 'a>,
    /// The record that did not fit the last message.
    pending: Option<Rr<'a>>,
    /// The request's header and question, copied into every message.
    head: Vec<u8>,
    qname_len: usize,
    flags: u16,
    opt: Option<Opt<'static>>,
    max_message: usize,
    signer: Option<StreamSigner>,
    messages: usize,
    sent: usize,
    done: bool,
}

impl<'a> Transfer<'a> {
    /// The whole zone (RFC 5936 §2.2): its SOA, every RRset as stored
    /// (DNSSEC records, the NSEC3 chain, glue and occluded data
    /// included), and the SOA again. Also the answer to an IXFR that
    /// cannot be served incrementally (RFC 1995 §4).
    pub fn axfr(zone: &'a Zone, request: &Request<'_>, options: &Options) -> Result<Transfer<'a>, XfrError> {
        let soa = apex_soa(zone)?;
        let apex = zone.apex();
        let body = zone.nodes().flat_map(move |node| {
            let at_apex = node.key() == apex;
            let owner = node.name();
            node.rrsets().filter(move |set| !(at_apex && set.rtype == code::SOA)).flat_map(move |set| {
                set.rdatas().map(move |rdata| {
                    // An RRSIG is sent with the TTL of the RRset it
                    // covers, its Original TTL field (RFC 4034 §3), as
                    // Zone::records lists it.
                    let ttl =
                        if set.rtype == code::RRSIG { be32(rdata, 4).unwrap_or(set.ttl) } else { set.ttl };
                    Rr { owner, rtype: set.rtype, ttl, rdata }
                })
            })
        });
        Ok(Self::new(Box::new(once(soa).chain(body).chain(once(soa))), request, options))
    }

    /// An incremental transfer of `deltas` (oldest first, one chain)
    /// in the layout of RFC 1995 §4: the current SOA; for each delta its
    /// old SOA, deletions, new SOA and additions; the current SOA again.
    pub fn ixfr(
        deltas: &'a [Delta],
        request: &Request<'_>,
        options: &Options,
    ) -> Result<Transfer<'a>, XfrError> {
        let last = deltas.last().ok_or(XfrError::NotAChain)?;
        if deltas.windows(2).any(|w| w.first().map(Delta::new_serial) != w.get(1).map(Delta::old_serial)) {
            return Err(XfrError::NotAChain);
        }
        let current = Rr::from(&last.new_soa);
        let body = deltas.iter().flat_map(|d| {
            once(&d.old_soa).chain(&d.removed).chain(once(&d.new_soa)).chain(&d.added).map(Rr::from)
        });
        Ok(Self::new(Box::new(once(current).chain(body).chain(once(current))), request, options))
    }

    /// The zone's SOA alone: the answer to an IXFR from a client that is
    /// up to date (RFC 1995 §2).
    pub fn soa_only(
        zone: &'a Zone,
        request: &Request<'_>,
        options: &Options,
    ) -> Result<Transfer<'a>, XfrError> {
        Ok(Self::new(Box::new(once(apex_soa(zone)?)), request, options))
    }

    fn new(
        records: Box<dyn Iterator<Item = Rr<'a>> + Send + 'a>,
        request: &Request<'_>,
        options: &Options,
    ) -> Self {
        let q = &request.query;
        Transfer {
            records,
            pending: None,
            head: request.head().to_vec(),
            qname_len: q.qname_len,
            // RFC 5936 §2.2.1: AA set with NOERROR, RD copied, AD and CD
            // zero.
            flags: flags::QR | flags::AA | (q.flags & flags::RD),
            opt: q.edns.map(|e| Opt::new(options.edns_payload, e.dnssec_ok)),
            max_message: options.max_message.clamp(512, MAX_MESSAGE),
            signer: None,
            messages: 0,
            sent: 0,
            done: false,
        }
    }

    /// Signs every message with `signer` (RFC 8945 §5.3.1), made for the
    /// verified request with [`StreamSigner::for_request`].
    pub fn signed(mut self, signer: StreamSigner) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Writes the next message into `buf` (replacing what it held) and
    /// returns true, or returns false with `buf` empty once the last
    /// message has been written. `now` is the time signed of a signed
    /// transfer. After an error the transfer must be abandoned.
    pub fn next_message(&mut self, buf: &mut Vec<u8>, now: u64) -> Result<bool, XfrError> {
        buf.clear();
        if self.done {
            return Ok(false);
        }
        let Some(first) = self.pending.take().or_else(|| self.records.next()) else {
            self.done = true;
            return Ok(false);
        };
        let reserve =
            self.opt.map_or(0, |_| OPT_LEN) + self.signer.as_ref().map_or(0, StreamSigner::record_len);
        let head = &self.head;
        let qname = head.get(HEADER_LEN..HEADER_LEN + self.qname_len).unwrap_or(&[]);
        let mut w = Writer::new(buf, head, qname, self.max_message.saturating_sub(reserve));
        w.preserve_case();
        let alone =
            w.rr(Section::Answer, Owner::Name(first.owner), first.rtype, first.ttl, first.rdata).is_err();
        if alone {
            // Too large for a message of the usual size: a message of its
            // own, as large as it needs.
            w = Writer::new(buf, head, qname, MAX_MESSAGE.saturating_sub(reserve));
            w.preserve_case();
            if w.rr(Section::Answer, Owner::Name(first.owner), first.rtype, first.ttl, first.rdata).is_err() {
                return Err(XfrError::RecordTooLarge {
                    owner: name::to_text(first.owner),
                    rtype: first.rtype,
                });
            }
            // Whether that was the last record is known only by asking.
            match self.records.next() {
                Some(rr) => self.pending = Some(rr),
                None => self.done = true,
            }
        } else {
            loop {
                let Some(rr) = self.records.next() else {
                    self.done = true;
                    break;
                };
                if w.rr(Section::Answer, Owner::Name(rr.owner), rr.rtype, rr.ttl, rr.rdata).is_err() {
                    self.pending = Some(rr);
                    break;
                }
            }
        }
        self.sent += usize::from(w.count(Section::Answer));
        w.finish(self.flags, rcode::NOERROR, self.opt);
        if let Some(s) = self.signer.as_mut() {
            s.sign(buf, now)?;
        }
        self.messages += 1;
        Ok(true)
    }

    /// Messages written so far.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// Records written so far.
    pub fn records(&self) -> usize {
        self.sent
    }

    /// True once the last message has been written.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// The zone's SOA record, owned by the apex in its original case.
fn apex_soa(zone: &Zone) -> Result<Rr<'_>, XfrError> {
    let node = zone.apex_node().ok_or(XfrError::NoSoa)?;
    let set = node.rrset(code::SOA).ok_or(XfrError::NoSoa)?;
    let rdata = set.rdatas().next().ok_or(XfrError::NoSoa)?;
    Ok(Rr { owner: node.name(), rtype: code::SOA, ttl: set.ttl, rdata })
}

#[cfg(test)]
#[path = "stream_tests.rs"]
pub(super) mod tests;

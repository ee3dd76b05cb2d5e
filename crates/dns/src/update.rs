//! Dynamic updates (RFC 2136): decoding an UPDATE message, checking its
//! prerequisites, and turning its update section into zone [`Change`]s.
//!
//! A server handles an UPDATE for a zone it has found by the zone section
//! in this order (RFC 2136 §3):
//!
//! 1. [`decode`] the message (FORMERR if malformed) and, if it is signed,
//!    verify it with [`crate::tsig`];
//! 2. [`check_prerequisites`] against the current zone (§3.2);
//! 3. [`prescan`] the update section (§3.4.1);
//! 4. compute the [`changes`] (§3.4.2), which also asks the caller's
//!    policy about every owner and type touched (§3.3), and apply them
//!    all or none;
//! 5. answer with [`response`] and the rcode.
//!
//! Before any of this, a listener runs [`screen`] on the bytes it got:
//! checks that allocate nothing, so that only a message that could be
//! authentic costs the writer anything.
//!
//! The zone is seen through [`ZoneView`], so nothing here knows how zones
//! are stored. [`changes`] keeps an overlay over the view so that each
//! update RR sees the effect of those before it, and then reports the net
//! difference: a message that changes nothing yields no changes.
//!
//! Records keep their rdata in uncompressed wire form: names inside the
//! rdata of the types listed in [`name_layout`] are decompressed on
//! decoding (RFC 3597 §4) and compared without regard to case.

mod process;
mod screen;

pub use process::{ZoneView, changes, check_prerequisites, prescan};
pub use screen::{Screen, is_update, screen};

use crate::message::{Edns, HEADER_LEN, flags};
use crate::name::{self, NameBuf, NameError};
use crate::octets::{be16, be32};
use crate::rtype::{CLASS_ANY, code};
#[cfg(doc)]
use crate::zone::Change;

/// The UPDATE opcode (RFC 2136 §1).
pub const OPCODE: u8 = 5;
/// Class NONE (RFC 2136 §1.1), used to delete single RRs and in
/// "does not exist" prerequisites.
pub const CLASS_NONE: u16 = 254;
/// Most prerequisite RRs one UPDATE may carry.
pub const MAX_PREREQUISITES: usize = 1000;
/// Most update RRs one UPDATE may carry. Each is checked against an
/// RRset, so this bounds the work a message can cause.
pub const MAX_UPDATES: usize = 1000;

/// The response codes an UPDATE is answered with (RFC 2136 §2.2; TSIG
/// errors go in the TSIG record, with NOTAUTH here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Rcode {
    /// Done.
    NoError = 0,
    /// The message is malformed.
    FormErr = 1,
    /// Internal failure.
    ServFail = 2,
    /// A name that should exist does not.
    NxDomain = 3,
    /// The operation is not supported.
    NotImp = 4,
    /// Refused by policy.
    Refused = 5,
    /// A name that should not exist does.
    YxDomain = 6,
    /// An RRset that should not exist does.
    YxRrSet = 7,
    /// An RRset that should exist does not.
    NxRrSet = 8,
    /// Not authoritative for the zone, or not authenticated.
    NotAuth = 9,
    /// A name is outside the zone.
    NotZone = 10,
}

impl Rcode {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// One resource record of the prerequisite or update section.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpdateRr {
    /// Owner name, wire form, case as sent.
    pub owner: Box<[u8]>,
    /// Class: the zone's, ANY or NONE, each with its own meaning.
    pub class: u16,
    /// Type code.
    pub rtype: u16,
    /// TTL.
    pub ttl: u32,
    /// Rdata, uncompressed wire form (names decompressed, see
    /// [`name_layout`]); empty for the ANY-class forms.
    pub rdata: Box<[u8]>,
}

/// A decoded UPDATE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Message ID.
    pub id: u16,
    /// The header's flag word as received.
    pub flags: u16,
    /// The zone name (ZNAME), wire form, case as sent.
    pub zone: Box<[u8]>,
    /// The zone class (ZCLASS).
    pub zone_class: u16,
    /// The prerequisite section (the answer section of a query).
    pub prerequisites: Vec<UpdateRr>,
    /// The update section (the authority section of a query).
    pub updates: Vec<UpdateRr>,
    /// The OPT record's parameters, if any. Versions above 0 are left to
    /// the caller to answer with BADVERS.
    pub edns: Option<Edns>,
}

/// Why a message is not a well-formed UPDATE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// Shorter than a header, or QR set: never answered (RFC 1035 §7.3).
    #[error("not a request")]
    NotRequest,
    /// Another opcode: the caller should not have sent it here.
    #[error("opcode {0} is not update")]
    NotUpdate(u8),
    /// ZOCOUNT is not 1 (RFC 2136 §3.1.1).
    #[error("zone section has {0} records, not 1")]
    ZoneCount(u16),
    /// ZTYPE is not SOA (RFC 2136 §3.1.1).
    #[error("zone section type {0} is not soa")]
    ZoneType(u16),
    /// ZCLASS is ANY or NONE, which name no zone.
    #[error("zone class {0} names no zone")]
    ZoneClass(u16),
    /// A name in the message could not be read.
    #[error("bad name: {0}")]
    Name(#[from] NameError),
    /// A record runs past the end of the message.
    #[error("record runs past the end of the message")]
    ShortMessage,
    /// Octets after the last record.
    #[error("trailing octets after the last record")]
    TrailingData,
    /// Rdata with names that do not fit its length.
    #[error("malformed rdata of type {0}")]
    BadRdata(u16),
    /// An OPT or TSIG record outside the additional section, or two OPTs.
    #[error("misplaced {0} record")]
    Misplaced(&'static str),
    /// More prerequisites or updates than the limits allow.
    #[error("{section} section has {count} records, more than {limit}")]
    TooManyRecords {
        /// "prerequisite" or "update".
        section: &'static str,
        /// How many the header announced.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

impl UpdateError {
    /// The rcode to answer with, or `None` to drop the message.
    pub fn rcode(&self) -> Option<Rcode> {
        match self {
            UpdateError::NotRequest => None,
            UpdateError::NotUpdate(_) => Some(Rcode::NotImp),
            UpdateError::TooManyRecords { .. } => Some(Rcode::Refused),
            _ => Some(Rcode::FormErr),
        }
    }
}

/// One field of rdata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A domain name.
    Name,
    /// So many octets of anything else.
    Fixed(usize),
}

/// Where the names are in the rdata of `rtype`, for the types whose names
/// may arrive compressed: those of RFC 1035 (which RFC 3597 §4 says MUST
/// be decompressed), and RP, AFSDB, RT, PX, SRV (which it says SHOULD be),
/// plus KX and DNAME, whose names are compared without case too
/// (RFC 4034 §6.2). Fields after the last one listed are raw octets.
pub fn name_layout(rtype: u16) -> Option<&'static [Field]> {
    use Field::{Fixed, Name};
    const MD: u16 = 3;
    const MF: u16 = 4;
    const MB: u16 = 7;
    const MG: u16 = 8;
    const MR: u16 = 9;
    const MINFO: u16 = 14;
    const RP: u16 = 17;
    const AFSDB: u16 = 18;
    const RT: u16 = 21;
    const PX: u16 = 26;
    const KX: u16 = 36;
    Some(match rtype {
        code::NS | MD | MF | code::CNAME | MB | MG | MR | code::PTR | code::DNAME => &[Name],
        code::SOA => &[Name, Name, Fixed(20)],
        MINFO | RP => &[Name, Name],
        code::MX | AFSDB | RT | KX => &[Fixed(2), Name],
        PX => &[Fixed(2), Name, Name],
        code::SRV => &[Fixed(6), Name],
        _ => return None,
    })
}

/// Reads rdata at `msg[start..end]`, decompressing names per `layout`.
fn decompress(
    msg: &[u8],
    start: usize,
    end: usize,
    layout: &[Field],
    rtype: u16,
) -> Result<Vec<u8>, UpdateError> {
    let bad = UpdateError::BadRdata(rtype);
    let mut out = Vec::with_capacity(end - start + 16);
    let mut pos = start;
    let mut scratch = NameBuf::new();
    for f in layout {
        match *f {
            Field::Name => {
                pos = scratch.decode(msg, pos).map_err(|_| bad.clone())?;
                out.extend_from_slice(scratch.as_slice());
            }
            Field::Fixed(n) => {
                out.extend_from_slice(msg.get(pos..pos + n).ok_or(bad.clone())?);
                pos += n;
            }
        }
        if pos > end {
            return Err(bad);
        }
    }
    out.extend_from_slice(msg.get(pos..end).ok_or(bad.clone())?);
    if out.len() > usize::from(u16::MAX) {
        return Err(bad);
    }
    Ok(out)
}

/// Reads the record at `pos`: the record and the position after it.
fn read_rr(msg: &[u8], pos: usize) -> Result<(UpdateRr, usize), UpdateError> {
    let mut owner = NameBuf::new();
    let p = owner.decode(msg, pos)?;
    let (Some(rtype), Some(class), Some(ttl), Some(rdlen)) =
        (be16(msg, p), be16(msg, p + 2), be32(msg, p + 4), be16(msg, p + 8))
    else {
        return Err(UpdateError::ShortMessage);
    };
    let start = p + 10;
    let end = start + usize::from(rdlen);
    let raw = msg.get(start..end).ok_or(UpdateError::ShortMessage)?;
    let rdata = match name_layout(rtype) {
        Some(layout) if !raw.is_empty() => decompress(msg, start, end, layout, rtype)?,
        _ => raw.to_vec(),
    };
    let rr = UpdateRr { owner: owner.as_slice().into(), class, rtype, ttl, rdata: rdata.into() };
    Ok((rr, end))
}

/// Decodes an UPDATE request (RFC 2136 §2). The additional section is
/// checked for form but otherwise ignored, apart from the OPT record; a
/// TSIG record there is [`crate::tsig`]'s business.
pub fn decode(msg: &[u8]) -> Result<Update, UpdateError> {
    let (Some(id), Some(fl)) = (be16(msg, 0), be16(msg, 2)) else {
        return Err(UpdateError::NotRequest);
    };
    if msg.len() < HEADER_LEN || fl & flags::QR != 0 {
        return Err(UpdateError::NotRequest);
    }
    let opcode = ((fl & flags::OPCODE_MASK) >> 11) as u8;
    if opcode != OPCODE {
        return Err(UpdateError::NotUpdate(opcode));
    }
    let count = |at| be16(msg, at).unwrap_or(0);
    let zo = count(4);
    let (pr, up, ad) = (usize::from(count(6)), usize::from(count(8)), usize::from(count(10)));
    // RFC 2136 §3.1.1: exactly one zone, of type SOA.
    if zo != 1 {
        return Err(UpdateError::ZoneCount(zo));
    }
    let mut zone = NameBuf::new();
    let p = zone.decode(msg, HEADER_LEN)?;
    let (Some(ztype), Some(zone_class)) = (be16(msg, p), be16(msg, p + 2)) else {
        return Err(UpdateError::ShortMessage);
    };
    if ztype != code::SOA {
        return Err(UpdateError::ZoneType(ztype));
    }
    if zone_class == CLASS_ANY || zone_class == CLASS_NONE {
        return Err(UpdateError::ZoneClass(zone_class));
    }
    for (section, n, limit) in [("prerequisite", pr, MAX_PREREQUISITES), ("update", up, MAX_UPDATES)] {
        if n > limit {
            return Err(UpdateError::TooManyRecords { section, count: n, limit });
        }
    }
    let mut pos = p + 4;
    let mut sections = [Vec::with_capacity(pr), Vec::with_capacity(up)];
    for (records, n) in sections.iter_mut().zip([pr, up]) {
        for _ in 0..n {
            let (rr, end) = read_rr(msg, pos)?;
            match rr.rtype {
                code::OPT => return Err(UpdateError::Misplaced("opt")),
                code::TSIG => return Err(UpdateError::Misplaced("tsig")),
                _ => {}
            }
            records.push(rr);
            pos = end;
        }
    }
    let mut edns = None;
    let mut scratch = NameBuf::new();
    for _ in 0..ad {
        let p = scratch.decode(msg, pos)?;
        let (Some(rtype), Some(class), Some(ttl), Some(rdlen)) =
            (be16(msg, p), be16(msg, p + 2), be32(msg, p + 4), be16(msg, p + 8))
        else {
            return Err(UpdateError::ShortMessage);
        };
        pos = p + 10 + usize::from(rdlen);
        if pos > msg.len() {
            return Err(UpdateError::ShortMessage);
        }
        if rtype == code::OPT {
            // RFC 6891 §6.1.1: at most one OPT.
            if edns.is_some() {
                return Err(UpdateError::Misplaced("opt"));
            }
            edns = Some(Edns { payload: class, version: (ttl >> 16) as u8, dnssec_ok: ttl & 0x8000 != 0 });
        }
    }
    if pos != msg.len() {
        return Err(UpdateError::TrailingData);
    }
    let [prerequisites, updates] = sections;
    Ok(Update { id, flags: fl, zone: zone.as_slice().into(), zone_class, prerequisites, updates, edns })
}

/// The response to an UPDATE (RFC 2136 §3.8): the request's ID, QR and
/// opcode UPDATE, `rcode`, and the zone section echoed when it can be
/// read; the other sections are empty. Rcodes above 15 are not
/// representable here (TSIG errors are NOTAUTH with the code in the TSIG
/// record, which the caller appends).
pub fn response(request: &[u8], rcode: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 64);
    response_into(request, rcode, &mut out);
    out
}

/// [`response`] written into `out`, replacing what it held: a listener
/// answers from a buffer it reuses, without an allocation.
pub fn response_into(request: &[u8], rcode: u8, out: &mut Vec<u8>) {
    out.clear();
    let id = be16(request, 0).unwrap_or(0);
    let word = flags::QR | u16::from(OPCODE) << 11 | u16::from(rcode & 0xF);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&word.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    let mut zone = NameBuf::new();
    if request.len() >= HEADER_LEN
        && be16(request, 4) == Some(1)
        && let Ok(p) = zone.decode(request, HEADER_LEN)
        && let Some(tail) = request.get(p..p + 4)
    {
        out.extend_from_slice(zone.as_slice());
        out.extend_from_slice(tail);
        if let Some(zo) = out.get_mut(5) {
            *zo = 1;
        }
    }
}

/// True if two rdatas of `rtype` are the same RR's: equal octets, or
/// equal but for the case of the names in them (RFC 4034 §6.2 for the
/// types of [`name_layout`]).
pub fn same_rdata(rtype: u16, a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let Some(layout) = name_layout(rtype) else {
        return false;
    };
    if a.len() != b.len() {
        return false;
    }
    let (mut pa, mut pb) = (a, b);
    for f in layout {
        let n = match *f {
            Field::Name => match (name::wire_len(pa), name::wire_len(pb)) {
                (Some(x), Some(y)) if x == y => x,
                _ => return false,
            },
            Field::Fixed(n) => n,
        };
        match (pa.get(..n), pb.get(..n), pa.get(n..), pb.get(n..)) {
            (Some(x), Some(y), Some(ra), Some(rb)) if x.eq_ignore_ascii_case(y) => (pa, pb) = (ra, rb),
            _ => return false,
        }
    }
    pa == pb
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNSUPDATE: &[u8] = include_bytes!("../../../testdata/update/knsupdate.bin");

    fn n(s: &str) -> Box<[u8]> {
        name::from_text(s, None).unwrap()
    }

    /// The message testdata/capture.py makes knsupdate send:
    ///
    /// ```text
    /// prereq nxdomain new.example.com.
    /// prereq yxrrset www.example.com. A
    /// prereq yxrrset www.example.com. A 192.0.2.1
    /// prereq nxrrset mail.example.com. MX
    /// prereq yxdomain example.com.
    /// update add new.example.com. 300 A 192.0.2.7
    /// update add new.example.com. 300 MX 10 mail.example.com.
    /// update add alias.example.com. 600 CNAME www.example.com.
    /// update add example.com. 3600 NS ns2.example.com.
    /// update delete old.example.com. TXT
    /// update delete gone.example.com.
    /// update delete www.example.com. A 192.0.2.1
    /// ```
    #[test]
    fn decodes_a_knsupdate_message() {
        let u = decode(KNSUPDATE).unwrap();
        assert_eq!(&u.zone[..], &n("example.com.")[..]);
        assert_eq!(u.zone_class, 1);
        assert!(u.edns.is_none());
        let rr = |owner: &str, class: u16, rtype: u16, ttl: u32, rdata: &[u8]| UpdateRr {
            owner: n(owner),
            class,
            rtype,
            ttl,
            rdata: rdata.into(),
        };
        assert_eq!(
            u.prerequisites,
            vec![
                rr("new.example.com.", CLASS_NONE, code::ANY, 0, b""),
                rr("www.example.com.", CLASS_ANY, code::A, 0, b""),
                rr("www.example.com.", 1, code::A, 0, &[192, 0, 2, 1]),
                rr("mail.example.com.", CLASS_NONE, code::MX, 0, b""),
                rr("example.com.", CLASS_ANY, code::ANY, 0, b""),
            ]
        );
        // knsupdate compresses the names inside MX, CNAME and NS rdata;
        // they come out whole.
        let mx = [&[0, 10][..], &n("mail.example.com.")].concat();
        assert_eq!(
            u.updates,
            vec![
                rr("new.example.com.", 1, code::A, 300, &[192, 0, 2, 7]),
                rr("new.example.com.", 1, code::MX, 300, &mx),
                rr("alias.example.com.", 1, code::CNAME, 600, &n("www.example.com.")),
                rr("example.com.", 1, code::NS, 3600, &n("ns2.example.com.")),
                rr("old.example.com.", CLASS_ANY, code::TXT, 0, b""),
                rr("gone.example.com.", CLASS_ANY, code::ANY, 0, b""),
                rr("www.example.com.", CLASS_NONE, code::A, 0, &[192, 0, 2, 1]),
            ]
        );
        assert!(KNSUPDATE[0x8a..].starts_with(b"\x00\x0a\x04mail\xc0\x0c"), "the capture does compress");
    }

    #[test]
    fn signed_knsupdate_messages_decode() {
        for m in [
            &include_bytes!("../../../testdata/tsig/knsupdate-hmac-sha256.bin")[..],
            include_bytes!("../../../testdata/tsig/knsupdate-hmac-md5.bin"),
        ] {
            let u = decode(m).unwrap();
            assert_eq!(u.updates.len(), 1);
            assert_eq!(&u.updates[0].owner[..], &n("www.example.com.")[..]);
        }
    }

    /// A header with the given counts and the zone example.com. SOA IN.
    fn head(zo: u16, counts: [u16; 3]) -> Vec<u8> {
        let mut m = vec![0xAB, 0xCD, 0x28, 0];
        for c in [zo, counts[0], counts[1], counts[2]] {
            m.extend_from_slice(&c.to_be_bytes());
        }
        m.extend_from_slice(b"\x07example\x03com\x00\x00\x06\x00\x01");
        m
    }

    fn rr_bytes(owner: &[u8], rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut r = owner.to_vec();
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&class.to_be_bytes());
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(rdata);
        r
    }

    #[test]
    fn header_and_zone_section_errors() {
        assert_eq!(decode(&[0; 11]), Err(UpdateError::NotRequest));
        let mut resp = head(1, [0; 3]);
        resp[2] |= 0x80;
        assert_eq!(decode(&resp), Err(UpdateError::NotRequest));
        let mut query = head(1, [0; 3]);
        query[2] = 0;
        assert_eq!(decode(&query).unwrap_err().rcode(), Some(Rcode::NotImp));
        assert_eq!(decode(&head(2, [0; 3])), Err(UpdateError::ZoneCount(2)));
        assert_eq!(decode(&head(0, [0; 3])), Err(UpdateError::ZoneCount(0)));
        let mut not_soa = head(1, [0; 3]);
        not_soa[26] = 2;
        assert_eq!(decode(&not_soa), Err(UpdateError::ZoneType(2)));
        assert_eq!(decode(&not_soa).unwrap_err().rcode(), Some(Rcode::FormErr));
        let mut any = head(1, [0; 3]);
        any[28] = 255;
        assert_eq!(decode(&any), Err(UpdateError::ZoneClass(255)));
        let mut trailing = head(1, [0; 3]);
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(UpdateError::TrailingData));
        assert_eq!(decode(&head(1, [1, 0, 0])), Err(UpdateError::Name(NameError::ShortInput)));
        let e = decode(&head(1, [0, 1001, 0])).unwrap_err();
        assert_eq!(e.rcode(), Some(Rcode::Refused));
        assert!(decode(&head(1, [1000, 0, 0])).is_err_and(|e| e.rcode() == Some(Rcode::FormErr)));
    }

    #[test]
    fn opt_and_tsig_only_in_the_additional_section() {
        let opt = rr_bytes(b"\x00", code::OPT, 1232, 0x0000_8000, b"");
        let mut m = head(1, [0, 0, 1]);
        m.extend_from_slice(&opt);
        let u = decode(&m).unwrap();
        assert_eq!(u.edns, Some(Edns { payload: 1232, version: 0, dnssec_ok: true }));
        let mut two = head(1, [0, 0, 2]);
        two.extend_from_slice(&opt);
        two.extend_from_slice(&opt);
        assert_eq!(decode(&two), Err(UpdateError::Misplaced("opt")));
        let mut in_update = head(1, [0, 1, 0]);
        in_update.extend_from_slice(&opt);
        assert_eq!(decode(&in_update), Err(UpdateError::Misplaced("opt")));
        let mut tsig = head(1, [1, 0, 0]);
        tsig.extend_from_slice(&rr_bytes(b"\x00", code::TSIG, 255, 0, b""));
        assert_eq!(decode(&tsig), Err(UpdateError::Misplaced("tsig")));
    }

    #[test]
    fn rdata_names_are_decompressed_and_bounded() {
        // An MX whose exchange points at the zone name (offset 12).
        let mut m = head(1, [0, 1, 0]);
        m.extend_from_slice(&rr_bytes(b"\x02mx\xC0\x0C", code::MX, 1, 60, b"\x00\x05\x04mail\xC0\x0C"));
        let u = decode(&m).unwrap();
        assert_eq!(&u.updates[0].owner[..], &n("mx.example.com.")[..]);
        assert_eq!(&u.updates[0].rdata[..], &[&[0, 5][..], &n("mail.example.com.")].concat()[..]);
        // A name running past its rdata length.
        let mut long = head(1, [0, 1, 0]);
        let mut r = rr_bytes(b"\x00", code::NS, 1, 60, b"\x04mail\x00");
        let rdlen_at = r.len() - 7;
        r[rdlen_at] = 3;
        long.extend_from_slice(&r);
        assert_eq!(decode(&long), Err(UpdateError::BadRdata(code::NS)));
        // An SOA with its fixed part short.
        let mut soa = head(1, [0, 1, 0]);
        soa.extend_from_slice(&rr_bytes(b"\x00", code::SOA, 1, 60, b"\x00\x00\x00\x00\x00\x01"));
        assert_eq!(decode(&soa), Err(UpdateError::BadRdata(code::SOA)));
        // A name then octets left over: kept as they are, for prescan.
        let mut extra = head(1, [0, 1, 0]);
        extra.extend_from_slice(&rr_bytes(b"\x00", code::CNAME, 1, 60, b"\x01a\x00\xFF"));
        assert_eq!(&decode(&extra).unwrap().updates[0].rdata[..], b"\x01a\x00\xFF");
        // Other types keep their octets as sent.
        let mut txt = head(1, [0, 1, 0]);
        txt.extend_from_slice(&rr_bytes(b"\x00", code::TXT, 1, 60, b"\x02\xC0\x0C"));
        assert_eq!(&decode(&txt).unwrap().updates[0].rdata[..], b"\x02\xC0\x0C");
    }

    #[test]
    fn responses_echo_the_zone_section() {
        let r = response(KNSUPDATE, Rcode::NxRrSet.code());
        assert_eq!(&r[..2], &KNSUPDATE[..2]);
        assert_eq!(r[2], 0xA8);
        assert_eq!(r[3], 8);
        assert_eq!(&r[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&r[12..], &KNSUPDATE[12..29]);
        // Nothing to echo: header only, ZOCOUNT 0.
        let r = response(&head(2, [0; 3]), Rcode::FormErr.code());
        assert_eq!(r.len(), HEADER_LEN);
        assert_eq!((r[3], r[5]), (1, 0));
        assert_eq!(response(&[1], 1).len(), HEADER_LEN);
    }

    #[test]
    fn rdata_comparison_ignores_name_case_only_where_names_are() {
        let a = [&[0, 10][..], &n("Mail.Example.com.")].concat();
        let b = [&[0, 10][..], &n("mail.example.COM.")].concat();
        assert!(same_rdata(code::MX, &a, &b));
        assert!(!same_rdata(code::MX, &a, &[&[0, 11][..], &n("mail.example.com.")].concat()));
        assert!(!same_rdata(code::TXT, b"\x01A", b"\x01a"));
        assert!(same_rdata(code::TXT, b"\x01a", b"\x01a"));
        let soa = |m: &str| [&n(m)[..], &n("h.example.")[..], &[0; 20]].concat();
        assert!(same_rdata(code::SOA, &soa("NS.example."), &soa("ns.example.")));
        assert!(!same_rdata(code::SOA, &soa("ns.example."), &soa("nt.example.")));
        assert!(!same_rdata(code::NS, b"\x01a\x00", b"\x01a\x00\x00"));
    }
}

//! Record types and the few facts about their rdata the answer engine needs.

/// Type codes used by the engine (IANA DNS parameters).
#[allow(missing_docs)] // The names are the IANA mnemonics.
pub mod code {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const HINFO: u16 = 13;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const NAPTR: u16 = 35;
    pub const DNAME: u16 = 39;
    pub const OPT: u16 = 41;
    /// ANAME (private use; see `privtype`).
    pub const ANAME: u16 = 65401;
    pub const DS: u16 = 43;
    pub const SSHFP: u16 = 44;
    pub const RRSIG: u16 = 46;
    pub const NSEC: u16 = 47;
    pub const DNSKEY: u16 = 48;
    pub const NSEC3: u16 = 50;
    pub const NSEC3PARAM: u16 = 51;
    pub const TLSA: u16 = 52;
    pub const CDS: u16 = 59;
    pub const CDNSKEY: u16 = 60;
    pub const SVCB: u16 = 64;
    pub const HTTPS: u16 = 65;
    pub const TKEY: u16 = 249;
    pub const TSIG: u16 = 250;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const MAILB: u16 = 253;
    pub const MAILA: u16 = 254;
    pub const ANY: u16 = 255;
}

/// Class IN.
pub const CLASS_IN: u16 = 1;
/// Class CH.
pub const CLASS_CH: u16 = 3;
/// Class ANY (QCLASS only).
pub const CLASS_ANY: u16 = 255;

/// Types whose rdata names may be compressed in answers: RFC 3597 §4
/// allows it only for the types defined in RFC 1035. Returns the offsets of
/// the names within the rdata as a small fixed list (`first`, `second`).
/// `SOA` has two names back to back, which the caller walks.
pub fn compressible_name_offset(rtype: u16) -> Option<usize> {
    match rtype {
        code::NS | code::CNAME | code::PTR | code::SOA => Some(0),
        code::MX => Some(2),
        _ => None,
    }
}

/// Offset within the rdata of a name whose addresses belong in the
/// additional section (RFC 1034 §4.3.2 step 6, RFC 2782, RFC 9460 §4.3).
pub fn additional_name_offset(rtype: u16) -> Option<usize> {
    match rtype {
        code::NS => Some(0),
        code::MX => Some(2),
        code::SRV => Some(6),
        code::SVCB | code::HTTPS => Some(2),
        _ => None,
    }
}

/// Meta types and QTYPE-only values that may never be stored in a zone.
pub fn is_meta(rtype: u16) -> bool {
    matches!(rtype, code::OPT | code::TKEY | code::TSIG | 128..=255) || rtype == 0
}

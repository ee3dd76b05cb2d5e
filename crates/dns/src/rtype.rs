//! Record types and the few facts about their rdata that the answer engine
//! and the zone file reader need.

/// Type codes used by the engine (IANA DNS parameters).
#[allow(missing_docs)] // The names are the IANA mnemonics.
pub mod code {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const MD: u16 = 3;
    pub const MF: u16 = 4;
    pub const MB: u16 = 7;
    pub const MG: u16 = 8;
    pub const MR: u16 = 9;
    pub const PTR: u16 = 12;
    pub const HINFO: u16 = 13;
    pub const MINFO: u16 = 14;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const RP: u16 = 17;
    pub const AFSDB: u16 = 18;
    pub const RT: u16 = 21;
    pub const SIG: u16 = 24;
    pub const KEY: u16 = 25;
    pub const PX: u16 = 26;
    pub const AAAA: u16 = 28;
    pub const LOC: u16 = 29;
    pub const SRV: u16 = 33;
    pub const NAPTR: u16 = 35;
    pub const KX: u16 = 36;
    pub const CERT: u16 = 37;
    pub const DNAME: u16 = 39;
    pub const APL: u16 = 42;
    pub const IPSECKEY: u16 = 45;
    pub const DHCID: u16 = 49;
    pub const SMIMEA: u16 = 53;
    pub const CSYNC: u16 = 62;
    pub const SPF: u16 = 99;
    pub const NID: u16 = 104;
    pub const L32: u16 = 105;
    pub const L64: u16 = 106;
    pub const LP: u16 = 107;
    pub const EUI48: u16 = 108;
    pub const EUI64: u16 = 109;
    pub const URI: u16 = 256;
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

/// The rdata fields, by index among the presentation tokens, that hold a
/// domain name (RFC 1035 §3.3, RFC 1183, RFC 2163, RFC 2230, RFC 2782,
/// RFC 3403, RFC 4034, RFC 6672, RFC 6742, RFC 9460, and IPSECKEY's
/// gateway of type 3, RFC 4025 §2.5). Each field before a name is one
/// token in all of these types, so the index is fixed; `field(k)` gives
/// the k-th token where a type needs it to tell.
pub fn name_fields<'a>(rtype: u16, field: impl Fn(usize) -> Option<&'a str>) -> &'static [usize] {
    match rtype {
        code::NS
        | code::MD
        | code::MF
        | code::CNAME
        | code::MB
        | code::MG
        | code::MR
        | code::PTR
        | code::DNAME
        | code::NSEC
        | code::ANAME => &[0],
        code::SOA | code::MINFO | code::RP => &[0, 1],
        code::MX | code::AFSDB | code::RT | code::KX | code::LP | code::SVCB | code::HTTPS => &[1],
        code::PX => &[1, 2],
        code::SRV => &[3],
        code::NAPTR => &[5],
        code::RRSIG => &[7],
        code::IPSECKEY if field(1) == Some("3") => &[3],
        _ => &[],
    }
}

//! Zone files in RFC 1035 §5 presentation format.
//!
//! Parsing is delegated to NLnet Labs' `domain` scanner, which knows the
//! presentation syntax of every common type, `$ORIGIN`, `$TTL`, escapes and
//! RFC 3597 `\#` rdata. `$INCLUDE` is refused: a zone file comes from a
//! customer and must not read the server's files. A pass before it
//! (`crate::prescan`) corrects what it gets wrong: `@` in an rdata name
//! field is the origin (RFC 1035 §5.1), and the assigned types it does not
//! know (AFSDB, KX, LOC and others, see `crate::rdatatext`) are encoded
//! there and handed on in the generic form.
//!
//! Export writes the common and DNSSEC types with [`crate::present`],
//! whose text reads back to the same rdata by construction. Every other
//! type is rendered with `domain`'s presentation code and checked to parse
//! back to the same wire rdata; if it does not, the record is written in
//! the RFC 3597 generic form, which always does. So an export always
//! re-imports to the same data.

use std::fmt::Write as _;

use bytes::Bytes;
use domain::base::iana::Class;
use domain::base::rdata::{ComposeRecordData, ParseRecordData};
use domain::base::{Name, ParsedName, Rtype, ToName};
use domain::rdata::ZoneRecordData;
use domain::zonefile::inplace::{Entry, Zonefile};

use crate::name;
use crate::octets::be16;
use crate::octets::be32;
use crate::rtype::{self, code};
use crate::zone::Record;

/// Largest zone file accepted, to bound memory.
pub const MAX_ZONEFILE_BYTES: usize = 1 << 30;

/// Why a zone file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number (0 when the error is about the whole file).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl ParseError {
    pub(crate) fn at(line: usize, reason: impl Into<String>) -> Self {
        ParseError { line, reason: reason.into() }
    }
}

fn origin_name(origin: &[u8]) -> Result<Name<Bytes>, ParseError> {
    Name::from_octets(Bytes::copy_from_slice(origin)).map_err(|_| ParseError::at(0, "bad origin name"))
}

/// Line number (1-based) of byte offset `off` in `text`.
fn line_of(text: &[u8], off: usize) -> usize {
    LineCounter::default().line_at(text, off)
}

/// Maps offsets to line numbers, counting only the newlines since the
/// previous call: records come in order, so a whole file costs one pass.
#[derive(Default)]
struct LineCounter {
    off: usize,
    newlines: usize,
}

impl LineCounter {
    fn line_at(&mut self, text: &[u8], off: usize) -> usize {
        let off = off.min(text.len());
        if off < self.off {
            *self = LineCounter::default();
        }
        self.newlines += text.get(self.off..off).map_or(0, |t| t.iter().filter(|&&b| b == b'\n').count());
        self.off = off;
        1 + self.newlines
    }
}

/// Parses a whole zone file for the zone `origin` (wire name). Every record
/// must be class IN and at or below the origin.
pub fn parse(text: &str, origin: &[u8]) -> Result<Vec<Record>, ParseError> {
    parse_with_lines(text, origin).map(|(r, _)| r)
}

/// Like [`parse`], also returning the line each record starts on.
pub fn parse_with_lines(text: &str, origin: &[u8]) -> Result<(Vec<Record>, Vec<usize>), ParseError> {
    // Defence in depth: the scanner is third-party code fed untrusted
    // text. The inputs known to break it are refused before it runs; should
    // another one make it panic, the import fails cleanly instead.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scan(text, origin))).unwrap_or_else(|_| {
        Err(ParseError::at(0, "the zone file scanner failed on this input (please report it)"))
    })
}

fn scan(text: &str, origin: &[u8]) -> Result<(Vec<Record>, Vec<usize>), ParseError> {
    if text.len() > MAX_ZONEFILE_BYTES {
        return Err(ParseError::at(0, "zone file too large"));
    }
    precheck(text)?;
    let (text, aname_lines) = crate::privtype::rewrite(text);
    let text = crate::prescan::rewrite(&text, origin)?;
    scan_records(&text, origin, &aname_lines).map_err(|mut e| {
        // ANAME lines were scanned as CNAMEs: name the type that was written.
        if aname_lines.contains(&e.line) {
            e.reason = e.reason.replace("CNAME", "ANAME");
        }
        e
    })
}

fn scan_records(
    text: &str,
    origin: &[u8],
    aname_lines: &[usize],
) -> Result<(Vec<Record>, Vec<usize>), ParseError> {
    // The scanner of domain 0.12.3 indexes past its buffer when a character
    // string is the very last thing in the input; a final newline (which
    // changes no record) keeps it inside.
    let owned;
    let text = if text.ends_with('\n') {
        text
    } else {
        owned = format!("{text}\n");
        &owned
    };
    let origin_l = name::to_lowercase(origin);
    let mut zf = Zonefile::from(text);
    zf.set_origin(origin_name(origin)?);
    zf.set_default_class(Class::IN);
    let mut out = Vec::new();
    let mut lines = Vec::new();
    let mut lines_seen = LineCounter::default();
    loop {
        let before = zf.current_offset();
        let entry = match zf.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                // domain reports "line:col: msg" where its scanner stopped,
                // which is the start of the next line when a record's last
                // token is bad; report the line with the offending content.
                let s = e.to_string();
                let mut parts = s.splitn(3, ':');
                let line = parts.next().and_then(|l| l.trim().parse::<usize>().ok());
                let col = parts.next().and_then(|c| c.trim().parse::<usize>().ok());
                let msg = parts.next().map_or(s.as_str(), str::trim).to_string();
                let line = match (line, col) {
                    (Some(l), Some(c)) => content_line_at_or_before(text, l, c),
                    _ => line_of(text.as_bytes(), before),
                };
                return Err(ParseError::at(line, msg));
            }
        };
        // The record's first line: skip leading blank lines and comments
        // that the scanner consumed with it.
        let line = lines_seen.line_at(
            text.as_bytes(),
            first_content(text.as_bytes(), line_start_from(text.as_bytes(), before)),
        );
        let rec = match entry {
            Entry::Include { .. } => return Err(ParseError::at(line, "$INCLUDE is not allowed")),
            Entry::Record(r) => r,
        };
        if rec.class() != Class::IN {
            return Err(ParseError::at(line, format!("class {} is not supported, only IN", rec.class())));
        }
        let rtype_code = rec.rtype().to_int();
        if rtype::is_meta(rtype_code) {
            return Err(ParseError::at(line, format!("type {} cannot be stored in a zone", rec.rtype())));
        }
        let owner: Box<[u8]> = rec.owner().to_vec().as_octets().as_slice().into();
        if !name::is_at_or_below(&name::to_lowercase(&owner), &origin_l) {
            return Err(ParseError::at(
                line,
                format!("{} is outside the zone {}", name::to_text(&owner), name::to_text(origin)),
            ));
        }
        let mut rdata = Vec::new();
        rec.data().compose_rdata(&mut rdata).map_err(|_| ParseError::at(line, "rdata too long"))?;
        check_rdata(rtype_code, &rdata).map_err(|r| ParseError::at(line, r))?;
        out.push(Record {
            owner,
            rtype: rtype_code,
            ttl: rec.ttl().as_secs(),
            rdata: rdata.into_boxed_slice(),
        });
        lines.push(line);
    }
    crate::privtype::restore(&mut out, &lines, aname_lines);
    for (r, line) in out.iter().zip(&lines) {
        if r.rtype == code::ANAME {
            check_rdata(r.rtype, &r.rdata).map_err(|e| ParseError::at(*line, e))?;
        }
    }
    Ok((out, lines))
}

/// Refuses unbalanced parentheses and unterminated quoted strings before
/// the scanner sees them: they are errors anyway, and domain 0.12.3's
/// scanner can index past its buffer when the input ends inside one.
fn precheck(text: &str) -> Result<(), ParseError> {
    let (mut line, mut paren_line, mut quote_line) = (1usize, 0usize, 0usize);
    let (mut depth, mut quoted, mut escaped, mut comment) = (0usize, false, false, false);
    for b in text.bytes() {
        if b == b'\n' {
            line += 1;
        }
        match b {
            _ if escaped => escaped = false,
            b'\n' => comment = false,
            _ if comment => {}
            b'\\' => escaped = true,
            b'"' => {
                quoted = !quoted;
                quote_line = line;
            }
            _ if quoted => {}
            b';' => comment = true,
            b'(' => {
                if depth == 0 {
                    paren_line = line;
                }
                depth += 1;
            }
            b')' => {
                depth =
                    depth.checked_sub(1).ok_or_else(|| ParseError::at(line, "')' without a matching '('"))?;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(ParseError::at(quote_line, "quoted string is never closed"));
    }
    if depth > 0 {
        return Err(ParseError::at(paren_line, "'(' is never closed"));
    }
    Ok(())
}

/// The line an error at (`line`, `col`) belongs to: that line, unless the
/// scanner stopped at its very start, in which case the closest earlier
/// line with content.
fn content_line_at_or_before(text: &str, line: usize, col: usize) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let has_content = |l: usize| {
        lines
            .get(l.wrapping_sub(1))
            .is_some_and(|t| t.split(';').next().is_some_and(|c| !c.trim().is_empty()))
    };
    let before_col = lines
        .get(line.wrapping_sub(1))
        .and_then(|t| t.get(..col.saturating_sub(1).min(t.len())))
        .is_some_and(|t| t.split(';').next().is_some_and(|c| !c.trim().is_empty()));
    if before_col {
        return line;
    }
    let mut l = line.saturating_sub(1);
    while l > 1 && !has_content(l) {
        l -= 1;
    }
    l.max(1)
}

/// A record always begins at the start of a line. The scanner's offset
/// before an entry may still lie inside the previous record's last line
/// (it reports where it last looked), so move to the next line start
/// unless `off` is already at one.
fn line_start_from(text: &[u8], off: usize) -> usize {
    if off == 0 || text.get(off.wrapping_sub(1)) == Some(&b'\n') {
        return off;
    }
    let rest = text.get(off..).unwrap_or(&[]);
    rest.iter().position(|&b| b == b'\n').map_or(text.len(), |e| off + e + 1)
}

/// The offset of the first line at or after `off` with content other than
/// blanks and comments.
fn first_content(text: &[u8], mut off: usize) -> usize {
    // Skip whitespace-only and comment-only lines.
    loop {
        let rest = text.get(off..).unwrap_or(&[]);
        let eol = rest.iter().position(|&b| b == b'\n');
        let line = rest.get(..eol.unwrap_or(rest.len())).unwrap_or(&[]);
        // A directive ($ORIGIN, $TTL) is consumed with the record after it;
        // it is not where the record starts.
        let directive = line.first() == Some(&b'$');
        let content = !directive && line.iter().take_while(|&&b| b != b';').any(|b| !b.is_ascii_whitespace());
        match eol {
            Some(e) if !content => off += e + 1,
            _ => return off,
        }
    }
}

/// Why one record's data in presentation form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RdataError {
    /// A line break or NUL, which could smuggle a second record or a
    /// directive into the line.
    #[error("contains a line break")]
    LineBreak,
    /// Nothing but blanks.
    #[error("empty record data")]
    Empty,
    /// Not valid data for the type.
    #[error("{0}")]
    Invalid(String),
    /// A name that is relative (or `@`) where names must be absolute.
    #[error("names must be absolute (end in a dot)")]
    RelativeName,
}

/// Parses one record's data for `owner`/`rtype` as a zone file line would
/// be read (relative names are relative to `origin`), so the API and the
/// CLI accept exactly what a zone file does.
pub fn parse_rdata(
    origin: &[u8],
    owner: &[u8],
    rtype_code: u16,
    ttl: u32,
    text: &str,
) -> Result<Record, RdataError> {
    if text.chars().any(|c| c == '\n' || c == '\r' || c == '\0') {
        return Err(RdataError::LineBreak);
    }
    if text.trim().is_empty() {
        return Err(RdataError::Empty);
    }
    let line = format!("{} {} IN {} {}\n", name::to_text(owner), ttl, type_text(rtype_code), text);
    let mut recs = parse(&line, origin).map_err(|e| RdataError::Invalid(e.reason))?;
    match (recs.pop(), recs.is_empty()) {
        (Some(r), true) if r.rtype == rtype_code => Ok(Record { owner: owner.into(), ..r }),
        _ => Err(RdataError::Invalid("not exactly one record".into())),
    }
}

/// Like [`parse_rdata`], for data whose names must all be absolute (the
/// PowerDNS API's content, where PowerDNS itself takes no relative name):
/// a relative name or `@` is refused rather than completed with anything.
pub fn parse_rdata_absolute(
    owner: &[u8],
    rtype_code: u16,
    ttl: u32,
    text: &str,
) -> Result<Record, RdataError> {
    // Read under two origins: a relative name comes out differently under
    // each, an absolute one the same. Each read takes its origin as the
    // owner, which is inside it; the real owner is put in afterwards.
    const SENTINEL: &[u8] = b"\x0frelative-origin\x07invalid\x00";
    let root = parse_rdata(&[0], &[0], rtype_code, ttl, text)?;
    let other = parse_rdata(SENTINEL, SENTINEL, rtype_code, ttl, text)?;
    if root.rdata != other.rdata {
        return Err(RdataError::RelativeName);
    }
    Ok(Record { owner: owner.into(), ..root })
}

/// Checks that wire rdata is well formed for its type: it must parse as
/// that type and use all its octets.
pub fn check_rdata(rtype_code: u16, rdata: &[u8]) -> Result<(), String> {
    if rdata.len() > u16::MAX as usize {
        return Err("rdata longer than 65535 octets".into());
    }
    let mut p = octseq::Parser::from_ref(rdata);
    match ZoneRecordData::<&[u8], ParsedName<&[u8]>>::parse_rdata(Rtype::from_int(rtype_code), &mut p) {
        Ok(Some(_)) if p.remaining() == 0 => {}
        Ok(_) => return Err(format!("malformed {} rdata", Rtype::from_int(rtype_code))),
        Err(e) => return Err(format!("malformed {} rdata: {e}", Rtype::from_int(rtype_code))),
    }
    if rtype_code == code::ANAME {
        return name::validate(rdata).map_err(|e| format!("bad ANAME target: {e}"));
    }
    // The types domain does not know are well formed when they can be
    // written back (a generic `\#` form of them is checked here too, as
    // Knot does).
    if crate::rdatatext::is_encoded_here(rtype_code)
        && !crate::rdatatext::write(&mut String::new(), rtype_code, rdata)
    {
        return Err(format!("malformed {} rdata", Rtype::from_int(rtype_code)));
    }
    // Names in rdata must be uncompressed and valid.
    if let Some(off) =
        rtype::compressible_name_offset(rtype_code).or(rtype::additional_name_offset(rtype_code))
    {
        let Some(n) = rdata.get(off..).and_then(|r| r.get(..name::wire_len(r)?)) else {
            return Err("bad name in rdata".into());
        };
        name::validate(n).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Text of a type: its mnemonic, or `TYPEnnn` (RFC 3597 §5).
pub fn type_text(rtype_code: u16) -> String {
    match rtype_code {
        code::ANAME => "ANAME".into(),
        _ => Rtype::from_int(rtype_code).to_string(),
    }
}

/// A type from its mnemonic or `TYPEnnn` form.
pub fn type_from_text(text: &str) -> Option<u16> {
    if text.eq_ignore_ascii_case("ANAME") || text.eq_ignore_ascii_case("ALIAS") {
        return Some(code::ANAME);
    }
    text.parse::<Rtype>().ok().map(|t| t.to_int())
}

/// Presentation form of rdata, verified to parse back to the same octets
/// in the context of `origin`-less absolute names.
pub fn rdata_text(rtype_code: u16, rdata: &[u8]) -> String {
    if let Some(s) = pretty_rdata(rtype_code, rdata)
        && reparses_to(rtype_code, &s, rdata)
    {
        return s;
    }
    generic_rdata(rdata)
}

/// RFC 3597 §5 generic form.
pub fn generic_rdata(rdata: &[u8]) -> String {
    let mut s = format!("\\# {}", rdata.len());
    if !rdata.is_empty() {
        s.push(' ');
        for b in rdata {
            let _ = write!(s, "{b:02x}");
        }
    }
    s
}

fn pretty_rdata(rtype_code: u16, rdata: &[u8]) -> Option<String> {
    let mut fast = String::new();
    if crate::present::write_rdata(&mut fast, rtype_code, rdata) {
        return Some(fast);
    }
    // Names are rendered by us (always absolute, with escapes); the rest by
    // domain's presentation code.
    match rtype_code {
        code::NS | code::CNAME | code::PTR | code::DNAME | code::ANAME => {
            name::validate(rdata).ok()?;
            Some(name::to_text(rdata))
        }
        code::MX => {
            let pref = be16(rdata, 0)?;
            let n = rdata.get(2..)?;
            name::validate(n).ok()?;
            Some(format!("{pref} {}", name::to_text(n)))
        }
        code::SRV => {
            let n = rdata.get(6..)?;
            name::validate(n).ok()?;
            Some(format!("{} {} {} {}", be16(rdata, 0)?, be16(rdata, 2)?, be16(rdata, 4)?, name::to_text(n)))
        }
        code::SOA => {
            let m = name::wire_len(rdata)?;
            let r = name::wire_len(rdata.get(m..)?)?;
            let t = rdata.get(m + r..)?;
            if t.len() != 20 {
                return None;
            }
            Some(format!(
                "{} {} {} {} {} {} {}",
                name::to_text(rdata.get(..m)?),
                name::to_text(rdata.get(m..m + r)?),
                be32(t, 0)?,
                be32(t, 4)?,
                be32(t, 8)?,
                be32(t, 12)?,
                be32(t, 16)?
            ))
        }
        _ => {
            let mut p = octseq::Parser::from_ref(rdata);
            let d =
                ZoneRecordData::<&[u8], ParsedName<&[u8]>>::parse_rdata(Rtype::from_int(rtype_code), &mut p)
                    .ok()??;
            if matches!(d, ZoneRecordData::Unknown(_)) {
                return None;
            }
            Some(d.to_string())
        }
    }
}

fn reparses_to(rtype_code: u16, text: &str, rdata: &[u8]) -> bool {
    // Read back under an origin that no exported name ends in, so that a
    // name written without its final dot (domain 0.12.3 writes IPSECKEY's
    // gateway so) shows up as different instead of passing as absolute.
    const ORIGIN: &[u8] = b"\x0eexport-checked\x07invalid\x00";
    let line = format!("export-checked.invalid. 0 IN {} {}\n", type_text(rtype_code), text);
    match parse(&line, ORIGIN) {
        Ok(recs) => recs.len() == 1 && recs.first().is_some_and(|r| &r.rdata[..] == rdata),
        Err(_) => false,
    }
}

/// Renders records as a zone file with absolute names.
pub fn render(origin: &[u8], records: &[Record]) -> String {
    render_with(origin, records, false)
}

/// Renders records as DNS serves them, for other software: our private
/// types (ANAME) in the RFC 3597 generic form any server can load.
pub fn render_as_served(origin: &[u8], records: &[Record]) -> String {
    render_with(origin, records, true)
}

fn render_with(origin: &[u8], records: &[Record], generic_private: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "$ORIGIN {}", name::to_text(origin));
    render_records_into(&mut out, records, generic_private);
    out
}

/// Renders records as zone file lines with absolute names, without the
/// `$ORIGIN` line [`render`] starts with: a large zone can be rendered in
/// pieces (on several threads) and written piece by piece.
pub fn render_records(records: &[Record]) -> String {
    let mut out = String::new();
    render_records_into(&mut out, records, false);
    out
}

fn render_records_into(out: &mut String, records: &[Record], generic_private: bool) {
    out.reserve(records.len() * 64);
    for r in records {
        // The common and DNSSEC types need no parse-back check (see
        // `present`); the rest take the checked path.
        if !(generic_private && r.rtype == code::ANAME) && crate::present::write_record(out, r) {
            continue;
        }
        let (t, d) = if generic_private && r.rtype == code::ANAME {
            (format!("TYPE{}", r.rtype), generic_rdata(&r.rdata))
        } else {
            (type_text(r.rtype), rdata_text(r.rtype, &r.rdata))
        };
        let _ = writeln!(out, "{} {} IN {} {}", name::to_text(&r.owner), r.ttl, t, d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &str = r#"$TTL 300
@ IN SOA ns1 hostmaster ( 1 7200 3600 1209600 300 ) ; comment
  IN NS ns1
  IN MX 10 mail
ns1 A 192.0.2.1
 AAAA 2001:db8::1
txt TXT "hello world" "a\"b" \065bc
a\.b 60 TXT x
caa CAA 0 issue "letsencrypt.org"
srv._tcp SRV 0 5 443 www
nap NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp
ds DS 12345 13 2 3E2A9A8C2E6F0C6F8A5A9C1B3F0E6D4C2B1A0F9E8D7C6B5A4F3E2D1C0B9A8F7E
tlsa._443._tcp TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
ssh SSHFP 4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789
svc SVCB 1 . alpn=h2,h3 port=8443 ipv4hint=192.0.2.1
https HTTPS 1 svc alpn=h3
unk TYPE65280 \# 4 0A000001
empty TYPE999 \# 0
ptr PTR www
*.wild A 192.0.2.9
"#;

    fn origin() -> Box<[u8]> {
        name::from_text("example.com.", None).unwrap()
    }

    #[test]
    fn parses_and_round_trips_losslessly() {
        let recs = parse(ZONE, &origin()).unwrap();
        assert_eq!(recs.len(), 19);
        let text = render(&origin(), &recs);
        let again = parse(&text, &origin()).unwrap();
        assert_eq!(recs, again, "export:\n{text}");
    }

    #[test]
    fn aname_and_alias_parse_render_and_round_trip() {
        let text = "@ 300 SOA ns hm 1 2 3 4 5\n@ 300 ANAME host.provider.test.\nwww ALIAS example.com.\nalias A 192.0.2.1\n";
        let recs = parse(text, &origin()).unwrap();
        let types: Vec<u16> = recs.iter().map(|r| r.rtype).collect();
        assert_eq!(types, vec![code::SOA, code::ANAME, code::ANAME, code::A]);
        assert_eq!(&recs[2].rdata[..], &origin()[..]);
        let out = render(&origin(), &recs);
        assert!(out.contains("example.com. 300 IN ANAME host.provider.test."), "{out}");
        assert_eq!(parse(&out, &origin()).unwrap(), recs);
        let served = render_as_served(&origin(), &recs);
        assert!(served.contains("IN TYPE65401 \\# "), "{served}");
        assert_eq!(parse(&served, &origin()).unwrap(), recs);
        // Generic form of a bad name is refused like any bad ANAME.
        let e = parse("@ 300 TYPE65401 \\# 2 0501\n", &origin()).unwrap_err();
        assert!(e.reason.contains("ANAME"), "{e}");
        let e = parse("@ 300 ANAME bad..name.\n", &origin()).unwrap_err();
        assert!(e.reason.contains("ANAME") && !e.reason.contains("CNAME"), "{e}");
        assert_eq!(type_from_text("alias"), Some(code::ANAME));
    }

    /// Regression: the scanner's offset before an entry can lie inside the
    /// previous record's last line, which gave the second record line 1.
    #[test]
    fn record_lines_are_the_lines_records_start_on() {
        let text = "@ 300 SOA ns hm 1 2 3 4 5\nwww A 192.0.2.1\n\n; c\nmail A 192.0.2.2\nx TXT ( a\n b )\n$TTL 60\ny A 192.0.2.3\n";
        let (_, lines) = parse_with_lines(text, &origin()).unwrap();
        assert_eq!(lines, vec![1, 2, 5, 6, 9]);
        // Found by fuzzing: after a leading $ORIGIN, an ANAME came back as
        // the CNAME it is scanned as, because its line was taken as 1.
        let text = "$ORIGIN example.com.\n0 3600 IN ANAME x.example.com.\n";
        let (recs, lines) = parse_with_lines(text, &origin()).unwrap();
        assert_eq!((lines, recs[0].rtype), (vec![2], code::ANAME));
    }

    #[test]
    fn unknown_types_render_generically() {
        assert_eq!(rdata_text(65280, &[10, 0, 0, 1]), "\\# 4 0a000001");
        assert_eq!(rdata_text(999, &[]), "\\# 0");
        // Malformed known-type rdata falls back to the generic form too.
        assert_eq!(rdata_text(code::A, &[1, 2, 3]), "\\# 3 010203");
    }

    /// Inputs the fuzzer found that made domain 0.12.3's scanner panic.
    #[test]
    fn scanner_panics_found_by_fuzzing_are_clean_errors() {
        assert_eq!(parse("6 TXT 1 ", &origin()).unwrap().len(), 1);
        assert_eq!(parse("a TXT \"x\" ; c", &origin()).unwrap().len(), 1);
        let e = parse("x TXT ( abc\n", &origin()).unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (1, "'(' is never closed"));
        let e = parse("x TXT ok\ny TXT \"abc\n", &origin()).unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (2, "quoted string is never closed"));
        let e = parse("x TXT abc )\n", &origin()).unwrap_err();
        assert_eq!(e.line, 1);
        // Escaped and quoted parentheses do not count.
        assert_eq!(parse("x TXT \"(\" \\(\n", &origin()).unwrap().len(), 1);
    }

    #[test]
    fn errors_carry_the_line_number() {
        let bad = "$TTL 300\n@ SOA ns hm 1 2 3 4 5\n\n; c\nwww A 192.0.2.300\n";
        let e = parse(bad, &origin()).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        let inc = "$INCLUDE /etc/passwd\n";
        let e = parse(inc, &origin()).unwrap_err();
        assert!(e.reason.contains("INCLUDE"), "{e}");
        let out = "www.example.org. 300 A 192.0.2.1\n";
        let e = parse(out, &origin()).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.reason.contains("outside"), "{e}");
    }

    /// Regression: `@` in rdata was read as the literal label `\@`, so
    /// `www CNAME @` pointed at `\@.example.com.`. RFC 1035 §5.1: a bare
    /// `@` is the current origin wherever a name is expected.
    #[test]
    fn at_sign_in_rdata_is_the_origin() {
        let text = "@ 300 SOA @ @ 1 2 3 4 5\nwww CNAME @\n@ MX 10 @\nlit CNAME \\@\n";
        let recs = parse(text, &origin()).unwrap();
        let o = origin();
        assert_eq!(&recs[1].rdata[..], &o[..], "{}", name::to_text(&recs[1].rdata));
        assert_eq!(&recs[2].rdata[2..], &o[..]);
        assert_eq!(recs[0].rdata.get(..o.len() * 2), Some([&o[..], &o[..]].concat().as_slice()));
        // `\@` is a label made of the character @.
        assert_eq!(name::to_text(&recs[3].rdata), "\\@.example.com.");
    }

    /// Regression: AFSDB (RFC 1183) and KX (RFC 2230) were refused, so a
    /// zone with one could not be imported at all.
    #[test]
    fn afsdb_and_kx_are_imported() {
        let text = "@ 300 SOA ns hm 1 2 3 4 5\nafs AFSDB 1 afsdb.example.net.\nkx KX 10 @\n";
        let recs = parse(text, &origin()).unwrap();
        assert_eq!(recs[1].rtype, 18);
        assert_eq!(
            &recs[1].rdata[..],
            &[&[0, 1][..], &name::from_text("afsdb.example.net.", None).unwrap()].concat()[..]
        );
        assert_eq!(recs[2].rtype, 36);
        assert_eq!(&recs[2].rdata[..], &[&[0, 10][..], &origin()].concat()[..]);
        let out = render(&origin(), &recs);
        assert!(
            out.contains("IN AFSDB 1 afsdb.example.net.\n") && out.contains("IN KX 10 example.com.\n"),
            "{out}"
        );
        assert_eq!(parse(&out, &origin()).unwrap(), recs);
    }
}

#[cfg(test)]
#[path = "zonefile_tests.rs"]
mod names_tests;

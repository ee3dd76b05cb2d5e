//! A pass over a zone file before `domain`'s scanner reads it, for the two
//! things that scanner gets wrong or lacks.
//!
//! 1. **`@` in rdata.** RFC 1035 §5.1: `@` alone denotes the current
//!    origin. The scanner knows that only in the owner field; in rdata it
//!    reads `@` as a label, which made `www CNAME @` a CNAME to
//!    `\@.example.com.`. Every unquoted `@` token in a field that holds a
//!    name (see [`crate::rtype::name_fields`]) is replaced with the
//!    current origin written out absolutely. A quoted `"@"` or an escaped
//!    `\@` stays a label made of the character `@`, as in Knot and BIND.
//! 2. **Types the scanner does not know** (AFSDB, RT, KX, PX, LP, SPF,
//!    KEY, SMIMEA, DHCID, URI, EUI48/64, L32/L64, NID, CSYNC, CERT): their
//!    presentation form is encoded here (see [`crate::rdatatext`]) and
//!    handed on as the RFC 3597 §5 generic form `TYPEnnn \# len hex`, which
//!    the scanner reads for any type.
//!
//! The pass follows the scanner's view of entries: parentheses join lines,
//! `;` starts a comment, quotes group, `\` escapes, an indented line has
//! no owner, `$ORIGIN` changes the origin (relative to the one before).
//! Only tokens are replaced, never line breaks, so every record still
//! starts on the line it was written on and errors keep their line.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::name;
use crate::rdatatext;
use crate::rtype::{self, code};
use crate::zonefile::ParseError;

/// One token of an entry: byte range in the text, and whether it was
/// quoted.
#[derive(Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    quoted: bool,
}

/// One entry (a record or a directive): its tokens, the line it starts on
/// and whether that line was indented (no owner).
struct Entry {
    tokens: Vec<Token>,
    line: usize,
    indented: bool,
}

/// Splits `text` into entries as the zone file scanner does and hands each
/// to `f`, in order. One entry's buffer is reused, so memory stays
/// bounded by the longest entry, not by the file.
fn for_each_entry(text: &str, mut f: impl FnMut(&Entry) -> Result<(), ParseError>) -> Result<(), ParseError> {
    let bytes = text.as_bytes();
    let mut cur = Entry { tokens: Vec::new(), line: 1, indented: false };
    let (mut line, mut depth) = (1usize, 0usize);
    let mut i = 0;
    let mut at_line_start = true;
    while let Some(&b) = bytes.get(i) {
        if at_line_start && depth == 0 {
            if !cur.tokens.is_empty() {
                f(&cur)?;
            }
            cur.tokens.clear();
            cur.line = line;
            cur.indented = b == b' ' || b == b'\t';
        }
        at_line_start = false;
        match b {
            b'\n' => {
                line += 1;
                at_line_start = true;
                i += 1;
            }
            b';' => {
                while bytes.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b if b.is_ascii_whitespace() => i += 1,
            b'"' => {
                let start = i;
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    i += 1;
                    match c {
                        b'\\' => i += escaped_len(bytes, i),
                        b'"' => break,
                        b'\n' => line += 1,
                        _ => {}
                    }
                }
                let end = i.min(bytes.len());
                cur.tokens.push(Token { start, end, quoted: true });
            }
            _ => {
                let start = i;
                while let Some(&c) = bytes.get(i) {
                    if c.is_ascii_whitespace() || matches!(c, b';' | b'(' | b')' | b'"') {
                        break;
                    }
                    i += if c == b'\\' { 1 + escaped_len(bytes, i + 1) } else { 1 };
                }
                let end = i.min(bytes.len());
                cur.tokens.push(Token { start, end, quoted: false });
            }
        }
    }
    if !cur.tokens.is_empty() {
        f(&cur)?;
    }
    Ok(())
}

/// The code of a type this pass has work for (one with a name field, or
/// one it encodes), from its mnemonic or `TYPEnnn`; `None` for the rest,
/// which the scanner reads as they are. A `match` on the uppercased
/// token, as this runs once per record of the file.
fn type_code(t: &str) -> Option<u16> {
    let mut buf = [0u8; 10];
    let upper = buf.get_mut(..t.len())?;
    upper.copy_from_slice(t.as_bytes());
    upper.make_ascii_uppercase();
    let code = match &*upper {
        b"NS" => code::NS,
        b"MD" => code::MD,
        b"MF" => code::MF,
        b"CNAME" => code::CNAME,
        b"SOA" => code::SOA,
        b"MB" => code::MB,
        b"MG" => code::MG,
        b"MR" => code::MR,
        b"PTR" => code::PTR,
        b"MINFO" => code::MINFO,
        b"MX" => code::MX,
        b"RP" => code::RP,
        b"AFSDB" => code::AFSDB,
        b"RT" => code::RT,
        b"KEY" => code::KEY,
        b"PX" => code::PX,
        b"LOC" => code::LOC,
        b"SRV" => code::SRV,
        b"NAPTR" => code::NAPTR,
        b"KX" => code::KX,
        b"CERT" => code::CERT,
        b"DNAME" => code::DNAME,
        b"APL" => code::APL,
        b"IPSECKEY" => code::IPSECKEY,
        b"RRSIG" => code::RRSIG,
        b"NSEC" => code::NSEC,
        b"DHCID" => code::DHCID,
        b"SMIMEA" => code::SMIMEA,
        b"CSYNC" => code::CSYNC,
        b"SVCB" => code::SVCB,
        b"HTTPS" => code::HTTPS,
        b"SPF" => code::SPF,
        b"NID" => code::NID,
        b"L32" => code::L32,
        b"L64" => code::L64,
        b"LP" => code::LP,
        b"EUI48" => code::EUI48,
        b"EUI64" => code::EUI64,
        b"URI" => code::URI,
        [b'T', b'Y', b'P', b'E', digits @ ..] => std::str::from_utf8(digits).ok()?.parse().ok()?,
        _ => return None,
    };
    Some(code)
}

fn is_class(t: &str) -> bool {
    ["IN", "CH", "HS", "CS", "NONE", "ANY"].iter().any(|c| t.eq_ignore_ascii_case(c))
        || t.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("CLASS"))
}

/// Rewrites `text` as described in the module documentation. `origin` is
/// the initial origin (wire form).
pub(crate) fn rewrite<'a>(text: &'a str, origin: &[u8]) -> Result<Cow<'a, str>, ParseError> {
    let mut origin: Box<[u8]> = origin.into();
    // The origin in presentation form, made when an `@` first needs it.
    let mut origin_text: Option<String> = None;
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for_each_entry(text, |e| {
        let tok = |t: &Token| text.get(t.start..t.end).unwrap_or("");
        let Some(first) = e.tokens.first() else { return Ok(()) };
        if !e.indented && tok(first).starts_with('$') {
            if tok(first).eq_ignore_ascii_case("$ORIGIN") {
                // `$ORIGIN @` keeps the origin; the scanner would take the
                // label `@`. A bad $ORIGIN is left for the scanner to report.
                if let Some(t) = e.tokens.get(1).filter(|t| !t.quoted && tok(t) == "@") {
                    edits.push((t.start, t.end, name::to_text(&origin)));
                }
                if let Some(o) = e.tokens.get(1).and_then(|t| name::from_text(tok(t), Some(&origin)).ok()) {
                    origin = o;
                    origin_text = None;
                }
            }
            return Ok(());
        }
        // [owner] [ttl] [class] type rdata..., ttl and class in either order.
        let mut i = usize::from(!e.indented);
        for _ in 0..2 {
            match e.tokens.get(i).map(tok) {
                Some(t) if t.starts_with(|c: char| c.is_ascii_digit()) || is_class(t) => i += 1,
                _ => {}
            }
        }
        let Some(type_tok) = e.tokens.get(i) else { return Ok(()) };
        let Some(code) = type_code(tok(type_tok)) else { return Ok(()) };
        let rdata = e.tokens.get(i + 1..).unwrap_or(&[]);
        if rdata.first().is_some_and(|t| !t.quoted && tok(t) == "\\#") {
            return Ok(());
        }
        if rdatatext::is_encoded_here(code) {
            let fields: Vec<(&str, bool)> = rdata.iter().map(|t| (tok(t), t.quoted)).collect();
            let wire = rdatatext::encode(code, &fields, &origin)
                .map_err(|r| ParseError::at(e.line, format!("bad {} record data: {r}", tok(type_tok))))?;
            edits.push((type_tok.start, type_tok.end, format!("TYPE{code}")));
            let mut generic = format!("\\# {}", wire.len());
            if !wire.is_empty() {
                generic.push(' ');
                for b in &wire {
                    let _ = write!(generic, "{b:02x}");
                }
            }
            match rdata.first() {
                Some(t) => edits.push((t.start, t.end, generic)),
                None => edits.push((type_tok.end, type_tok.end, format!(" {generic}"))),
            }
            for t in rdata.iter().skip(1) {
                edits.push((t.start, t.end, String::new()));
            }
            return Ok(());
        }
        for &slot in rtype::name_fields(code, |k| rdata.get(k).map(tok)) {
            if let Some(t) = rdata.get(slot).filter(|t| !t.quoted && tok(t) == "@") {
                let at = origin_text.get_or_insert_with(|| name::to_text(&origin));
                edits.push((t.start, t.end, at.clone()));
            }
        }
        Ok(())
    })?;
    if edits.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    edits.sort_by_key(|&(s, _, _)| s);
    let mut out = String::with_capacity(text.len() + edits.len() * 16);
    let mut pos = 0;
    // Tokens begin and end on character boundaries, so every slice exists;
    // should one not, the file is refused rather than cut.
    let broken = || ParseError::at(0, "the zone file could not be read (please report it)");
    for (s, e, r) in edits {
        out.push_str(text.get(pos..s).ok_or_else(broken)?);
        out.push_str(&r);
        pos = e;
    }
    out.push_str(text.get(pos..).ok_or_else(broken)?);
    Ok(Cow::Owned(out))
}

/// The length of the character at `i` (the one after a `\`), so that an
/// escape never ends inside a multi-byte character.
fn escaped_len(bytes: &[u8], i: usize) -> usize {
    match bytes.get(i) {
        None => 0,
        Some(&b) if b < 0x80 => 1,
        Some(&b) if b >= 0xf0 => 4,
        Some(&b) if b >= 0xe0 => 3,
        Some(_) => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_follow_parentheses_comments_quotes_and_indentation() {
        let text = "a 1 IN TXT ( \"x ; y\" ; c\n z )\n  B\n$ORIGIN x.\n";
        let mut toks: Vec<Vec<&str>> = Vec::new();
        let mut lines = Vec::new();
        for_each_entry(text, |e| {
            toks.push(e.tokens.iter().map(|t| &text[t.start..t.end]).collect());
            lines.push((e.line, e.indented));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            toks,
            vec![vec!["a", "1", "IN", "TXT", "\"x ; y\"", "z"], vec!["B"], vec!["$ORIGIN", "x."]]
        );
        assert_eq!(lines, vec![(1, false), (3, true), (4, false)]);
    }

    /// An escaped multi-byte character is one token character: the
    /// rewritten text keeps everything around it.
    #[test]
    fn escapes_of_multibyte_characters_stay_whole() {
        let o = name::from_text("example.com.", None).unwrap();
        for text in
            ["x SPF \"a\" b\\é c\nw CNAME @\n", "x SPF \"\\é\" \"z\"\nw CNAME @\n", "x AFSDB 1 h\\é\n"]
        {
            let out = rewrite(text, &o).unwrap();
            assert!(out.ends_with("CNAME example.com.\n") || out.contains("TYPE18"), "{out}");
            let tail = if text.contains("AFSDB") { "" } else { "w CNAME" };
            assert!(out.contains(tail), "{out}");
        }
    }

    #[test]
    fn at_is_replaced_only_in_name_fields() {
        let o = name::from_text("example.com.", None).unwrap();
        let text = "a TXT @\nb 60 IN CNAME @\n MX 10 @ ; @\n$ORIGIN sub\nd NS @\ne CNAME \\@\nf CNAME \"@\"\n$ORIGIN @\n";
        let out = rewrite(text, &o).unwrap();
        assert_eq!(
            out,
            "a TXT @\nb 60 IN CNAME example.com.\n MX 10 example.com. ; @\n$ORIGIN sub\nd NS sub.example.com.\ne CNAME \\@\nf CNAME \"@\"\n$ORIGIN sub.example.com.\n"
        );
    }
}

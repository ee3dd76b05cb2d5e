//! Domain names in wire form.
//!
//! A name is kept as its uncompressed wire encoding (length-prefixed labels,
//! ending in the root label). Lookups use the lowercased form as the key;
//! the original case is kept for answers and export. Decoding compressed
//! names from messages is bounded: at most [`MAX_NAME_LEN`] octets and
//! pointers that only point backwards, and never into the header, so a
//! pointer loop cannot spin.

use std::fmt;

use crate::message::HEADER_LEN;

/// RFC 1035 §2.3.4: a name is at most 255 octets in wire form.
pub const MAX_NAME_LEN: usize = 255;
/// RFC 1035 §2.3.4: a label is at most 63 octets.
pub const MAX_LABEL_LEN: usize = 63;

/// Why a name in a message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The message ended inside the name.
    #[error("name runs past the end of the message")]
    ShortInput,
    /// A label longer than 63 octets, or an extended label type.
    #[error("bad label length")]
    BadLabel,
    /// The decompressed name is longer than 255 octets.
    #[error("name longer than 255 octets")]
    TooLong,
    /// A compression pointer that does not point strictly backwards.
    #[error("bad compression pointer")]
    BadPointer,
}

/// A name decoded into a fixed stack buffer: no allocation on the hot path.
#[derive(Clone)]
pub struct NameBuf {
    buf: [u8; MAX_NAME_LEN],
    len: usize,
}

impl Default for NameBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl NameBuf {
    /// An empty buffer (not yet a valid name).
    pub const fn new() -> Self {
        NameBuf { buf: [0; MAX_NAME_LEN], len: 0 }
    }

    /// The wire form.
    pub fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Replaces the content with `wire`, which must be a valid wire name.
    pub fn set(&mut self, wire: &[u8]) {
        let n = wire.len().min(MAX_NAME_LEN);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(..n), wire.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.len = n;
    }

    /// A lowercased copy of the wire name `wire`.
    pub fn lowercased(wire: &[u8]) -> Self {
        let mut n = NameBuf::new();
        n.set(wire);
        n.make_lowercase();
        n
    }

    /// Lowercases ASCII letters in place (labels' length octets are < 64 and
    /// therefore never letters).
    pub fn make_lowercase(&mut self) {
        if let Some(s) = self.buf.get_mut(..self.len) {
            s.make_ascii_lowercase();
        }
    }

    /// Decodes a possibly compressed name at `pos` of `msg`. Returns the
    /// position just after the name's encoding at `pos` (after the first
    /// pointer, if any).
    pub fn decode(&mut self, msg: &[u8], mut pos: usize) -> Result<usize, NameError> {
        self.len = 0;
        let mut end: Option<usize> = None;
        // Pointers must point strictly before the label that holds them, so
        // the walk always moves backwards and terminates.
        let mut limit = pos;
        loop {
            let len = *msg.get(pos).ok_or(NameError::ShortInput)? as usize;
            match len & 0xC0 {
                0x00 => {
                    let label = msg.get(pos..pos + 1 + len).ok_or(NameError::ShortInput)?;
                    if self.len + label.len() > MAX_NAME_LEN {
                        return Err(NameError::TooLong);
                    }
                    self.buf
                        .get_mut(self.len..self.len + label.len())
                        .ok_or(NameError::TooLong)?
                        .copy_from_slice(label);
                    self.len += label.len();
                    pos += 1 + len;
                    if len == 0 {
                        return Ok(end.unwrap_or(pos));
                    }
                }
                0xC0 => {
                    let lo = *msg.get(pos + 1).ok_or(NameError::ShortInput)? as usize;
                    let target = ((len & 0x3F) << 8) | lo;
                    if end.is_none() {
                        end = Some(pos + 2);
                    }
                    // Nor into the header, which holds no names: a name
                    // made of header octets would change meaning when
                    // the ID or a count changes, and TSIG signs neither
                    // the ID nor the count as sent (RFC 8945 §4.3.1).
                    if target >= limit || target < HEADER_LEN {
                        return Err(NameError::BadPointer);
                    }
                    limit = target;
                    pos = target;
                }
                _ => return Err(NameError::BadLabel),
            }
        }
    }
}

/// Checks that `wire` is one complete, uncompressed wire name and nothing else.
pub fn validate(wire: &[u8]) -> Result<(), NameError> {
    if wire.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    let mut pos = 0;
    loop {
        let len = *wire.get(pos).ok_or(NameError::ShortInput)? as usize;
        if len > MAX_LABEL_LEN {
            return Err(NameError::BadLabel);
        }
        pos += 1 + len;
        if len == 0 {
            return if pos == wire.len() { Ok(()) } else { Err(NameError::BadLabel) };
        }
    }
}

/// Length of the uncompressed wire name at the start of `wire`, if well formed.
pub fn wire_len(wire: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let len = *wire.get(pos)? as usize;
        if len > MAX_LABEL_LEN {
            return None;
        }
        pos += 1 + len;
        if pos > MAX_NAME_LEN {
            return None;
        }
        if len == 0 {
            return if pos <= wire.len() { Some(pos) } else { None };
        }
    }
}

/// The name without its first label (`None` for the root).
pub fn parent(wire: &[u8]) -> Option<&[u8]> {
    let len = *wire.first()? as usize;
    if len == 0 {
        return None;
    }
    wire.get(1 + len..)
}

/// Number of labels, not counting the root.
pub fn label_count(wire: &[u8]) -> usize {
    let mut n = 0;
    let mut pos = 0;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            break;
        }
        n += 1;
        pos += 1 + len as usize;
    }
    n
}

/// True if `name` equals `zone` or lies below it. Both must be in the same
/// case (normally both lowercased).
pub fn is_at_or_below(name: &[u8], zone: &[u8]) -> bool {
    if name.len() < zone.len() {
        return false;
    }
    // Walk label boundaries of `name` so that "xexample.com" is not taken
    // as below "example.com".
    let mut rest = name;
    loop {
        if rest.len() == zone.len() {
            return rest == zone;
        }
        match parent(rest) {
            Some(p) if p.len() >= zone.len() => rest = p,
            _ => return false,
        }
    }
}

/// The start offsets of a wire name's labels, root excluded, and their
/// number (a name has at most 127), without allocating.
pub(crate) fn label_starts(wire: &[u8]) -> ([u8; 128], usize) {
    let mut at = [0u8; 128];
    let (mut pos, mut count) = (0usize, 0usize);
    while let Some(&len) = wire.get(pos) {
        if len == 0 || count == at.len() {
            break;
        }
        if let Some(slot) = at.get_mut(count) {
            *slot = pos as u8;
        }
        count += 1;
        pos += 1 + len as usize;
    }
    (at, count)
}

/// A byte string whose plain byte order is the DNSSEC canonical order of
/// names (RFC 4034 §6.1), so that an ordered index (SQLite, a B-tree) can
/// find a name's neighbours and, as one contiguous range, its
/// descendants.
///
/// Labels are taken from the root down, lowercased, each followed by a
/// 0x00 separator; the octets 0x00 and 0x01 inside a label are escaped as
/// 0x01 0x01 and 0x01 0x02, so a separator sorts before any label octet
/// and a shorter label before a longer one it prefixes. The descendants of
/// a name with key `k` are exactly the keys that start with `k` and are
/// longer.
pub fn canonical_key(wire: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; MAX_CANONICAL_KEY_LEN];
    canonical_key_into(wire, &mut buf).to_vec()
}

/// Longest [`canonical_key`]: every octet of a 255-octet name escaped.
pub const MAX_CANONICAL_KEY_LEN: usize = 2 * MAX_NAME_LEN;

/// [`canonical_key`] written into a caller's buffer (no allocation, for
/// the query path); returns the key.
pub fn canonical_key_into<'b>(wire: &[u8], buf: &'b mut [u8; MAX_CANONICAL_KEY_LEN]) -> &'b [u8] {
    let (starts, count) = label_starts(wire);
    let mut out = 0usize;
    let mut push = |b: u8| {
        if let Some(slot) = buf.get_mut(out) {
            *slot = b;
            out += 1;
        }
    };
    for &s in starts.get(..count).unwrap_or(&[]).iter().rev() {
        let s = s as usize;
        let len = wire.get(s).copied().unwrap_or(0) as usize;
        for &b in wire.get(s + 1..s + 1 + len).unwrap_or(&[]) {
            match b {
                0 => {
                    push(1);
                    push(1);
                }
                1 => {
                    push(1);
                    push(2);
                }
                b => push(b.to_ascii_lowercase()),
            }
        }
        push(0);
    }
    buf.get(..out).unwrap_or(&[])
}

/// The (lowercased) wire name of a [`canonical_key`]; `None` if `key` is
/// not one.
pub fn from_canonical_key(key: &[u8]) -> Option<NameBuf> {
    // Label spans of the key, root side first.
    let mut spans = [(0usize, 0usize); 128];
    let (mut count, mut start, mut pos) = (0usize, 0usize, 0usize);
    while let Some(&b) = key.get(pos) {
        match b {
            0 => {
                *spans.get_mut(count)? = (start, pos);
                count += 1;
                pos += 1;
                start = pos;
            }
            1 => pos += 2,
            _ => pos += 1,
        }
    }
    if start != key.len() {
        return None;
    }
    let mut wire = [0u8; MAX_NAME_LEN];
    let mut w = 0usize;
    for &(s, e) in spans.get(..count)?.iter().rev() {
        let len_at = w;
        w += 1;
        let mut p = s;
        while p < e {
            let b = match *key.get(p)? {
                1 => {
                    p += 1;
                    key.get(p)?.checked_sub(1)?
                }
                b => b,
            };
            *wire.get_mut(w)? = b;
            w += 1;
            p += 1;
        }
        let len = w - len_at - 1;
        if len == 0 || len > MAX_LABEL_LEN {
            return None;
        }
        *wire.get_mut(len_at)? = len as u8;
    }
    *wire.get_mut(w)? = 0;
    let mut n = NameBuf::new();
    n.set(wire.get(..w + 1)?);
    Some(n)
}

/// The exclusive upper bound of the keys of `key`'s descendants (see
/// [`canonical_key`]): the key with its final separator raised to 0x01.
/// The root's key is empty, and every key is its descendant: `None`.
pub fn canonical_key_end(key: &[u8]) -> Option<Vec<u8>> {
    let (_, head) = key.split_last()?;
    let mut end = head.to_vec();
    end.push(1);
    Some(end)
}

/// Lowercased copy.
pub fn to_lowercase(wire: &[u8]) -> Box<[u8]> {
    wire.to_ascii_lowercase().into_boxed_slice()
}

/// Writes a wire name in presentation format, with a trailing dot and
/// RFC 1035 §5.1 escapes.
pub fn fmt_wire(wire: &[u8], f: &mut impl fmt::Write) -> fmt::Result {
    let mut pos = 0;
    let mut first = true;
    loop {
        let Some(&len) = wire.get(pos) else {
            return Ok(());
        };
        if len == 0 {
            if first {
                f.write_char('.')?;
            }
            return Ok(());
        }
        let label = wire.get(pos + 1..pos + 1 + len as usize).unwrap_or(&[]);
        for &b in label {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    f.write_char('\\')?;
                    f.write_char(b as char)?;
                }
                0x21..=0x7E => f.write_char(b as char)?,
                _ => write!(f, "\\{b:03}")?,
            }
        }
        f.write_char('.')?;
        first = false;
        pos += 1 + len as usize;
    }
}

/// Presentation form of a wire name.
pub fn to_text(wire: &[u8]) -> String {
    let mut s = String::with_capacity(wire.len() + 1);
    // Writing to a String cannot fail.
    let _ = fmt_wire(wire, &mut s);
    s
}

/// Parses an absolute or relative presentation name. Relative names are
/// completed with `origin` (a wire name); `@` stands for the origin.
pub fn from_text(text: &str, origin: Option<&[u8]>) -> Result<Box<[u8]>, NameError> {
    let text = text.trim();
    if text == "@" {
        return origin.map(Box::from).ok_or(NameError::BadLabel);
    }
    if text == "." {
        return Ok(Box::from(&[0u8][..]));
    }
    let mut out = Vec::with_capacity(text.len() + 2);
    let mut label = Vec::with_capacity(MAX_LABEL_LEN);
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut absolute = false;
    let push_label = |out: &mut Vec<u8>, label: &mut Vec<u8>| -> Result<(), NameError> {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(NameError::BadLabel);
        }
        out.push(label.len() as u8);
        out.append(label);
        Ok(())
    };
    while let Some(&b) = bytes.get(i) {
        match b {
            b'.' => {
                push_label(&mut out, &mut label)?;
                if i + 1 == bytes.len() {
                    absolute = true;
                }
                i += 1;
            }
            b'\\' => {
                let d: Option<u8> = bytes
                    .get(i + 1..i + 4)
                    .filter(|d| d.iter().all(u8::is_ascii_digit))
                    .and_then(|d| std::str::from_utf8(d).ok()?.parse::<u16>().ok())
                    .and_then(|v| u8::try_from(v).ok());
                if let Some(v) = d {
                    label.push(v);
                    i += 4;
                } else {
                    let c = *bytes.get(i + 1).ok_or(NameError::BadLabel)?;
                    if c.is_ascii_digit() {
                        return Err(NameError::BadLabel);
                    }
                    label.push(c);
                    i += 2;
                }
            }
            _ => {
                label.push(b);
                i += 1;
            }
        }
    }
    if !absolute {
        if !label.is_empty() {
            push_label(&mut out, &mut label)?;
        }
        match origin {
            Some(o) => out.extend_from_slice(o),
            None => return Err(NameError::BadLabel),
        }
    } else {
        out.push(0);
    }
    if out.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    Ok(out.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_compressed_and_loops() {
        // header (12) + "a" + ptr to 12 would be a self loop.
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(b"\x03www\x07example\x03com\x00");
        msg.extend_from_slice(b"\x04mail\xC0\x10"); // pointer to "example.com"
        let mut n = NameBuf::new();
        let end = n.decode(&msg, 29).unwrap();
        assert_eq!(end, msg.len());
        assert_eq!(to_text(n.as_slice()), "mail.example.com.");
        // A pointer to itself is refused.
        let mut lp = vec![0u8; 12];
        lp.extend_from_slice(b"\xC0\x0C");
        assert_eq!(n.decode(&lp, 12), Err(NameError::BadPointer));
        // A forward pointer is refused.
        let mut fw = vec![0u8; 12];
        fw.extend_from_slice(b"\xC0\x0E\x00");
        assert_eq!(n.decode(&fw, 12), Err(NameError::BadPointer));
    }

    #[test]
    fn tsig_signing_changed_a_name_pointing_into_the_header() {
        // Found by the `tsig` fuzz target: a name that pointed at ARCOUNT's
        // low octet (0, the root) read as another name once signing had
        // bumped ARCOUNT. Pointers into the header are refused.
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(b"\x01a\xC0\x0B");
        let mut n = NameBuf::new();
        assert_eq!(n.decode(&msg, 12), Err(NameError::BadPointer));
        for target in 0..12u8 {
            let mut m = vec![0u8; 12];
            m.extend_from_slice(&[0xC0, target]);
            assert_eq!(n.decode(&m, 12), Err(NameError::BadPointer), "pointer to {target}");
        }
    }

    #[test]
    fn over_long_names_are_refused() {
        let mut msg = vec![0u8; 12];
        for _ in 0..5 {
            msg.push(63);
            msg.extend_from_slice(&[b'a'; 63]);
        }
        msg.push(0);
        let mut n = NameBuf::new();
        assert_eq!(n.decode(&msg, 12), Err(NameError::TooLong));
        let mut bad = vec![0u8; 12];
        bad.push(64);
        bad.extend_from_slice(&[b'a'; 64]);
        bad.push(0);
        assert_eq!(n.decode(&bad, 12), Err(NameError::BadLabel));
    }

    #[test]
    fn text_round_trip_with_escapes() {
        let origin = from_text("example.com.", None).unwrap();
        let n = from_text("a\\.b.\\065x", Some(&origin)).unwrap();
        assert_eq!(&n[..], b"\x03a.b\x02Ax\x07example\x03com\x00");
        assert_eq!(to_text(&n), "a\\.b.Ax.example.com.");
        assert_eq!(from_text(&to_text(&n), None).unwrap(), n);
        let odd = b"\x02\x00\x20\x00";
        assert_eq!(to_text(odd), "\\000\\032.");
        assert_eq!(&from_text("\\000\\032.", None).unwrap()[..], odd);
        assert_eq!(&from_text("@", Some(&origin)).unwrap()[..], &origin[..]);
        assert!(from_text("a..b.", None).is_err());
    }

    #[test]
    fn subdomain_checks_respect_label_boundaries() {
        let zone = from_text("example.com.", None).unwrap();
        let a = from_text("www.example.com.", None).unwrap();
        let b = from_text("xexample.com.", None).unwrap();
        assert!(is_at_or_below(&a, &zone));
        assert!(is_at_or_below(&zone, &zone));
        assert!(!is_at_or_below(&b, &zone));
        assert_eq!(label_count(&a), 3);
    }

    #[test]
    fn canonical_key_orders_like_canonical_cmp() {
        // RFC 4034 §6.1's example, with octets 0 and 1 added.
        let rfc = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\000.z.example.",
            "\\000\\000.z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        let keys: Vec<Vec<u8>> = rfc.iter().map(|t| canonical_key(&from_text(t, None).unwrap())).collect();
        for w in keys.windows(2) {
            assert!(w[0] < w[1], "{:?} < {:?}", w[0], w[1]);
        }
        let z = canonical_key(&from_text("z.example.", None).unwrap());
        let end = canonical_key_end(&z).unwrap();
        for (t, k) in rfc.iter().zip(&keys) {
            let below = t.ends_with(".z.example.");
            assert_eq!(*k > z && *k < end, below, "{t}");
        }
        assert_eq!(canonical_key(&[0]), Vec::<u8>::new());
        assert_eq!(canonical_key_end(&[]), None);
    }

    #[test]
    fn canonical_keys_decode_to_the_lowercased_name() {
        for t in ["example.", "Z.a.Example.", "\\000\\001x.\\002.z.example.", "*.w.example.", "."] {
            let wire = from_text(t, None).unwrap();
            let key = canonical_key(&wire);
            assert_eq!(from_canonical_key(&key).unwrap().as_slice(), &to_lowercase(&wire)[..], "{t}");
        }
        let long = from_text(&format!("{}.", ["\\000"; 120].join(".")), None).unwrap();
        let mut buf = [0u8; MAX_CANONICAL_KEY_LEN];
        let key = canonical_key_into(&long, &mut buf);
        assert_eq!(from_canonical_key(key).unwrap().as_slice(), &long[..]);
        assert!(from_canonical_key(b"com").is_none(), "no final separator");
        assert!(from_canonical_key(b"com\0\0").is_none(), "empty label");
    }
}

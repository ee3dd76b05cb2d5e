//! Presentation form, both ways, of the assigned types that `domain`'s
//! zone file scanner does not know but Knot loads: AFSDB and RT
//! (RFC 1183), KEY (RFC 2535 §7.1, the DNSKEY format), PX (RFC 2163),
//! KX (RFC 2230), CERT (RFC 4398 §2.2), DHCID (RFC 4701 §3.4), SMIMEA
//! (RFC 8162, the TLSA format), CSYNC (RFC 7477 §2.1.1), SPF (RFC 4408
//! §3.1.1, the TXT format), NID, L32, L64 and LP (RFC 6742 §2.1-2.4),
//! EUI48 and EUI64 (RFC 7043 §3.2, §4.2), URI (RFC 7553 §4.4), LOC
//! (RFC 1876 §3) and APL (RFC 3123 §4).
//!
//! [`encode`] turns the rdata tokens of a zone file line into wire rdata
//! (the zone file pass in [`crate::prescan`] then hands that on as the
//! RFC 3597 generic form); [`write`] turns wire rdata back into the same
//! tokens. Names are written absolute and stored uncompressed, as RFC 3597
//! §4 requires of every type not defined in RFC 1035.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::name;
use crate::rtype::code;

/// Whether [`encode`] and [`write`] handle `rtype`.
pub(crate) fn is_encoded_here(rtype: u16) -> bool {
    matches!(
        rtype,
        code::AFSDB
            | code::RT
            | code::KX
            | code::LP
            | code::PX
            | code::SPF
            | code::KEY
            | code::SMIMEA
            | code::DHCID
            | code::URI
            | code::EUI48
            | code::EUI64
            | code::L32
            | code::L64
            | code::NID
            | code::CSYNC
            | code::CERT
            | code::LOC
            | code::APL
    )
}

/// A field reader over the tokens (text, quoted) of one record's rdata.
struct Fields<'a, 'b> {
    toks: &'b [(&'a str, bool)],
    origin: &'b [u8],
    out: Vec<u8>,
}

impl<'a> Fields<'a, '_> {
    fn next(&mut self, what: &str) -> Result<(&'a str, bool), String> {
        let (first, rest) = self.toks.split_first().ok_or_else(|| format!("missing {what}"))?;
        self.toks = rest;
        Ok(*first)
    }

    fn unquoted(&mut self, what: &str) -> Result<&'a str, String> {
        match self.next(what)? {
            (t, false) => Ok(t),
            (t, true) => Err(format!("{what} {t} must not be quoted")),
        }
    }

    fn number<T: TryFrom<u64>>(&mut self, what: &str) -> Result<T, String> {
        let t = self.unquoted(what)?;
        t.parse::<u64>().ok().and_then(|v| T::try_from(v).ok()).ok_or_else(|| format!("bad {what} {t:?}"))
    }

    fn u8(&mut self, what: &str) -> Result<(), String> {
        let v: u8 = self.number(what)?;
        self.out.push(v);
        Ok(())
    }

    fn u16(&mut self, what: &str) -> Result<(), String> {
        let v: u16 = self.number(what)?;
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }

    fn u32(&mut self, what: &str) -> Result<(), String> {
        let v: u32 = self.number(what)?;
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }

    /// A name: absolute, relative to the origin, or `@` (RFC 1035 §5.1).
    fn name(&mut self, what: &str) -> Result<(), String> {
        let t = self.unquoted(what)?;
        let n = name::from_text(t, Some(self.origin)).map_err(|e| format!("bad {what} {t:?}: {e}"))?;
        self.out.extend_from_slice(&n);
        Ok(())
    }

    /// One character string, quoted or not, with RFC 1035 §5.1 escapes;
    /// `prefixed` puts its length octet before it.
    fn string(&mut self, what: &str, prefixed: bool) -> Result<(), String> {
        let (t, quoted) = self.next(what)?;
        let t = if quoted { t.get(1..t.len().saturating_sub(1)).unwrap_or("") } else { t };
        let s = unescape(t).ok_or_else(|| format!("bad escape in {what} {t:?}"))?;
        if prefixed {
            let len = u8::try_from(s.len()).map_err(|_| format!("{what} longer than 255 octets"))?;
            self.out.push(len);
        }
        self.out.extend_from_slice(&s);
        Ok(())
    }

    /// The rest of the tokens, joined, as base64 (RFC 4648 §4).
    fn base64_rest(&mut self, what: &str) -> Result<(), String> {
        let text: String = self.toks.iter().map(|t| t.0).collect();
        self.toks = &[];
        let v = base64(&text).ok_or_else(|| format!("bad base64 in {what}"))?;
        if v.is_empty() {
            return Err(format!("missing {what}"));
        }
        self.out.extend_from_slice(&v);
        Ok(())
    }

    /// The rest of the tokens, joined, as hex digits.
    fn hex_rest(&mut self, what: &str) -> Result<(), String> {
        let text: String = self.toks.iter().map(|t| t.0).collect();
        self.toks = &[];
        let v = hex(&text).ok_or_else(|| format!("bad hex in {what}"))?;
        if v.is_empty() {
            return Err(format!("missing {what}"));
        }
        self.out.extend_from_slice(&v);
        Ok(())
    }

    /// `n` groups of one or two hex digits separated by `-` (RFC 7043).
    fn eui(&mut self, n: usize) -> Result<(), String> {
        let t = self.unquoted("address")?;
        let groups: Vec<&str> = t.split('-').collect();
        if groups.len() != n || groups.iter().any(|g| g.len() != 2) {
            return Err(format!("bad address {t:?}"));
        }
        for g in groups {
            self.out.push(u8::from_str_radix(g, 16).map_err(|_| format!("bad address {t:?}"))?);
        }
        Ok(())
    }

    /// Four groups of 1 to 4 hex digits separated by `:` (RFC 6742 §2.1).
    fn ilnp64(&mut self, what: &str) -> Result<(), String> {
        let t = self.unquoted(what)?;
        let groups: Vec<&str> = t.split(':').collect();
        if groups.len() != 4 || groups.iter().any(|g| g.is_empty() || g.len() > 4) {
            return Err(format!("bad {what} {t:?}"));
        }
        for g in groups {
            let v = u16::from_str_radix(g, 16).map_err(|_| format!("bad {what} {t:?}"))?;
            self.out.extend_from_slice(&v.to_be_bytes());
        }
        Ok(())
    }

    /// A number or one of `table`'s mnemonics.
    fn mnemonic(&mut self, what: &str, table: &[(&str, u16)]) -> Result<u16, String> {
        let t = self.unquoted(what)?;
        if let Some(&(_, v)) = table.iter().find(|(m, _)| m.eq_ignore_ascii_case(t)) {
            return Ok(v);
        }
        t.parse::<u16>().map_err(|_| format!("bad {what} {t:?}"))
    }

    /// The rest of the tokens as a type bitmap (RFC 4034 §4.1.2).
    fn types_rest(&mut self) -> Result<(), String> {
        let mut types = Vec::new();
        for &(t, _) in self.toks {
            types.push(crate::zonefile::type_from_text(t).ok_or_else(|| format!("unknown type {t:?}"))?);
        }
        self.toks = &[];
        types.sort_unstable();
        types.dedup();
        let mut window: Option<(u8, Vec<u8>)> = None;
        for t in types {
            let [w, low] = t.to_be_bytes();
            if window.as_ref().is_some_and(|(cw, _)| *cw != w)
                && let Some((cw, bits)) = window.take()
            {
                self.push_window(cw, &bits);
            }
            let (_, bits) = window.get_or_insert_with(|| (w, Vec::new()));
            let byte = usize::from(low / 8);
            if bits.len() <= byte {
                bits.resize(byte + 1, 0);
            }
            if let Some(b) = bits.get_mut(byte) {
                *b |= 0x80 >> (low % 8);
            }
        }
        if let Some((w, bits)) = window {
            self.push_window(w, &bits);
        }
        Ok(())
    }

    fn push_window(&mut self, w: u8, bits: &[u8]) {
        self.out.push(w);
        // At most 32 octets: the low octet of a type is below 256.
        self.out.push(bits.len() as u8);
        self.out.extend_from_slice(bits);
    }

    fn finish(self) -> Result<Vec<u8>, String> {
        match self.toks.first() {
            None => Ok(self.out),
            Some((t, _)) => Err(format!("unexpected {t:?} after the record data")),
        }
    }
}

/// CERT certificate types (RFC 4398 §2.1).
const CERT_TYPES: &[(&str, u16)] = &[
    ("PKIX", 1),
    ("SPKI", 2),
    ("PGP", 3),
    ("IPKIX", 4),
    ("ISPKI", 5),
    ("IPGP", 6),
    ("ACPKIX", 7),
    ("IACPKIX", 8),
    ("URI", 253),
    ("OID", 254),
];

/// DNSSEC algorithm mnemonics (IANA), as CERT's algorithm field takes them.
const ALGORITHMS: &[(&str, u16)] = &[
    ("RSAMD5", 1),
    ("DH", 2),
    ("DSA", 3),
    ("RSASHA1", 5),
    ("DSA-NSEC3-SHA1", 6),
    ("RSASHA1-NSEC3-SHA1", 7),
    ("RSASHA256", 8),
    ("RSASHA512", 10),
    ("ECC-GOST", 12),
    ("ECDSAP256SHA256", 13),
    ("ECDSAP384SHA384", 14),
    ("ED25519", 15),
    ("ED448", 16),
    ("INDIRECT", 252),
    ("PRIVATEDNS", 253),
    ("PRIVATEOID", 254),
];

/// Encodes the rdata tokens (text, quoted) of a record of `rtype` (one for
/// which [`is_encoded_here`] holds) to wire form; relative names are
/// completed with `origin`.
pub(crate) fn encode(rtype: u16, toks: &[(&str, bool)], origin: &[u8]) -> Result<Vec<u8>, String> {
    let mut f = Fields { toks, origin, out: Vec::new() };
    match rtype {
        code::AFSDB => {
            f.u16("subtype")?;
            f.name("hostname")?;
        }
        code::RT | code::KX | code::LP => {
            f.u16("preference")?;
            f.name("name")?;
        }
        code::PX => {
            f.u16("preference")?;
            f.name("MAP822")?;
            f.name("MAPX400")?;
        }
        code::SPF => {
            f.string("string", true)?;
            while !f.toks.is_empty() {
                f.string("string", true)?;
            }
        }
        code::KEY => {
            f.u16("flags")?;
            f.u8("protocol")?;
            f.u8("algorithm")?;
            f.base64_rest("public key")?;
        }
        code::SMIMEA => {
            f.u8("certificate usage")?;
            f.u8("selector")?;
            f.u8("matching type")?;
            f.hex_rest("certificate association data")?;
        }
        code::DHCID => f.base64_rest("digest")?,
        code::URI => {
            f.u16("priority")?;
            f.u16("weight")?;
            f.string("target", false)?;
        }
        code::EUI48 => f.eui(6)?,
        code::EUI64 => f.eui(8)?,
        code::L32 => {
            f.u16("preference")?;
            let t = f.unquoted("locator")?;
            let a: Ipv4Addr = t.parse().map_err(|_| format!("bad locator {t:?}"))?;
            f.out.extend_from_slice(&a.octets());
        }
        code::L64 | code::NID => {
            f.u16("preference")?;
            f.ilnp64(if rtype == code::NID { "node ID" } else { "locator" })?;
        }
        code::CSYNC => {
            f.u32("serial")?;
            f.u16("flags")?;
            f.types_rest()?;
        }
        code::CERT => {
            let t = f.mnemonic("certificate type", CERT_TYPES)?;
            f.out.extend_from_slice(&t.to_be_bytes());
            f.u16("key tag")?;
            let a = f.mnemonic("algorithm", ALGORITHMS)?;
            f.out.push(u8::try_from(a).map_err(|_| format!("bad algorithm {a}"))?);
            f.base64_rest("certificate")?;
        }
        code::LOC => loc(&mut f)?,
        code::APL => {
            while !f.toks.is_empty() {
                apl_item(&mut f)?;
            }
        }
        _ => return Err("type not handled".into()),
    }
    f.finish()
}

/// LOC (RFC 1876 §3): `d [m [s]] N|S d [m [s]] E|W alt[m] [size[m]
/// [hp[m] [vp[m]]]]`, seconds to the millisecond, metres to the
/// centimetre; size, hp and vp default to 1 m, 10 km and 10 m.
fn loc(f: &mut Fields<'_, '_>) -> Result<(), String> {
    f.out.push(0); // version
    let sizes_at = f.out.len();
    f.out.extend_from_slice(&[0x12, 0x16, 0x13]);
    for (pos, neg, max_deg) in [('N', 'S', 90u64), ('E', 'W', 180)] {
        let deg: u64 = f.number("degrees")?;
        if deg > max_deg {
            return Err(format!("bad degrees {deg}"));
        }
        let mut fields = [0u64; 2];
        let mut hemisphere = None;
        for (i, field) in fields.iter_mut().enumerate() {
            let t = f.unquoted("hemisphere")?;
            if t.eq_ignore_ascii_case(&pos.to_string()) || t.eq_ignore_ascii_case(&neg.to_string()) {
                hemisphere = Some(t);
                break;
            }
            *field = if i == 0 {
                t.parse::<u64>().ok().filter(|&m| m < 60)
            } else {
                decimal(t, 3, false).and_then(|v| u64::try_from(v).ok()).filter(|&s| s < 60_000)
            }
            .ok_or_else(|| format!("bad {} {t:?}", if i == 0 { "minutes" } else { "seconds" }))?;
        }
        let hemisphere = match hemisphere {
            Some(h) => h,
            None => f.unquoted("hemisphere")?,
        };
        let [min, sec_ms] = fields;
        let ms = deg * 3_600_000 + min * 60_000 + sec_ms;
        if ms > max_deg * 3_600_000 {
            return Err(format!("bad angle {deg} {min} {sec_ms}"));
        }
        let v = if hemisphere.eq_ignore_ascii_case(&pos.to_string()) {
            (1u64 << 31) + ms
        } else if hemisphere.eq_ignore_ascii_case(&neg.to_string()) {
            (1u64 << 31) - ms
        } else {
            return Err(format!("bad hemisphere {hemisphere:?}"));
        };
        f.out.extend_from_slice(&(v as u32).to_be_bytes());
    }
    let t = f.unquoted("altitude")?;
    let alt = decimal(t.strip_suffix(['m', 'M']).unwrap_or(t), 2, true)
        .and_then(|cm| u32::try_from(cm.checked_add(10_000_000)?).ok())
        .ok_or_else(|| format!("bad altitude {t:?}"))?;
    f.out.extend_from_slice(&alt.to_be_bytes());
    for i in 0..3 {
        let Some(&(t, false)) = f.toks.first() else { break };
        f.toks = f.toks.get(1..).unwrap_or(&[]);
        let mut cm = decimal(t.strip_suffix(['m', 'M']).unwrap_or(t), 2, false)
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| format!("bad precision {t:?}"))?;
        let mut exp = 0u8;
        while cm >= 10 {
            cm /= 10;
            exp += 1;
        }
        if exp > 9 {
            return Err(format!("bad precision {t:?}"));
        }
        if let Some(b) = f.out.get_mut(sizes_at + i) {
            *b = (cm as u8) << 4 | exp;
        }
    }
    Ok(())
}

/// A decimal number with at most `frac` digits after the point, scaled by
/// 10^`frac`; a leading `-` only when `signed`.
fn decimal(t: &str, frac: u32, signed: bool) -> Option<i64> {
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) if signed => (true, rest),
        _ => (false, t),
    };
    let (int, fr) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty()
        || fr.len() > frac as usize
        || !int.bytes().chain(fr.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: i64 = int.parse().ok()?;
    let fr_val: i64 = if fr.is_empty() { 0 } else { fr.parse().ok()? };
    let v = int.checked_mul(10i64.pow(frac))?.checked_add(fr_val * 10i64.pow(frac - fr.len() as u32))?;
    Some(if neg { -v } else { v })
}

fn apl_item(f: &mut Fields<'_, '_>) -> Result<(), String> {
    let t = f.unquoted("address prefix")?;
    let (negated, t) = match t.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let bad = || format!("bad address prefix {t:?}");
    let (family, rest) = t.split_once(':').ok_or_else(bad)?;
    let (addr, prefix) = rest.rsplit_once('/').ok_or_else(bad)?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let (family, mut octets, max): (u16, Vec<u8>, u8) = match family {
        "1" => (1, addr.parse::<Ipv4Addr>().map_err(|_| bad())?.octets().to_vec(), 32),
        "2" => (2, addr.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?.octets().to_vec(), 128),
        _ => return Err(bad()),
    };
    if prefix > max {
        return Err(bad());
    }
    // RFC 3123 §4: trailing zero octets are not sent.
    while octets.last() == Some(&0) {
        octets.pop();
    }
    f.out.extend_from_slice(&family.to_be_bytes());
    f.out.push(prefix);
    // At most 16 octets, so the length fits in the 7 low bits.
    f.out.push(u8::from(negated) << 7 | octets.len() as u8);
    f.out.extend_from_slice(&octets);
    Ok(())
}

/// Decodes RFC 1035 §5.1 escapes (`\X`, `\DDD`).
fn unescape(t: &str) -> Option<Vec<u8>> {
    let b = t.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let d = b.get(i + 1..i + 4).filter(|d| d.iter().all(u8::is_ascii_digit));
        match d {
            Some(d) => {
                let v = d.iter().fold(0u16, |a, &x| a * 10 + u16::from(x - b'0'));
                out.push(u8::try_from(v).ok()?);
                i += 4;
            }
            None => {
                let x = *b.get(i + 1)?;
                if x.is_ascii_digit() {
                    return None;
                }
                out.push(x);
                i += 2;
            }
        }
    }
    Some(out)
}

fn hex(t: &str) -> Option<Vec<u8>> {
    let b = t.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| std::str::from_utf8(p).ok().and_then(|s| u8::from_str_radix(s, 16).ok()))
        .collect()
}

fn base64(t: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let b = t.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let chunks = b.len() / 4;
    for (n, c) in b.chunks_exact(4).enumerate() {
        let last = n + 1 == chunks;
        let pad = c.iter().rev().take_while(|&&x| x == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut v = 0u32;
        for &x in c.get(..4 - pad)? {
            v = v << 6 | val(x)?;
        }
        v <<= 6 * pad as u32;
        let bytes = v.to_be_bytes();
        out.extend_from_slice(bytes.get(1..4 - pad)?);
    }
    Some(out)
}

/// Appends the presentation form of `rdata` of `rtype` (one for which
/// [`is_encoded_here`] holds); `false`, with `out` as it was, if the
/// rdata is malformed.
pub(crate) fn write(out: &mut String, rtype: u16, rdata: &[u8]) -> bool {
    let start = out.len();
    let ok = write_fields(out, rtype, rdata).is_some_and(<[u8]>::is_empty);
    if !ok {
        out.truncate(start);
    }
    ok
}

/// Writes the fields and returns what follows them (empty when the rdata
/// was exactly one record's worth).
fn write_fields<'a>(out: &mut String, rtype: u16, rd: &'a [u8]) -> Option<&'a [u8]> {
    let be16 = |b: &[u8]| Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]));
    let num16 = |out: &mut String, b: &'a [u8]| -> Option<&'a [u8]> {
        let _ = write!(out, "{}", be16(b)?);
        b.get(2..)
    };
    let name = |out: &mut String, b: &'a [u8]| -> Option<&'a [u8]> {
        let n = name::wire_len(b)?;
        let (nm, rest) = b.split_at_checked(n)?;
        name::validate(nm).ok()?;
        out.push(' ');
        let _ = name::fmt_wire(nm, out);
        Some(rest)
    };
    match rtype {
        code::AFSDB | code::RT | code::KX | code::LP => {
            let rest = num16(out, rd)?;
            name(out, rest)
        }
        code::PX => {
            let rest = num16(out, rd)?;
            let rest = name(out, rest)?;
            name(out, rest)
        }
        code::SPF => {
            // The TXT writer's text is the same format.
            crate::present::write_rdata(out, code::TXT, rd).then_some(&[][..])
        }
        code::KEY => crate::present::write_rdata(out, code::DNSKEY, rd).then_some(&[][..]),
        code::SMIMEA => {
            let (&[u, s, m], data) = rd.split_first_chunk::<3>()?;
            if data.is_empty() {
                return None;
            }
            let _ = write!(out, "{u} {s} {m} ");
            for b in data {
                let _ = write!(out, "{b:02x}");
            }
            Some(&[])
        }
        code::DHCID => {
            if rd.is_empty() {
                return None;
            }
            crate::present::push_base64(out, rd);
            Some(&[])
        }
        code::URI => {
            let rest = num16(out, rd)?;
            out.push(' ');
            let target = num16(out, rest)?;
            out.push_str(" \"");
            for &b in target {
                push_escaped(out, b);
            }
            out.push('"');
            Some(&[])
        }
        code::EUI48 | code::EUI64 => {
            if rd.len() != if rtype == code::EUI48 { 6 } else { 8 } {
                return None;
            }
            for (i, b) in rd.iter().enumerate() {
                let _ = write!(out, "{}{b:02x}", if i > 0 { "-" } else { "" });
            }
            Some(&[])
        }
        code::L32 => {
            let rest = num16(out, rd)?;
            let a: [u8; 4] = rest.try_into().ok()?;
            let _ = write!(out, " {}", Ipv4Addr::from(a));
            Some(&[])
        }
        code::L64 | code::NID => {
            let rest = num16(out, rd)?;
            if rest.len() != 8 {
                return None;
            }
            for (i, g) in rest.chunks_exact(2).enumerate() {
                let _ = write!(out, "{}{:04x}", if i > 0 { ':' } else { ' ' }, be16(g)?);
            }
            Some(&[])
        }
        code::CSYNC => {
            let (serial, rest) = rd.split_first_chunk::<4>()?;
            let _ = write!(out, "{} ", u32::from_be_bytes(*serial));
            let bitmap = num16(out, rest)?;
            crate::present::push_types(out, bitmap).then_some(&[][..])
        }
        code::CERT => {
            let rest = num16(out, rd)?;
            out.push(' ');
            let rest = num16(out, rest)?;
            let (&alg, cert) = rest.split_first()?;
            if cert.is_empty() {
                return None;
            }
            let _ = write!(out, " {alg} ");
            crate::present::push_base64(out, cert);
            Some(&[])
        }
        code::LOC => write_loc(out, rd),
        code::APL => {
            let mut rest = rd;
            let mut first = true;
            while !rest.is_empty() {
                let (&[f0, f1, prefix, nlen], tail) = rest.split_first_chunk::<4>()?;
                let len = usize::from(nlen & 0x7f);
                let (addr, tail) = tail.split_at_checked(len)?;
                let family = u16::from_be_bytes([f0, f1]);
                let text = match family {
                    1 if len <= 4 && prefix <= 32 => {
                        let mut a = [0u8; 4];
                        a.get_mut(..len)?.copy_from_slice(addr);
                        Ipv4Addr::from(a).to_string()
                    }
                    2 if len <= 16 && prefix <= 128 => {
                        let mut a = [0u8; 16];
                        a.get_mut(..len)?.copy_from_slice(addr);
                        std::net::Ipv6Addr::from(a).to_string()
                    }
                    _ => return None,
                };
                // RFC 3123 §4: trailing zero octets must not be sent, so
                // data with them is not in the form this writes back.
                if addr.last() == Some(&0) {
                    return None;
                }
                let neg = if nlen & 0x80 != 0 { "!" } else { "" };
                let _ = write!(out, "{}{neg}{family}:{text}/{prefix}", if first { "" } else { " " });
                first = false;
                rest = tail;
            }
            Some(&[])
        }
        _ => None,
    }
}

/// LOC (RFC 1876 §3), version 0 only.
fn write_loc<'a>(out: &mut String, rd: &'a [u8]) -> Option<&'a [u8]> {
    let (&[version, size, hp, vp], rest) = rd.split_first_chunk::<4>()?;
    if version != 0 {
        return None;
    }
    let (lat, rest) = rest.split_first_chunk::<4>()?;
    let (lon, rest) = rest.split_first_chunk::<4>()?;
    let (alt, rest) = rest.split_first_chunk::<4>()?;
    for (v, pos, neg, max_deg) in [(lat, 'N', 'S', 90i64), (lon, 'E', 'W', 180)] {
        let ms = i64::from(u32::from_be_bytes(*v)) - (1i64 << 31);
        let (h, ms) = if ms >= 0 { (pos, ms) } else { (neg, -ms) };
        if ms > max_deg * 3_600_000 {
            return None;
        }
        let (deg, min, sec) = (ms / 3_600_000, ms / 60_000 % 60, ms % 60_000);
        let _ = write!(out, "{deg} {min} {}.{:03} {h} ", sec / 1000, sec % 1000);
    }
    let cm = i64::from(u32::from_be_bytes(*alt)) - 10_000_000;
    let sign = if cm < 0 { "-" } else { "" };
    let _ = write!(out, "{sign}{}.{:02}m", cm.abs() / 100, cm.abs() % 100);
    for p in [size, hp, vp] {
        let (m, e) = (u64::from(p >> 4), u32::from(p & 15));
        if m > 9 || e > 9 {
            return None;
        }
        let cm = m * 10u64.pow(e);
        let _ = write!(out, " {}.{:02}m", cm / 100, cm % 100);
    }
    Some(rest)
}

/// A byte inside a quoted string: `"` and `\` escaped, anything outside
/// printable ASCII as `\DDD` (RFC 1035 §5.1).
fn push_escaped(out: &mut String, b: u8) {
    match b {
        b'"' | b'\\' => {
            out.push('\\');
            out.push(b as char);
        }
        0x20..=0x7E => out.push(b as char),
        _ => {
            let _ = write!(out, "\\{b:03}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_hex_decode_the_rfc_4648_vectors_and_refuse_bad_input() {
        for (plain, b64) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64(b64).unwrap(), plain.as_bytes());
        }
        for bad in ["Zg", "Zg=a", "Z===", "Zg==Zg==", "Z!=="] {
            assert_eq!(base64(bad), None, "{bad}");
        }
        assert_eq!(hex("00aBff").unwrap(), vec![0, 0xab, 0xff]);
        assert_eq!(hex("0"), None);
        assert_eq!(hex("zz"), None);
        assert_eq!(unescape("a\\065\\\"").unwrap(), b"aA\"");
        assert_eq!(unescape("\\256"), None);
        assert_eq!(unescape("\\1x"), None);
    }
}

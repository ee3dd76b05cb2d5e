//! The canonical form of RRs for signing (RFC 4034 §6.2, as corrected by
//! RFC 6840 §5.1 and RFC 3597 §7).

use std::borrow::Cow;

use sixgate_dns::name;
use sixgate_dns::rtype::code;

/// Where the domain names in a type's rdata are, for the types whose
/// embedded names are lowercased in canonical form. Each entry is the
/// offset of a name from the end of the previous one (or the start).
fn name_slots(rtype: u16) -> &'static [usize] {
    match rtype {
        // NS, MD, MF, CNAME, MB, MG, MR, PTR, DNAME: one name.
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 | code::DNAME => &[0],
        // SOA, MINFO, RP: two names (SOA's counters follow).
        6 | 14 | 17 => &[0, 0],
        // MX, AFSDB, RT, KX: a 16-bit field, then a name.
        15 | 18 | 21 | 36 => &[2],
        // PX: preference, then two names.
        26 => &[2, 0],
        // SRV: priority, weight, port, then the target.
        code::SRV => &[6],
        // RRSIG: the signer's name after 18 octets of fixed fields.
        code::RRSIG => &[18],
        _ => &[],
    }
}

/// The rdata in canonical form: names embedded in the types RFC 4034 §6.2
/// lists lowercased (NSEC's next name is not, RFC 6840 §5.1; NAPTR's
/// replacement is handled below; unknown types are opaque, RFC 3597 §7).
pub fn rdata(rtype: u16, rdata: &[u8]) -> Cow<'_, [u8]> {
    if rtype == code::NAPTR {
        return naptr(rdata);
    }
    let slots = name_slots(rtype);
    if slots.is_empty() || !has_upper(rdata) {
        return Cow::Borrowed(rdata);
    }
    let mut out = rdata.to_vec();
    let mut pos = 0usize;
    for &skip in slots {
        pos += skip;
        let Some(len) = out.get(pos..).and_then(name::wire_len) else {
            break;
        };
        if let Some(n) = out.get_mut(pos..pos + len) {
            n.make_ascii_lowercase();
        }
        pos += len;
    }
    Cow::Owned(out)
}

fn has_upper(b: &[u8]) -> bool {
    b.iter().any(u8::is_ascii_uppercase)
}

/// NAPTR: order, preference, three character-strings, then the
/// replacement name.
fn naptr(rdata: &[u8]) -> Cow<'_, [u8]> {
    let mut pos = 4usize;
    for _ in 0..3 {
        match rdata.get(pos) {
            Some(&l) => pos += 1 + l as usize,
            None => return Cow::Borrowed(rdata),
        }
    }
    match rdata.get(pos..) {
        Some(tail) if has_upper(tail) => {
            let mut out = rdata.to_vec();
            if let Some(t) = out.get_mut(pos..) {
                t.make_ascii_lowercase();
            }
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(rdata),
    }
}

/// The owner as signed: lowercased, and for a wildcard expansion (`labels`
/// fewer than the owner's) `*.` plus the rightmost `labels` labels
/// (RFC 4034 §3.1.8.1, §6.2).
pub fn owner(owner: &[u8], labels: u8, out: &mut Vec<u8>) {
    let mut n = owner;
    let count = name::label_count(owner);
    let labels = labels as usize;
    if labels < count {
        for _ in labels..count {
            n = name::parent(n).unwrap_or(&[0]);
        }
        out.extend_from_slice(&[1, b'*']);
    }
    let start = out.len();
    out.extend_from_slice(n);
    if let Some(t) = out.get_mut(start..) {
        t.make_ascii_lowercase();
    }
}

/// The RRSIG labels field of an owner: its label count, without a leading
/// `*` label (RFC 4034 §3.1.3).
pub fn labels(owner: &[u8]) -> u8 {
    let count = name::label_count(owner);
    let wild = owner.get(..2) == Some(&[1, b'*'][..]);
    (count - usize::from(wild)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use sixgate_dns::name::from_text;

    #[test]
    fn names_in_rdata_are_lowercased_only_where_listed() {
        let mut mx = vec![0, 10];
        mx.extend_from_slice(&from_text("Mail.Example.", None).unwrap());
        let c = rdata(15, &mx);
        assert_eq!(&c[2..], &from_text("mail.example.", None).unwrap()[..]);
        assert_eq!(&c[..2], &[0, 10]);
        // NSEC's next name keeps its case (RFC 6840 §5.1).
        let nsec = from_text("B.Example.", None).unwrap();
        assert_eq!(&rdata(code::NSEC, &nsec)[..], &nsec[..]);
        // TXT is opaque.
        assert_eq!(&rdata(16, b"\x02AB")[..], b"\x02AB");
        let mut soa = from_text("NS.Example.", None).unwrap().to_vec();
        soa.extend_from_slice(&from_text("Host.Example.", None).unwrap());
        soa.extend_from_slice(&[0xAB; 20]);
        let c = rdata(code::SOA, &soa);
        assert!(!c[..c.len() - 20].iter().any(u8::is_ascii_uppercase));
        assert_eq!(&c[c.len() - 20..], &[0xAB; 20]);
    }

    #[test]
    fn wildcard_owners_and_labels() {
        let n = from_text("A.b.Example.", None).unwrap();
        let mut out = Vec::new();
        owner(&n, 2, &mut out);
        assert_eq!(out, from_text("*.b.example.", None).unwrap().to_vec());
        out.clear();
        owner(&n, 3, &mut out);
        assert_eq!(out, from_text("a.b.example.", None).unwrap().to_vec());
        assert_eq!(labels(&from_text("*.example.", None).unwrap()), 1);
        assert_eq!(labels(&from_text("www.example.", None).unwrap()), 2);
        assert_eq!(labels(&[0]), 0);
    }
}

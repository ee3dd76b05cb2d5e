//! NSEC3 owner hashing (RFC 5155 §5) and the base32hex encoding of its
//! hashed owner labels (RFC 4648 §7), shared by the answer engine (which
//! hashes query names to find denial proofs) and the signer.

use sha1::{Digest, Sha1};

/// Length of a SHA-1 NSEC3 hash.
pub const HASH_LEN: usize = 20;
/// Length of the base32hex label of a SHA-1 hash.
pub const LABEL_LEN: usize = 32;
/// Hash algorithm 1, SHA-1 (RFC 5155 §11), the only one defined.
pub const SHA1: u8 = 1;
/// Most additional iterations we compute. RFC 9276 §3.1 asks for 0; the
/// cap keeps a hostile NSEC3PARAM from costing unbounded work.
pub const MAX_ITERATIONS: u16 = 100;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// The NSEC3 hash of `name` (wire form, any case): IH(salt, x, k) of
/// RFC 5155 §5. Iterations above [`MAX_ITERATIONS`] are clamped.
pub fn hash(name: &[u8], salt: &[u8], iterations: u16) -> [u8; HASH_LEN] {
    let mut h = Sha1::new();
    // Lowercased on the stack: this runs per query (RFC 5155 §7.2).
    let mut lower = [0u8; crate::name::MAX_NAME_LEN];
    for chunk in name.chunks(lower.len()) {
        if let Some(part) = lower.get_mut(..chunk.len()) {
            part.copy_from_slice(chunk);
            part.make_ascii_lowercase();
            h.update(&*part);
        }
    }
    h.update(salt);
    let mut out: [u8; HASH_LEN] = h.finalize().into();
    for _ in 0..iterations.min(MAX_ITERATIONS) {
        let mut h = Sha1::new();
        h.update(out);
        h.update(salt);
        out = h.finalize().into();
    }
    out
}

/// Base32hex without padding, lowercase (the form of NSEC3 owner labels,
/// whose order is the order of the hashes).
pub fn base32hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(digit(acc >> bits));
        }
    }
    if bits > 0 {
        out.push(digit(acc << (5 - bits)));
    }
    out
}

/// The base32hex digit of the low five bits of `v`.
fn digit(v: u32) -> char {
    char::from(ALPHABET.get((v & 31) as usize).copied().unwrap_or(b'0'))
}

/// Decodes unpadded base32hex (either case); `None` on a bad character or
/// non-zero trailing bits.
pub fn decode_base32hex(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text {
        let v = match c.to_ascii_lowercase() {
            c @ b'0'..=b'9' => c - b'0',
            c @ b'a'..=b'v' => c - b'a' + 10,
            _ => return None,
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    (acc == 0).then_some(out)
}

/// The hash in the first label of an NSEC3 owner name, if it is one.
pub fn owner_hash(owner: &[u8]) -> Option<[u8; HASH_LEN]> {
    let (&len, rest) = owner.split_first()?;
    let label = rest.get(..len as usize).filter(|_| len as usize == LABEL_LEN)?;
    decode_base32hex(label)?.try_into().ok()
}

/// The NSEC3 owner name for `hash` in the zone `apex`, written into a
/// caller's buffer (no allocation); `None` if it would pass 255 octets.
pub fn owner_name_into<'b>(
    hash: &[u8; HASH_LEN],
    apex: &[u8],
    buf: &'b mut [u8; crate::name::MAX_NAME_LEN],
) -> Option<&'b [u8]> {
    let (len, rest) = buf.split_first_mut()?;
    *len = LABEL_LEN as u8;
    let (label, tail) = rest.split_at_mut_checked(LABEL_LEN)?;
    let (mut acc, mut bits, mut i) = (0u32, 0u32, 0usize);
    for &b in hash {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            *label.get_mut(i)? = digit(acc >> bits) as u8;
            i += 1;
        }
    }
    tail.get_mut(..apex.len())?.copy_from_slice(apex);
    buf.get(..1 + LABEL_LEN + apex.len())
}

/// The NSEC3 owner name for `hash` in the zone `apex` (wire form).
pub fn owner_name(hash: &[u8; HASH_LEN], apex: &[u8]) -> Box<[u8]> {
    let label = base32hex(hash);
    let mut out = Vec::with_capacity(1 + label.len() + apex.len());
    out.push(label.len() as u8);
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(apex);
    out.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::from_text;

    /// RFC 5155 Appendix A: salt aabbccdd, 12 iterations.
    #[test]
    fn rfc5155_appendix_a_hashes() {
        let salt = [0xaa, 0xbb, 0xcc, 0xdd];
        for (name, want) in [
            ("example.", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
            ("a.example.", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
            ("ai.example.", "gjeqe526plbf1g8mklp59enfd789njgi"),
            ("ns1.example.", "2t7b4g4vsa5smi47k61mv5bv1a22bojr"),
            ("*.w.example.", "r53bq7cc2uvmubfu5ocmm6pers9tk9en"),
            ("xx.example.", "t644ebqk9bibcna874givr6joj62mlhv"),
        ] {
            let h = hash(&from_text(name, None).unwrap(), &salt, 12);
            assert_eq!(base32hex(&h), want, "{name}");
            assert_eq!(decode_base32hex(want.to_ascii_uppercase().as_bytes()).unwrap(), h);
        }
    }

    #[test]
    fn base32hex_round_trips_and_rejects() {
        for len in 0..12 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode_base32hex(base32hex(&data).as_bytes()).unwrap(), data);
        }
        assert_eq!(decode_base32hex(b"w"), None);
        assert_eq!(decode_base32hex(b"01"), None, "trailing bits set");
    }

    #[test]
    fn owner_names_round_trip() {
        let apex = from_text("example.", None).unwrap();
        let h = hash(&apex, &[], 0);
        let owner = owner_name(&h, &apex);
        assert_eq!(owner_hash(&owner), Some(h));
        let mut buf = [0u8; crate::name::MAX_NAME_LEN];
        assert_eq!(owner_name_into(&h, &apex, &mut buf), Some(&owner[..]));
        assert_eq!(owner_hash(&apex), None);
    }
}

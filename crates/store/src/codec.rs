//! Binary encoding of journaled changes.
//!
//! Each change: op (1 = add, 2 = remove), owner length (1 octet), owner,
//! type (2), TTL (4), rdata length (2), rdata. Decoding is bounded by the
//! input and refuses anything malformed.

use sixgate_dns::zone::{Change, Record};

/// Encodes changes.
pub fn encode_changes(changes: &[Change]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in changes {
        let (op, r) = match c {
            Change::Add(r) => (1u8, r),
            Change::Remove(r) => (2u8, r),
        };
        out.push(op);
        out.push(r.owner.len() as u8);
        out.extend_from_slice(&r.owner);
        out.extend_from_slice(&r.rtype.to_be_bytes());
        out.extend_from_slice(&r.ttl.to_be_bytes());
        out.extend_from_slice(&(r.rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&r.rdata);
    }
    out
}

/// Decodes changes; `None` if the input is malformed.
pub fn decode_changes(mut b: &[u8]) -> Option<Vec<Change>> {
    let mut out = Vec::new();
    while let Some((&op, rest)) = b.split_first() {
        let (&olen, rest) = rest.split_first()?;
        let owner = rest.get(..olen as usize)?;
        sixgate_dns::name::validate(owner).ok()?;
        let rest = rest.get(olen as usize..)?;
        let h = rest.get(..8)?;
        let rtype = u16::from_be_bytes([h[0], h[1]]);
        let ttl = u32::from_be_bytes([h[2], h[3], h[4], h[5]]);
        let rdlen = u16::from_be_bytes([h[6], h[7]]) as usize;
        let rdata = rest.get(8..8 + rdlen)?;
        b = rest.get(8 + rdlen..)?;
        let r = Record { owner: owner.into(), rtype, ttl, rdata: rdata.into() };
        out.push(match op {
            1 => Change::Add(r),
            2 => Change::Remove(r),
            _ => return None,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refuse_garbage() {
        let r =
            Record { owner: b"\x03www\x00"[..].into(), rtype: 1, ttl: 60, rdata: vec![1, 2, 3, 4].into() };
        let ch = vec![Change::Add(r.clone()), Change::Remove(r)];
        let enc = encode_changes(&ch);
        assert_eq!(decode_changes(&enc), Some(ch));
        assert_eq!(decode_changes(&enc[..enc.len() - 1]), None);
        assert_eq!(decode_changes(&[9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), None);
    }
}

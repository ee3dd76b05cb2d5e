//! NSEC and NSEC3 rdata: type bitmaps (RFC 4034 §4.1.2), NSEC (RFC 4034
//! §4), NSEC3 and NSEC3PARAM (RFC 5155 §3, §4).

use sixgate_dns::name;
use sixgate_dns::nsec3::{HASH_LEN, SHA1};

/// Why denial rdata could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A field runs past the end.
    #[error("rdata is truncated")]
    Short,
    /// The next owner name is malformed.
    #[error("next owner name is malformed")]
    BadName,
    /// Window blocks out of order, empty, or longer than 32 octets.
    #[error("type bitmap is malformed")]
    BadBitmap,
}

/// Encodes a type bitmap; `types` may be unsorted and repeat.
pub fn type_bitmap(types: &[u16]) -> Vec<u8> {
    let mut sorted = types.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::with_capacity(2 + 32);
    let mut i = 0;
    while let Some(&first) = sorted.get(i) {
        let window = (first >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut used = 0usize;
        while let Some(&t) = sorted.get(i) {
            if (t >> 8) as u8 != window {
                break;
            }
            let low = (t & 0xff) as usize;
            if let Some(b) = bits.get_mut(low / 8) {
                *b |= 0x80 >> (low % 8);
            }
            used = used.max(low / 8 + 1);
            i += 1;
        }
        out.push(window);
        out.push(used as u8);
        out.extend_from_slice(bits.get(..used).unwrap_or(&[]));
    }
    out
}

/// Decodes a type bitmap into sorted types.
pub fn decode_type_bitmap(mut data: &[u8]) -> Result<Vec<u16>, DecodeError> {
    let mut types = Vec::new();
    let mut last_window: Option<u8> = None;
    while let Some((&window, rest)) = data.split_first() {
        let (&len, rest) = rest.split_first().ok_or(DecodeError::BadBitmap)?;
        if len == 0 || len > 32 || last_window.is_some_and(|w| w >= window) {
            return Err(DecodeError::BadBitmap);
        }
        let (bits, rest) = rest.split_at_checked(len as usize).ok_or(DecodeError::BadBitmap)?;
        for (byte_i, &b) in bits.iter().enumerate() {
            for bit in 0..8 {
                if b & (0x80 >> bit) != 0 {
                    types.push(u16::from(window) << 8 | (byte_i * 8 + bit) as u16);
                }
            }
        }
        last_window = Some(window);
        data = rest;
    }
    Ok(types)
}

/// NSEC rdata: the next owner name and the types at this owner.
pub fn nsec_rdata(next: &[u8], types: &[u16]) -> Vec<u8> {
    let mut rd = next.to_vec();
    rd.extend_from_slice(&type_bitmap(types));
    rd
}

/// The next owner name and types of NSEC rdata.
pub fn decode_nsec(rdata: &[u8]) -> Result<(&[u8], Vec<u16>), DecodeError> {
    let n = name::wire_len(rdata).ok_or(DecodeError::BadName)?;
    let (next, bitmap) = rdata.split_at_checked(n).ok_or(DecodeError::BadName)?;
    Ok((next, decode_type_bitmap(bitmap)?))
}

/// The parameters of an NSEC3 chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nsec3Params {
    /// Flags (bit 0: opt-out; always 0 in NSEC3PARAM).
    pub flags: u8,
    /// Additional hash iterations (RFC 9276 §3.1: 0).
    pub iterations: u16,
    /// Salt (RFC 9276 §3.1: empty).
    pub salt: Vec<u8>,
}

impl Nsec3Params {
    /// NSEC3PARAM rdata (RFC 5155 §4.2), flags always 0.
    pub fn nsec3param_rdata(&self) -> Vec<u8> {
        let mut rd = vec![SHA1, 0];
        rd.extend_from_slice(&self.iterations.to_be_bytes());
        rd.push(self.salt.len() as u8);
        rd.extend_from_slice(&self.salt);
        rd
    }

    /// Reads NSEC3PARAM rdata (the hash algorithm must be SHA-1).
    pub fn decode(rdata: &[u8]) -> Result<Nsec3Params, DecodeError> {
        let (head, rest) = rdata.split_at_checked(5).ok_or(DecodeError::Short)?;
        let [alg, flags, i0, i1, salt_len] = <[u8; 5]>::try_from(head).map_err(|_| DecodeError::Short)?;
        if alg != SHA1 {
            return Err(DecodeError::Short);
        }
        let salt = rest.get(..salt_len as usize).ok_or(DecodeError::Short)?;
        if rest.len() != salt.len() {
            return Err(DecodeError::Short);
        }
        Ok(Nsec3Params { flags, iterations: u16::from_be_bytes([i0, i1]), salt: salt.to_vec() })
    }

    /// The hash of a name under these parameters.
    pub fn hash(&self, name: &[u8]) -> [u8; HASH_LEN] {
        sixgate_dns::nsec3::hash(name, &self.salt, self.iterations)
    }

    /// NSEC3 rdata (RFC 5155 §3.2) with these parameters.
    pub fn nsec3_rdata(&self, next_hash: &[u8; HASH_LEN], types: &[u16]) -> Vec<u8> {
        let mut rd = vec![SHA1, self.flags];
        rd.extend_from_slice(&self.iterations.to_be_bytes());
        rd.push(self.salt.len() as u8);
        rd.extend_from_slice(&self.salt);
        rd.push(HASH_LEN as u8);
        rd.extend_from_slice(next_hash);
        rd.extend_from_slice(&type_bitmap(types));
        rd
    }
}

/// The fields of NSEC3 rdata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nsec3 {
    /// The chain's parameters (flags as in this record).
    pub params: Nsec3Params,
    /// The next hashed owner.
    pub next_hash: Vec<u8>,
    /// The types at the original owner.
    pub types: Vec<u16>,
}

impl Nsec3 {
    /// Reads NSEC3 rdata.
    pub fn decode(rdata: &[u8]) -> Result<Nsec3, DecodeError> {
        let (head, rest) = rdata.split_at_checked(5).ok_or(DecodeError::Short)?;
        let [_alg, flags, i0, i1, salt_len] = <[u8; 5]>::try_from(head).map_err(|_| DecodeError::Short)?;
        let (salt, rest) = rest.split_at_checked(salt_len as usize).ok_or(DecodeError::Short)?;
        let (&hash_len, rest) = rest.split_first().ok_or(DecodeError::Short)?;
        let (next, bitmap) = rest.split_at_checked(hash_len as usize).ok_or(DecodeError::Short)?;
        Ok(Nsec3 {
            params: Nsec3Params { flags, iterations: u16::from_be_bytes([i0, i1]), salt: salt.to_vec() },
            next_hash: next.to_vec(),
            types: decode_type_bitmap(bitmap)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4034 §4.3: NSEC for alfa.example.com with A MX RRSIG NSEC TYPE1234.
    #[test]
    fn rfc4034_bitmap_example() {
        let bitmap = type_bitmap(&[1, 15, 46, 47, 1234]);
        let want: &[u8] = &[
            0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x20,
        ];
        assert_eq!(bitmap, want);
        assert_eq!(decode_type_bitmap(want).unwrap(), vec![1, 15, 46, 47, 1234]);
    }

    #[test]
    fn bad_bitmaps_are_refused() {
        assert_eq!(decode_type_bitmap(&[0, 0]), Err(DecodeError::BadBitmap));
        assert_eq!(decode_type_bitmap(&[0, 33]), Err(DecodeError::BadBitmap));
        assert_eq!(decode_type_bitmap(&[1, 1, 0x80, 0, 1, 0x80]), Err(DecodeError::BadBitmap));
        assert_eq!(decode_type_bitmap(&[0, 2, 0x80]), Err(DecodeError::BadBitmap));
    }

    #[test]
    fn nsec3_round_trips() {
        let p = Nsec3Params::default();
        let rd = p.nsec3_rdata(&[7; 20], &[1, 46]);
        let d = Nsec3::decode(&rd).unwrap();
        assert_eq!(d.params, p);
        assert_eq!(d.next_hash, vec![7; 20]);
        assert_eq!(d.types, vec![1, 46]);
        assert_eq!(Nsec3Params::decode(&p.nsec3param_rdata()).unwrap(), p);
        assert!(Nsec3Params::decode(&[1, 0, 0, 0, 2, 9]).is_err());
    }
}

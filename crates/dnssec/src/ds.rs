//! DS, CDS and CDNSKEY (RFC 4034 §5, RFC 4509, RFC 7344, RFC 8078).

use sha2::{Digest, Sha256, Sha384};

use crate::key;

/// Digest type 2, SHA-256 (RFC 4509), the one sixgate publishes.
pub const SHA256: u8 = 2;
/// Digest type 4, SHA-384 (RFC 6605).
pub const SHA384: u8 = 4;

/// CDS rdata meaning "remove all DS" (RFC 8078 §4: `0 0 0 00`).
pub const CDS_DELETE: [u8; 5] = [0, 0, 0, 0, 0];
/// CDNSKEY rdata meaning "remove all DS" (RFC 8078 §4: `0 3 0 AA==`).
pub const CDNSKEY_DELETE: [u8; 5] = [0, 0, 3, 0, 0];

/// DS rdata for the DNSKEY rdata `dnskey` at `owner`, or `None` for an
/// unknown digest type.
pub fn ds_rdata(owner: &[u8], dnskey: &[u8], digest_type: u8) -> Option<Vec<u8>> {
    let (_, _, alg, _) = key::decode_dnskey(dnskey)?;
    let owner = owner.to_ascii_lowercase();
    let digest: Vec<u8> = match digest_type {
        SHA256 => Sha256::new().chain_update(&owner).chain_update(dnskey).finalize().to_vec(),
        SHA384 => Sha384::new().chain_update(&owner).chain_update(dnskey).finalize().to_vec(),
        _ => return None,
    };
    let mut rd = Vec::with_capacity(4 + digest.len());
    rd.extend_from_slice(&key::key_tag(dnskey).to_be_bytes());
    rd.push(alg);
    rd.push(digest_type);
    rd.extend_from_slice(&digest);
    Some(rd)
}

/// The fields of DS rdata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ds {
    /// Key tag of the DNSKEY.
    pub key_tag: u16,
    /// Its algorithm.
    pub algorithm: u8,
    /// The digest type.
    pub digest_type: u8,
    /// The digest.
    pub digest: Vec<u8>,
}

impl Ds {
    /// Reads DS (or CDS) rdata; `None` if shorter than its fixed fields.
    pub fn decode(rdata: &[u8]) -> Option<Ds> {
        let (head, digest) = rdata.split_at_checked(4)?;
        Some(Ds {
            key_tag: u16::from_be_bytes([*head.first()?, *head.get(1)?]),
            algorithm: *head.get(2)?,
            digest_type: *head.get(3)?,
            digest: digest.to_vec(),
        })
    }

    /// True if this DS names `dnskey` at `owner`.
    pub fn matches(&self, owner: &[u8], dnskey: &[u8]) -> bool {
        ds_rdata(owner, dnskey, self.digest_type).and_then(|rd| Ds::decode(&rd)).as_ref() == Some(self)
    }
}

/// Whether the DS (or CDS) rdata `ds` names the DNSKEY rdata `dnskey` at
/// `owner`: key tag, algorithm, and a digest of a supported type that
/// matches. A DS with the right key tag but a wrong digest, or a digest
/// type sixgate cannot compute, names nothing (RFC 4035 §5.2). The
/// rollover's view of the parent and the status verdict both decide with
/// this.
pub fn names_key(ds: &[u8], owner: &[u8], dnskey: &[u8]) -> bool {
    Ds::decode(ds).is_some_and(|d| d.matches(owner, dnskey))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sixgate_dns::name::from_text;

    /// RFC 4509 §2.3: the DS of dskey.example.com's DNSKEY with SHA-256.
    #[test]
    fn rfc4509_example() {
        let key_b64 = "AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==";
        let mut dnskey = vec![0x01, 0x00, 3, 5];
        dnskey.extend_from_slice(&base64_decode(key_b64));
        assert_eq!(key::key_tag(&dnskey), 60485);
        let ds = ds_rdata(&from_text("dskey.example.com.", None).unwrap(), &dnskey, SHA256).unwrap();
        let hex: String = ds[4..].iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex, "D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A");
        assert_eq!(&ds[..4], &[0xEC, 0x45, 5, 2]);
        let d = Ds::decode(&ds).unwrap();
        assert!(d.matches(&from_text("DSKEY.example.com.", None).unwrap(), &dnskey));
        assert!(!d.matches(&from_text("other.example.com.", None).unwrap(), &dnskey));
        let owner = from_text("dskey.example.com.", None).unwrap();
        assert!(names_key(&ds, &owner, &dnskey));
        // Same key tag and algorithm, one digest octet off.
        let mut wrong = ds.clone();
        *wrong.last_mut().unwrap() ^= 1;
        assert!(!names_key(&wrong, &owner, &dnskey));
        // SHA-1 (digest type 1) is not computed, so it names nothing.
        let mut sha1 = ds[..4].to_vec();
        sha1[3] = 1;
        sha1.extend_from_slice(&[0; 20]);
        assert!(!names_key(&sha1, &owner, &dnskey));
        assert!(!names_key(&ds[..3], &owner, &dnskey));
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let (mut acc, mut bits, mut out) = (0u32, 0, Vec::new());
        for c in s.bytes().filter(|&c| c != b'=') {
            acc = acc << 6 | A.iter().position(|&a| a == c).unwrap() as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }
}

//! RRSIG records: decoding, encoding, making and checking signatures
//! (RFC 4034 §3, RFC 6605, RFC 8080).

use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
    RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY, RsaPublicKeyComponents, UnparsedPublicKey,
};
use sixgate_dns::name;

use crate::algorithm::Algorithm;
use crate::canonical;
use crate::key::{self, KeyError, KeyPair};

/// RSA/SHA-256 (RFC 5702), verified only.
pub const RSASHA256: u8 = 8;
/// RSA/SHA-512 (RFC 5702), verified only.
pub const RSASHA512: u8 = 10;

/// True for the algorithms [`verify`] checks: those sixgate signs with
/// (13, 15) and RSA/SHA-256 and RSA/SHA-512, which it only verifies.
pub fn verifies(algorithm: u8) -> bool {
    matches!(algorithm, RSASHA256 | RSASHA512) || Algorithm::from_code(algorithm).is_some()
}

/// The exponent and modulus of an RSA DNSKEY's public key field
/// (RFC 3110 §2): a one-octet exponent length, or zero and a two-octet
/// one, then the exponent, then the modulus.
fn rsa_public_key(public: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = match public.split_first()? {
        (0, rest) => (usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?])), rest.get(2..)?),
        (&l, rest) => (usize::from(l), rest),
    };
    let (e, n) = (rest.get(..len)?, rest.get(len..)?);
    (!e.is_empty() && !n.is_empty()).then_some((e, n))
}

/// Class IN, the only class signed.
const CLASS_IN: u16 = 1;
/// Octets of the fixed fields before the signer's name.
const FIXED_LEN: usize = 18;

/// The fields of an RRSIG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rrsig {
    /// The type of the RRset signed.
    pub type_covered: u16,
    /// The algorithm number.
    pub algorithm: u8,
    /// Labels of the owner, not counting a leading `*`.
    pub labels: u8,
    /// The TTL of the RRset as signed.
    pub original_ttl: u32,
    /// End of validity (seconds since the epoch, modulo 2^32).
    pub expiration: u32,
    /// Start of validity.
    pub inception: u32,
    /// Key tag of the signing key.
    pub key_tag: u16,
    /// The signer's name (the zone apex), wire form.
    pub signer: Box<[u8]>,
    /// The signature.
    pub signature: Box<[u8]>,
}

/// Why RRSIG rdata could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than its fixed fields.
    #[error("RRSIG rdata is too short")]
    Short,
    /// The signer's name is malformed.
    #[error("RRSIG signer name is malformed")]
    BadSigner,
}

/// Why a signature does not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The RRSIG and the DNSKEY disagree on the algorithm or key tag.
    #[error("the RRSIG was not made by this DNSKEY")]
    WrongKey,
    /// An algorithm this validator does not implement.
    #[error("unsupported algorithm {0}")]
    Algorithm(u8),
    /// The DNSKEY rdata is malformed or lacks the zone-key flag.
    #[error("the DNSKEY is malformed or not a zone key")]
    BadKey,
    /// The signature does not match the data.
    #[error("the signature does not match")]
    Mismatch,
    /// Outside the validity window.
    #[error("the signature is not valid at this time")]
    Time,
    /// The labels field exceeds the owner's labels.
    #[error("the RRSIG labels field is larger than the owner's")]
    Labels,
}

impl Rrsig {
    /// Reads RRSIG rdata.
    pub fn decode(rdata: &[u8]) -> Result<Rrsig, DecodeError> {
        let fixed = rdata.get(..FIXED_LEN).ok_or(DecodeError::Short)?;
        let be16 = |i: usize| {
            u16::from_be_bytes([fixed.get(i).copied().unwrap_or(0), fixed.get(i + 1).copied().unwrap_or(0)])
        };
        let be32 = |i: usize| u32::from(be16(i)) << 16 | u32::from(be16(i + 2));
        let rest = rdata.get(FIXED_LEN..).unwrap_or(&[]);
        let n = name::wire_len(rest).ok_or(DecodeError::BadSigner)?;
        let (signer, signature) = rest.split_at_checked(n).ok_or(DecodeError::BadSigner)?;
        Ok(Rrsig {
            type_covered: be16(0),
            algorithm: fixed.get(2).copied().unwrap_or(0),
            labels: fixed.get(3).copied().unwrap_or(0),
            original_ttl: be32(4),
            expiration: be32(8),
            inception: be32(12),
            key_tag: be16(16),
            signer: signer.into(),
            signature: signature.into(),
        })
    }

    /// The rdata.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.signer.len() + self.signature.len());
        self.encode_unsigned(&mut out);
        out.extend_from_slice(&self.signature);
        out
    }

    /// The rdata without the signature (the start of the signed data).
    fn encode_unsigned(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.type_covered.to_be_bytes());
        out.push(self.algorithm);
        out.push(self.labels);
        out.extend_from_slice(&self.original_ttl.to_be_bytes());
        out.extend_from_slice(&self.expiration.to_be_bytes());
        out.extend_from_slice(&self.inception.to_be_bytes());
        out.extend_from_slice(&self.key_tag.to_be_bytes());
        let start = out.len();
        out.extend_from_slice(&self.signer);
        if let Some(s) = out.get_mut(start..) {
            s.make_ascii_lowercase();
        }
    }

    /// True if `now` (seconds since the epoch) lies in the validity window,
    /// in serial number arithmetic (RFC 4034 §3.1.5).
    pub fn is_valid_at(&self, now: u64) -> bool {
        let now = now as u32;
        now.wrapping_sub(self.inception) as i32 >= 0 && self.expiration.wrapping_sub(now) as i32 >= 0
    }
}

/// An RRset to sign or check: owner, type, TTL, rdatas (any order).
#[derive(Debug, Clone, Copy)]
pub struct RrSet<'a> {
    /// Owner name, wire form, any case.
    pub owner: &'a [u8],
    /// Type.
    pub rtype: u16,
    /// TTL.
    pub ttl: u32,
    /// Rdata of each RR, uncompressed wire form.
    pub rdatas: &'a [&'a [u8]],
}

/// Appends the data a signature covers (RFC 4034 §3.1.8.1): the RRSIG
/// rdata without its signature, then each RR in canonical form and order.
fn signed_data(rrsig: &Rrsig, set: &RrSet<'_>, out: &mut Vec<u8>) {
    rrsig.encode_unsigned(out);
    canonical_rrs(set, rrsig.labels, rrsig.original_ttl, out);
}

/// Appends the RRs of `set` in canonical form and order (RFC 4034 §6.2,
/// §6.3), as the signed data ends.
fn canonical_rrs(set: &RrSet<'_>, labels: u8, original_ttl: u32, out: &mut Vec<u8>) {
    if set.rdatas.is_empty() {
        return;
    }
    let owner_start = out.len();
    canonical::owner(set.owner, labels, out);
    let owner = owner_start..out.len();
    let rr_tail = |out: &mut Vec<u8>, rd: &[u8]| {
        out.extend_from_slice(&set.rtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&original_ttl.to_be_bytes());
        out.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        out.extend_from_slice(rd);
    };
    // Most RRsets hold one RR: no sorting, no list.
    if let [one] = set.rdatas {
        rr_tail(out, &canonical::rdata(set.rtype, one));
        return;
    }
    let mut rdatas: Vec<_> = set.rdatas.iter().map(|rd| canonical::rdata(set.rtype, rd)).collect();
    // RFC 4034 §6.3: ordered by canonical rdata as left-justified octet
    // strings; duplicates removed.
    rdatas.sort_unstable();
    rdatas.dedup();
    for (i, rd) in rdatas.iter().enumerate() {
        if i > 0 {
            out.extend_from_within(owner.clone());
        }
        rr_tail(out, rd);
    }
}

/// Signs an RRset with `key` for the zone `signer`, valid from `inception`
/// to `expiration`; returns the RRSIG rdata. `scratch` is reused between
/// calls so a zone is signed without an allocation per RRset for the data.
pub fn sign(
    key: &KeyPair,
    key_tag: u16,
    signer: &[u8],
    set: &RrSet<'_>,
    inception: u32,
    expiration: u32,
    scratch: &mut Vec<u8>,
) -> Result<Vec<u8>, KeyError> {
    // The RRSIG rdata up to the signature is also where the signed data
    // starts, so it is written once, into `scratch`, and copied.
    let labels = canonical::labels(set.owner);
    scratch.clear();
    scratch.extend_from_slice(&set.rtype.to_be_bytes());
    scratch.push(key.algorithm().code());
    scratch.push(labels);
    scratch.extend_from_slice(&set.ttl.to_be_bytes());
    scratch.extend_from_slice(&expiration.to_be_bytes());
    scratch.extend_from_slice(&inception.to_be_bytes());
    scratch.extend_from_slice(&key_tag.to_be_bytes());
    let signer_start = scratch.len();
    scratch.extend_from_slice(signer);
    if let Some(s) = scratch.get_mut(signer_start..) {
        s.make_ascii_lowercase();
    }
    let head = scratch.len();
    canonical_rrs(set, labels, set.ttl, scratch);
    let mut rdata = Vec::with_capacity(head + key.algorithm().signature_len());
    rdata.extend_from_slice(scratch.get(..head).unwrap_or(&[]));
    key.sign_into(scratch, &mut rdata)?;
    Ok(rdata)
}

/// Checks `rrsig` over `set` with the key in `dnskey` (rdata). The time is
/// not checked here: see [`Rrsig::is_valid_at`].
pub fn verify(dnskey: &[u8], rrsig: &Rrsig, set: &RrSet<'_>) -> Result<(), VerifyError> {
    let (flags, _, alg, public) = key::decode_dnskey(dnskey).ok_or(VerifyError::BadKey)?;
    if flags & key::flags::ZONE == 0 {
        return Err(VerifyError::BadKey);
    }
    if alg != rrsig.algorithm || key::key_tag(dnskey) != rrsig.key_tag {
        return Err(VerifyError::WrongKey);
    }
    if usize::from(rrsig.labels) > canonical::labels(set.owner).into() {
        return Err(VerifyError::Labels);
    }
    let mut data = Vec::with_capacity(512);
    signed_data(rrsig, set, &mut data);
    // RSA is verified, never made: the root and most TLDs sign with
    // algorithm 8, so a validator must follow it (RFC 5702), while the
    // zones sixgate signs use 13 or 15.
    match alg {
        RSASHA256 | RSASHA512 => {
            let (e, n) = rsa_public_key(public).ok_or(VerifyError::BadKey)?;
            let params = if alg == RSASHA256 {
                &RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
            } else {
                &RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
            };
            return RsaPublicKeyComponents { n, e }
                .verify(params, &data, &rrsig.signature)
                .map_err(|_| VerifyError::Mismatch);
        }
        _ => {}
    }
    match Algorithm::from_code(alg) {
        Some(Algorithm::EcdsaP256Sha256) => {
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(public);
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(&data, &rrsig.signature)
        }
        Some(Algorithm::Ed25519) => UnparsedPublicKey::new(&ED25519, public).verify(&data, &rrsig.signature),
        None => return Err(VerifyError::Algorithm(alg)),
    }
    .map_err(|_| VerifyError::Mismatch)
}

#[cfg(test)]
mod rsa_tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};

    use super::*;

    /// The modulus and exponent of a DER RSAPublicKey (RFC 8017 A.1.1):
    /// SEQUENCE { INTEGER n, INTEGER e }, without leading zero octets.
    fn der_n_e(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
        fn tlv(d: &[u8]) -> (&[u8], &[u8]) {
            let (len, at) = match d[1] {
                l if l < 0x80 => (usize::from(l), 2),
                0x81 => (usize::from(d[2]), 3),
                0x82 => (usize::from(u16::from_be_bytes([d[2], d[3]])), 4),
                _ => panic!("long DER length"),
            };
            (&d[at..at + len], &d[at + len..])
        }
        let (seq, _) = tlv(der);
        let (n, rest) = tlv(seq);
        let (e, _) = tlv(rest);
        let strip = |x: &[u8]| x.iter().skip_while(|&&b| b == 0).copied().collect::<Vec<u8>>();
        (strip(n), strip(e))
    }

    /// Algorithm 8, as the root and most TLDs sign: a signature made by
    /// an RSA key verifies against its DNSKEY, and one over other data
    /// does not.
    #[test]
    fn rsasha256_signatures_verify() {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let (n, e) = der_n_e(pair.public_key().as_ref());
        let mut public = vec![u8::try_from(e.len()).unwrap()];
        public.extend_from_slice(&e);
        public.extend_from_slice(&n);
        let dnskey = key::dnskey_rdata(key::flags::ZONE | key::flags::SEP, RSASHA256, &public);
        let owner = sixgate_dns::name::from_text("example.", None).unwrap();
        let address: &[u8] = &[192, 0, 2, 1];
        let set = RrSet { owner: &owner, rtype: 1, ttl: 300, rdatas: &[address] };
        let mut sig = Rrsig {
            type_covered: 1,
            algorithm: RSASHA256,
            labels: 1,
            original_ttl: 300,
            expiration: 2_000_000_000,
            inception: 1_000_000_000,
            key_tag: key::key_tag(&dnskey),
            signer: owner.clone(),
            signature: Box::new([]),
        };
        let mut data = Vec::new();
        signed_data(&sig, &set, &mut data);
        let mut signature = vec![0; pair.public_modulus_len()];
        pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &data, &mut signature).unwrap();
        sig.signature = signature.into();
        assert_eq!(verify(&dnskey, &sig, &set), Ok(()));
        let other: &[u8] = &[192, 0, 2, 2];
        let forged = RrSet { rdatas: &[other], ..set };
        assert_eq!(verify(&dnskey, &sig, &forged), Err(VerifyError::Mismatch));
        assert!(verifies(RSASHA256) && verifies(RSASHA512) && !verifies(5));
    }
}

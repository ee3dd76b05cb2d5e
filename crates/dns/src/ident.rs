//! Telling which server answered: NSID (RFC 5001) and the `id.server` and
//! `hostname.bind` CH TXT queries (RFC 4892 §2, §3).
//!
//! Behind an anycast address every site answers for the same name; an
//! operator chasing a fault needs to know which one a client reached. One
//! configured identifier serves both ways, as Knot's `server.identity` and
//! NSD's `identity` do: the NSID option when a query asks for it, and the
//! TXT answer to the two CH names. Without one both stay off and CH
//! queries are REFUSED, so nothing about the host leaks by default.

/// Longest identifier, in octets. It is one TXT character-string (at most
/// 255 octets), and kept shorter so that a response with the longest
/// question, a cookie and an EDE still fits 512 octets.
pub const MAX_NSID: usize = 128;

/// An identifier that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NsidError {
    /// Empty (RFC 5001 §2.1 reserves the empty NSID for the request).
    #[error("an nsid is not empty")]
    Empty,
    /// Longer than [`MAX_NSID`].
    #[error("an nsid is at most {MAX_NSID} octets, not {0}")]
    TooLong(usize),
}

/// The server's identifier, kept inline so that the answer's settings stay
/// a plain copyable value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nsid {
    len: u8,
    octets: [u8; MAX_NSID],
}

impl Nsid {
    /// An identifier from its octets (RFC 5001 §2.3 leaves their meaning
    /// to the operator; text is usual).
    pub fn new(id: &[u8]) -> Result<Nsid, NsidError> {
        if id.is_empty() {
            return Err(NsidError::Empty);
        }
        let mut octets = [0u8; MAX_NSID];
        let slot = octets.get_mut(..id.len()).ok_or(NsidError::TooLong(id.len()))?;
        slot.copy_from_slice(id);
        Ok(Nsid { len: id.len() as u8, octets })
    }

    /// The identifier's octets.
    pub fn as_bytes(&self) -> &[u8] {
        self.octets.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl std::fmt::Debug for Nsid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nsid({:?})", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// `id.server.` (RFC 4892 §2) and `hostname.bind.` (RFC 4892 §3, BIND's
/// older name), lowercased wire form.
const NAMES: [&[u8]; 2] = [b"\x02id\x06server\x00", b"\x08hostname\x04bind\x00"];

/// Whether a lowercased question name asks for the server's identity.
pub fn is_identity_name(qname: &[u8]) -> bool {
    NAMES.contains(&qname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_nsid_is_one_to_128_octets() {
        assert_eq!(Nsid::new(b""), Err(NsidError::Empty));
        assert_eq!(Nsid::new(b"ns1.fra").unwrap().as_bytes(), b"ns1.fra");
        assert_eq!(Nsid::new(&[b'x'; MAX_NSID]).unwrap().as_bytes().len(), MAX_NSID);
        assert_eq!(Nsid::new(&[b'x'; MAX_NSID + 1]), Err(NsidError::TooLong(MAX_NSID + 1)));
    }

    #[test]
    fn only_the_two_identity_names_are_answered() {
        assert!(is_identity_name(b"\x02id\x06server\x00"));
        assert!(is_identity_name(b"\x08hostname\x04bind\x00"));
        for other in [&b"\x07version\x04bind\x00"[..], b"\x07version\x06server\x00", b"\x02id\x00", b"\x00"] {
            assert!(!is_identity_name(other));
        }
    }
}

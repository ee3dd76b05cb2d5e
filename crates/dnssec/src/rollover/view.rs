//! What the zone publishes and signs with at a moment, from the states of
//! its keys: the input of the signer and of the CDS/CDNSKEY records.

use serde::{Deserialize, Serialize};

use super::{Goal, KeyId, KeyRecord, Keyring, Role};

/// A key as the zone and the parent see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyRef {
    /// Opaque identifier.
    pub id: KeyId,
    /// Its role (KSK and CSK DNSKEYs carry the SEP flag).
    pub role: Role,
    /// Algorithm number.
    pub algorithm: u8,
    /// Key tag.
    pub key_tag: u16,
}

impl From<&KeyRecord> for KeyRef {
    fn from(k: &KeyRecord) -> KeyRef {
        KeyRef { id: k.id, role: k.role, algorithm: k.algorithm, key_tag: k.key_tag }
    }
}

/// The zone's CDS and CDNSKEY RRsets (RFC 7344 §4, RFC 8078 §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Cds {
    /// No CDS/CDNSKEY records.
    None,
    /// CDS/CDNSKEY records for these keys.
    Keys(Vec<KeyRef>),
    /// The "delete" records asking the parent to remove all DS
    /// (RFC 8078 §4).
    Delete,
}

/// The keys of the zone at one moment, by what they do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ZoneKeys {
    /// Keys whose DNSKEY is in the DNSKEY RRset.
    pub dnskey: Vec<KeyRef>,
    /// Keys that sign the DNSKEY, CDS and CDNSKEY RRsets.
    pub dnskey_signers: Vec<KeyRef>,
    /// Keys that sign every other RRset.
    pub zone_signers: Vec<KeyRef>,
    /// What the CDS/CDNSKEY RRsets hold.
    pub cds: Cds,
    /// The DS records the parent should hold, for registries that take
    /// them through an API rather than from CDS.
    pub ds: Vec<KeyRef>,
}

/// Which keys the zone publishes and signs with, as the keyring stands.
pub fn zone_view(keyring: &Keyring) -> ZoneKeys {
    let pick = |f: fn(&KeyRecord) -> bool| -> Vec<KeyRef> {
        keyring.live().filter(|k| f(k)).map(KeyRef::from).collect()
    };
    let dnskey = pick(|k| k.state.dnskey_published());
    let listed = pick(|k| k.ds_listed() && k.state.dnskey_published());
    let cds = match keyring.goal {
        // The delete records are signed like any CDS, so they exist only
        // while the zone has DNSKEYs.
        Goal::Insecure { .. } if !dnskey.is_empty() => Cds::Delete,
        Goal::Insecure { .. } => Cds::None,
        Goal::Secure if listed.is_empty() => Cds::None,
        Goal::Secure => Cds::Keys(listed.clone()),
    };
    let ds = match cds {
        Cds::Keys(_) => listed,
        Cds::None | Cds::Delete => Vec::new(),
    };
    ZoneKeys {
        dnskey,
        dnskey_signers: pick(KeyRecord::signs_dnskey),
        zone_signers: pick(KeyRecord::signs_zone),
        cds,
        ds,
    }
}

//! The signing algorithms sixgate generates keys for (RFC 8624 §3.1: the
//! two it recommends for signing).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A DNSSEC signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Algorithm {
    /// 13, ECDSA P-256 with SHA-256 (RFC 6605). The default.
    #[serde(rename = "ecdsap256sha256")]
    EcdsaP256Sha256,
    /// 15, Ed25519 (RFC 8080).
    #[serde(rename = "ed25519")]
    Ed25519,
}

/// An algorithm name or number sixgate does not sign with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown DNSSEC algorithm {0:?} (use ecdsap256sha256 or ed25519)")]
pub struct UnknownAlgorithm(pub String);

impl Algorithm {
    /// The IANA number.
    pub fn code(self) -> u8 {
        match self {
            Algorithm::EcdsaP256Sha256 => 13,
            Algorithm::Ed25519 => 15,
        }
    }

    /// The algorithm with this IANA number, if sixgate signs with it.
    pub fn from_code(code: u8) -> Option<Algorithm> {
        match code {
            13 => Some(Algorithm::EcdsaP256Sha256),
            15 => Some(Algorithm::Ed25519),
            _ => None,
        }
    }

    /// The name used in the CLI, the API and configuration.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256Sha256 => "ecdsap256sha256",
            Algorithm::Ed25519 => "ed25519",
        }
    }

    /// Length of a signature.
    pub fn signature_len(self) -> usize {
        64
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;
    fn from_str(s: &str) -> Result<Algorithm, UnknownAlgorithm> {
        match s.to_ascii_lowercase().as_str() {
            "ecdsap256sha256" | "ecdsa-p256-sha256" | "13" => Ok(Algorithm::EcdsaP256Sha256),
            "ed25519" | "15" => Ok(Algorithm::Ed25519),
            _ => Err(UnknownAlgorithm(s.to_owned())),
        }
    }
}

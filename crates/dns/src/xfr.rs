//! Outgoing zone transfers: AXFR (RFC 5936) and IXFR (RFC 1995), sans-IO.
//!
//! A primary answers a transfer request in four steps, each a pure
//! function here; the TCP shell around them owns the socket, the access
//! list and the clock:
//!
//! 1. [`decode_request`] reads the request: AXFR or IXFR with the
//!    client's serial (RFC 1995 §3), one question of class IN, EDNS and a
//!    TSIG record as the last record. A request that is not one is
//!    answered with [`reject_into`] and the rcode its [`RequestError`]
//!    gives.
//! 2. For IXFR, [`plan_ixfr`] decides between the single current SOA (the
//!    client is up to date, RFC 1995 §2), the versions that lead from the
//!    client's serial to the current one, and a full AXFR when they do not
//!    reach back that far.
//! 3. [`Transfer`] writes the response one message at a time into the
//!    caller's buffer, from an immutable [`Zone`](crate::Zone) snapshot
//!    ([`Transfer::axfr`]) or from the versions ([`Transfer::ixfr`]). It
//!    holds one pending record and an iterator position, so its memory is
//!    one message whatever the size of the zone.
//! 4. A signed request is answered with every message signed, each MAC
//!    chained to the one before ([`Transfer::signed`], RFC 8945 §5.3.1).
//!
//! A [`Delta`] is one version step as the change journal holds it, and is
//! made from the journal's list of changes with [`Delta::from_changes`].

mod delta;
mod request;
mod stream;

pub use delta::{Delta, DeltaError, IxfrPlan, plan_ixfr};
pub use request::{Kind, Request, RequestError, decode_request, is_transfer, reject_into};
pub use stream::{Options, Transfer, XfrError};

/// RFC 1982 §3.2: is serial `a` greater than serial `b`? Two serials
/// exactly 2^31 apart are neither greater nor smaller.
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// Does a client at serial `client` already hold the version at
/// `current`: the same serial or a greater one (RFC 1995 §2)?
pub fn is_up_to_date(client: u32, current: u32) -> bool {
    client == current || serial_gt(client, current)
}

#[cfg(test)]
mod knot_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_compare_in_rfc_1982_arithmetic() {
        assert!(serial_gt(2, 1));
        assert!(!serial_gt(1, 2));
        assert!(!serial_gt(7, 7));
        // Across the wrap: 0 and 5 come after 4294967295.
        assert!(serial_gt(0, u32::MAX));
        assert!(serial_gt(5, u32::MAX - 10));
        assert!(!serial_gt(u32::MAX, 0));
        // 2^31 - 1 apart is still ordered; 2^31 apart is undefined, so
        // neither is greater (RFC 1982 §3.2).
        assert!(serial_gt(0x7FFF_FFFF, 0));
        assert!(!serial_gt(0x8000_0000, 0) && !serial_gt(0, 0x8000_0000));
    }

    #[test]
    fn a_client_at_or_above_the_current_serial_is_up_to_date() {
        assert!(is_up_to_date(10, 10));
        assert!(is_up_to_date(11, 10));
        assert!(!is_up_to_date(9, 10));
        assert!(is_up_to_date(3, u32::MAX), "3 is after the wrap");
        assert!(!is_up_to_date(u32::MAX, 3));
        // Undefined comparisons are not up to date: a full transfer
        // repairs them.
        assert!(!is_up_to_date(0x8000_0000, 0) && !is_up_to_date(0, 0x8000_0000));
    }
}

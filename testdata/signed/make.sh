#!/usr/bin/env bash
# Makes the signed zones crates/dnssec checks its verifier against:
# example.zone signed by ldns-signzone (ldnsutils) with a fresh ECDSA P-256
# and a fresh Ed25519 key, NSEC. Re-running replaces keys and signatures.
set -euo pipefail
cd "$(dirname "$0")"
rm -f K*.key K*.private K*.ds
for alg in ECDSAP256SHA256 ED25519; do
    key=$(ldns-keygen -a "$alg" -k example.)
    ldns-signzone -n -t 0 -o example. -f "example.$alg.nsec3.signed" example.zone "$key" >/dev/null
    ldns-signzone -o example. -f "example.$alg.signed" example.zone "$key"
    rm -f "$key".*
done

#!/bin/sh
# Signs dnssec.test.zone twice with fresh ECDSA P-256 keys (a KSK and a
# ZSK): NSEC (dnssec.test.nsec.signed) and NSEC3 with SHA-1, no extra
# iterations and no salt, as RFC 9276 asks (dnssec.test.nsec3.signed).
# The signed files hold the public keys; the private keys are thrown away.
# After signing again, run capture.py to capture Knot's answers anew.
#
#     sh testdata/dnssec/sign.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
ksk=$(ldns-keygen -a ECDSAP256SHA256 -k dnssec.test.)
zsk=$(ldns-keygen -a ECDSAP256SHA256 dnssec.test.)
# Fixed validity so re-signing the same keys gives comparable files.
dates="-i 20250101000000 -e 20350101000000"
ldns-signzone $dates -o dnssec.test. -f "$here/dnssec.test.nsec.signed" \
    "$here/dnssec.test.zone" "$zsk" "$ksk"
ldns-signzone $dates -n -t 0 -o dnssec.test. -f "$here/dnssec.test.nsec3.signed" \
    "$here/dnssec.test.zone" "$zsk" "$ksk"

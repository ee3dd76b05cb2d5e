#!/bin/sh
# Signs dnssec.test.zone twice with fresh ECDSA P-256 keys (a KSK and a
# ZSK): NSEC (dnssec.test.nsec.signed) and NSEC3 with SHA-1, no extra
# iterations and no salt, as RFC 9276 asks (dnssec.test.nsec3.signed).
# The signed files hold the public keys; the private keys are thrown away.
# After signing again, run capture.py to capture Knot's answers anew.
#
# The same content is also signed with NSEC3 as nsec3.test. for the
# `respond` fuzz target (fuzz/fuzz_targets/zones/nsec3.test.signed), which
# serves it beside dnssec.test.
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
sed 's/dnssec\.test\./nsec3.test./' "$here/dnssec.test.zone" >nsec3.test.zone
ksk3=$(ldns-keygen -a ECDSAP256SHA256 -k nsec3.test.)
zsk3=$(ldns-keygen -a ECDSAP256SHA256 nsec3.test.)
ldns-signzone $dates -n -t 0 -o nsec3.test. -f "$here/../../fuzz/fuzz_targets/zones/nsec3.test.signed" \
    nsec3.test.zone "$zsk3" "$ksk3"

//! Names in rdata written every way, in every type that holds one, and
//! the types the scanner lacks, through import and export.

use super::*;

fn wire(text: &str) -> Box<[u8]> {
    name::from_text(text, None).unwrap()
}

/// Every name-bearing type, its rdata with `{}` where a name goes.
const TEMPLATES: &[(&str, &str)] = &[
    ("NS", "{}"),
    ("MD", "{}"),
    ("MF", "{}"),
    ("CNAME", "{}"),
    ("MB", "{}"),
    ("MG", "{}"),
    ("MR", "{}"),
    ("PTR", "{}"),
    ("DNAME", "{}"),
    ("ANAME", "{}"),
    ("SOA", "{} {} 1 7200 3600 1209600 300"),
    ("MINFO", "{} {}"),
    ("RP", "{} {}"),
    ("MX", "10 {}"),
    ("AFSDB", "1 {}"),
    ("RT", "2 {}"),
    ("KX", "3 {}"),
    ("LP", "4 {}"),
    ("PX", "5 {} {}"),
    ("SRV", "0 5 443 {}"),
    ("NAPTR", "100 10 \"S\" \"SIP+D2U\" \"\" {}"),
    ("SVCB", "1 {} alpn=h2"),
    ("HTTPS", "1 {}"),
    ("IPSECKEY", "10 3 2 {} AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ=="),
    ("NSEC", "{} A RRSIG"),
    ("RRSIG", "A 13 2 300 20300101000000 20200101000000 1 {} AQID"),
];

/// Ways of writing a name, and the name each stands for under `origin`
/// (text of an absolute name, `{o}` standing for the origin).
const WAYS: &[(&str, &str)] = &[
    ("@", "{o}"),
    ("rel", "rel.{o}"),
    ("a.rel", "a.rel.{o}"),
    ("abs.example.net.", "abs.example.net."),
    ("ABS.Example.NET.", "ABS.Example.NET."),
    (".", "."),
    ("a\\.b", "a\\.b.{o}"),
    ("\\097bc", "abc.{o}"),
    ("\\@", "\\@.{o}"),
    ("\\@.example.net.", "\\@.example.net."),
    ("x\\032y", "x\\032y.{o}"),
];

/// (prefix of the file, origin in force at the record, owner field).
fn contexts() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("", "example.com.", "x "),
        ("$ORIGIN sub.example.com.\n", "sub.example.com.", "x "),
        ("$ORIGIN sub.example.com.\nx A 192.0.2.1\n", "sub.example.com.", "   "),
        ("$ORIGIN sub\n$ORIGIN deeper\n", "deeper.sub.example.com.", "@ "),
    ]
}

#[test]
fn every_name_field_reads_every_way_of_writing_a_name() {
    let zone = wire("example.com.");
    let mut checked = 0;
    for (prefix, origin, owner) in contexts() {
        for &(rtype, template) in TEMPLATES {
            for &(way, meaning) in WAYS {
                // `.` as the origin of a relative name is not a name here.
                let expected = meaning.replace("{o}", origin);
                let text = format!("{prefix}{owner}300 IN {rtype} {}\n", template.replace("{}", way));
                let recs = parse(&text, &zone).unwrap_or_else(|e| panic!("{text}: {e}"));
                let got = recs.last().unwrap();
                // The same record with the name written out absolutely.
                let reference = format!(
                    "x.example.com. 300 IN {rtype} {}\n",
                    template.replace("{}", &name::to_text(&wire(&expected)))
                );
                let want = parse(&reference, &zone).unwrap_or_else(|e| panic!("{reference}: {e}"));
                assert_eq!(got.rdata, want[0].rdata, "{text} vs {reference}");
                assert_eq!(got.rtype, want[0].rtype, "{text}");
                // And the name itself is in the rdata, uncompressed.
                let w = wire(&expected);
                assert!(got.rdata.windows(w.len()).any(|x| x == &w[..]), "{text}: {:?}", got.rdata);
                // The export reads back to the same record.
                let out = render(&zone, &recs);
                assert_eq!(parse(&out, &zone).unwrap(), recs, "{out}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 4 * TEMPLATES.len() * WAYS.len());
}

/// `@` and a relative name inside a string or in a field that is no name
/// stay what they are.
#[test]
fn at_outside_name_fields_is_not_a_name() {
    let zone = wire("example.com.");
    let recs = parse("x TXT @ \"@\" rel\nx CAA 0 issue \"@\"\nx HINFO @ \"@\"\n", &zone).unwrap();
    assert_eq!(&recs[0].rdata[..], b"\x01@\x01@\x03rel");
    assert_eq!(&recs[1].rdata[..], b"\x00\x05issue@");
    assert_eq!(&recs[2].rdata[..], b"\x01@\x01@");
    // A quoted "@" in a name field is a label made of the character.
    let recs = parse("x CNAME \"@\"\n", &zone).unwrap();
    assert_eq!(name::to_text(&recs[0].rdata), "\\@.example.com.");
}

#[test]
fn types_the_scanner_lacks_read_their_presentation_form() {
    let zone = wire("example.com.");
    let n = |t: &str| wire(t).to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("AFSDB 1 afs.example.net.", [vec![0, 1], n("afs.example.net.")].concat()),
        ("RT 10 relay", [vec![0, 10], n("relay.example.com.")].concat()),
        ("KX 10 @", [vec![0, 10], n("example.com.")].concat()),
        ("LP 10 l64", [vec![0, 10], n("l64.example.com.")].concat()),
        (
            "PX 10 net2.it. PRMD-net2.ADMD-p400.C-it.",
            [vec![0, 10], n("net2.it."), n("PRMD-net2.ADMD-p400.C-it.")].concat(),
        ),
        ("SPF \"v=spf1 -all\" x", [&b"\x0bv=spf1 -all\x01x"[..]].concat()),
        ("KEY 256 3 13 AQID", vec![1, 0, 3, 13, 1, 2, 3]),
        ("SMIMEA 3 1 1 0c72 AC70", vec![3, 1, 1, 0x0c, 0x72, 0xac, 0x70]),
        ("DHCID AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=", {
            let mut v = vec![0, 2, 1, 0x63, 0x6f, 0xc0, 0xb8, 0x27, 0x1c, 0x82, 0x82, 0x5b, 0xb1, 0xac, 0x5c];
            v.extend_from_slice(&[0x41, 0xcf, 0x53, 0x51, 0xaa, 0x69, 0xb4, 0xfe, 0xbd, 0x94, 0xe8, 0xf1]);
            v.extend_from_slice(&[0x7c, 0xdb, 0x95, 0x00, 0x0d, 0xa4, 0x8c, 0x40]);
            v
        }),
        (
            "URI 10 1 \"ftp://ftp1.example.com/public\"",
            [&[0, 10, 0, 1][..], b"ftp://ftp1.example.com/public"].concat(),
        ),
        ("EUI48 00-00-5e-00-53-2a", vec![0, 0, 0x5e, 0, 0x53, 0x2a]),
        ("EUI64 00-00-5e-ef-10-00-00-2a", vec![0, 0, 0x5e, 0xef, 0x10, 0, 0, 0x2a]),
        ("L32 10 10.1.2.0", vec![0, 10, 10, 1, 2, 0]),
        ("L64 10 2001:0DB8:1140:1000", vec![0, 10, 0x20, 0x01, 0x0d, 0xb8, 0x11, 0x40, 0x10, 0]),
        ("NID 10 14:4fff:ff20:ee64", vec![0, 10, 0, 0x14, 0x4f, 0xff, 0xff, 0x20, 0xee, 0x64]),
        // RFC 7477 §2.1.1's example.
        ("CSYNC 66 3 A NS AAAA", vec![0, 0, 0, 66, 0, 3, 0, 4, 0x60, 0, 0, 8]),
        ("CSYNC 1 0", vec![0, 0, 0, 1, 0, 0]),
        ("CERT PGP 0 0 AQID", vec![0, 3, 0, 0, 0, 1, 2, 3]),
        ("CERT 1 12345 RSASHA256 AQID", vec![0, 1, 0x30, 0x39, 8, 1, 2, 3]),
        // RFC 1876 §3's defaults (1 m, 10 km, 10 m), the equator and
        // meridian at sea level.
        ("LOC 0 N 0 E 0m", vec![0, 0x12, 0x16, 0x13, 0x80, 0, 0, 0, 0x80, 0, 0, 0, 0, 0x98, 0x96, 0x80]),
        (
            "LOC 42 21 54.500 N 71 6 18 W -24.50m 30m 1m 10m",
            [
                vec![0, 0x33, 0x12, 0x13],
                ((1u32 << 31) + 42 * 3_600_000 + 21 * 60_000 + 54_500).to_be_bytes().to_vec(),
                ((1u32 << 31) - (71 * 3_600_000 + 6 * 60_000 + 18_000)).to_be_bytes().to_vec(),
                (10_000_000u32 - 2450).to_be_bytes().to_vec(),
            ]
            .concat(),
        ),
        (
            "APL 1:192.168.32.0/21 !1:192.168.38.0/28",
            vec![0, 1, 21, 3, 192, 168, 32, 0, 1, 28, 0x83, 192, 168, 38],
        ),
        ("APL 1:224.0.0.0/4 2:ff00::/8", vec![0, 1, 4, 1, 224, 0, 2, 8, 1, 0xff]),
        ("APL 1:0.0.0.0/0", vec![0, 1, 0, 0]),
    ];
    for (line, want) in cases {
        let text = format!("x 300 IN {line}\n");
        let recs = parse(&text, &zone).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(recs[0].rdata.to_vec(), want, "{line}");
        let mnemonic = line.split(' ').next().unwrap();
        assert_eq!(type_text(recs[0].rtype), mnemonic);
        // Written back in its own form, which reads back the same, and
        // the RFC 3597 form of the same data is the same record.
        let out = render(&zone, &recs);
        assert!(out.contains(&format!(" IN {mnemonic} ")) && !out.contains("\\#"), "{out}");
        assert_eq!(parse(&out, &zone).unwrap(), recs, "{out}");
        let generic = format!("x 300 IN {mnemonic} {}\n", generic_rdata(&want));
        assert_eq!(parse(&generic, &zone).unwrap(), recs, "{generic}");
    }
}

#[test]
fn bad_data_of_the_types_the_scanner_lacks_is_refused_with_the_line() {
    let zone = wire("example.com.");
    for bad in [
        "AFSDB 1",
        "AFSDB x host",
        "AFSDB 65536 host",
        "AFSDB 1 host extra",
        "KX 1 \"quoted\"",
        "PX 1 a",
        "EUI48 00-00-5e-00-53",
        "EUI48 00-00-5e-00-53-zz",
        "EUI64 00-00-5e-00-53-2a",
        "L32 1 192.0.2",
        "L64 1 1:2:3",
        "NID 1 1:2:3:12345",
        "URI 1 2",
        "KEY 256 3 13 !!!",
        "KEY 256 3 13",
        "SMIMEA 3 1 1 abc",
        "CSYNC 1 0 NOTATYPE",
        "CERT NOPE 0 0 AQID",
        "CERT 1 0 300 AQID",
        "DHCID",
        "SPF \"\\256\"",
        "AFSDB \\# 1 00",
        "TYPE18 \\# 2 0001",
        "EUI48 \\# 5 0000000000",
        "LOC 91 N 0 E 0m",
        "LOC 18446744073709551615 N 0 E 0m",
        "LOC 0 N 0 E 92233720368547758.07m",
        "LOC 0 N 0 E 42849672.96m",
        "LOC 0 N 0 E -100000.01m",
        "LOC 0 N 0 E",
        "LOC 0 X 0 E 0m",
        "LOC 0 60 N 0 E 0m",
        "LOC 0 N 0 E 0m 1000000000m",
        "APL 1:192.0.2.0/33",
        "APL 3:192.0.2.0/24",
        "APL 1:192.0.2.0",
        "APL \\# 5 0001180100",
    ] {
        let text = format!("@ 300 IN TXT ok\nx 300 IN {bad}\n");
        let e = parse(&text, &zone).expect_err(bad);
        assert_eq!(e.line, 2, "{bad}: {e}");
    }
    let e = parse("x AFSDB 1 a..b\n", &zone).unwrap_err();
    assert!(e.reason.contains("AFSDB") && e.reason.contains("hostname"), "{e}");
}

/// The zone the differential test loads from `testdata/zones/` with every
/// way of writing a name: it imports, and its export reads back the same.
#[test]
fn the_names_test_zone_imports_and_round_trips() {
    let apex = wire("names.test.");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/zones/names.test.zone");
    let recs = parse(&std::fs::read_to_string(path).unwrap(), &apex).unwrap();
    let find = |owner: &str, rtype: u16| {
        recs.iter().find(|r| r.owner[..] == wire(owner)[..] && r.rtype == rtype).unwrap().rdata.clone()
    };
    assert_eq!(find("www.names.test.", code::CNAME), apex);
    assert_eq!(find("lit.names.test.", code::CNAME), wire("\\@.names.test."));
    assert_eq!(find("up.sub.names.test.", code::CNAME), wire("sub.names.test."));
    assert_eq!(find("back.deeper.sub.names.test.", code::CNAME), wire("deeper.sub.names.test."));
    assert_eq!(&find("host.sub.names.test.", code::KX)[2..], &wire("sub.names.test.")[..]);
    assert_eq!(&find("sub.names.test.", code::AFSDB)[2..], &wire("host.sub.names.test.")[..]);
    let out = render(&apex, &recs);
    assert_eq!(parse(&out, &apex).unwrap(), recs, "{out}");
    assert!(
        !out.contains("\\# ")
            || out.lines().filter(|l| l.contains("\\# ")).all(|l| { l.contains(" TYPE65280 ") }),
        "{out}"
    );
}

//! RFC 2136 §3.2 and §3.4 case by case, on a small zone used as the view.

use super::*;
use crate::update::{CLASS_NONE, decode};
use crate::zonefile;

const ZONE: &str = r#"
@        3600 SOA  ns1 hostmaster 1 7200 3600 1209600 300
@        3600 NS   ns1
@        3600 NS   ns2
@        300  MX   10 Mail.Example.com.
@        300  TXT  "apex"
ns1      300  A    192.0.2.1
ns2      300  A    192.0.2.2
www      300  A    192.0.2.80
www      300  A    192.0.2.81
www      300  TXT  "hello"
alias    300  CNAME www
a.b.deep 300  A    192.0.2.9
"#;

fn n(s: &str) -> Box<[u8]> {
    name::from_text(s, Some(&apex())).unwrap()
}

fn apex() -> Box<[u8]> {
    name::from_text("example.com.", None).unwrap()
}

fn zone() -> Zone {
    Zone::build(&apex(), zonefile::parse(ZONE, &apex()).unwrap(), 1).unwrap()
}

/// An RR of the zone's class from a zone-file line (`owner ttl type rdata`).
fn add(line: &str) -> UpdateRr {
    let r = zonefile::parse(line, &apex()).unwrap().pop().unwrap();
    UpdateRr { owner: r.owner, class: 1, rtype: r.rtype, ttl: r.ttl, rdata: r.rdata }
}

/// The RR `line` with class NONE and TTL 0: delete this RR / RR exists.
fn none(line: &str) -> UpdateRr {
    UpdateRr { class: CLASS_NONE, ttl: 0, ..add(line) }
}

/// The RR `line` with class and TTL of a prerequisite "RRset exists
/// (value dependent)".
fn value(line: &str) -> UpdateRr {
    UpdateRr { ttl: 0, ..add(line) }
}

/// An empty RR of `class` (ANY or NONE) and `rtype`.
fn meta(owner: &str, class: u16, rtype: u16) -> UpdateRr {
    UpdateRr { owner: n(owner), class, rtype, ttl: 0, rdata: Box::default() }
}

fn update(prerequisites: Vec<UpdateRr>, updates: Vec<UpdateRr>) -> Update {
    Update { id: 1, flags: 0x2800, zone: apex(), zone_class: 1, prerequisites, updates, edns: None }
}

fn prereq(rrs: Vec<UpdateRr>) -> Result<(), Rcode> {
    check_prerequisites(&apex(), &update(rrs, vec![]), &zone())
}

fn run(updates: Vec<UpdateRr>) -> Result<Vec<Change>, Rcode> {
    changes(&apex(), &update(vec![], updates), &zone(), &|_, _| true)
}

/// Applies `updates` and returns the zone's records as text lines.
fn after(updates: Vec<UpdateRr>) -> Vec<String> {
    let z = zone().apply(&run(updates).unwrap()).unwrap();
    zonefile::render(&apex(), &z.records())
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn has(lines: &[String], line: &str) -> bool {
    lines.iter().any(|l| l == line)
}

fn rec(line: &str) -> Record {
    zonefile::parse(line, &apex()).unwrap().pop().unwrap()
}

#[test]
fn prerequisites_each_form() {
    use Rcode::*;
    let cases: Vec<(UpdateRr, Result<(), Rcode>)> = vec![
        // §2.4.4 name is in use.
        (meta("www", CLASS_ANY, code::ANY), Ok(())),
        (meta("nowhere", CLASS_ANY, code::ANY), Err(NxDomain)),
        // An empty non-terminal owns no RRs: not in use.
        (meta("b.deep", CLASS_ANY, code::ANY), Err(NxDomain)),
        // §2.4.1 RRset exists (value independent).
        (meta("www", CLASS_ANY, code::TXT), Ok(())),
        (meta("www", CLASS_ANY, code::MX), Err(NxRrSet)),
        // §2.4.5 name is not in use.
        (meta("nowhere", CLASS_NONE, code::ANY), Ok(())),
        (meta("b.deep", CLASS_NONE, code::ANY), Ok(())),
        (meta("alias", CLASS_NONE, code::ANY), Err(YxDomain)),
        // §2.4.3 RRset does not exist.
        (meta("www", CLASS_NONE, code::MX), Ok(())),
        (meta("www", CLASS_NONE, code::A), Err(YxRrSet)),
        // §3.2.1/§3.2.2: rdata or a TTL with class ANY or NONE.
        (UpdateRr { rdata: Box::from(&[1u8][..]), ..meta("www", CLASS_ANY, code::A) }, Err(FormErr)),
        (none("www 0 A 192.0.2.80"), Err(FormErr)),
        (UpdateRr { ttl: 1, ..meta("www", CLASS_ANY, code::A) }, Err(FormErr)),
        // §3.2.3: another class; §3.2.5: outside the zone.
        (meta("www", 3, code::A), Err(FormErr)),
        (
            UpdateRr { owner: name::from_text("www.example.net.", None).unwrap(), ..meta("x", CLASS_ANY, 1) },
            Err(NotZone),
        ),
        (UpdateRr { owner: name::from_text("com.", None).unwrap(), ..meta("x", CLASS_ANY, 1) }, Err(NotZone)),
    ];
    for (rr, want) in cases {
        assert_eq!(prereq(vec![rr.clone()]), want, "{} {} {}", name::to_text(&rr.owner), rr.class, rr.rtype);
    }
}

#[test]
fn value_dependent_prerequisites_compare_whole_rrsets() {
    let www_a = |ips: &[&str]| ips.iter().map(|ip| value(&format!("www 0 A {ip}"))).collect::<Vec<_>>();
    assert_eq!(prereq(www_a(&["192.0.2.80", "192.0.2.81"])), Ok(()));
    assert_eq!(prereq(www_a(&["192.0.2.81", "192.0.2.80", "192.0.2.81"])), Ok(()), "duplicates count once");
    assert_eq!(prereq(www_a(&["192.0.2.80"])), Err(Rcode::NxRrSet), "fewer");
    assert_eq!(prereq(www_a(&["192.0.2.80", "192.0.2.81", "192.0.2.82"])), Err(Rcode::NxRrSet), "more");
    assert_eq!(prereq(vec![value("nowhere 0 A 192.0.2.1")]), Err(Rcode::NxRrSet));
    // Names in rdata compare without case; other rdata exactly.
    assert_eq!(prereq(vec![value("@ 0 MX 10 mail.EXAMPLE.com.")]), Ok(()));
    assert_eq!(prereq(vec![value("@ 0 TXT \"APEX\"")]), Err(Rcode::NxRrSet));
    // The TTL must be 0 here too.
    assert_eq!(prereq(vec![add("www 300 A 192.0.2.80"), add("www 300 A 192.0.2.81")]), Err(Rcode::FormErr));
    // Sets interleaved with other forms: each set is gathered whole.
    let mixed = vec![
        value("www 0 A 192.0.2.80"),
        meta("www", CLASS_ANY, code::TXT),
        value("www 0 A 192.0.2.81"),
        value("@ 0 NS ns2"),
        value("@ 0 NS ns1"),
    ];
    assert_eq!(prereq(mixed), Ok(()));
}

#[test]
fn the_first_failing_prerequisite_decides() {
    let rrs = vec![meta("www", CLASS_NONE, code::A), meta("nowhere", CLASS_ANY, code::ANY)];
    assert_eq!(prereq(rrs), Err(Rcode::YxRrSet));
    // Per-RR errors come before the value-dependent sets are compared.
    let rrs = vec![value("www 0 A 192.0.2.1"), meta("www", CLASS_NONE, code::A)];
    assert_eq!(prereq(rrs), Err(Rcode::YxRrSet));
}

#[test]
fn prescan_rejects_what_cannot_be_an_update() {
    use Rcode::*;
    let out =
        UpdateRr { owner: name::from_text("x.example.net.", None).unwrap(), ..add("x 300 A 192.0.2.1") };
    let cases: Vec<(UpdateRr, Result<(), Rcode>)> = vec![
        (add("x 300 A 192.0.2.1"), Ok(())),
        (out, Err(NotZone)),
        // Adds of meta types (§3.4.1.2).
        (UpdateRr { rtype: code::ANY, ..add("x 300 A 192.0.2.1") }, Err(FormErr)),
        (UpdateRr { rtype: code::AXFR, ..add("x 300 A 192.0.2.1") }, Err(FormErr)),
        (UpdateRr { rtype: code::MAILA, ..add("x 300 A 192.0.2.1") }, Err(FormErr)),
        (UpdateRr { rtype: code::OPT, ..add("x 300 A 192.0.2.1") }, Err(FormErr)),
        (UpdateRr { rtype: code::TSIG, ..add("x 300 A 192.0.2.1") }, Err(FormErr)),
        // Adds with rdata that is not of their type.
        (UpdateRr { rdata: Box::from(&[1u8, 2, 3][..]), ..add("x 300 A 192.0.2.1") }, Err(FormErr)),
        (UpdateRr { rdata: Box::from(&b"\xC0\x0C"[..]), ..add("x 300 NS ns1") }, Err(FormErr)),
        // Unknown types are stored as they are (RFC 3597).
        (UpdateRr { rtype: 65280, rdata: Box::from(&[1u8][..]), ..add("x 300 A 192.0.2.1") }, Ok(())),
        // Delete an RRset / all RRsets.
        (meta("x", CLASS_ANY, code::A), Ok(())),
        (meta("x", CLASS_ANY, code::ANY), Ok(())),
        (meta("x", CLASS_ANY, code::AXFR), Err(FormErr)),
        (meta("x", CLASS_ANY, code::MAILB), Err(FormErr)),
        (UpdateRr { ttl: 5, ..meta("x", CLASS_ANY, code::A) }, Err(FormErr)),
        (UpdateRr { rdata: Box::from(&[0u8][..]), ..meta("x", CLASS_ANY, code::A) }, Err(FormErr)),
        // Delete an RR.
        (none("x 0 A 192.0.2.1"), Ok(())),
        (UpdateRr { ttl: 5, ..none("x 0 A 192.0.2.1") }, Err(FormErr)),
        (UpdateRr { rtype: code::ANY, ..none("x 0 A 192.0.2.1") }, Err(FormErr)),
        // Another class.
        (UpdateRr { class: 3, ..add("x 300 A 192.0.2.1") }, Err(FormErr)),
    ];
    for (rr, want) in cases {
        let u = update(vec![], vec![add("y 300 A 192.0.2.9"), rr.clone()]);
        assert_eq!(prescan(&apex(), &u), want, "{} {} {}", name::to_text(&rr.owner), rr.class, rr.rtype);
        if let Err(rcode) = want {
            assert_eq!(changes(&apex(), &u, &zone(), &|_, _| true), Err(rcode));
        }
    }
}

#[test]
fn add_to_an_rrset() {
    let c = run(vec![add("new 300 A 192.0.2.7")]).unwrap();
    assert_eq!(c, vec![Change::Add(rec("new 300 A 192.0.2.7"))]);
    // Into an existing RRset: the set takes the new TTL (RFC 2181 §5.2),
    // so the RRs already there are re-added with it.
    let c = run(vec![add("www 600 A 192.0.2.82")]).unwrap();
    assert_eq!(c.len(), 3);
    assert!(c.contains(&Change::Add(rec("www 600 A 192.0.2.82"))));
    assert!(c.contains(&Change::Add(rec("www 600 A 192.0.2.80"))));
    let lines = after(vec![add("www 600 A 192.0.2.82")]);
    assert!(has(&lines, "www.example.com. 600 IN A 192.0.2.80"), "{lines:?}");
    assert!(has(&lines, "www.example.com. 600 IN A 192.0.2.82"), "{lines:?}");
}

#[test]
fn duplicate_adds_change_nothing_but_the_ttl() {
    assert_eq!(run(vec![add("www 300 A 192.0.2.80")]).unwrap(), vec![]);
    // A duplicate but for the case of a name replaces the stored RR
    // (§3.4.2.2: "the Zone RR is replaced by Update RR").
    assert_eq!(
        run(vec![add("@ 300 MX 10 mail.example.com.")]).unwrap(),
        vec![
            Change::Remove(rec("@ 300 MX 10 Mail.Example.com.")),
            Change::Add(rec("@ 300 MX 10 mail.example.com."))
        ]
    );
    let c = run(vec![add("www 60 A 192.0.2.80")]).unwrap();
    assert_eq!(c, vec![Change::Add(rec("www 60 A 192.0.2.80")), Change::Add(rec("www 60 A 192.0.2.81"))]);
}

#[test]
fn cname_and_other_data_exclude_each_other_silently() {
    // §3.4.2.2: a CNAME where other data exists is ignored...
    assert_eq!(run(vec![add("www 300 CNAME elsewhere")]).unwrap(), vec![]);
    assert_eq!(run(vec![add("@ 300 CNAME elsewhere")]).unwrap(), vec![]);
    // ...and so is other data where a CNAME exists...
    assert_eq!(run(vec![add("alias 300 A 192.0.2.1")]).unwrap(), vec![]);
    // ...but a CNAME replaces a CNAME.
    let c = run(vec![add("alias 300 CNAME ns1")]).unwrap();
    assert_eq!(c, vec![Change::Remove(rec("alias 300 CNAME www")), Change::Add(rec("alias 300 CNAME ns1"))]);
    // The CNAME's own DNSSEC records may join it.
    let nsec = add("alias 300 NSEC alias.example.com. CNAME RRSIG NSEC");
    assert_eq!(run(vec![nsec.clone()]).unwrap().len(), 1);
    // Sequentially: data added first makes the CNAME after it ignored.
    let c = run(vec![add("fresh 300 TXT \"x\""), add("fresh 300 CNAME www")]).unwrap();
    assert_eq!(c, vec![Change::Add(rec("fresh 300 TXT \"x\""))]);
}

#[test]
fn delete_an_rrset() {
    let c = run(vec![meta("www", CLASS_ANY, code::A)]).unwrap();
    assert_eq!(
        c,
        vec![Change::Remove(rec("www 300 A 192.0.2.80")), Change::Remove(rec("www 300 A 192.0.2.81"))]
    );
    assert_eq!(run(vec![meta("www", CLASS_ANY, code::MX)]).unwrap(), vec![]);
    assert_eq!(run(vec![meta("nowhere", CLASS_ANY, code::A)]).unwrap(), vec![]);
    // The apex SOA and NS RRsets are never deleted (§3.4.2.3)...
    assert_eq!(run(vec![meta("@", CLASS_ANY, code::SOA)]).unwrap(), vec![]);
    assert_eq!(run(vec![meta("@", CLASS_ANY, code::NS)]).unwrap(), vec![]);
    // ...but other apex RRsets are, and NS RRsets below it.
    assert_eq!(
        run(vec![meta("@", CLASS_ANY, code::TXT)]).unwrap(),
        vec![Change::Remove(rec("@ 300 TXT \"apex\""))]
    );
}

#[test]
fn delete_all_rrsets_from_a_name() {
    let lines = after(vec![meta("www", CLASS_ANY, code::ANY)]);
    assert!(!lines.iter().any(|l| l.starts_with("www.")), "{lines:?}");
    // At the apex only the SOA and NS RRsets stay.
    let lines = after(vec![meta("@", CLASS_ANY, code::ANY)]);
    let apex_lines: Vec<_> = lines.iter().filter(|l| l.starts_with("example.com. ")).collect();
    assert_eq!(apex_lines.len(), 3, "{lines:?}");
    assert!(apex_lines.iter().all(|l| l.contains(" SOA ") || l.contains(" NS ")));
    assert_eq!(run(vec![meta("b.deep", CLASS_ANY, code::ANY)]).unwrap(), vec![]);
}

#[test]
fn delete_an_rr() {
    assert_eq!(
        run(vec![none("www 0 A 192.0.2.80")]).unwrap(),
        vec![Change::Remove(rec("www 300 A 192.0.2.80"))]
    );
    assert_eq!(run(vec![none("www 0 A 192.0.2.99")]).unwrap(), vec![]);
    // The stored record is removed, whatever case the request used.
    assert_eq!(
        run(vec![none("@ 0 MX 10 MAIL.example.com.")]).unwrap(),
        vec![Change::Remove(rec("@ 300 MX 10 Mail.Example.com."))]
    );
    // §3.4.2.4: never the SOA.
    let soa = none("@ 0 SOA ns1 hostmaster 1 7200 3600 1209600 300");
    assert_eq!(run(vec![soa]).unwrap(), vec![]);
}

#[test]
fn the_last_apex_ns_stays() {
    let c = run(vec![none("@ 0 NS ns1")]).unwrap();
    assert_eq!(c, vec![Change::Remove(rec("@ 3600 NS ns1"))]);
    // Deleting both, one after the other: the second is the last one left
    // and is ignored (§3.4.2.4, seen sequentially).
    let c = run(vec![none("@ 0 NS ns1"), none("@ 0 NS ns2")]).unwrap();
    assert_eq!(c, vec![Change::Remove(rec("@ 3600 NS ns1"))]);
    // Replacing the NS set works when the new one is added first.
    let c = run(vec![add("@ 3600 NS ns3"), none("@ 0 NS ns1"), none("@ 0 NS ns2")]).unwrap();
    assert_eq!(c.len(), 3);
    let lines = after(vec![add("@ 3600 NS ns3"), none("@ 0 NS ns1"), none("@ 0 NS ns2")]);
    let ns: Vec<_> = lines.iter().filter(|l| l.contains(" NS ")).collect();
    assert_eq!(ns, vec!["example.com. 3600 IN NS ns3.example.com."]);
    // Below the apex a delegation's last NS may go.
    let c = changes(
        &apex(),
        &update(vec![], vec![add("sub 300 NS ns.sub"), none("sub 0 NS ns.sub")]),
        &zone(),
        &|_, _| true,
    );
    assert_eq!(c, Ok(vec![]));
}

#[test]
fn soa_adds_are_ignored() {
    let soa = add("@ 3600 SOA ns1 hostmaster 99 7200 3600 1209600 300");
    assert_eq!(run(vec![soa]).unwrap(), vec![]);
}

#[test]
fn updates_see_the_ones_before_them() {
    // Added then deleted: nothing happens.
    assert_eq!(run(vec![add("tmp 300 A 192.0.2.1"), none("tmp 0 A 192.0.2.1")]).unwrap(), vec![]);
    assert_eq!(run(vec![add("tmp 300 A 192.0.2.1"), meta("tmp", CLASS_ANY, code::ANY)]).unwrap(), vec![]);
    // Deleted then added back: nothing happens either.
    assert_eq!(
        run(vec![meta("www", CLASS_ANY, code::A), add("www 300 A 192.0.2.80"), add("www 300 A 192.0.2.81")])
            .unwrap(),
        vec![]
    );
    // Name cleared then reused: the CNAME is no longer in the way.
    let c = run(vec![meta("alias", CLASS_ANY, code::ANY), add("alias 300 A 192.0.2.5")]).unwrap();
    assert_eq!(
        c,
        vec![Change::Remove(rec("alias 300 CNAME www")), Change::Add(rec("alias 300 A 192.0.2.5"))]
    );
    // Owners are matched without case.
    let c = run(vec![add("NEW 300 A 192.0.2.1"), none("new 0 A 192.0.2.1")]).unwrap();
    assert_eq!(c, vec![]);
}

#[test]
fn refusal_by_policy_refuses_everything() {
    let u = update(vec![], vec![add("new 300 A 192.0.2.1"), add("www 300 TXT \"x\"")]);
    let no_txt = |_: &[u8], t: u16| t != code::TXT;
    assert_eq!(changes(&apex(), &u, &zone(), &no_txt), Err(Rcode::Refused));
    let only_new = |o: &[u8], _: u16| o == &n("new")[..];
    assert_eq!(changes(&apex(), &u, &zone(), &only_new), Err(Rcode::Refused));
    // Deleting a name asks about each type actually deleted.
    let del = update(vec![], vec![meta("WWW", CLASS_ANY, code::ANY)]);
    assert_eq!(changes(&apex(), &del, &zone(), &no_txt), Err(Rcode::Refused));
    let seen = std::cell::RefCell::new(Vec::new());
    let record = |o: &[u8], t: u16| {
        seen.borrow_mut().push((name::to_text(o), t));
        true
    };
    assert_eq!(changes(&apex(), &del, &zone(), &record).unwrap().len(), 3);
    let seen = seen.into_inner();
    assert!(seen.contains(&("www.example.com.".to_string(), code::TXT)), "{seen:?}");
    assert!(!seen.iter().any(|(_, t)| *t == code::ANY), "{seen:?}");
    // A no-op is still asked about by its type.
    let noop = update(vec![], vec![meta("nowhere", CLASS_ANY, code::TXT)]);
    assert_eq!(changes(&apex(), &noop, &zone(), &no_txt), Err(Rcode::Refused));
}

#[test]
fn a_knsupdate_message_end_to_end() {
    // The zone the captured message's prerequisites expect.
    let text = r#"
@    3600 SOA  ns1 hostmaster 1 7200 3600 1209600 300
@    3600 NS   ns1
ns1  300  A    192.0.2.1
www  300  A    192.0.2.1
old  300  TXT  "old"
gone 300  A    192.0.2.2
gone 300  TXT  "gone"
"#;
    let z = Zone::build(&apex(), zonefile::parse(text, &apex()).unwrap(), 5).unwrap();
    let u = decode(include_bytes!("../../../../testdata/update/knsupdate.bin")).unwrap();
    assert_eq!(check_prerequisites(&u.zone, &u, &z), Ok(()));
    let c = changes(&u.zone, &u, &z, &|_, _| true).unwrap();
    let z2 = z.apply(&c).unwrap();
    let mut recs = z2.records();
    crate::check::check_zone(&apex(), &mut recs).unwrap();
    let lines: Vec<String> = zonefile::render(&apex(), &recs)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let want = [
        "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300",
        "example.com. 3600 IN NS ns1.example.com.",
        "example.com. 3600 IN NS ns2.example.com.",
        "alias.example.com. 600 IN CNAME www.example.com.",
        "new.example.com. 300 IN A 192.0.2.7",
        "new.example.com. 300 IN MX 10 mail.example.com.",
        "ns1.example.com. 300 IN A 192.0.2.1",
    ];
    assert_eq!(lines.iter().filter(|l| !l.starts_with('$')).collect::<Vec<_>>(), want, "{lines:#?}");
    // Run again on the result: the prerequisites no longer hold.
    assert_eq!(check_prerequisites(&u.zone, &u, &z2), Err(Rcode::YxDomain));
}

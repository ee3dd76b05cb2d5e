//! Names: `NameBuf::decode` on arbitrary messages, `from_text` on arbitrary
//! text, and `to_text`/`from_text` round trips.
//!
//! The input is one offset byte then a message: the name is decoded from
//! that offset (so compression pointers into earlier octets are reachable).
//! The same bytes, read as UTF-8 text, are also parsed as a presentation name.
//!
//! Decode, encode, decode: a decoded name must be a valid uncompressed wire
//! name, read the same by an independent parser (`domain`), and
//! `from_text(to_text(wire))` must give the same wire octets back. A name
//! parsed from text must be valid and survive the same round trip.
#![no_main]

use domain::base::ParsedName;
use domain::dep::octseq::Parser;
use libfuzzer_sys::fuzz_target;
use sixgate_dns::name::{self, MAX_NAME_LEN, NameBuf};

/// Checks the helpers and the text round trip on a valid wire name.
fn check_wire(wire: &[u8]) {
    assert!(name::validate(wire).is_ok(), "not a valid wire name: {wire:02x?}");
    assert!(wire.len() <= MAX_NAME_LEN);
    assert_eq!(name::wire_len(wire), Some(wire.len()));
    // Walking to the root by `parent` takes exactly `label_count` steps.
    let mut steps = 0;
    let mut n = wire;
    while let Some(p) = name::parent(n) {
        assert!(name::is_at_or_below(n, p) && name::is_at_or_below(n, n));
        n = p;
        steps += 1;
    }
    assert_eq!(n, [0]);
    assert_eq!(steps, name::label_count(wire));

    let text = name::to_text(wire);
    assert!(text.ends_with('.'), "{text:?} is not absolute");
    match name::from_text(&text, None) {
        Ok(back) => assert_eq!(&back[..], wire, "{text:?} parses to another name"),
        Err(err) => panic!("to_text output {text:?} does not parse: {err}"),
    }
    // Relative to a long origin, escapes and all; too long is an error,
    // never a wrong name.
    let origin = b"\x07example\x04test\x00";
    if let Some(rel) = text.strip_suffix('.').filter(|t| !t.is_empty()) {
        match name::from_text(rel, Some(origin)) {
            Ok(back) => {
                let mut want = wire[..wire.len() - 1].to_vec();
                want.extend_from_slice(origin);
                assert_eq!(&back[..], &want[..], "{rel:?} relative to example.test.");
            }
            Err(_) => assert!(wire.len() - 1 + origin.len() > MAX_NAME_LEN, "{rel:?} refused"),
        }
    }
}

/// Pointer hops `NameBuf::decode` follows for the name at `pos` (which it
/// accepted).
fn pointer_hops(msg: &[u8], mut pos: usize) -> usize {
    let mut hops = 0;
    loop {
        let len = msg[pos];
        match len & 0xC0 {
            0 if len == 0 => return hops,
            0 => pos += 1 + len as usize,
            _ => {
                pos = ((len as usize & 0x3F) << 8) | msg[pos + 1] as usize;
                hops += 1;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&offset, msg)) = data.split_first() else {
        return;
    };
    let pos = offset as usize;
    let mut buf = NameBuf::new();
    if let Ok(end) = buf.decode(msg, pos) {
        assert!(end > pos && end <= msg.len(), "end {end} for a name at {pos} of {}", msg.len());
        let wire = buf.as_slice().to_vec();
        check_wire(&wire);

        // domain reads the same name from the same place and ends at the
        // same octet. It allows at most 255 pointer hops; we allow any
        // number as long as each points strictly further back.
        let mut parser = Parser::from_ref(msg);
        parser.advance(pos).expect("pos is inside msg");
        match ParsedName::parse(&mut parser) {
            Ok(theirs) => {
                let mut t = Vec::new();
                for label in theirs.iter() {
                    t.push(label.len() as u8);
                    t.extend_from_slice(label.as_slice());
                }
                assert_eq!(t, wire, "domain reads another name");
                assert_eq!(parser.pos(), end, "domain ends elsewhere");
            }
            Err(err) => {
                assert!(pointer_hops(msg, pos) > 255, "domain refuses a name we accept: {err} ({wire:02x?})")
            }
        }

        let mut lower = buf.clone();
        lower.make_lowercase();
        assert_eq!(lower.as_slice(), &wire.to_ascii_lowercase()[..]);
        assert_eq!(&name::to_lowercase(&wire)[..], lower.as_slice());
    }

    // The same bytes as presentation text.
    if let Ok(text) = std::str::from_utf8(data) {
        for origin in [None, Some(&b"\x07example\x04test\x00"[..]), Some(&b"\x00"[..])] {
            if let Ok(wire) = name::from_text(text, origin) {
                check_wire(&wire);
            }
        }
    }
});

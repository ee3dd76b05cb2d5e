//! Building a response message in a caller-owned buffer.
//!
//! The writer appends whole RRsets or nothing: when an RRset would pass the
//! size limit it rolls back to the RRset's start and reports that it did not
//! fit, so truncation never emits half an RRset (RFC 2181 §9). Names are
//! compressed against a small table of names already written, those made up
//! while answering (CNAMEs synthesized from a DNAME) included.

use crate::message::HEADER_LEN;
use crate::name::{self, NameBuf};
use crate::octets::be32;
use crate::rtype;
use crate::zone::RrSetRef;

/// Largest number of name suffixes remembered for compression. Further
/// names are written uncompressed, which is always correct.
const COMP_ENTRIES: usize = 64;
/// Offsets at or above this cannot be pointed to (14-bit pointers).
const MAX_POINTER: usize = 0x3FFF;

/// Message sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Answer.
    Answer = 0,
    /// Authority.
    Authority = 1,
    /// Additional.
    Additional = 2,
}

/// The space ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSpace;

/// The OPT record of a response (RFC 6891 §6.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt<'a> {
    /// Our UDP payload size.
    pub payload: u16,
    /// The DO bit, copied from the query (RFC 3225 §3).
    pub dnssec_ok: bool,
    /// An Extended DNS Error info code (RFC 8914), if any.
    pub ede: Option<u16>,
    /// The server's NSID (RFC 5001), for a query that asked for it.
    pub nsid: Option<&'a [u8]>,
    /// The COOKIE option data (RFC 7873 §4): the client cookie and our
    /// server cookie.
    pub cookie: Option<[u8; crate::cookie::REPLY_LEN]>,
}

/// Octets of an OPT record without options.
const OPT_FIXED: usize = 11;
/// Octets of an option's code and length.
const OPTION_HEAD: usize = 4;

impl<'a> Opt<'a> {
    /// An OPT with no options.
    pub const fn new(payload: u16, dnssec_ok: bool) -> Opt<'a> {
        Opt { payload, dnssec_ok, ede: None, nsid: None, cookie: None }
    }

    /// The record's length on the wire, its options included.
    pub fn len(&self) -> usize {
        OPT_FIXED
            + self.ede.map_or(0, |_| OPTION_HEAD + 2)
            + self.nsid.map_or(0, |n| OPTION_HEAD + n.len())
            + self.cookie.map_or(0, |c| OPTION_HEAD + c.len())
    }

    /// Always false: an OPT record has a fixed part (for clippy's
    /// `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Where an RR's owner name comes from.
#[derive(Clone, Copy)]
pub enum Owner<'a> {
    /// The question name (a pointer to offset 12, keeping the query's case).
    Qname,
    /// A name in wire form.
    Name(&'a [u8]),
    /// The CNAME target last synthesized (from a DNAME).
    Synthesized,
}

/// A response under construction.
pub struct Writer<'a, 'b> {
    buf: &'b mut Vec<u8>,
    limit: usize,
    counts: [u16; 3],
    /// Suffixes written, by offset: the name itself, or `None` for a name
    /// that lives only in the message (a synthesized one), which is then
    /// read back from the buffer.
    comp: [(u16, Option<&'a [u8]>); COMP_ENTRIES],
    comp_len: usize,
    /// Where the last owner name written with literal labels starts, and
    /// that name. Once the table is full no new name is remembered, and
    /// every RR of an RRset would spell its owner out again; a zone
    /// transfer writes hundreds of owners per message, each with a few
    /// RRs, so the last one is kept apart from the table.
    last_owner: Option<(u16, &'a [u8])>,
    /// Compress a name only against the same name in the same case (see
    /// [`Writer::preserve_case`]).
    exact_case: bool,
    qd: u16,
    synthesized: NameBuf,
}

impl<'a, 'b> Writer<'a, 'b> {
    /// Starts a response. `head` is the query's header and question, which
    /// are copied; `qname` is the question name (any case); `limit` is the
    /// size the message may reach (space for OPT must already be deducted).
    pub fn new(buf: &'b mut Vec<u8>, head: &[u8], qname: &'a [u8], limit: usize) -> Self {
        buf.clear();
        buf.extend_from_slice(head);
        let mut w = Writer {
            buf,
            limit,
            counts: [0; 3],
            comp: [(0, None); COMP_ENTRIES],
            comp_len: 0,
            last_owner: None,
            exact_case: false,
            qd: u16::from(head.len() > HEADER_LEN),
            synthesized: NameBuf::new(),
        };
        if w.qd == 1 {
            w.remember(HEADER_LEN, qname, usize::MAX);
        }
        w
    }

    /// Compresses a name only against an earlier one in the same case.
    /// Names compare without regard to case (RFC 4343), so an answer may
    /// point an owner at the question name in the client's case; a zone
    /// transfer must give a secondary the names as the zone has them, as
    /// BIND's compresses case-sensitively for its transfers. Set it before
    /// anything but the question is written.
    pub fn preserve_case(&mut self) {
        self.exact_case = true;
    }

    /// Whether `a` and `b` are the same name (or label) for compression.
    fn same(&self, a: &[u8], b: &[u8]) -> bool {
        if self.exact_case { a == b } else { a.eq_ignore_ascii_case(b) }
    }

    /// Current length.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True if nothing but the header has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.len() <= HEADER_LEN
    }

    /// Records in the compression table each of the first `labels`
    /// suffixes of `name` written at `pos`.
    fn remember(&mut self, pos: usize, name: &'a [u8], labels: usize) {
        for (at, off) in suffixes(pos, name, labels) {
            if !self.push_entry(at, name.get(off..)) {
                return;
            }
        }
    }

    /// The same for a name that lives only in the message (`name` need not
    /// outlive the call): lookups read it back from the buffer.
    fn remember_written(&mut self, pos: usize, name: &[u8], labels: usize) {
        for (at, _) in suffixes(pos, name, labels) {
            if !self.push_entry(at, None) {
                return;
            }
        }
    }

    /// Adds one entry; false when the table is full.
    fn push_entry(&mut self, pos: u16, name: Option<&'a [u8]>) -> bool {
        match self.comp.get_mut(self.comp_len) {
            Some(slot) => {
                *slot = (pos, name);
                self.comp_len += 1;
                true
            }
            None => false,
        }
    }

    fn lookup(&self, suffix: &[u8]) -> Option<u16> {
        self.comp
            .get(..self.comp_len)?
            .iter()
            .find(|(p, n)| match n {
                Some(n) => n.len() == suffix.len() && self.same(n, suffix),
                None => self.written_is(*p as usize, suffix),
            })
            .map(|(p, _)| *p)
    }

    /// Whether the name written at `pos` (following compression pointers,
    /// which only ever point back) is `name`, case aside.
    fn written_is(&self, mut pos: usize, name: &[u8]) -> bool {
        let mut rest = name;
        // A name has at most 127 labels; each pointer points back, so this
        // bound is never reached by what the writer wrote.
        for _ in 0..name::MAX_NAME_LEN {
            let Some(&len) = self.buf.get(pos) else { return false };
            if len & 0xC0 == 0xC0 {
                let Some(&low) = self.buf.get(pos + 1) else { return false };
                let target = usize::from(len & 0x3F) << 8 | usize::from(low);
                if target >= pos {
                    return false;
                }
                pos = target;
                continue;
            }
            let n = len as usize;
            let (Some(label), Some(want)) = (self.buf.get(pos..pos + 1 + n), rest.get(..1 + n)) else {
                return false;
            };
            if !self.same(label, want) {
                return false;
            }
            if n == 0 {
                return true;
            }
            pos += 1 + n;
            rest = rest.get(1 + n..).unwrap_or(&[]);
        }
        false
    }

    /// Writes `name` compressed and remembers its new suffixes.
    pub fn name(&mut self, name: &'a [u8]) {
        let start = self.buf.len();
        let literal = self.name_unremembered(name);
        self.remember(start, name, literal);
    }

    fn owner(&mut self, owner: Owner<'a>) {
        match owner {
            Owner::Qname => self.buf.extend_from_slice(&[0xC0, HEADER_LEN as u8]),
            Owner::Name(n) => self.owner_name(n),
            Owner::Synthesized => {
                let n = self.synthesized.clone();
                self.name_written(n.as_slice());
            }
        }
    }

    /// Writes an owner name: a pointer to the last owner when it is the
    /// same name, else compressed against the table. While the table has
    /// room the table holds the last owner too, at the same offset, so
    /// this writes what [`Writer::name`] would.
    fn owner_name(&mut self, name: &'a [u8]) {
        if let Some((pos, last)) = self.last_owner
            && last.len() == name.len()
            && self.same(last, name)
        {
            self.buf.extend_from_slice(&(0xC000 | pos).to_be_bytes());
            return;
        }
        let start = self.buf.len();
        let literal = self.name_unremembered(name);
        self.remember(start, name, literal);
        if literal > 0 && start <= MAX_POINTER {
            self.last_owner = Some((start as u16, name));
        }
    }

    /// Writes `name`, which lives only for the call, compressed; its new
    /// suffixes are remembered as read back from the message.
    fn name_written(&mut self, name: &[u8]) {
        let start = self.buf.len();
        let literal = self.name_unremembered(name);
        self.remember_written(start, name, literal);
    }

    /// Writes a name compressed against the table without adding to it
    /// (for names that do not live as long as the table's references).
    /// Returns how many labels were written out literally.
    fn name_unremembered(&mut self, name: &[u8]) -> usize {
        let mut rest = name;
        let mut literal = 0;
        loop {
            let len = rest.first().copied().unwrap_or(0) as usize;
            if len == 0 {
                self.buf.push(0);
                return literal;
            }
            if let Some(p) = self.lookup(rest) {
                self.buf.extend_from_slice(&(0xC000 | p).to_be_bytes());
                return literal;
            }
            self.buf.extend_from_slice(rest.get(..1 + len).unwrap_or(&[]));
            literal += 1;
            rest = rest.get(1 + len..).unwrap_or(&[]);
        }
    }

    /// The CNAME target last synthesized.
    pub fn synthesized(&self) -> &[u8] {
        self.synthesized.as_slice()
    }

    /// Appends a CNAME synthesized from a DNAME (RFC 6672 §3.2) to the
    /// answer section, or nothing if it does not fit.
    pub fn synthesized_cname(&mut self, owner: Owner<'a>, ttl: u32, target: &[u8]) -> Result<(), NoSpace> {
        let mark = self.buf.len();
        let comp_mark = self.comp_len;
        self.owner(owner);
        self.buf.extend_from_slice(&rtype::code::CNAME.to_be_bytes());
        self.buf.extend_from_slice(&rtype::CLASS_IN.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let len_pos = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.name_written(target);
        self.end_rr(len_pos, mark, comp_mark)?;
        self.synthesized.set(target);
        self.counts[0] += 1;
        Ok(())
    }

    /// Appends to the answer section a CH class TXT record owned by the
    /// question name, TTL 0, holding `text` as one character-string (RFC
    /// 4892 §2: the answer to `id.server`), or nothing if it does not fit.
    pub fn chaos_txt(&mut self, text: &[u8]) -> Result<(), NoSpace> {
        let (mark, comp_mark) = (self.buf.len(), self.comp_len);
        let Ok(len) = u8::try_from(text.len()) else { return Err(NoSpace) };
        self.owner(Owner::Qname);
        self.buf.extend_from_slice(&rtype::code::TXT.to_be_bytes());
        self.buf.extend_from_slice(&rtype::CLASS_CH.to_be_bytes());
        self.buf.extend_from_slice(&0u32.to_be_bytes());
        let len_pos = self.buf.len();
        self.buf.extend_from_slice(&[0, 0, len]);
        self.buf.extend_from_slice(text);
        self.end_rr(len_pos, mark, comp_mark)?;
        self.counts[0] += 1;
        Ok(())
    }

    /// Completes an RR whose rdata length field is at `len_pos`; if the
    /// message is now over the limit, rolls back to `mark` (the start of
    /// the RRset) and fails.
    fn end_rr(&mut self, len_pos: usize, mark: usize, comp_mark: usize) -> Result<(), NoSpace> {
        let rdlen = self.buf.len() - len_pos - 2;
        if let Some(b) = self.buf.get_mut(len_pos..len_pos + 2) {
            b.copy_from_slice(&(rdlen as u16).to_be_bytes());
        }
        if self.buf.len() > self.limit {
            self.buf.truncate(mark);
            self.comp_len = comp_mark;
            if self.last_owner.is_some_and(|(pos, _)| usize::from(pos) >= mark) {
                self.last_owner = None;
            }
            return Err(NoSpace);
        }
        Ok(())
    }

    /// Appends a whole RRset to `section`, or nothing if it does not fit.
    pub fn rrset(
        &mut self,
        section: Section,
        owner: Owner<'a>,
        set: &RrSetRef<'a>,
        ttl: u32,
    ) -> Result<(), NoSpace> {
        self.rrs(section, owner, set.rtype, set.rdatas(), |_| ttl).map(|_| ())
    }

    /// Appends one RR to `section`, or nothing if it does not fit: a zone
    /// transfer may split an RRset across messages (RFC 5936 §2.2), so
    /// it writes RR by RR.
    pub fn rr(
        &mut self,
        section: Section,
        owner: Owner<'a>,
        rtype: u16,
        ttl: u32,
        rdata: &'a [u8],
    ) -> Result<(), NoSpace> {
        self.rrs(section, owner, rtype, std::iter::once(rdata), |_| ttl).map(|_| ())
    }

    /// Records written to `section` so far.
    pub fn count(&self, section: Section) -> u16 {
        self.counts.get(section as usize).copied().unwrap_or(0)
    }

    /// Appends the RRSIGs of the RRSIG RRset `sigs` that cover `covered`
    /// (all of them for `None`) to `section`, each with `ttl` or, for
    /// `None`, its Original TTL field (RFC 4034 §3.1.4), or nothing if
    /// they do not fit. Returns how many were written.
    pub fn rrsigs(
        &mut self,
        section: Section,
        owner: Owner<'a>,
        sigs: &RrSetRef<'a>,
        covered: Option<u16>,
        ttl: Option<u32>,
    ) -> Result<u16, NoSpace> {
        let rdatas =
            sigs.rdatas().filter(|rd| covered.is_none_or(|c| rd.get(..2) == Some(&c.to_be_bytes()[..])));
        self.rrs(section, owner, rtype::code::RRSIG, rdatas, |rd| ttl.or_else(|| be32(rd, 4)).unwrap_or(0))
    }

    /// Appends RRs of one owner and type, all or nothing.
    fn rrs(
        &mut self,
        section: Section,
        owner: Owner<'a>,
        rtype: u16,
        rdatas: impl Iterator<Item = &'a [u8]>,
        ttl: impl Fn(&[u8]) -> u32,
    ) -> Result<u16, NoSpace> {
        let mark = self.buf.len();
        let comp_mark = self.comp_len;
        let compress_at = rtype::compressible_name_offset(rtype);
        let mut count = 0u16;
        for rd in rdatas {
            self.owner(owner);
            self.buf.extend_from_slice(&rtype.to_be_bytes());
            self.buf.extend_from_slice(&rtype::CLASS_IN.to_be_bytes());
            self.buf.extend_from_slice(&ttl(rd).to_be_bytes());
            let len_pos = self.buf.len();
            self.buf.extend_from_slice(&[0, 0]);
            match compress_at {
                Some(off) => self.compressed_rdata(rtype, rd, off),
                None => {
                    let start = self.buf.len();
                    self.buf.extend_from_slice(rd);
                    if let Some(off) = uncompressed_name_offset(rtype) {
                        self.remember_uncompressed(start + off, rd.get(off..).unwrap_or(&[]));
                    }
                }
            }
            self.end_rr(len_pos, mark, comp_mark)?;
            count = count.saturating_add(1);
        }
        if let Some(c) = self.counts.get_mut(section as usize) {
            *c = c.saturating_add(count);
        }
        Ok(count)
    }

    /// Remembers the suffixes of the name at the start of `rest`, written
    /// whole at `pos`, that the table does not hold yet.
    fn remember_uncompressed(&mut self, pos: usize, rest: &'a [u8]) {
        let Some(name) = name::wire_len(rest).and_then(|len| rest.get(..len)) else { return };
        let mut labels = 0;
        let mut suffix = name;
        while let Some(&len) = suffix.first().filter(|&&l| l != 0) {
            if self.lookup(suffix).is_some() {
                break;
            }
            labels += 1;
            suffix = suffix.get(1 + len as usize..).unwrap_or(&[]);
        }
        self.remember(pos, name, labels);
    }

    /// Rdata with its RFC 1035 names compressed (RFC 3597 §4).
    fn compressed_rdata(&mut self, rtype: u16, rd: &'a [u8], off: usize) {
        let names = if rtype == rtype::code::SOA { 2 } else { 1 };
        let Some(prefix) = rd.get(..off) else {
            self.buf.extend_from_slice(rd);
            return;
        };
        self.buf.extend_from_slice(prefix);
        let mut pos = off;
        for _ in 0..names {
            let Some(n) = rd.get(pos..).and_then(|r| r.get(..name::wire_len(r)?)) else {
                self.buf.extend_from_slice(rd.get(pos..).unwrap_or(&[]));
                return;
            };
            self.name(n);
            pos += n.len();
        }
        self.buf.extend_from_slice(rd.get(pos..).unwrap_or(&[]));
    }

    /// Finishes the message: sets the flag word, the counts and appends the
    /// OPT record when `opt` is given.
    pub fn finish(self, flags: u16, rcode: u16, opt: Option<Opt<'_>>) {
        let mut arcount = self.counts[2];
        if let Some(o) = opt {
            // Root owner, class = payload, TTL = ext-rcode, version, DO.
            self.buf.push(0);
            self.buf.extend_from_slice(&rtype::code::OPT.to_be_bytes());
            self.buf.extend_from_slice(&o.payload.to_be_bytes());
            self.buf.push((rcode >> 4) as u8);
            self.buf.push(0);
            self.buf.push(if o.dnssec_ok { 0x80 } else { 0 });
            self.buf.push(0);
            // RDLENGTH: what the options take; an option's data is far
            // below 64 KB (an NSID is bounded by its configuration).
            self.buf.extend_from_slice(&((o.len() - OPT_FIXED) as u16).to_be_bytes());
            let mut option = |code: u16, data: &[u8]| {
                self.buf.extend_from_slice(&code.to_be_bytes());
                self.buf.extend_from_slice(&(data.len() as u16).to_be_bytes());
                self.buf.extend_from_slice(data);
            };
            if let Some(nsid) = o.nsid {
                option(crate::message::NSID_OPTION, nsid);
            }
            if let Some(cookie) = &o.cookie {
                option(crate::cookie::OPTION_CODE, cookie);
            }
            if let Some(code) = o.ede {
                // One EDE option (code 15) with no extra text.
                option(15, &code.to_be_bytes());
            }
            arcount += 1;
        }
        let word = flags | (rcode & 0xF);
        let qd = self.qd;
        let header = [
            (word >> 8) as u8,
            word as u8,
            0,
            qd as u8,
            (self.counts[0] >> 8) as u8,
            self.counts[0] as u8,
            (self.counts[1] >> 8) as u8,
            self.counts[1] as u8,
            (arcount >> 8) as u8,
            arcount as u8,
        ];
        if let Some(h) = self.buf.get_mut(2..HEADER_LEN) {
            h.copy_from_slice(&header);
        }
    }
}

/// The offsets in the message (`pos` onwards) and in `name` of the first
/// `labels` suffixes of `name` written literally at `pos`, as long as they
/// can be pointed to.
fn suffixes(pos: usize, name: &[u8], labels: usize) -> impl Iterator<Item = (u16, usize)> + '_ {
    let mut off = 0;
    (0..labels).map_while(move |_| {
        let len = *name.get(off)? as usize;
        let at = pos + off;
        if len == 0 || at > MAX_POINTER {
            return None;
        }
        let here = (at as u16, off);
        off += 1 + len;
        Some(here)
    })
}

/// Offset within the rdata of a name that is sent whole (RFC 2782 for SRV,
/// RFC 6672 §2.5 for DNAME, RFC 9460 §2.2 for SVCB and HTTPS) but that
/// later names may point at (RFC 1035 §4.1.4: any earlier occurrence).
fn uncompressed_name_offset(rtype: u16) -> Option<usize> {
    match rtype {
        rtype::code::SRV => Some(6),
        rtype::code::SVCB | rtype::code::HTTPS => Some(2),
        rtype::code::DNAME => Some(0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(s: &str) -> Box<[u8]> {
        name::from_text(s, None).unwrap()
    }

    /// Where the owner of each RR in `buf` after the header starts, and
    /// whether it is a lone pointer, for RRs with 4-octet rdata.
    fn owners(buf: &[u8]) -> Vec<(usize, bool)> {
        let mut out = Vec::new();
        let mut pos = HEADER_LEN;
        let mut n = NameBuf::new();
        while pos < buf.len() {
            let end = n.decode(buf, pos).unwrap();
            out.push((pos, end == pos + 2 && buf[pos] & 0xC0 == 0xC0));
            pos = end + 10 + 4;
        }
        out
    }

    /// Once the compression table is full, the RRs of an RRset still
    /// point at their owner's first spelling: a zone transfer writes
    /// hundreds of owners per message.
    #[test]
    fn an_rrset_owner_is_a_pointer_after_the_table_is_full() {
        let names: Vec<Box<[u8]>> = (0..100).map(|i| wire(&format!("host{i}.example.test."))).collect();
        let rdatas = [[192, 0, 2, 1], [192, 0, 2, 2], [192, 0, 2, 3]];
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf, &[0; HEADER_LEN], &[], usize::MAX);
        for n in &names {
            for rd in &rdatas {
                w.rr(Section::Answer, Owner::Name(n), rtype::code::A, 60, rd).unwrap();
            }
        }
        assert_eq!(w.count(Section::Answer), 300);
        w.finish(0x8400, 0, None);
        let owners = owners(&buf);
        // Each name's first RR writes its label (and a pointer to the
        // suffix); the two after it are pointers to that, also for the
        // names that found the table full.
        for (i, group) in owners.chunks(3).enumerate() {
            assert!(!group[0].1, "name {i}: written once");
            for (pos, pointer) in &group[1..] {
                assert!(*pointer, "name {i}: a pointer");
                let target = usize::from(u16::from_be_bytes([buf[*pos], buf[pos + 1]]) & 0x3FFF);
                assert_eq!(target, group[0].0, "name {i}: to the first");
            }
        }
        let mut n = NameBuf::new();
        n.decode(&buf, owners[299].0).unwrap();
        assert_eq!(n.as_slice(), &names[99][..]);
    }

    /// A record that does not fit leaves the message as it was, and the
    /// next owner is not a pointer into what was rolled back.
    #[test]
    fn a_record_that_does_not_fit_is_rolled_back() {
        let (a, b) = (wire("a.example.test."), wire("b.example.test."));
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf, &[0; HEADER_LEN], &[], 80);
        w.rr(Section::Answer, Owner::Name(&a), rtype::code::A, 60, &[192, 0, 2, 1]).unwrap();
        let len = w.len();
        assert_eq!(w.rr(Section::Answer, Owner::Name(&b), rtype::code::TXT, 60, &[40; 41]), Err(NoSpace));
        assert_eq!((w.len(), w.count(Section::Answer)), (len, 1));
        w.rr(Section::Answer, Owner::Name(&b), rtype::code::A, 60, &[192, 0, 2, 2]).unwrap();
        w.rr(Section::Answer, Owner::Name(&b), rtype::code::A, 60, &[192, 0, 2, 3]).unwrap();
        w.finish(0x8400, 0, None);
        let owners = owners(&buf);
        assert_eq!(owners.len(), 3);
        let mut n = NameBuf::new();
        for (pos, _) in &owners[1..] {
            n.decode(&buf, *pos).unwrap();
            assert_eq!(n.as_slice(), &b[..]);
        }
    }
}

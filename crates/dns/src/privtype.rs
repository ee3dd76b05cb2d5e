//! Record types of our own that the zone file scanner does not know.
//!
//! ANAME (also spelled ALIAS, as PowerDNS does) has no IANA code: the
//! draft (draft-ietf-dnsop-aname) expired without one. sixgate uses the
//! private-use code 65401 (RFC 6895 §3.1), the number PowerDNS uses for
//! ALIAS internally. Its rdata is one uncompressed domain name, like a
//! CNAME's.
//!
//! domain's scanner only takes `TYPE65401 \# ...` for it, which is no way
//! to write a target name. So before scanning, an `ANAME` or `ALIAS` type
//! token is swapped for `CNAME` (same length, so columns in error messages
//! stay right) on its line, and the records that begin on such lines come
//! back as CNAMEs that are turned into ANAMEs. A token counts as the type
//! only when exactly one more token (the target) follows it on the line,
//! so an owner called `alias` stays an owner.

use std::borrow::Cow;

use crate::rtype::code;
use crate::zone::Record;

/// Finds the whitespace-separated tokens of one zone file line outside
/// quotes and comments, as (start, end) byte offsets. Parentheses count
/// as separators, not tokens.
fn tokens(line: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (None, false, false);
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                start.get_or_insert(i);
            }
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            _ if quoted => {}
            ';' => break,
            c if c.is_whitespace() || c == '(' || c == ')' => {
                if let Some(s) = start.take() {
                    out.push((s, i));
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push((s, line.len()));
    }
    out
}

/// Rewrites ANAME/ALIAS type tokens to CNAME; returns the text and the
/// (1-based) lines rewritten.
pub(crate) fn rewrite(text: &str) -> (Cow<'_, str>, Vec<usize>) {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("aname") && !lower.contains("alias") {
        return (Cow::Borrowed(text), Vec::new());
    }
    let mut out = String::with_capacity(text.len());
    let mut lines = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let toks = tokens(line);
        let hit = toks.iter().enumerate().find(|&(i, &(s, e))| {
            let t = line.get(s..e).unwrap_or("");
            (t.eq_ignore_ascii_case("aname") || t.eq_ignore_ascii_case("alias")) && toks.len() == i + 2
        });
        match hit {
            Some((_, &(s, e))) => {
                out.push_str(line.get(..s).unwrap_or(""));
                out.push_str("CNAME");
                out.push_str(line.get(e..).unwrap_or(""));
                lines.push(n + 1);
            }
            None => out.push_str(line),
        }
    }
    (Cow::Owned(out), lines)
}

/// Turns the CNAMEs that began on rewritten lines back into ANAMEs.
pub(crate) fn restore(records: &mut [Record], lines: &[usize], rewritten: &[usize]) {
    if rewritten.is_empty() {
        return;
    }
    for (r, line) in records.iter_mut().zip(lines) {
        if r.rtype == code::CNAME && rewritten.binary_search(line).is_ok() {
            r.rtype = code::ANAME;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_type_token_followed_by_one_target_is_rewritten() {
        let (t, l) = rewrite(
            "@ 300 IN ANAME host.example.\nalias A 192.0.2.1\nx ALIAS y ; ANAME z\nt TXT \"ANAME x\"\n",
        );
        assert_eq!(
            t,
            "@ 300 IN CNAME host.example.\nalias A 192.0.2.1\nx CNAME y ; ANAME z\nt TXT \"ANAME x\"\n"
        );
        assert_eq!(l, vec![1, 3]);
        let (t, l) = rewrite("www A 192.0.2.1\n");
        assert!(matches!(t, Cow::Borrowed(_)) && l.is_empty());
    }
}

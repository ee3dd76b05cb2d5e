//! Where each response from the backend ends (RFC 9112 §6.3), so that the
//! proxy knows which response answers which request.
//!
//! Responses are relayed unchanged; this only follows their framing. It
//! is what lets an upgrade wait for its answer: the connection becomes a
//! tunnel only when the response to the upgrade request is a 101 (RFC 9110
//! §15.2.2); on any other final status it goes on as HTTP/1.1, and the
//! requests that follow are parsed and rewritten like the first. It also
//! tells when a connection has nothing outstanding, so that it may count
//! as idle.
//!
//! The common case stays cheap: the end of a head is searched in the new
//! octets only, the head's status line and framing fields are read once
//! (no allocation),
//! a Content-Length body is counted down without being looked at, and a
//! chunked one is walked by [`ChunkedDecoder`], which skips chunk data in
//! bulk.
//!
//! Framing, in RFC 9112 §6.3's order: a response to HEAD, a 1xx, 204 and
//! 304 have no body; a 1xx other than 101 is interim and the final
//! response follows; then Transfer-Encoding (chunked when it is the final
//! coding, else until the backend closes), then a valid Content-Length,
//! else until the backend closes. A 101 to a request that asked for no
//! upgrade, or a Content-Length that is not one number, cannot be framed:
//! the connection must close.
//!
//! It also says whether the backend connection may carry another request
//! once the responses are through ([`Responses::reusable`]): only when
//! every response on it was HTTP/1.1 without a `close` Connection option
//! (RFC 9112 §9.3), none ran until the close and none switched protocols.

use std::collections::VecDeque;

use super::{ChunkError, ChunkedDecoder};

/// The largest response head, status-line to the empty line. HAProxy's
/// default buffer (16 KiB) bounds its response heads alike; nginx's is
/// smaller.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// The most fields in a response head.
const MAX_RESPONSE_HEADERS: usize = 128;

/// Why the backend's responses cannot be followed. Close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// No end of head within [`MAX_RESPONSE_HEAD`] octets.
    #[error("response head larger than 16384 octets")]
    TooLarge,
    /// Not a status line, or a field line without a colon.
    #[error("malformed response head: {0}")]
    Syntax(&'static str),
    /// Content-Length values that are not one number (RFC 9112 §6.3 item 5).
    #[error("invalid content-length in a response")]
    BadLength,
    /// A 101 answering a request that asked for no upgrade.
    #[error("101 to a request without an upgrade")]
    UnaskedSwitch,
    /// A chunked body that does not decode.
    #[error("bad chunked response body: {0}")]
    Chunked(ChunkError),
    /// The backend closed within a head or a delimited body.
    #[error("the backend closed in the middle of a response")]
    Truncated,
}

/// `head` (a whole response head that [`Responses::feed`] took) as sent on
/// a client connection that closes after it: where the backend said
/// `Connection` or `Keep-Alive` (nginx says `keep-alive`), those fields
/// (hop-by-hop, RFC 9110 §7.6.1) are left out and `Connection: close` is
/// added (RFC 9112 §9.6), so the client does not send another request on
/// it. A head without either is unchanged.
pub fn with_close(head: &[u8]) -> Vec<u8> {
    if !has_connection_fields(head) {
        return head.to_vec();
    }
    replaced_with_close(head)
}

/// Does `head` have a `Connection` or `Keep-Alive` field? Without one, a
/// head is relayed as it came: the backend's answer to a request without
/// `close` is then the same as its answer to one with it.
fn has_connection_fields(head: &[u8]) -> bool {
    head.split(|&b| b == b'\n').skip(1).any(is_connection_field)
}

/// Is this field line (with or without its line end) `Connection` or
/// `Keep-Alive`?
fn is_connection_field(line: &[u8]) -> bool {
    let name = line.split(|&b| b == b':').next().unwrap_or_default();
    name.eq_ignore_ascii_case(b"connection") || name.eq_ignore_ascii_case(b"keep-alive")
}

fn replaced_with_close(head: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + 19);
    let mut lines = head.split_inclusive(|&b| b == b'\n');
    if let Some(status) = lines.next() {
        out.extend_from_slice(status);
    }
    for line in lines {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            break;
        }
        if !is_connection_field(text) {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

/// The status code of a response head, if it has one.
pub fn status_of(head: &[u8]) -> Option<u16> {
    let code = head.get(9..12)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// What one [`Responses::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Leading octets of the input that are followed: relay them. An
    /// incomplete head is not consumed (feed it again with more after it).
    pub consumed: usize,
    /// What those octets ended, if anything.
    pub event: Option<ResponseEvent>,
}

/// What the backend's stream says at the end of a [`Step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseEvent {
    /// The final response to the oldest outstanding request has ended,
    /// with this status.
    Complete(u16),
    /// A 101 answered the upgrade request: from here on, the connection is
    /// a tunnel both ways.
    Switched,
}

/// What a request asked that shapes its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Asked {
    head: bool,
    upgrade: bool,
}

#[derive(Debug, Clone)]
enum State {
    /// Reading a head; `scanned` octets of it looked at, `lf` what the last
    /// ones were (0: other, 1: LF, 2: LF CR).
    Head { scanned: usize, lf: u8 },
    /// A body of this many octets left.
    Length(u64, u16),
    /// A chunked body.
    Chunked(ChunkedDecoder, u16),
    /// A body that ends when the backend closes.
    UntilClose(u16),
    /// After a 101: not HTTP any more.
    Switched,
}

/// Follows the backend's responses, in request order.
#[derive(Debug, Clone)]
pub struct Responses {
    asked: VecDeque<Asked>,
    state: State,
    /// No response so far said the connection ends after it.
    persistent: bool,
}

impl Default for Responses {
    fn default() -> Responses {
        Responses::new()
    }
}

impl Responses {
    /// Nothing asked yet.
    pub fn new() -> Responses {
        Responses { asked: VecDeque::new(), state: State::Head { scanned: 0, lf: 0 }, persistent: true }
    }

    /// The stream goes on over another backend connection (the one
    /// before was idle, or closed before answering): whether that one
    /// persists is its own responses' to say.
    pub fn new_connection(&mut self) {
        self.persistent = true;
    }

    /// May the backend connection carry another request? Only between
    /// responses with nothing outstanding, and when every response head
    /// on it was HTTP/1.1 without `Connection: close`, none read until
    /// the close, none a 101. Any doubt is a no.
    pub fn reusable(&self) -> bool {
        self.persistent && self.asked.is_empty() && self.between()
    }

    /// A request was sent: `head` for the HEAD method, `upgrade` when it
    /// asks to switch protocols.
    pub fn push(&mut self, head: bool, upgrade: bool) {
        self.asked.push_back(Asked { head, upgrade });
    }

    /// Requests sent whose final response has not ended.
    pub fn outstanding(&self) -> usize {
        self.asked.len()
    }

    /// Is the backend's stream between responses (no partial head or body)?
    pub fn between(&self) -> bool {
        matches!(self.state, State::Head { scanned: 0, .. })
    }

    /// Follows `input`, the octets the backend sent after those consumed so
    /// far. Stops after an event, so that the caller can act on the
    /// boundary; call again with the rest.
    pub fn feed(&mut self, input: &[u8]) -> Result<Step, ResponseError> {
        match &mut self.state {
            State::Head { scanned, lf } => {
                let limit = input.len().min(MAX_RESPONSE_HEAD);
                let mut end = None;
                while *scanned < limit {
                    if *lf == 0 {
                        // Inside a line: on to its LF in one search.
                        let rest = input.get(*scanned..limit).unwrap_or_default();
                        match rest.iter().position(|&b| b == b'\n') {
                            Some(k) => (*scanned, *lf) = (*scanned + k + 1, 1),
                            None => *scanned = limit,
                        }
                        continue;
                    }
                    let Some(&b) = input.get(*scanned) else { break };
                    *scanned += 1;
                    *lf = match (b, *lf) {
                        (b'\n', _) => {
                            end = Some(*scanned);
                            break;
                        }
                        (b'\r', 1) => 2,
                        _ => 0,
                    };
                }
                let Some(end) = end else {
                    if input.len() >= MAX_RESPONSE_HEAD {
                        return Err(ResponseError::TooLarge);
                    }
                    return Ok(Step { consumed: 0, event: None });
                };
                self.head(input.get(..end).unwrap_or_default())
            }
            State::Length(left, status) => {
                let n = usize::try_from(*left).map_or(input.len(), |l| l.min(input.len()));
                *left -= n as u64;
                let event = (*left == 0).then_some(ResponseEvent::Complete(*status));
                if event.is_some() {
                    self.complete();
                }
                Ok(Step { consumed: n, event })
            }
            State::Chunked(dec, status) => {
                let status = *status;
                let f = dec.feed(input).map_err(ResponseError::Chunked)?;
                let event = f.done.then_some(ResponseEvent::Complete(status));
                if f.done {
                    self.complete();
                }
                Ok(Step { consumed: f.consumed, event })
            }
            State::UntilClose(_) | State::Switched => Ok(Step { consumed: input.len(), event: None }),
        }
    }

    /// Waiting for a response head: the next [`Responses::feed`] that
    /// consumes anything consumes a whole head.
    pub fn at_head(&self) -> bool {
        matches!(self.state, State::Head { .. })
    }

    /// The octets left of a Content-Length body being followed, if that
    /// is where the stream is.
    pub fn body_left(&self) -> Option<u64> {
        match self.state {
            State::Length(left, _) => Some(left),
            _ => None,
        }
    }

    /// `n` octets of a Content-Length body passed on without being looked
    /// at (spliced): like [`Responses::feed`] with them, but only within
    /// such a body; at most what is left of it is consumed.
    pub fn pass(&mut self, n: usize) -> Step {
        let State::Length(left, status) = &mut self.state else {
            return Step { consumed: 0, event: None };
        };
        let n = usize::try_from(*left).map_or(n, |l| l.min(n));
        *left -= n as u64;
        let event = (*left == 0).then_some(ResponseEvent::Complete(*status));
        if event.is_some() {
            self.complete();
        }
        Step { consumed: n, event }
    }

    /// The backend closed: the event that ends, or an error when it cut a
    /// response short. Outstanding requests without any response are the
    /// caller's to judge.
    pub fn eof(&mut self) -> Result<Option<ResponseEvent>, ResponseError> {
        match self.state {
            State::Head { scanned: 0, .. } | State::Switched => Ok(None),
            State::UntilClose(status) => {
                self.complete();
                Ok(Some(ResponseEvent::Complete(status)))
            }
            _ => Err(ResponseError::Truncated),
        }
    }

    fn complete(&mut self) {
        self.asked.pop_front();
        self.state = State::Head { scanned: 0, lf: 0 };
    }

    /// A complete head, `head` (its empty line included).
    fn head(&mut self, head: &[u8]) -> Result<Step, ResponseError> {
        let fields = Fields::read(head)?;
        let status = fields.status;
        // RFC 9112 §9.3: 1.1 persists unless it says close; a 1.0 response
        // (keep-alive or not) is not trusted to.
        if !fields.http11 || fields.close {
            self.persistent = false;
        }
        let asked = self.asked.front().copied().unwrap_or_default();
        let consumed = head.len();
        self.state = State::Head { scanned: 0, lf: 0 };
        if status == 101 {
            if !asked.upgrade {
                return Err(ResponseError::UnaskedSwitch);
            }
            self.asked.pop_front();
            self.state = State::Switched;
            self.persistent = false;
            return Ok(Step { consumed, event: Some(ResponseEvent::Switched) });
        }
        if (100..200).contains(&status) {
            // Interim (100 Continue, 103 Early Hints): the final one follows.
            return Ok(Step { consumed, event: None });
        }
        if asked.head || status == 204 || status == 304 {
            self.complete();
            return Ok(Step { consumed, event: Some(ResponseEvent::Complete(status)) });
        }
        if fields.coded {
            // RFC 9112 §6.3 item 4: chunked last, or read until the close.
            self.state = if fields.chunked {
                State::Chunked(ChunkedDecoder::new(), status)
            } else {
                self.persistent = false;
                State::UntilClose(status)
            };
            return Ok(Step { consumed, event: None });
        }
        match fields.length {
            Some(0) => {
                self.complete();
                Ok(Step { consumed, event: Some(ResponseEvent::Complete(status)) })
            }
            Some(n) => {
                self.state = State::Length(n, status);
                Ok(Step { consumed, event: None })
            }
            None => {
                self.persistent = false;
                self.state = State::UntilClose(status);
                Ok(Step { consumed, event: None })
            }
        }
    }
}

/// What framing needs from a response head. Read by hand rather than
/// tokenized whole: the proxy relays the head unchanged and decides nothing
/// else by it, so only the status line and the two framing fields are
/// looked at, as leniently as clients read them.
struct Fields {
    status: u16,
    /// A Transfer-Encoding with at least one coding.
    coded: bool,
    /// Its last coding is chunked.
    chunked: bool,
    length: Option<u64>,
    /// The status line says HTTP/1.1 (or a later 1.x).
    http11: bool,
    /// A Connection field has the `close` option.
    close: bool,
}

impl Fields {
    fn read(head: &[u8]) -> Result<Fields, ResponseError> {
        let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        // Empty lines before the status line are skipped, as clients do.
        let http11;
        let status = match lines.find(|l| !l.is_empty()).unwrap_or_default() {
            // RFC 9112 §4: HTTP-version SP 3DIGIT SP [reason].
            [b'H', b'T', b'T', b'P', b'/', major, b'.', minor, b' ', a, b, c, rest @ ..]
                if major.is_ascii_digit()
                    && minor.is_ascii_digit()
                    && [a, b, c].iter().all(|d| d.is_ascii_digit())
                    && matches!(rest.first(), None | Some(b' ')) =>
            {
                http11 = *major == b'1' && *minor >= b'1';
                [a, b, c].iter().fold(0u16, |n, &&d| n * 10 + u16::from(d - b'0'))
            }
            _ => return Err(ResponseError::Syntax("invalid status line")),
        };
        let mut out = Fields { status, coded: false, chunked: false, length: None, http11, close: false };
        let mut count = 0;
        for line in lines.filter(|l| !l.is_empty()) {
            count += 1;
            if count > MAX_RESPONSE_HEADERS {
                return Err(ResponseError::Syntax("too many fields"));
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(ResponseError::Syntax("field without a colon"));
            };
            let (name, value) = line.split_at(colon);
            let value = value.get(1..).unwrap_or_default();
            if name.eq_ignore_ascii_case(b"transfer-encoding") {
                for c in value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|c| !c.is_empty()) {
                    out.coded = true;
                    out.chunked = c.eq_ignore_ascii_case(b"chunked");
                }
            } else if name.eq_ignore_ascii_case(b"connection") {
                // RFC 9110 §7.6.1: a list of options, case-insensitive.
                out.close |=
                    value.split(|&b| b == b',').any(|o| o.trim_ascii().eq_ignore_ascii_case(b"close"));
            } else if name.eq_ignore_ascii_case(b"content-length") {
                for v in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
                        return Err(ResponseError::BadLength);
                    }
                    let n: u64 = std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or(ResponseError::BadLength)?;
                    // Equal values may be collapsed (RFC 9110 §8.6).
                    if out.length.is_some_and(|l| l != n) {
                        return Err(ResponseError::BadLength);
                    }
                    out.length = Some(n);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `stream` whole and in one-octet pieces; returns the events with
    /// the offset after each, both ways the same.
    fn events(asked: &[(bool, bool)], stream: &[u8]) -> Result<Vec<(usize, ResponseEvent)>, ResponseError> {
        let run = |piece: usize| -> Result<Vec<(usize, ResponseEvent)>, ResponseError> {
            let mut r = Responses::new();
            for &(head, upgrade) in asked {
                r.push(head, upgrade);
            }
            let mut out = Vec::new();
            let (mut fed, mut have) = (0, 0);
            loop {
                loop {
                    let step = r.feed(&stream[fed..have])?;
                    fed += step.consumed;
                    if let Some(e) = step.event {
                        out.push((fed, e));
                        if e == ResponseEvent::Switched {
                            return Ok(out);
                        }
                    } else if step.consumed == 0 || fed == have {
                        break;
                    }
                }
                if have == stream.len() {
                    break;
                }
                have = (have + piece).min(stream.len());
            }
            if let Some(e) = r.eof()? {
                out.push((fed, e));
            }
            Ok(out)
        };
        let whole = run(stream.len().max(1));
        let bytewise = run(1);
        assert_eq!(whole, bytewise, "{:?}", String::from_utf8_lossy(stream));
        whole
    }

    const GET: (bool, bool) = (false, false);

    #[test]
    fn responses_end_where_their_framing_says() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: x\r\n\r\n";
        let empty = b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n";
        let stream = [&ok[..], chunked, empty].concat();
        assert_eq!(
            events(&[GET, GET, GET], &stream),
            Ok(vec![
                (ok.len(), ResponseEvent::Complete(200)),
                (ok.len() + chunked.len(), ResponseEvent::Complete(200)),
                (stream.len(), ResponseEvent::Complete(204))
            ])
        );
        // A response to HEAD has no body, whatever its Content-Length says.
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        let stream = [&head[..], ok].concat();
        assert_eq!(
            events(&[(true, false), GET], &stream),
            Ok(vec![
                (head.len(), ResponseEvent::Complete(200)),
                (stream.len(), ResponseEvent::Complete(200))
            ])
        );
        // 304 neither; equal Content-Length values collapse.
        let not_modified = b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n";
        let twice = b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nhi";
        let stream = [&not_modified[..], twice].concat();
        assert_eq!(
            events(&[GET, GET], &stream),
            Ok(vec![
                (not_modified.len(), ResponseEvent::Complete(304)),
                (stream.len(), ResponseEvent::Complete(200))
            ])
        );
    }

    #[test]
    fn a_body_without_length_ends_when_the_backend_closes() {
        let close = b"HTTP/1.0 200 OK\r\n\r\nall of it";
        assert_eq!(events(&[GET], close), Ok(vec![(close.len(), ResponseEvent::Complete(200))]));
        // A coding other than a final chunked: read until the close too.
        let gzip = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nzzzzzz";
        assert_eq!(events(&[GET], gzip), Ok(vec![(gzip.len(), ResponseEvent::Complete(200))]));
        // Cut short: an error.
        assert_eq!(
            events(&[GET], b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"),
            Err(ResponseError::Truncated)
        );
        assert_eq!(events(&[GET], b"HTTP/1.1 200 OK\r\nContent-"), Err(ResponseError::Truncated));
    }

    #[test]
    fn interim_responses_come_before_the_final_one() {
        let stream = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
                       HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
        let mut r = Responses::new();
        r.push(false, false);
        let mut fed = 0;
        let mut seen = Vec::new();
        while fed < stream.len() {
            let s = r.feed(&stream[fed..]).unwrap();
            fed += s.consumed;
            seen.push((fed, s.event, r.outstanding()));
        }
        assert_eq!(seen.last(), Some(&(stream.len(), Some(ResponseEvent::Complete(201)), 0)));
        assert!(seen[..seen.len() - 1].iter().all(|(_, e, n)| e.is_none() && *n == 1), "{seen:?}");
    }

    /// The upgrade waits for its answer: a 101 switches, and everything after
    /// its head is the tunnel's; any other final status is a response like
    /// any other, and the connection goes on as HTTP.
    #[test]
    fn only_a_101_to_an_upgrade_request_switches() {
        let switch = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        let stream = [&switch[..], b"\x81\x05hello"].concat();
        assert_eq!(events(&[(false, true)], &stream), Ok(vec![(switch.len(), ResponseEvent::Switched)]));
        // After an earlier response on the same connection.
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
        let stream = [&ok[..], switch].concat();
        assert_eq!(
            events(&[GET, (false, true)], &stream),
            Ok(vec![(ok.len(), ResponseEvent::Complete(200)), (stream.len(), ResponseEvent::Switched)])
        );
        // Declined with a 200: a plain response.
        assert_eq!(events(&[(false, true)], ok), Ok(vec![(ok.len(), ResponseEvent::Complete(200))]));
        // A 101 nobody asked for cannot be followed.
        assert_eq!(events(&[GET], switch), Err(ResponseError::UnaskedSwitch));
    }

    #[test]
    fn a_head_with_many_fields_is_read_with_the_larger_table() {
        let fields: String = (0..100).map(|i| format!("Set-Cookie: c{i}=v\r\n")).collect();
        let head = format!("HTTP/1.1 200 OK\r\n{fields}Content-Length: 2\r\n\r\nhi");
        assert_eq!(events(&[GET], head.as_bytes()), Ok(vec![(head.len(), ResponseEvent::Complete(200))]));
        let fields: String = (0..MAX_RESPONSE_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        let head = format!("HTTP/1.1 200 OK\r\n{fields}Content-Length: 0\r\n\r\n");
        assert_eq!(events(&[GET], head.as_bytes()), Err(ResponseError::Syntax("too many fields")));
    }

    #[test]
    fn unframeable_responses_are_errors() {
        for (bad, e) in [
            (&b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n"[..], ResponseError::BadLength),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", ResponseError::BadLength),
            (b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", ResponseError::BadLength),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                ResponseError::Chunked(ChunkError::BadSize),
            ),
            (b"HTTP/9 200 OK\r\n\r\n", ResponseError::Syntax("invalid status line")),
            (b"HTTP/1.1 20 OK\r\n\r\n", ResponseError::Syntax("invalid status line")),
            (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", ResponseError::Syntax("field without a colon")),
            (b"\n\nHTTP/1.1 200 OK\r\n\r\n", ResponseError::Syntax("invalid status line")),
        ] {
            assert_eq!(events(&[GET], bad), Err(e), "{:?}", String::from_utf8_lossy(bad));
        }
        let big = [&b"HTTP/1.1 200 OK\r\nX: "[..], &[b'a'; MAX_RESPONSE_HEAD]].concat();
        let mut r = Responses::new();
        assert_eq!(r.feed(&big), Err(ResponseError::TooLarge));
    }

    #[test]
    fn outstanding_counts_requests_until_their_final_response_ends() {
        let mut r = Responses::new();
        assert!(r.between() && r.outstanding() == 0);
        r.push(false, false);
        r.push(false, false);
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
        let s = r.feed(&[&head[..], b"ab"].concat()).unwrap();
        assert_eq!((s.consumed, s.event), (head.len(), None), "a feed stops where the head ends");
        let s = r.feed(b"ab").unwrap();
        assert_eq!((s.consumed, s.event, r.outstanding(), r.between()), (2, None, 2, false));
        let s = r.feed(b"c").unwrap();
        assert_eq!((s.event, r.outstanding(), r.between()), (Some(ResponseEvent::Complete(200)), 1, true));
        // A partial head is not consumed, and is not between responses.
        assert_eq!(r.feed(b"HTTP/1.1 2").unwrap().consumed, 0);
        assert!(!r.between());
    }

    /// Feeds `stream` for one GET and says whether the connection may be
    /// reused after it.
    fn reusable_after(stream: &[u8]) -> bool {
        let mut r = Responses::new();
        r.push(false, false);
        let mut fed = 0;
        while fed < stream.len() {
            let s = r.feed(&stream[fed..]).unwrap();
            if s.consumed == 0 {
                break;
            }
            fed += s.consumed;
        }
        r.reusable()
    }

    #[test]
    fn only_http_1_1_without_close_is_reusable() {
        assert!(reusable_after(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
        assert!(reusable_after(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
        assert!(reusable_after(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"
        ));
        for no in [
            &b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"[..],
            b"HTTP/1.1 200 OK\r\nconnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz",
        ] {
            assert!(!reusable_after(no), "{:?}", String::from_utf8_lossy(no));
        }
        // A body until the close: never through, never reusable.
        assert!(!reusable_after(b"HTTP/1.1 200 OK\r\n\r\nall"));
        // Not while a response is under way.
        assert!(!reusable_after(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi"));
        // A 101 is the end of HTTP on the connection.
        let mut r = Responses::new();
        r.push(false, true);
        r.feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n").unwrap();
        assert!(!r.reusable());
    }

    #[test]
    fn a_new_connection_is_judged_by_its_own_responses() {
        let mut r = Responses::new();
        r.push(false, false);
        r.feed(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(!r.reusable());
        r.new_connection();
        assert!(r.reusable());
        r.push(false, false);
        assert!(!r.reusable(), "a request outstanding");
    }

    #[test]
    fn a_head_for_a_closing_client_says_close_and_loses_its_own_connection_fields() {
        let head = b"HTTP/1.1 200 OK\r\nServer: x\r\nConnection: keep-alive\r\nKEEP-ALIVE: timeout=5\r\n\
                     connection: Upgrade\r\nContent-Length: 2\r\n\r\n";
        let out = with_close(head);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
        let mut r = Responses::new();
        r.push(false, false);
        assert_eq!(r.feed(&out).unwrap().consumed, out.len(), "the rewritten head is a whole head");
        assert!(!r.reusable(), "it says close");
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(
            with_close(plain),
            plain.to_vec(),
            "a head without connection fields is relayed as it came"
        );
        assert_eq!(status_of(head), Some(200));
        assert_eq!(status_of(b"HTTP/1.1 1"), None);
    }

    /// A Content-Length body passed on unseen ends where its length says,
    /// and the next response is followed from the octet after it.
    #[test]
    fn a_body_passed_unseen_ends_at_its_length() {
        let mut r = Responses::new();
        r.push(false, false);
        r.push(false, false);
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
        assert_eq!(r.feed(head).unwrap(), Step { consumed: head.len(), event: None });
        assert_eq!(r.body_left(), Some(100_000));
        assert_eq!(r.feed(b"ab").unwrap(), Step { consumed: 2, event: None });
        assert_eq!(r.body_left(), Some(99_998));
        assert_eq!(r.pass(65_536), Step { consumed: 65_536, event: None });
        // More than is left: only the rest is consumed.
        assert_eq!(r.pass(65_536), Step { consumed: 34_462, event: Some(ResponseEvent::Complete(200)) });
        assert_eq!((r.body_left(), r.outstanding(), r.between()), (None, 1, true));
        // Between responses, nothing passes unseen.
        assert_eq!(r.pass(10), Step { consumed: 0, event: None });
        let next = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(
            r.feed(next).unwrap(),
            Step { consumed: next.len(), event: Some(ResponseEvent::Complete(204)) }
        );
        // A chunked body is never passed unseen.
        r.push(false, false);
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        r.feed(chunked).unwrap();
        assert_eq!((r.body_left(), r.pass(5).consumed), (None, 0));
    }
}

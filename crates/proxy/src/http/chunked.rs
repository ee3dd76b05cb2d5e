//! The chunked transfer coding (RFC 9112 §7.1), read only for its framing:
//! how many of the octets after a head belong to the body, so the proxy
//! can forward them unchanged and knows where a pipelined request starts.
//!
//! The decoder is a byte-at-a-time state machine (chunk data is skipped in
//! bulk) so a body may arrive in pieces of any size. It is as strict as
//! the head parser: CRLF only, hex sizes that fit in u64, chunk extensions
//! of visible characters within [`MAX_CHUNK_LINE`], trailer fields that are
//! `token ":" value` lines without folding, within [`MAX_TRAILERS`].
//!
//! Each feed also says where trailer field lines lie in its input, so that
//! the proxy can forward the body without them: a client could put an
//! X-Forwarded-For there for stacks that merge trailers into the header
//! fields, and RFC 9112 §7.1.2 lets a recipient discard trailers.

use std::ops::Range;

use super::is_tchar;

/// The longest chunk-size line, extensions included, CRLF excluded.
pub const MAX_CHUNK_LINE: usize = 1024;

/// The most trailer-section octets, final CRLF included.
pub const MAX_TRAILERS: usize = 16 * 1024;

/// Why a chunked body was refused. The connection cannot be resynchronized
/// after one of these; close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// A chunk-size that is missing, not hex, or over u64.
    #[error("invalid chunk size")]
    BadSize,
    /// A chunk-size line longer than [`MAX_CHUNK_LINE`].
    #[error("chunk size line too long")]
    LineTooLong,
    /// A control character in a chunk extension.
    #[error("invalid chunk extension")]
    BadExtension,
    /// A LF not preceded by CR.
    #[error("bare lf in chunked body")]
    BareLf,
    /// A CR not followed by LF.
    #[error("bare cr in chunked body")]
    BareCr,
    /// Chunk data not followed by CRLF: the size was wrong.
    #[error("chunk data not followed by crlf")]
    MissingCrlf,
    /// A trailer line that is not a plain field line.
    #[error("invalid trailer field")]
    BadTrailer,
    /// More than [`MAX_TRAILERS`] octets of trailers.
    #[error("trailer section too large")]
    TrailersTooLarge,
}

/// What one [`ChunkedDecoder::feed`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// Leading octets of the input that belong to the body.
    pub consumed: usize,
    /// The body ended within them; anything after them is the next
    /// request.
    pub done: bool,
    /// The trailer field lines among them (CRLFs included, the final empty
    /// line not): one range, since nothing else comes between trailer
    /// lines. Empty when there are none in this input.
    pub trailers: Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Hex digits of the chunk-size.
    #[default]
    Size,
    /// After the size: BWS and extensions up to CR.
    Ext,
    /// CR seen at the end of the size line.
    SizeLf,
    /// Chunk data, `size` octets left.
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line or of the final CRLF.
    TrailerStart,
    /// In a trailer field name.
    TrailerName,
    /// In a trailer field value.
    TrailerValue,
    /// CR seen at the end of a trailer line.
    TrailerLf,
    /// CR seen on the final empty line.
    EndLf,
    /// The body has ended.
    Done,
    /// Refused; the error is repeated.
    Failed(ChunkError),
}

/// Finds the end of a chunked body fed to it in pieces.
#[derive(Debug, Clone, Default)]
pub struct ChunkedDecoder {
    state: State,
    /// Octets of the current size line, or of the trailer section.
    count: usize,
    /// The chunk-size being read, then the data octets left.
    size: u64,
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder::default()
    }

    /// Has the body ended?
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads the next octets of the stream. Once the body has ended, feeds
    /// consume nothing. After an error, every feed returns it again.
    pub fn feed(&mut self, input: &[u8]) -> Result<Feed, ChunkError> {
        match self.run(input) {
            Ok(feed) => Ok(feed),
            Err(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
        }
    }

    fn run(&mut self, input: &[u8]) -> Result<Feed, ChunkError> {
        let mut i = 0;
        let mut trailers: Option<Range<usize>> = None;
        while let Some(&b) = input.get(i) {
            let in_trailer = match self.state {
                State::TrailerStart => b != b'\r',
                State::TrailerName | State::TrailerValue | State::TrailerLf => true,
                _ => false,
            };
            if in_trailer {
                let r = trailers.get_or_insert(i..i);
                r.end = i + 1;
            }
            match self.state {
                State::Done => break,
                State::Failed(e) => return Err(e),
                State::Data => {
                    let left = input.len() - i;
                    let n = usize::try_from(self.size).map_or(left, |s| s.min(left));
                    // n ≤ left fits in u64 on every platform Rust supports.
                    self.size -= n as u64;
                    i += n;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                _ => self.step(b)?,
            }
            i += 1;
        }
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        Ok(Feed { consumed: i, done: self.state == State::Done, trailers: trailers.unwrap_or(0..0) })
    }

    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        let first = self.count == 0;
        if matches!(self.state, State::Size | State::Ext) && b != b'\r' {
            self.count += 1;
            if self.count > MAX_CHUNK_LINE {
                return Err(ChunkError::LineTooLong);
            }
        }
        if matches!(
            self.state,
            State::TrailerStart | State::TrailerName | State::TrailerValue | State::TrailerLf | State::EndLf
        ) {
            self.count += 1;
            if self.count > MAX_TRAILERS {
                return Err(ChunkError::TrailersTooLarge);
            }
        }
        self.state = match (self.state, b) {
            (State::Size, _) if b.is_ascii_hexdigit() => {
                let digit = char::from(b).to_digit(16).map(u64::from).unwrap_or_default();
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(digit))
                    .ok_or(ChunkError::BadSize)?;
                State::Size
            }
            // RFC 9112 §7.1: 1*HEXDIG, then BWS ";" extensions.
            (State::Size, _) if first => return Err(ChunkError::BadSize),
            (State::Size | State::Ext, b'\r') => State::SizeLf,
            (State::Size | State::Ext, b'\n') => return Err(ChunkError::BareLf),
            (State::Size, b';' | b' ' | b'\t') => State::Ext,
            (State::Size, _) => return Err(ChunkError::BadSize),
            (State::Ext, _) if b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80 => State::Ext,
            (State::Ext, _) => return Err(ChunkError::BadExtension),
            (State::SizeLf, b'\n') => {
                self.count = 0;
                if self.size == 0 { State::TrailerStart } else { State::Data }
            }
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => {
                self.size = 0;
                State::Size
            }
            (State::DataCr | State::DataLf, _) => return Err(ChunkError::MissingCrlf),
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart | State::TrailerValue, b'\n') => return Err(ChunkError::BareLf),
            (State::TrailerStart | State::TrailerName, _) if is_tchar(b) => State::TrailerName,
            (State::TrailerName, b':') => State::TrailerValue,
            (State::TrailerValue, b'\r') => State::TrailerLf,
            (State::TrailerValue, _) if b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80 => {
                State::TrailerValue
            }
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Done,
            (State::SizeLf | State::TrailerLf | State::EndLf, _) => return Err(ChunkError::BareCr),
            (State::TrailerStart | State::TrailerName | State::TrailerValue, _) => {
                return Err(ChunkError::BadTrailer);
            }
            (s @ (State::Data | State::Done | State::Failed(_)), _) => s,
        };
        Ok(())
    }
}

//! Reading a request head as it arrives, in linear time.
//!
//! [`super::parse_head`] reads a whole buffer from its first octet. Called
//! again after every read, a head that arrives in one-octet segments costs
//! the sum of its prefixes: some 134 million octet steps for a 16 KiB head,
//! a cheap way to burn the proxy's CPU. [`HeadReader`] remembers how far it
//! has looked and scans only the octets that are new, with the same line
//! rules as the parser (CRLF only, empty lines before the request-line
//! skipped, [`super::MAX_HEAD`]); it runs the full parse once, when the
//! head has ended or can no longer be accepted (a bare CR or LF, the size
//! limit). The answer is always `parse_head`'s on the same buffer; only the
//! refusals that `parse_head` would give on a complete line before the
//! head ends (a malformed request-line, say) come later, when the head
//! ends or its deadline passes.

use super::{Head, HeadError, MAX_HEAD, parse_head};

/// Finds the end of one request head across reads.
#[derive(Debug, Clone, Default)]
pub struct HeadReader {
    /// Octets of the buffer already looked at.
    scanned: usize,
    /// Octets of the current line so far, CR excluded.
    line: usize,
    /// The last octet looked at was a CR.
    cr: bool,
    /// A non-empty line (the request-line) has been seen.
    started: bool,
    /// Octets looked at, by the scan and the parse, since [`HeadReader::new`]:
    /// the work the reader's tests bound.
    work: usize,
}

impl HeadReader {
    /// A reader at the start of a head.
    pub fn new() -> HeadReader {
        HeadReader::default()
    }

    /// Starts over for the next head (the buffer now starts there).
    pub fn reset(&mut self) {
        *self = HeadReader { work: self.work, ..HeadReader::default() };
    }

    /// Has any octet of this head been looked at?
    pub fn is_started(&self) -> bool {
        self.scanned > 0
    }

    /// The head at the start of `buf`, which holds everything received
    /// since the last [`HeadReader::reset`] (more each call, never less).
    /// [`HeadError::Incomplete`] means: read more and call again.
    pub fn read(&mut self, buf: &[u8]) -> Result<Head, HeadError> {
        let limit = buf.len().min(MAX_HEAD);
        let mut done = false;
        while self.scanned < limit && !done {
            let Some(&b) = buf.get(self.scanned) else { break };
            self.scanned += 1;
            self.work += 1;
            if self.cr {
                self.cr = false;
                if b != b'\n' {
                    // A bare CR: final either way.
                    done = true;
                } else if self.line > 0 {
                    self.started = true;
                    self.line = 0;
                } else if self.started {
                    // The empty line that ends the head.
                    done = true;
                }
                continue;
            }
            match b {
                b'\r' => self.cr = true,
                b'\n' => done = true,
                _ => self.line += 1,
            }
        }
        if !done && buf.len() < MAX_HEAD {
            return Err(HeadError::Incomplete);
        }
        self.work += buf.len().min(MAX_HEAD);
        parse_head(buf)
    }

    /// Octets looked at since [`HeadReader::new`].
    pub fn work(&self) -> usize {
        self.work
    }
}

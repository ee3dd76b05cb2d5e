//! The connection's read buffers.

/// Octets read and not yet passed on, at the front of a buffer that grows
/// up to its cap. Reads go into initialized memory (no unsafe), so the
/// buffer is zeroed once per size.
#[derive(Debug)]
pub(super) struct Buf {
    data: Vec<u8>,
    start: usize,
    end: usize,
    cap: usize,
}

impl Buf {
    pub(super) fn new(cap: usize) -> Buf {
        Buf { data: Vec::new(), start: 0, end: 0, cap }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        self.data.get(self.start..self.end).unwrap_or_default()
    }

    pub(super) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(super) fn is_full(&self) -> bool {
        self.len() >= self.cap
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
    }

    /// Room to read into: empty only when the buffer is full.
    pub(super) fn room(&mut self, first: usize) -> &mut [u8] {
        if self.end == self.data.len() && self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.data.len() && self.data.len() < self.cap {
            let grown = if self.data.is_empty() { first } else { self.data.len() * 2 };
            self.data.resize(grown.min(self.cap), 0);
        }
        self.data.get_mut(self.end..).unwrap_or_default()
    }

    /// Doubles the buffer (up to its cap) after a read that filled all
    /// its room: the peer has more, and fewer larger reads and writes carry
    /// it for less.
    pub(super) fn grow(&mut self) {
        if self.data.len() < self.cap {
            let grown = (self.data.len() * 2).min(self.cap);
            self.data.resize(grown, 0);
        }
    }

    /// Has memory to read into (a released buffer has none).
    pub(super) fn is_allocated(&self) -> bool {
        !self.data.is_empty()
    }

    /// Gives the memory back while empty: an idle keep-alive connection
    /// keeps no buffer (HAProxy's buffers come from a pool only while data
    /// moves). The next read takes it again.
    pub(super) fn release(&mut self) {
        if self.is_empty() {
            self.data = Vec::new();
            (self.start, self.end) = (0, 0);
        }
    }

    /// Replaces `len` octets at `at` of [`Buf::bytes`] with `with`; false
    /// (and nothing changed) if they are not all there.
    pub(super) fn replace(&mut self, at: usize, len: usize, with: &[u8]) -> bool {
        let from = self.start + at;
        if at.checked_add(len).is_none_or(|e| e > self.len()) {
            return false;
        }
        self.data.splice(from..from + len, with.iter().copied());
        self.end = self.end + with.len() - len;
        true
    }

    pub(super) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.data.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_grows_to_its_cap_keeps_its_octets_in_order_and_moves_them_to_the_front() {
        let mut b = Buf::new(8);
        assert!(b.is_empty());
        assert_eq!(b.room(4).len(), 4, "the first size");
        b.room(4).copy_from_slice(b"abcd");
        b.filled(4);
        // Full at its size: it doubles, up to the cap.
        assert_eq!(b.room(4).len(), 4);
        b.room(4).copy_from_slice(b"efgh");
        b.filled(4);
        assert!(b.is_full() && b.room(4).is_empty());
        // At the cap, what was consumed makes room at the front.
        b.consume(1);
        assert_eq!(b.room(4).len(), 1);
        b.room(4)[0] = b'i';
        b.filled(1);
        assert_eq!(b.bytes(), b"bcdefghi");
        b.consume(8);
        assert!(b.is_empty());
        assert_eq!(b.room(4).len(), 8);
        // Grown on demand, never past the cap.
        let mut b = Buf::new(32);
        assert_eq!(b.room(8).len(), 8);
        b.grow();
        assert_eq!(b.room(8).len(), 16);
        b.grow();
        b.grow();
        assert_eq!(b.room(8).len(), 32);
        // Released only when empty, and taken again at its first size.
        b.room(8)[0] = b'x';
        b.filled(1);
        b.release();
        assert!(b.is_allocated() && b.bytes() == b"x");
        b.consume(1);
        b.release();
        assert!(!b.is_allocated());
        assert_eq!(b.room(8).len(), 8);
    }
}

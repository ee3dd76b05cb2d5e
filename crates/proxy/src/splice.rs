//! splice(2): octets moved from one socket to another through a pipe,
//! inside the kernel, never copied into the proxy's memory.
//!
//! A TLS tunnel, a tunnel after a 101, or a large Content-Length body
//! needs nothing of its octets but their count, so they go socket ->
//! pipe -> socket (HAProxy's `option splice-response`, the same idea). A
//! direction holds a pipe only while data moves: it is taken for a
//! read, kept while it holds octets, and handed back as soon as it is
//! empty and the source has nothing more for now, to a small free list
//! of its thread's (each proxy thread runs one current-thread runtime).
//! An idle connection holds no pipe, and a thread keeps at most
//! [`FREE_MAX`] of them.
//!
//! Readiness is tokio's: a splice runs under [`TcpStream::try_io`] once
//! the socket is ready, so a socket without data (or without room) waits
//! in the reactor like any read or write, and the callers' deadlines
//! apply unchanged. A pipe is filled only when empty: a splice that
//! would block then means the source socket has nothing, never a full
//! pipe, and the socket's readiness is cleared only when it is true.
//!
//! Where splice is not available (EINVAL: a socket that cannot splice;
//! ENOSYS, EOPNOTSUPP), or no pipe can be had (EMFILE), the fill fails
//! before any octet has moved ([`is_unsupported`]), and the caller copies
//! instead.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::task::{Context, Poll};

use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Empty pipes a thread keeps for its next transfers. Each is two
/// descriptors; more than this many transfers at once on a thread create
/// and close their own.
pub(crate) const FREE_MAX: usize = 16;

/// The size a new pipe is given (`F_SETPIPE_SZ`), Linux's default
/// `pipe-max-size`: each splice moves up to this much, so a bulk transfer
/// takes a sixteenth of the system calls of a default pipe (16 pages),
/// and measurably less CPU. A pipe holds no memory of its own for
/// spliced data (its slots point at the sockets' pages), only its slot
/// array, 256 slots of 40 octets. Where the size is refused, the pipe
/// keeps the size it has.
const PIPE_SIZE: usize = 1024 * 1024;
/// A pipe's size when Linux does not say: 16 pages.
const DEFAULT_PIPE: usize = 64 * 1024;

/// Both ends of a pipe, non-blocking, and its capacity.
#[derive(Debug)]
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    size: usize,
}

thread_local! {
    static FREE: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

impl Pipe {
    /// One from the thread's free list, or a new one.
    fn take() -> io::Result<Pipe> {
        let reused = FREE.try_with(|f| f.try_borrow_mut().ok().and_then(|mut f| f.pop())).ok().flatten();
        if let Some(p) = reused {
            return Ok(p);
        }
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)
            .map_err(|e| io::Error::new(io::ErrorKind::Unsupported, format!("no pipe: {e}")))?;
        let size = fcntl_setpipe_size(&write, PIPE_SIZE)
            .or_else(|_| fcntl_getpipe_size(&write))
            .unwrap_or(DEFAULT_PIPE);
        Ok(Pipe { read, write, size })
    }

    /// An empty pipe goes back to the thread's free list, or is closed
    /// when the list is full (or the thread is ending).
    fn give_back(self) {
        let _ = FREE.try_with(|f| {
            if let Ok(mut f) = f.try_borrow_mut()
                && f.len() < FREE_MAX
            {
                f.push(self);
            }
        });
    }
}

/// Did a fill fail before moving anything, in a way that copying would
/// not (splice not available here, or no pipe)? Then copy instead.
pub(crate) fn is_unsupported(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::Unsupported | io::ErrorKind::InvalidInput)
}

/// One direction's splice: the octets in its pipe, and the pipe only
/// while it holds some or a read is under way.
#[derive(Debug, Default)]
pub(crate) struct Splice {
    pipe: Option<Pipe>,
    held: usize,
    /// Octets moved out of the pipe, in all.
    moved: u64,
}

impl Splice {
    pub(crate) fn new() -> Splice {
        Splice::default()
    }

    /// Octets in the pipe, read and not yet written.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Octets moved through, in all.
    pub(crate) fn moved(&self) -> u64 {
        self.moved
    }

    /// Holds a pipe (for a test of the free list).
    #[cfg(test)]
    fn has_pipe(&self) -> bool {
        self.pipe.is_some()
    }

    /// Moves up to `max` (more than 0) octets from `from` into the empty
    /// pipe, at most its size. Ready(Ok(0)) when `from` has closed. Pending gives the pipe
    /// back: a direction waiting for data holds none.
    pub(crate) fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        from: &TcpStream,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        if self.held > 0 {
            return Poll::Ready(Err(io::Error::other("splice: filling a pipe that is not empty")));
        }
        loop {
            match from.poll_read_ready(cx) {
                Poll::Pending => {
                    self.release();
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            let pipe = match &self.pipe {
                Some(p) => p,
                None => self.pipe.insert(Pipe::take()?),
            };
            let want = max.min(pipe.size);
            let r = from.try_io(Interest::READABLE, || {
                Ok(splice(from, None, &pipe.write, None, want, SpliceFlags::MOVE | SpliceFlags::NONBLOCK)?)
            });
            match r {
                Ok(n) => {
                    self.held = n;
                    if n == 0 {
                        self.release();
                    }
                    return Poll::Ready(Ok(n));
                }
                // Readiness was stale: cleared, wait for the next.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Moves what the pipe holds into `to`, as much as it takes; Ready(n)
    /// after `n` octets. The pipe is kept for the next fill.
    pub(crate) fn poll_drain(&mut self, cx: &mut Context<'_>, to: &TcpStream) -> Poll<io::Result<usize>> {
        let Some(pipe) = &self.pipe else {
            return Poll::Ready(Ok(0));
        };
        if self.held == 0 {
            return Poll::Ready(Ok(0));
        }
        loop {
            match to.poll_write_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            let held = self.held;
            let r = to.try_io(Interest::WRITABLE, || {
                Ok(splice(&pipe.read, None, to, None, held, SpliceFlags::MOVE | SpliceFlags::NONBLOCK)?)
            });
            match r {
                Ok(n) => {
                    let n = n.min(held);
                    self.held -= n;
                    self.moved += n as u64;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Gives the pipe back while it is empty.
    pub(crate) fn release(&mut self) {
        if self.held == 0
            && let Some(p) = self.pipe.take()
        {
            p.give_back();
        }
    }
}

impl Drop for Splice {
    /// An empty pipe goes back to the free list; one with octets still in
    /// it (a transfer cut short) is closed with them.
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (a, b)
    }

    fn free() -> usize {
        FREE.with_borrow(Vec::len)
    }

    /// Exactly `max` octets leave the source: what follows stays in the
    /// socket for the next reader.
    #[tokio::test]
    async fn a_fill_takes_no_more_than_asked_and_the_rest_stays_in_the_socket() {
        let ((mut src, from), (to, mut dst)) = (pair().await, pair().await);
        src.write_all(b"0123456789rest").await.unwrap();
        let mut s = Splice::new();
        let mut got = 0;
        while got < 10 {
            got += poll_fn(|cx| s.poll_fill(cx, &from, 10 - got)).await.unwrap();
            while s.held() > 0 {
                poll_fn(|cx| s.poll_drain(cx, &to)).await.unwrap();
            }
        }
        let mut ten = [0u8; 10];
        dst.read_exact(&mut ten).await.unwrap();
        assert_eq!(&ten, b"0123456789");
        let mut rest = [0u8; 4];
        let mut from = from;
        from.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"rest");
        assert_eq!(s.moved(), 10);
    }

    /// A direction waiting for data holds no pipe: it is back on the
    /// thread's free list, and the next fill takes it again.
    #[tokio::test(flavor = "current_thread")]
    async fn a_direction_waiting_for_data_holds_no_pipe() {
        let ((mut src, from), (to, mut dst)) = (pair().await, pair().await);
        let before = free();
        let mut s = Splice::new();
        src.write_all(b"x").await.unwrap();
        assert_eq!(poll_fn(|cx| s.poll_fill(cx, &from, usize::MAX)).await.unwrap(), 1);
        assert!(s.has_pipe());
        assert_eq!(poll_fn(|cx| s.poll_drain(cx, &to)).await.unwrap(), 1);
        // Nothing more to read: the fill waits, without its pipe.
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(s.poll_fill(&mut cx, &from, usize::MAX).is_pending());
        assert!(!s.has_pipe());
        assert_eq!(free(), before.max(1));
        // The peer's close is a fill of 0, and no pipe is kept.
        drop(src);
        assert_eq!(poll_fn(|cx| s.poll_fill(cx, &from, usize::MAX)).await.unwrap(), 0);
        assert!(!s.has_pipe());
        let mut b = [0u8; 1];
        dst.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"x");
    }

    /// A pipe still holding octets when its transfer ends is closed, not
    /// reused: the next transfer must not start with someone else's data.
    #[tokio::test(flavor = "current_thread")]
    async fn a_pipe_with_octets_in_it_is_never_reused() {
        let (mut src, from) = pair().await;
        FREE.with_borrow_mut(Vec::clear);
        let mut s = Splice::new();
        src.write_all(b"left behind").await.unwrap();
        assert!(poll_fn(|cx| s.poll_fill(cx, &from, usize::MAX)).await.unwrap() > 0);
        drop(s);
        assert_eq!(free(), 0);
    }

    /// The errors of a kernel or socket that cannot splice send the caller
    /// to its copy path; a peer's failure does not.
    #[test]
    fn splice_errors_that_mean_copy_instead() {
        assert!(is_unsupported(&io::Error::from_raw_os_error(rustix::io::Errno::INVAL.raw_os_error())));
        assert!(is_unsupported(&io::Error::from_raw_os_error(rustix::io::Errno::NOSYS.raw_os_error())));
        assert!(!is_unsupported(&io::Error::from_raw_os_error(rustix::io::Errno::CONNRESET.raw_os_error())));
        assert!(!is_unsupported(&io::Error::from_raw_os_error(rustix::io::Errno::PIPE.raw_os_error())));
    }
}

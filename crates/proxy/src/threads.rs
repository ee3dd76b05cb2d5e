//! The proxy's own threads, apart from DNS and the API.
//!
//! Each thread runs a single-threaded runtime and accepts on sockets of
//! its own: one `SO_REUSEPORT` socket per listen address
//! ([`sixgate_listen::accept::bind_group`]), so the kernel spreads new
//! connections over the threads and a connection lives its whole life on
//! the thread that accepted it. No task moves between threads, no waker
//! crosses one, and a flood on port 80 or 443 takes the proxy's cores,
//! not the ones DNS answers on. HAProxy's `nbthread` with `shards by-thread`
//! and nginx's `reuseport` work the same way.
//!
//! At shutdown ([`Threads::stop`]) the listeners close at once and the
//! connections in flight have their front's drain time to finish
//! ([`crate::Front::with_drain`]); [`Threads::join`] returns when every
//! thread has.

use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::front::Front;
use crate::tls::Shared;

/// Which side a listen address serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// TLS, routed by SNI ([`crate::tls`]).
    Tls,
    /// Plain HTTP, routed by Host ([`crate::plain`]).
    Http,
}

/// One listen address's sockets: one per thread, from
/// [`sixgate_listen::accept::bind_group`].
#[derive(Debug)]
pub struct Group {
    /// The side it serves.
    pub side: Side,
    /// One socket per thread.
    pub sockets: Vec<std::net::TcpListener>,
}

/// The running proxy threads.
#[derive(Debug)]
pub struct Threads {
    stop: watch::Sender<bool>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Threads {
    /// Starts `n` threads (at least one), thread `i` accepting on socket `i`
    /// of every group (a group with fewer sockets leaves the later threads
    /// out of it).
    pub fn start(
        n: usize,
        groups: Vec<Group>,
        shared: Arc<Shared>,
        tls: Arc<Front>,
        http: Arc<Front>,
    ) -> io::Result<Threads> {
        let (stop, stopped) = watch::channel(false);
        let mut per_thread: Vec<Vec<(Side, std::net::TcpListener)>> =
            (0..n.max(1)).map(|_| Vec::new()).collect();
        for g in groups {
            for (i, s) in g.sockets.into_iter().enumerate() {
                if let Some(t) = per_thread.get_mut(i) {
                    t.push((g.side, s));
                }
            }
        }
        let mut handles = Vec::with_capacity(per_thread.len());
        for (i, sockets) in per_thread.into_iter().enumerate() {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            // Registered with this thread's runtime, before it starts.
            let listeners = {
                let _guard = rt.enter();
                sockets
                    .into_iter()
                    .map(|(side, s)| Ok((side, TcpListener::from_std(s)?)))
                    .collect::<io::Result<Vec<_>>>()?
            };
            let (shared, tls, http, stopped) = (shared.clone(), tls.clone(), http.clone(), stopped.clone());
            let handle = std::thread::Builder::new().name(format!("sixgate-proxy-{i}")).spawn(move || {
                rt.block_on(async move {
                    let mut loops = tokio::task::JoinSet::new();
                    for (side, l) in listeners {
                        match side {
                            Side::Tls => loops.spawn(crate::tls::serve(
                                l,
                                shared.clone(),
                                tls.clone(),
                                stopped.clone(),
                            )),
                            Side::Http => loops.spawn(crate::plain::serve(
                                l,
                                shared.clone(),
                                http.clone(),
                                stopped.clone(),
                            )),
                        };
                    }
                    while loops.join_next().await.is_some() {}
                });
            })?;
            handles.push(handle);
        }
        Ok(Threads { stop, handles })
    }

    /// Closes every listener; the connections in flight drain.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until every thread has drained and ended.
    pub fn join(self) {
        for h in self.handles {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    /// Every thread's socket is one listen address: a connection to it is
    /// accepted whichever socket the kernel picks.
    #[test]
    fn a_group_shares_one_port() {
        let tcp = sixgate_listen::ListenerLimits::proxy().tcp;
        let group = sixgate_listen::accept::bind_group("127.0.0.1:0".parse().unwrap(), &tcp, 3).unwrap();
        let addrs: Vec<SocketAddr> = group.iter().map(|l| l.local_addr().unwrap()).collect();
        assert_eq!(addrs.len(), 3);
        assert!(addrs.iter().all(|a| *a == addrs[0]), "{addrs:?}");
        assert_ne!(addrs[0].port(), 0);
    }
}

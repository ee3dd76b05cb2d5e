//! A deadline that moves with every read and costs almost nothing.
//!
//! A phase deadline such as "no traffic for an hour" moves on each read.
//! Resetting a tokio timer that often means a timer-wheel update per read.
//! [`Deadline`] keeps one timer per connection and resets it lazily. A
//! deadline that moves later is only written down. When the timer fires
//! early, it is moved to the current deadline. A deadline that moves
//! earlier resets the timer at once, so it can never fire late.
//!
//! [`Quiet`] measures "no traffic for a while" without reading the clock
//! on every event. A clock read is a system call on some virtual machines,
//! and it would be several per request. Events are only counted, and the
//! count is looked at every eighth of the limit. So the deadline passes
//! between the limit and nine eighths of it after the last event, never
//! before.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Where an unset deadline's timer waits.
const FAR: Duration = Duration::from_secs(86_400 * 365);

/// One connection's current deadline.
#[derive(Debug)]
pub(crate) struct Deadline {
    timer: Pin<Box<Sleep>>,
    /// When the timer is set to fire.
    armed: Instant,
    target: Option<Instant>,
}

impl Deadline {
    /// No deadline yet.
    pub(crate) fn new() -> Deadline {
        let far = Instant::now() + FAR;
        Deadline { timer: Box::pin(tokio::time::sleep_until(far)), armed: far, target: None }
    }

    /// Moves the deadline to `at`; `None` removes it.
    pub(crate) fn set(&mut self, at: Option<Instant>) {
        self.target = at;
        if let Some(at) = at
            && at < self.armed
        {
            self.timer.as_mut().reset(at);
            self.armed = at;
        }
    }

    /// Ready once the deadline has passed.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(target) = self.target else { return Poll::Pending };
        loop {
            ready!(self.timer.as_mut().poll(cx));
            if target <= self.armed {
                return Poll::Ready(());
            }
            self.timer.as_mut().reset(target);
            self.armed = target;
        }
    }
}

/// No traffic for a limit, with a clock read only when the count is
/// looked at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quiet {
    events: u64,
    seen: u64,
    /// No event since then (at the latest).
    since: Instant,
    /// When the count was last looked at.
    checked: Instant,
}

impl Quiet {
    /// Quiet since `now`.
    pub(crate) fn new(now: Instant) -> Quiet {
        Quiet { events: 0, seen: 0, since: now, checked: now }
    }

    /// Something moved.
    pub(crate) fn event(&mut self) {
        self.events = self.events.wrapping_add(1);
    }

    /// When to call [`Quiet::expired`]: the deadline, or the next look at
    /// the count before it.
    pub(crate) fn next(&self, limit: Duration) -> Instant {
        (self.since + limit).min(self.checked + limit / 8)
    }

    /// At `now`, once [`Quiet::next`] has passed: has `limit` gone by
    /// without an event?
    pub(crate) fn expired(&mut self, now: Instant, limit: Duration) -> bool {
        if self.events != self.seen {
            self.seen = self.events;
            self.since = now;
        }
        self.checked = now;
        now >= self.since + limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn quiet_expires_after_its_limit_without_events_and_never_before() {
        let limit = Duration::from_secs(80);
        let start = Instant::now();
        let mut q = Quiet::new(start);
        let mut d = Deadline::new();
        // Events every 30 s for 5 minutes: never expired.
        let mut last_event = start;
        loop {
            d.set(Some(q.next(limit)));
            let at = fires(&mut d).await;
            if at - start < Duration::from_secs(300) && (at - last_event) >= Duration::from_secs(30) {
                q.event();
                last_event = at;
            }
            if q.expired(at, limit) {
                let quiet = at - last_event;
                assert!(at - start >= Duration::from_secs(300), "expired during traffic at {:?}", at - start);
                assert!(quiet >= limit && quiet <= limit + limit / 8, "quiet for {quiet:?}");
                break;
            }
        }
    }

    async fn fires(d: &mut Deadline) -> Instant {
        std::future::poll_fn(|cx| d.poll(cx)).await;
        Instant::now()
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_fires_at_its_last_setting_whichever_way_it_moved() {
        let start = Instant::now();
        let mut d = Deadline::new();
        d.set(Some(start + Duration::from_secs(10)));
        // Moved later: the early timer is followed by another.
        d.set(Some(start + Duration::from_secs(30)));
        assert_eq!(fires(&mut d).await - start, Duration::from_secs(30));
        // Moved earlier than the timer: it fires at the earlier time.
        let now = Instant::now();
        d.set(Some(now + Duration::from_secs(60)));
        d.set(Some(now + Duration::from_secs(5)));
        assert_eq!(fires(&mut d).await - now, Duration::from_secs(5));
        // Unset: never.
        d.set(None);
        let never = tokio::time::timeout(Duration::from_secs(3600), fires(&mut d)).await;
        assert!(never.is_err());
    }
}

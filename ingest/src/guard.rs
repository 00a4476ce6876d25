//! Per-source limits on the ingest listeners: how fast one address may
//! open connections (RTMP) or start handshakes (SRT), and how many wrong
//! keys it may try before it is shut out for a while.
//!
//! A source is an IPv4 address or an IPv6 /64 (one host usually holds a
//! whole /64, so per-address limits would not hold it back). Connection
//! attempts drain a token bucket per source ([`SourceLimits::burst`] at
//! once, [`SourceLimits::per_second`] after that); a source past its bucket
//! is closed at accept (RTMP) or rejected before any state is set up (SRT),
//! without a log line per attempt. After [`SourceLimits::key_failures`]
//! wrong keys within [`SourceLimits::key_window`], every publish from the
//! source is refused for [`SourceLimits::lockout`], the right key
//! included, so guessing costs the guesser the lockout per few tries.
//!
//! Memory is bounded: at most [`MAX_SOURCES`] sources are remembered; when
//! the table is full, sources in good standing (a full bucket, no wrong
//! key) are forgotten first, then the one whose lockout ends soonest.
//! Every refusal is counted by [`Refused`] for `/metrics`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sources remembered at most.
pub const MAX_SOURCES: usize = 16_384;

/// The limits; the defaults suit a broadcaster's encoders reconnecting
/// after a network hiccup, not a stranger trying keys.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SourceLimits {
    /// Connection attempts a source may make at once.
    pub burst: u32,
    /// Connection attempts a source regains per second.
    pub per_second: f64,
    /// Wrong keys within `key_window` that shut a source out.
    pub key_failures: u32,
    /// The window wrong keys are counted in.
    pub key_window: Duration,
    /// How long a source that guessed too often is shut out.
    pub lockout: Duration,
}

impl Default for SourceLimits {
    fn default() -> Self {
        SourceLimits {
            burst: 32,
            per_second: 4.0,
            key_failures: 10,
            key_window: Duration::from_secs(60),
            lockout: Duration::from_secs(300),
        }
    }
}

/// Why the ingest listeners turned a caller away, for `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// A source past its connection rate.
    Rate,
    /// A publish URL or stream id that names no stream.
    Malformed,
    /// A wrong or missing key.
    Key,
    /// A source shut out after too many wrong keys.
    LockedOut,
    /// Another publisher is on the stream.
    Busy,
    /// A returning publisher whose codecs differ.
    CodecChanged,
    /// An SRT datagram the gate dropped unparsed ([`crate::srt_gate`]).
    Datagram,
}

impl Refused {
    /// Every reason, in label order.
    pub const ALL: [Refused; 7] = [
        Refused::Rate,
        Refused::Malformed,
        Refused::Key,
        Refused::LockedOut,
        Refused::Busy,
        Refused::CodecChanged,
        Refused::Datagram,
    ];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Rate => "rate",
            Refused::Malformed => "malformed",
            Refused::Key => "key",
            Refused::LockedOut => "locked_out",
            Refused::Busy => "busy",
            Refused::CodecChanged => "codec_changed",
            Refused::Datagram => "datagram",
        }
    }

    fn slot(self) -> &'static AtomicU64 {
        static COUNTS: [AtomicU64; Refused::ALL.len()] =
            [const { AtomicU64::new(0) }; Refused::ALL.len()];
        let i = Refused::ALL.iter().position(|r| *r == self).unwrap_or(0);
        &COUNTS[i]
    }

    /// Counts one refusal.
    pub(crate) fn count(self) {
        self.slot().fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals for this reason so far in this process.
    pub fn total(self) -> u64 {
        self.slot().load(Ordering::Relaxed)
    }
}

/// What is remembered of one source.
#[derive(Clone, Copy, Debug)]
struct Record {
    /// Connection attempts left, and when they were counted.
    tokens: f64,
    at: Instant,
    /// Wrong keys in the current window, and when it started.
    failures: u32,
    window: Instant,
    /// Shut out until then.
    locked_until: Option<Instant>,
}

impl Record {
    fn new(limits: &SourceLimits, now: Instant) -> Self {
        Record {
            tokens: f64::from(limits.burst),
            at: now,
            failures: 0,
            window: now,
            locked_until: None,
        }
    }

    fn refill(&mut self, limits: &SourceLimits, now: Instant) {
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * limits.per_second;
        self.tokens = (self.tokens + gained).min(f64::from(limits.burst));
        self.at = now;
        if self.locked_until.is_some_and(|t| t <= now) {
            self.locked_until = None;
            self.failures = 0;
        }
    }

    /// In good standing: nothing to remember it for.
    fn clean(&self, limits: &SourceLimits) -> bool {
        self.failures == 0 && self.locked_until.is_none() && self.tokens >= f64::from(limits.burst)
    }
}

/// The per-source state of a set of listeners.
pub(crate) struct Guard {
    limits: SourceLimits,
    sources: Mutex<HashMap<IpAddr, Record>>,
}

/// The source an address counts as: itself (IPv4, an IPv4-mapped IPv6
/// address as IPv4) or its /64 (IPv6).
fn source(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::from(s)
            }
        },
    }
}

impl Guard {
    pub(crate) fn new(limits: SourceLimits) -> Self {
        Guard {
            limits,
            sources: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, addr: IpAddr, now: Instant, f: impl FnOnce(&mut Record) -> T) -> T {
        let limits = &self.limits;
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let key = source(addr);
        if !sources.contains_key(&key) && sources.len() >= MAX_SOURCES {
            make_room(&mut sources, limits, now);
        }
        let record = sources
            .entry(key)
            .or_insert_with(|| Record::new(limits, now));
        record.refill(limits, now);
        f(record)
    }

    /// A connection attempt from `addr`: whether it may go on. A refusal
    /// is counted.
    pub(crate) fn connect(&self, addr: IpAddr) -> bool {
        let ok = self.with(addr, Instant::now(), |r| {
            if r.tokens >= 1.0 {
                r.tokens -= 1.0;
                true
            } else {
                false
            }
        });
        if !ok {
            Refused::Rate.count();
        }
        ok
    }

    /// Whether `addr` is shut out from publishing now (counted if so).
    pub(crate) fn locked_out(&self, addr: IpAddr) -> bool {
        let locked = self.with(addr, Instant::now(), |r| r.locked_until.is_some());
        if locked {
            Refused::LockedOut.count();
        }
        locked
    }

    /// A publish from `addr` with a wrong key: counted towards a lockout.
    /// Whether this one locked the source out.
    pub(crate) fn wrong_key(&self, addr: IpAddr) -> bool {
        let limits = self.limits;
        self.with(addr, Instant::now(), |r| {
            if r.at.saturating_duration_since(r.window) > limits.key_window {
                r.window = r.at;
                r.failures = 0;
            }
            r.failures += 1;
            if r.failures >= limits.key_failures {
                r.locked_until = Some(r.at + limits.lockout);
                true
            } else {
                false
            }
        })
    }

    /// A publish from `addr` with the right key: its wrong keys are forgiven.
    pub(crate) fn right_key(&self, addr: IpAddr) {
        self.with(addr, Instant::now(), |r| r.failures = 0);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.sources.lock().unwrap().len()
    }
}

/// Forgets sources in good standing; if none is, the one whose lockout
/// ends soonest.
fn make_room(sources: &mut HashMap<IpAddr, Record>, limits: &SourceLimits, now: Instant) {
    sources.retain(|_, r| {
        r.refill(limits, now);
        !r.clean(limits)
    });
    if sources.len() >= MAX_SOURCES {
        let soonest = sources
            .iter()
            .min_by_key(|(_, r)| r.locked_until.unwrap_or(r.at))
            .map(|(k, _)| *k);
        if let Some(k) = soonest {
            sources.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SourceLimits {
        SourceLimits {
            burst: 3,
            per_second: 0.0,
            key_failures: 2,
            key_window: Duration::from_secs(60),
            lockout: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_source_past_its_bucket_is_refused_and_others_are_not() {
        let g = Guard::new(limits());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let before = Refused::Rate.total();
        assert!((0..3).all(|_| g.connect(a)));
        assert!(!g.connect(a));
        assert!(g.connect(b));
        assert_eq!(Refused::Rate.total(), before + 1);
    }

    #[test]
    fn one_ipv6_host_is_its_slash_64() {
        let g = Guard::new(limits());
        for i in 1..=3 {
            assert!(g.connect(format!("2001:db8::{i}").parse().unwrap()));
        }
        assert!(!g.connect("2001:db8::ffff:1".parse().unwrap()));
        assert!(g.connect("2001:db8:0:1::1".parse().unwrap()));
        assert_eq!(
            source("::ffff:192.0.2.9".parse().unwrap()),
            "192.0.2.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn wrong_keys_lock_a_source_out_and_a_right_key_forgives() {
        let g = Guard::new(limits());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(!g.wrong_key(a));
        g.right_key(a);
        assert!(!g.wrong_key(a), "forgiven: counting starts again");
        assert!(!g.locked_out(a));
        assert!(g.wrong_key(a), "the second in the window locks it out");
        assert!(g.locked_out(a));
        assert!(!g.locked_out("192.0.2.2".parse().unwrap()));
    }

    #[test]
    fn the_table_is_bounded_and_keeps_the_sources_that_misbehaved() {
        let g = Guard::new(limits());
        let bad: IpAddr = "198.51.100.1".parse().unwrap();
        g.wrong_key(bad);
        g.wrong_key(bad);
        for i in 0..(MAX_SOURCES as u32 + 100) {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            g.with(addr, Instant::now(), |_| ());
        }
        assert!(g.len() <= MAX_SOURCES);
        assert!(
            g.locked_out(bad),
            "a locked-out source is not forgotten first"
        );
    }
}

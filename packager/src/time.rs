//! Timescales and conversions between them.

use std::num::NonZeroU32;

/// Ticks per second of a media or movie timeline; never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timescale(NonZeroU32);

impl Timescale {
    /// A timescale, or `None` for zero.
    pub const fn new(ticks_per_second: u32) -> Option<Self> {
        match NonZeroU32::new(ticks_per_second) {
            Some(t) => Some(Self(t)),
            None => None,
        }
    }

    /// Ticks per second.
    pub const fn get(self) -> u32 {
        self.0.get()
    }
}

/// Converts `t` ticks of timescale `from` to timescale `to`, rounding to nearest.
pub fn rescale(t: i64, from: Timescale, to: Timescale) -> i64 {
    if from == to {
        return t;
    }
    let (from, to) = (i128::from(from.get()), i128::from(to.get()));
    let num = i128::from(t) * to;
    let q = if num >= 0 {
        (num + from / 2) / from
    } else {
        (num - from / 2) / from
    };
    q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Seconds as a float, for manifests.
pub fn seconds(t: i64, scale: Timescale) -> f64 {
    t as f64 / f64::from(scale.get())
}

/// Peak and average bit rate (bits/s, rounded up) of pieces given as
/// `(bytes, seconds, counts_for_peak)`: the average over all of them, the
/// peak the largest rate among those that count (never below the average).
pub(crate) fn peak_and_average(pieces: impl Iterator<Item = (u64, f64, bool)>) -> (u64, u64) {
    let (mut peak, mut bytes, mut secs) = (0f64, 0u64, 0f64);
    for (b, d, counts) in pieces {
        if counts && d > 0.0 {
            peak = peak.max(b as f64 * 8.0 / d);
        }
        bytes += b;
        secs += d;
    }
    let avg = if secs > 0.0 {
        bytes as f64 * 8.0 / secs
    } else {
        0.0
    };
    (peak.max(avg).ceil() as u64, avg.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale_rounds_to_nearest() {
        let a = Timescale::new(90000).unwrap();
        let b = Timescale::new(1000).unwrap();
        assert_eq!(rescale(3003, a, b), 33);
        assert_eq!(rescale(-3003, a, b), -33);
        assert_eq!(rescale(45, a, b), 1);
    }
}

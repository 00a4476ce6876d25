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
    clamp_i64(q)
}

/// `v` as an `i64`, saturating at its bounds.
pub(crate) fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Seconds as a float, for manifests.
pub fn seconds(t: i64, scale: Timescale) -> f64 {
    t as f64 / f64::from(scale.get())
}

/// [`seconds`] of a duration.
pub(crate) fn duration_seconds(d: u64, scale: Timescale) -> f64 {
    d as f64 / f64::from(scale.get())
}

/// `x` rounded toward zero to a `u64`, saturating: negative values and NaN
/// become 0, values past `u64::MAX` become `u64::MAX`. For bit rates and
/// milliseconds computed in floating point.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "clamped to the u64 range first"
)]
pub(crate) fn saturating_u64(x: f64) -> u64 {
    if x.is_nan() {
        0
    } else {
        x.clamp(0.0, u64::MAX as f64) as u64
    }
}

/// `x` rounded toward zero to an `i64`, saturating at its bounds; NaN
/// becomes 0.
#[allow(
    clippy::cast_possible_truncation,
    reason = "clamped to the i64 range first"
)]
pub(crate) fn saturating_i64(x: f64) -> i64 {
    if x.is_nan() {
        0
    } else {
        x.clamp(i64::MIN as f64, i64::MAX as f64) as i64
    }
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
    (
        saturating_u64(peak.max(avg).ceil()),
        saturating_u64(avg.ceil()),
    )
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

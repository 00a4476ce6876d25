//! The per-track sample index: where every sample is and when it plays.
//!
//! Built once per file from `stbl` tables or `moof` fragments, then shared
//! read-only. Per sample: its size and file offset (4 bytes each; offsets
//! take 8 in files of 4 GiB and more) and, for tracks that have them, its
//! composition offset; decode times are kept per run of equal durations,
//! as `stts` stores them. A one-hour 15 fps + 48 kHz AAC file (223 k
//! samples) takes about 2 MB.

use std::ops::Range;

use crate::error::{Error, Result};

/// File offsets of samples: 32 bits while the file is below 4 GiB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Offsets {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl Default for Offsets {
    fn default() -> Self {
        Offsets::Narrow(Vec::new())
    }
}

impl Offsets {
    /// Storage fit for a file of `file_size` bytes.
    pub(crate) fn for_file(file_size: u64, capacity: usize) -> Self {
        if file_size <= u64::from(u32::MAX) {
            Offsets::Narrow(Vec::with_capacity(capacity))
        } else {
            Offsets::Wide(Vec::with_capacity(capacity))
        }
    }

    fn get(&self, i: usize) -> u64 {
        match self {
            Offsets::Narrow(v) => u64::from(v[i]),
            Offsets::Wide(v) => v[i],
        }
    }

    fn len(&self) -> usize {
        match self {
            Offsets::Narrow(v) => v.len(),
            Offsets::Wide(v) => v.len(),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Offsets::Narrow(v) => v.capacity() * 4,
            Offsets::Wide(v) => v.capacity() * 8,
        }
    }
}

/// A run of samples with equal decode durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeRun {
    /// Index of the run's first sample.
    pub(crate) first: u32,
    /// Decode time of that sample.
    pub(crate) dts: u64,
    /// Duration of each sample in the run.
    pub(crate) delta: u32,
}

/// Position, size and timing of every sample of one track, in decode order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleIndex {
    pub(crate) sizes: Vec<u32>,
    pub(crate) offsets: Offsets,
    /// Time runs by ascending `first`; the first run starts at sample 0.
    pub(crate) times: Vec<TimeRun>,
    /// Composition offsets; empty when every offset is zero.
    pub(crate) cts: Vec<i32>,
    /// Indices of sync samples, ascending; `None` when every sample is one.
    pub(crate) sync: Option<Vec<u32>>,
}

impl SampleIndex {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// Whether the track has no samples.
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Size in bytes of sample `i`.
    pub fn size(&self, i: usize) -> u32 {
        self.sizes[i]
    }

    /// Sizes of all samples.
    pub fn sizes(&self) -> &[u32] {
        &self.sizes
    }

    fn run(&self, i: usize) -> &TimeRun {
        if self.times.len() == 1 {
            return &self.times[0];
        }
        let r = self.times.partition_point(|r| r.first as usize <= i);
        &self.times[r - 1]
    }

    /// Decode time of sample `i`.
    pub fn dts(&self, i: usize) -> u64 {
        let r = self.run(i);
        r.dts + (i as u64 - u64::from(r.first)) * u64::from(r.delta)
    }

    /// Decode time just after the last sample.
    pub fn end_dts(&self) -> u64 {
        match self.len() {
            0 => 0,
            n => self.dts(n - 1) + u64::from(self.duration(n - 1)),
        }
    }

    /// Duration of sample `i` in decode order.
    pub fn duration(&self, i: usize) -> u32 {
        // The first run that starts after sample i.
        let r = self.times.partition_point(|r| r.first as usize <= i);
        match self.times.get(r) {
            // Sample i ends its run: it lasts until the next run starts.
            Some(next) if next.first as usize == i + 1 => run_gap(next.dts - self.dts(i)),
            _ => self.times[r - 1].delta,
        }
    }

    /// Decode times and durations of samples `start..`, in order: the
    /// sequential form of [`Self::dts`] and [`Self::duration`], O(1) per sample.
    pub fn times_from(&self, start: usize) -> Times<'_> {
        let run = self
            .times
            .partition_point(|r| r.first as usize <= start)
            .saturating_sub(1);
        Times {
            index: self,
            run,
            i: start,
        }
    }

    /// Whether every sample in `range` has the same duration.
    pub fn uniform_durations(&self, range: Range<usize>) -> bool {
        if range.len() <= 1 {
            return true;
        }
        // Durations change only where a time run starts: at each such
        // start inside the range (or right after it), the new run must keep
        // the delta and follow on without a jump.
        let d0 = u64::from(self.duration(range.start));
        let mut r = self
            .times
            .partition_point(|r| r.first as usize <= range.start);
        while let Some(next) = self.times.get(r) {
            if next.first as usize >= range.end {
                break;
            }
            let prev = &self.times[r - 1];
            let last = prev.dts + u64::from(next.first - 1 - prev.first) * u64::from(prev.delta);
            if u64::from(next.delta) != d0 || next.dts - last != d0 {
                return false;
            }
            r += 1;
        }
        // The range's last sample may end its run: check its own duration.
        // (Runs starting inside the range were checked above; a false "no"
        // only costs per-sample durations in the trun.)
        u64::from(self.duration(range.end - 1)) == d0
    }

    /// The first sample at or after `from` whose midpoint lies after decode
    /// time `t` (durations in `from..` are split at their middle), or
    /// `len()` if none: the sample nearest to `t` to start a cut at.
    pub fn first_after_midpoint(&self, from: usize, t: i64) -> usize {
        let n = self.len();
        if from >= n {
            return n;
        }
        let after = |i: usize| signed(self.dts(i)) + i64::from(self.duration(i)) / 2 > t;
        // Find the run holding the answer, then the sample within it.
        let mut r = self
            .times
            .partition_point(|r| signed(r.dts) <= t)
            .saturating_sub(1);
        r = r.max(
            self.times
                .partition_point(|r| r.first as usize <= from)
                .saturating_sub(1),
        );
        let run = &self.times[r];
        let start = (run.first as usize).max(from);
        let guess = if run.delta == 0 {
            start
        } else {
            let k = (t - signed(run.dts) - i64::from(run.delta) / 2).max(0) / i64::from(run.delta);
            // A guess, corrected below: beyond the address space is past the end.
            let k = usize::try_from(k).unwrap_or(usize::MAX);
            (run.first as usize).saturating_add(k).max(start).min(n)
        };
        let mut i = guess;
        while i > start && after(i - 1) {
            i -= 1;
        }
        while i < n && !after(i) {
            i += 1;
        }
        i
    }

    /// The smallest composition offset in `range` (0 without offsets).
    pub fn min_cts_offset(&self, range: Range<usize>) -> i64 {
        self.cts
            .get(range)
            .and_then(|c| c.iter().min())
            .map_or(0, |&c| i64::from(c))
    }

    /// Composition offset of sample `i`.
    pub fn cts_offset(&self, i: usize) -> i32 {
        self.cts.get(i).copied().unwrap_or(0)
    }

    /// Whether any sample has a composition offset.
    pub fn has_cts(&self) -> bool {
        !self.cts.is_empty()
    }

    /// Composition time of sample `i` (before any edit list), which may be negative.
    pub fn cts(&self, i: usize) -> i64 {
        signed(self.dts(i)).saturating_add(i64::from(self.cts_offset(i)))
    }

    /// Whether sample `i` is a sync sample.
    pub fn is_sync(&self, i: usize) -> bool {
        match &self.sync {
            None => true,
            // Sample numbers are 32 bits: one beyond is in no list.
            Some(s) => u32::try_from(i).is_ok_and(|i| s.binary_search(&i).is_ok()),
        }
    }

    /// Number of sync samples in `range`.
    pub fn sync_count(&self, range: Range<usize>) -> usize {
        match &self.sync {
            None => range.len(),
            Some(s) => {
                s.partition_point(|&x| (x as usize) < range.end)
                    - s.partition_point(|&x| (x as usize) < range.start)
            }
        }
    }

    /// Indices of sync samples (all samples when every one is a sync sample).
    pub fn sync_samples(&self) -> impl Iterator<Item = usize> + '_ {
        let all = self.sync.is_none().then(|| 0..self.len());
        let listed = self.sync.as_deref().map(|s| s.iter().map(|&i| i as usize));
        all.into_iter()
            .flatten()
            .chain(listed.into_iter().flatten())
    }

    /// Sum of the sizes of samples `range`.
    pub fn bytes(&self, range: Range<usize>) -> u64 {
        self.sizes[range].iter().map(|&s| u64::from(s)).sum()
    }

    /// File offset of sample `i`.
    pub fn offset(&self, i: usize) -> u64 {
        self.offsets.get(i)
    }

    /// The file byte ranges holding samples `range`, in order, contiguous
    /// ranges merged: `(offset, length)`.
    pub fn byte_ranges(&self, range: Range<usize>, mut out: impl FnMut(u64, u64)) {
        let (mut start, mut len) = (0u64, 0u64);
        for i in range {
            let (offset, size) = (self.offsets.get(i), u64::from(self.sizes[i]));
            if offset != start + len {
                if len > 0 {
                    out(start, len);
                }
                (start, len) = (offset, 0);
            }
            len += size;
        }
        if len > 0 {
            out(start, len);
        }
    }

    /// Approximate heap size, for cache weighing.
    pub fn heap_bytes(&self) -> usize {
        self.sizes.capacity() * 4
            + self.offsets.heap_bytes()
            + self.times.capacity() * std::mem::size_of::<TimeRun>()
            + self.cts.capacity() * 4
            + self.sync.as_ref().map_or(0, |s| s.capacity() * 4)
    }

    /// Appends a decode-time run starting at sample `first`, merging it into
    /// the previous run when it simply continues it.
    pub(crate) fn push_time(&mut self, first: u32, dts: u64, delta: u32) {
        if let Some(last) = self.times.last() {
            let continues = last.delta == delta
                && last.dts + u64::from(first - last.first) * u64::from(last.delta) == dts;
            if continues {
                return;
            }
        }
        self.times.push(TimeRun { first, dts, delta });
    }

    /// Appends the offsets of `count` samples stored contiguously from
    /// `offset` (a chunk or a track run), starting at sample `first`,
    /// checking that they lie inside a file of `file_size` bytes.
    pub(crate) fn push_offsets(
        &mut self,
        first: usize,
        count: usize,
        offset: u64,
        file_size: u64,
    ) -> Result<()> {
        let truncated = Error::Truncated {
            what: "sample data (file shorter than its sample table)",
        };
        let sizes = self
            .sizes
            .get(first..first + count)
            .ok_or(Error::Truncated {
                what: "sample table",
            })?;
        if offset > file_size {
            return Err(truncated);
        }
        // No overflow: offset <= file_size < 2^63 and the sizes add at most
        // 2^32 each for a bounded number of samples.
        let mut next = offset;
        match &mut self.offsets {
            Offsets::Narrow(v) => v.extend(sizes.iter().map(|&size| {
                let at = next;
                next += u64::from(size);
                // Past a 4 GiB file's end only for samples refused below.
                u32::try_from(at).unwrap_or(u32::MAX)
            })),
            Offsets::Wide(v) => v.extend(sizes.iter().map(|&size| {
                let at = next;
                next += u64::from(size);
                at
            })),
        }
        if next > file_size {
            return Err(truncated);
        }
        Ok(())
    }

    /// Checks the invariants the rest of the crate relies on.
    pub(crate) fn validate(&mut self) -> Result<()> {
        let n = self.sizes.len();
        let bad = |reason| {
            Err(Error::Malformed {
                fourcc: crate::fourcc::types::STBL,
                reason,
            })
        };
        if n == 0 {
            self.offsets = Offsets::default();
            self.times.clear();
            self.cts.clear();
            self.sync = None;
            return Ok(());
        }
        if !self.cts.is_empty() && self.cts.len() != n {
            return bad("sample tables disagree on the number of samples");
        }
        if self.offsets.len() != n || self.times.first().is_none_or(|t| t.first != 0) {
            return bad("sample tables disagree on the number of samples");
        }
        let Ok(count) = u32::try_from(n) else {
            return bad("more than 2^32 - 1 samples");
        };
        for (k, t) in self.times.iter().enumerate() {
            let end = self.times.get(k + 1).map_or(count, |next| next.first);
            if end <= t.first {
                return bad("decode time runs out of order");
            }
            // Decode time of the run's last sample, and of the next sample:
            // both must fit an i64, as presentation times are signed.
            let last = u64::from(end - t.first - 1)
                .checked_mul(u64::from(t.delta))
                .and_then(|d| d.checked_add(t.dts))
                .filter(|&l| {
                    l.checked_add(u64::from(t.delta))
                        .is_some_and(|next| i64::try_from(next).is_ok())
                });
            let Some(last) = last else {
                return bad("decode times overflow");
            };
            if let Some(next) = self.times.get(k + 1) {
                if next.dts < last || next.dts - last > u64::from(u32::MAX) {
                    return bad("decode times go backwards or jump by more than 2^32");
                }
            }
        }
        if self.cts.iter().all(|&c| c == 0) {
            self.cts = Vec::new();
        }
        if let Some(sync) = &mut self.sync {
            sync.retain(|&s| (s as usize) < n);
            sync.sort_unstable();
            sync.dedup();
            if sync.len() == n {
                self.sync = None;
            }
        }
        Ok(())
    }
}

/// A decode time of a validated index as a signed time:
/// [`SampleIndex::validate`] refuses decode times past `i64::MAX`.
pub(crate) fn signed(dts: u64) -> i64 {
    i64::try_from(dts).expect("validated decode times are below 2^63")
}

/// Sample `i` (or one past the last) of a validated index as the 32-bit
/// number segments and sync lists use: [`SampleIndex::validate`] refuses
/// 2^32 samples or more.
pub(crate) fn sample_number(i: usize) -> u32 {
    u32::try_from(i).expect("validated indexes have fewer than 2^32 samples")
}

/// The duration of a run's last sample: up to the next run's start, which
/// [`SampleIndex::validate`] keeps within 2^32 ticks.
fn run_gap(ticks: u64) -> u32 {
    u32::try_from(ticks).expect("validated runs follow each other within 2^32 ticks")
}

/// Iterator over `(dts, duration)` of consecutive samples.
#[derive(Clone, Debug)]
pub struct Times<'a> {
    index: &'a SampleIndex,
    run: usize,
    i: usize,
}

impl Iterator for Times<'_> {
    type Item = (u64, u32);

    fn next(&mut self) -> Option<(u64, u32)> {
        let idx = self.index;
        if self.i >= idx.len() {
            return None;
        }
        while idx
            .times
            .get(self.run + 1)
            .is_some_and(|r| r.first as usize <= self.i)
        {
            self.run += 1;
        }
        let r = &idx.times[self.run];
        let dts = r.dts + (self.i as u64 - u64::from(r.first)) * u64::from(r.delta);
        let duration = match idx.times.get(self.run + 1) {
            Some(next) if next.first as usize == self.i + 1 => run_gap(next.dts - dts),
            _ => r.delta,
        };
        self.i += 1;
        Some((dts, duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(
        sizes: &[u32],
        chunks: &[(usize, usize, u64)],
        times: &[(u32, u64, u32)],
    ) -> SampleIndex {
        let mut s = SampleIndex {
            sizes: sizes.to_vec(),
            ..Default::default()
        };
        for &(first, count, offset) in chunks {
            s.push_offsets(first, count, offset, 1 << 20).unwrap();
        }
        for &(first, dts, delta) in times {
            s.push_time(first, dts, delta);
        }
        s.validate().unwrap();
        s
    }

    #[test]
    fn offsets_and_ranges_follow_chunks() {
        // Samples 0-1 at 100, 2-3 at 1000 (a gap), 4 right after 3.
        let s = index(
            &[10, 20, 30, 40, 50],
            &[(0, 2, 100), (2, 2, 1000), (4, 1, 1070)],
            &[(0, 0, 1)],
        );
        assert_eq!(
            (0..5).map(|i| s.offset(i)).collect::<Vec<_>>(),
            vec![100, 110, 1000, 1030, 1070]
        );
        let mut ranges = Vec::new();
        s.byte_ranges(1..5, |o, l| ranges.push((o, l)));
        assert_eq!(ranges, vec![(110, 20), (1000, 120)]);
    }

    #[test]
    fn samples_past_the_end_of_the_file_are_refused() {
        let mut s = SampleIndex {
            sizes: vec![10, 10],
            ..Default::default()
        };
        assert!(s.push_offsets(0, 2, (1 << 20) - 15, 1 << 20).is_err());
    }

    #[test]
    fn first_after_midpoint_matches_a_scan() {
        // Runs with equal deltas, a jump, a different delta, a short sample.
        let s = index(
            &[1; 40],
            &[(0, 40, 0)],
            &[
                (0, 0, 1024),
                (10, 10 * 1024 + 300, 1024),
                (20, 30000, 960),
                (30, 39600, 500),
                (31, 40100, 1024),
            ],
        );
        let scan = |from: usize, t: i64| {
            (from..s.len())
                .find(|&i| signed(s.dts(i)) + i64::from(s.duration(i)) / 2 > t)
                .unwrap_or(s.len())
        };
        for from in [0, 5, 10, 19, 25, 39] {
            for t in (-2000..60000).step_by(97) {
                assert_eq!(
                    s.first_after_midpoint(from, t),
                    scan(from, t),
                    "from {from} t {t}"
                );
            }
        }
        for range in [0..40, 0..10, 5..15, 10..20, 20..30, 29..32, 31..40] {
            let d0 = s.duration(range.start);
            assert_eq!(
                s.uniform_durations(range.clone()),
                range.clone().all(|i| s.duration(i) == d0),
                "{range:?}"
            );
        }
    }

    #[test]
    fn times_follow_runs() {
        // Three samples of 10, then a jump, then two of 5.
        let s = index(
            &[1; 5],
            &[(0, 5, 0)],
            &[(0, 0, 10), (1, 10, 10), (3, 40, 5)],
        );
        assert_eq!(
            s.times.len(),
            2,
            "a run that continues the previous one merges"
        );
        assert_eq!(
            (0..5).map(|i| s.dts(i)).collect::<Vec<_>>(),
            vec![0, 10, 20, 40, 45]
        );
        assert_eq!(
            (0..5).map(|i| s.duration(i)).collect::<Vec<_>>(),
            vec![10, 10, 20, 5, 5]
        );
        let seq: Vec<(u64, u32)> = s.times_from(1).collect();
        assert_eq!(
            seq,
            (1..5)
                .map(|i| (s.dts(i), s.duration(i)))
                .collect::<Vec<_>>()
        );
        assert_eq!(s.end_dts(), 50);
    }
}

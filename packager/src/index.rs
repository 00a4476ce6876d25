//! The per-track sample index: where every sample is and when it plays.
//!
//! Built once per file from `stbl` tables or `moof` fragments, then shared
//! read-only. Struct-of-arrays, about 24 bytes per sample; a one-hour
//! 25 fps + 48 kHz AAC file (≈ 223 k samples) takes ≈ 5 MB.

use crate::error::{Error, Result};

/// Position, size and timing of every sample of one track, in decode order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleIndex {
    pub(crate) offsets: Vec<u64>,
    pub(crate) sizes: Vec<u32>,
    /// Decode times in the media timescale.
    pub(crate) dts: Vec<u64>,
    /// Duration of the last sample (the others follow from `dts`).
    pub(crate) last_duration: u32,
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

    /// File offset of sample `i`.
    pub fn offset(&self, i: usize) -> u64 {
        self.offsets[i]
    }

    /// Size in bytes of sample `i`.
    pub fn size(&self, i: usize) -> u32 {
        self.sizes[i]
    }

    /// Decode time of sample `i`.
    pub fn dts(&self, i: usize) -> u64 {
        self.dts[i]
    }

    /// Decode time just after the last sample.
    pub fn end_dts(&self) -> u64 {
        self.dts
            .last()
            .map_or(0, |&d| d + u64::from(self.last_duration))
    }

    /// Duration of sample `i` in decode order.
    pub fn duration(&self, i: usize) -> u32 {
        match self.dts.get(i + 1) {
            // Checked at build time: decode times never decrease and each
            // delta fits in 32 bits.
            Some(&next) => (next - self.dts[i]) as u32,
            None => self.last_duration,
        }
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
        self.dts[i] as i64 + i64::from(self.cts_offset(i))
    }

    /// Whether sample `i` is a sync sample.
    pub fn is_sync(&self, i: usize) -> bool {
        match &self.sync {
            None => true,
            Some(s) => s.binary_search(&(i as u32)).is_ok(),
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
    pub fn bytes(&self, range: std::ops::Range<usize>) -> u64 {
        self.sizes[range].iter().map(|&s| u64::from(s)).sum()
    }

    /// Approximate heap size, for cache weighing.
    pub fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * 8
            + self.sizes.capacity() * 4
            + self.dts.capacity() * 8
            + self.cts.capacity() * 4
            + self.sync.as_ref().map_or(0, |s| s.capacity() * 4)
    }

    /// Checks the invariants the rest of the crate relies on and that every
    /// sample lies inside a file of `file_size` bytes.
    pub(crate) fn validate(&mut self, file_size: u64) -> Result<()> {
        let n = self.sizes.len();
        let bad = |reason| {
            Err(Error::Malformed {
                fourcc: crate::mp4::fourcc_stbl(),
                reason,
            })
        };
        if self.offsets.len() != n
            || self.dts.len() != n
            || (!self.cts.is_empty() && self.cts.len() != n)
        {
            return bad("sample tables disagree on the number of samples");
        }
        for w in self.dts.windows(2) {
            if w[1] < w[0] || w[1] - w[0] > u64::from(u32::MAX) {
                return bad("decode times go backwards or jump by more than 2^32");
            }
        }
        for i in 0..n {
            let end = self.offsets[i].checked_add(u64::from(self.sizes[i]));
            if end.is_none_or(|e| e > file_size) {
                return Err(Error::Truncated {
                    what: "sample data (file shorter than its sample table)",
                });
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

//! [`Limits`]: bounds on what an input file may make the packager allocate,
//! checked by the readers in [`crate::mp4`] before they allocate.

/// Bounds on what a file may make the packager allocate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest `moov` box, and largest total of `moof` boxes, in bytes.
    pub max_moov_bytes: u64,
    /// Most samples in one track (never more than 2^32 - 1: sample numbers
    /// are 32 bits).
    pub max_samples_per_track: u64,
    /// Most tracks in one file.
    pub max_tracks: usize,
    /// Most entries in one edit list.
    pub max_edits: usize,
    /// Most top-level boxes walked in one file.
    pub max_top_level_boxes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_moov_bytes: 256 << 20,
            // 24 hours at 120 frames per second.
            max_samples_per_track: 24 * 3600 * 120,
            max_tracks: 64,
            max_edits: 1024,
            max_top_level_boxes: 1 << 20,
        }
    }
}

//! Fragmented input: `mvex`/`trex` defaults (ISO/IEC 14496-12 §8.8.3) and
//! movie fragments `moof` → `traf` → `tfhd` (§8.8.7), `tfdt` (§8.8.12),
//! `trun` (§8.8.8), turned into per-track sample indexes.

use crate::cursor::{Cursor, RawBox};
use crate::error::{Error, Result, malformed};
use crate::fourcc::types;
use crate::index::{Offsets, SampleIndex};
use crate::limits::Limits;

/// Per-track defaults from `trex` (§8.8.3).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Trex {
    pub(crate) track_id: u32,
    pub(crate) duration: u32,
    pub(crate) size: u32,
    pub(crate) flags: u32,
}

pub(crate) fn parse_trex(b: &RawBox<'_>) -> Result<Trex> {
    let mut c = b.cursor();
    c.version_flags()?;
    let track_id = c.u32()?;
    c.u32()?; // default_sample_description_index
    Ok(Trex {
        track_id,
        duration: c.u32()?,
        size: c.u32()?,
        flags: c.u32()?,
    })
}

/// `sample_is_non_sync_sample` in the sample flags (§8.8.3.1).
const NON_SYNC: u32 = 0x0001_0000;

/// Accumulates the samples of one track across fragments.
#[derive(Debug, Default)]
pub(crate) struct FragmentedTrack {
    pub(crate) trex: Trex,
    index: SampleIndex,
    sync: Vec<u32>,
    next_dts: u64,
}

impl FragmentedTrack {
    pub(crate) fn new(trex: Trex, file_size: u64) -> Self {
        let index = SampleIndex {
            offsets: Offsets::for_file(file_size, 0),
            ..SampleIndex::default()
        };
        Self {
            trex,
            index,
            ..Self::default()
        }
    }

    /// Finishes the index once every fragment has been added.
    pub(crate) fn finish(mut self) -> SampleIndex {
        self.index.sync = Some(self.sync);
        self.index
    }
}

/// Adds the samples of one `moof` at `moof_offset` to the tracks it mentions.
pub(crate) fn add_moof(
    moof: &[u8],
    moof_offset: u64,
    tracks: &mut [FragmentedTrack],
    limits: &Limits,
    file_size: u64,
) -> Result<()> {
    let mut c = Cursor::new(moof, "moof");
    let (fourcc, header, _) = crate::cursor::parse_header(moof)?;
    debug_assert_eq!(fourcc, types::MOOF);
    c.skip(header)?;
    // Where the data of the previous traf ended (§8.8.7.1, base offset rules).
    let mut previous_end: Option<u64> = None;
    for traf in crate::cursor::BoxIter::new(c.rest()) {
        let traf = traf?;
        if traf.fourcc != types::TRAF {
            continue;
        }
        previous_end = Some(add_traf(
            &traf,
            moof_offset,
            previous_end,
            tracks,
            limits,
            file_size,
        )?);
    }
    Ok(())
}

/// Adds the samples of one `traf` (§8.8.6) to the track it names, if the
/// movie declares it; returns where its data ends.
fn add_traf(
    traf: &RawBox<'_>,
    moof_offset: u64,
    previous_end: Option<u64>,
    tracks: &mut [FragmentedTrack],
    limits: &Limits,
    file_size: u64,
) -> Result<u64> {
    let tfhd = traf
        .children()
        .find(types::TFHD)?
        .ok_or(malformed(types::TRAF, "no tfhd"))?;
    let mut c = tfhd.cursor();
    let (_, flags) = c.version_flags()?;
    let track_id = c.u32()?;
    let base_data_offset = (flags & 0x01 != 0).then(|| c.u64()).transpose()?;
    if flags & 0x02 != 0 {
        c.u32()?; // sample_description_index
    }
    let Some(track) = tracks.iter_mut().find(|t| t.trex.track_id == track_id) else {
        // A fragment of a track the movie does not declare: skip it.
        return Ok(previous_end.unwrap_or(moof_offset));
    };
    let defaults = Defaults::read(&mut c, flags, &track.trex)?;
    let base = match (base_data_offset, flags & 0x2_0000 != 0, previous_end) {
        (Some(b), _, _) => b,
        (None, true, _) | (None, false, None) => moof_offset,
        (None, false, Some(end)) => end,
    };

    if let Some(tfdt) = traf.children().find(types::TFDT)? {
        let mut c = tfdt.cursor();
        let (version, _) = c.version_flags()?;
        track.next_dts = c.u32_or_u64(version)?;
    }

    let mut data_end = base;
    for trun in traf.children() {
        let trun = trun?;
        if trun.fourcc != types::TRUN {
            continue;
        }
        let run = Run {
            defaults,
            base,
            data_end,
        };
        data_end = add_trun(&trun, track, &run, limits, file_size)?;
    }
    Ok(data_end)
}

/// A fragment's sample defaults: from `tfhd` (§8.8.7) where it has them,
/// else from `trex`.
#[derive(Clone, Copy, Debug)]
struct Defaults {
    duration: u32,
    size: u32,
    flags: u32,
}

impl Defaults {
    /// Reads the optional fields of a `tfhd` with `flags`, after its
    /// `sample_description_index`.
    fn read(c: &mut Cursor<'_>, flags: u32, trex: &Trex) -> Result<Self> {
        let mut field = |bit: u32, default: u32| {
            if flags & bit != 0 {
                c.u32()
            } else {
                Ok(default)
            }
        };
        Ok(Self {
            duration: field(0x08, trex.duration)?,
            size: field(0x10, trex.size)?,
            flags: field(0x20, trex.flags)?,
        })
    }
}

/// Where a `trun` is, within its `traf`.
#[derive(Clone, Copy, Debug)]
struct Run {
    defaults: Defaults,
    /// The base data offset its `data_offset` is relative to.
    base: u64,
    /// Where the previous run's data ended: where this one's starts
    /// without a `data_offset`.
    data_end: u64,
}

/// Adds the samples of one `trun` (§8.8.8) to `track`; returns where its
/// data ends.
fn add_trun(
    trun: &RawBox<'_>,
    track: &mut FragmentedTrack,
    run: &Run,
    limits: &Limits,
    file_size: u64,
) -> Result<u64> {
    let mut c = trun.cursor();
    let (_, tflags) = c.version_flags()?;
    let count = c.u32()?;
    let mut offset: u64 = if tflags & 0x01 != 0 {
        run.base
            .checked_add_signed(i64::from(c.i32()?))
            .ok_or(malformed(types::TRUN, "data offset before the file start"))?
    } else {
        run.data_end
    };
    let first_flags = (tflags & 0x04 != 0).then(|| c.u32()).transpose()?;
    let (first, run_offset) = (track.index.sizes.len(), offset);
    check_run_count(
        track,
        tflags,
        count,
        run.defaults.size,
        c.remaining(),
        limits,
        file_size,
    )?;
    for i in 0..count {
        let (duration, size, sflags, cts) = read_sample(&mut c, tflags, &run.defaults)?;
        let sflags = if i == 0 {
            first_flags.unwrap_or(sflags)
        } else {
            sflags
        };
        let idx = u32::try_from(track.index.sizes.len())
            .expect("check_run_count keeps a track's sample numbers in 32 bits");
        if sflags & NON_SYNC == 0 {
            track.sync.push(idx);
        }
        track.index.push_time(idx, track.next_dts, duration);
        track.index.sizes.push(size);
        track.index.cts.push(cts);
        track.next_dts = track.next_dts.saturating_add(u64::from(duration));
        offset = offset.saturating_add(u64::from(size));
    }
    track
        .index
        .push_offsets(first, count as usize, run_offset, file_size)?;
    Ok(offset)
}

/// Checks a `trun`'s `count` before anything is allocated for it: within
/// the track's sample limit (and the 32 bits of sample numbers), no more
/// data than the file holds when every sample has the default size, and
/// no more per-sample fields than the `remaining` bytes of the box hold.
fn check_run_count(
    track: &FragmentedTrack,
    tflags: u32,
    count: u32,
    default_size: u32,
    remaining: usize,
    limits: &Limits,
    file_size: u64,
) -> Result<()> {
    let fields = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|&&f| tflags & f != 0)
        .count();
    let total = track.index.sizes.len() as u64 + u64::from(count);
    let limit = limits.max_samples_per_track.min(u64::from(u32::MAX));
    if total > limit {
        return Err(Error::Limit {
            what: "samples in a track",
            value: total,
            limit,
        });
    }
    if fields == 0 && u64::from(count).saturating_mul(u64::from(default_size.max(1))) > file_size {
        return Err(Error::Truncated {
            what: "sample data (file shorter than its trun)",
        });
    }
    if (count as usize).saturating_mul(fields * 4) > remaining {
        return Err(malformed(types::TRUN, "sample count larger than the box"));
    }
    Ok(())
}

/// One sample's duration, size, flags and composition offset from a
/// `trun` with `tflags`, each the default where the run has none.
fn read_sample(
    c: &mut Cursor<'_>,
    tflags: u32,
    defaults: &Defaults,
) -> Result<(u32, u32, u32, i32)> {
    let duration = if tflags & 0x100 != 0 {
        c.u32()?
    } else {
        defaults.duration
    };
    let size = if tflags & 0x200 != 0 {
        c.u32()?
    } else {
        defaults.size
    };
    let flags = if tflags & 0x400 != 0 {
        c.u32()?
    } else {
        defaults.flags
    };
    // Version 0 offsets are unsigned and version 1 signed; values
    // above i32::MAX in version 0 are read as negative, as demuxers do.
    let cts = if tflags & 0x800 != 0 { c.i32()? } else { 0 };
    Ok((duration, size, flags, cts))
}

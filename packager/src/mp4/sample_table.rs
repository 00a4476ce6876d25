//! Sample tables of a progressive (non-fragmented) track: `stbl` (ISO/IEC 14496-12 §8.5–§8.7).
//!
//! - `stsz`/`stz2` (§8.7.3) give the sample count and sizes,
//! - `stts` (§8.6.1.2) decode deltas, `ctts` (§8.6.1.3, v0 and v1) composition offsets,
//! - `stss` (§8.6.2) sync samples,
//! - `stsc` (§8.7.4) with `stco`/`co64` (§8.7.5) chunk layout, from which sample offsets follow.

use crate::cursor::{Cursor, RawBox};
use crate::error::{Error, Result, malformed};
use crate::fourcc::types;
use crate::index::{Offsets, SampleIndex};
use crate::limits::Limits;

/// Checks that `count` entries of `entry_size` bytes are present and within limits
/// before anything is allocated for them.
fn checked_count(
    c: &Cursor<'_>,
    count: u32,
    entry_size: usize,
    fourcc: crate::fourcc::FourCc,
) -> Result<usize> {
    let count = count as usize;
    if count
        .checked_mul(entry_size)
        .is_none_or(|b| b > c.remaining())
    {
        return Err(malformed(fourcc, "entry count larger than the box"));
    }
    Ok(count)
}

/// Builds the index of a track from its `stbl` box.
pub(crate) fn index_from_stbl(
    stbl: &RawBox<'_>,
    limits: &Limits,
    file_size: u64,
) -> Result<SampleIndex> {
    let (mut stsz, mut stts, mut ctts, mut stss, mut stsc, mut stco) =
        (None, None, None, None, None, None);
    for child in stbl.children() {
        let child = child?;
        match child.fourcc {
            types::STSZ | types::STZ2 => stsz = Some(child),
            types::STTS => stts = Some(child),
            types::CTTS => ctts = Some(child),
            types::STSS => stss = Some(child),
            types::STSC => stsc = Some(child),
            types::STCO | types::CO64 => stco = Some(child),
            _ => {}
        }
    }
    let missing = |what| malformed(types::STBL, what);
    let mut index = SampleIndex {
        sizes: read_sizes(
            &stsz.ok_or_else(|| missing("no stsz/stz2"))?,
            limits,
            file_size,
        )?,
        ..SampleIndex::default()
    };
    let n = index.sizes.len();
    index.offsets = Offsets::for_file(file_size, n);
    read_decode_times(&stts.ok_or_else(|| missing("no stts"))?, &mut index)?;
    if let Some(b) = ctts {
        index.cts = read_composition_offsets(&b, n)?;
    }
    index.sync = stss.map(|b| read_sync(&b, n)).transpose()?;
    read_chunks(
        &stsc.ok_or_else(|| missing("no stsc"))?,
        &stco.ok_or_else(|| missing("no stco/co64"))?,
        &mut index,
        file_size,
    )?;
    Ok(index)
}

fn read_sizes(b: &RawBox<'_>, limits: &Limits, file_size: u64) -> Result<Vec<u32>> {
    let mut c = b.cursor();
    c.version_flags()?;
    let check = |count: u32| -> Result<usize> {
        if u64::from(count) > limits.max_samples_per_track {
            return Err(Error::Limit {
                what: "samples in a track",
                value: count.into(),
                limit: limits.max_samples_per_track,
            });
        }
        Ok(count as usize)
    };
    if b.fourcc == types::STSZ {
        let fixed = c.u32()?;
        let sample_count = c.u32()?;
        let count = check(sample_count)?;
        if fixed != 0 {
            // Every sample must fit in the file: this bounds what a tiny
            // hostile box can make us allocate.
            if (count as u64).saturating_mul(u64::from(fixed)) > file_size {
                return Err(Error::Truncated {
                    what: "sample data (file shorter than its sample table)",
                });
            }
            return Ok(vec![fixed; count]);
        }
        let count = checked_count(&c, sample_count, 4, b.fourcc)?;
        let table = &c.rest()[..count * 4];
        Ok(table
            .chunks_exact(4)
            .map(|e| u32::from_be_bytes([e[0], e[1], e[2], e[3]]))
            .collect())
    } else {
        // stz2: 24 reserved bits, field_size (4, 8 or 16), sample_count.
        c.skip(3)?;
        let field = c.u8()?;
        let count = check(c.u32()?)?;
        let bits = match field {
            4 | 8 | 16 => usize::from(field),
            _ => return Err(malformed(b.fourcc, "field size must be 4, 8 or 16")),
        };
        if count
            .checked_mul(bits)
            .is_none_or(|b| b.div_ceil(8) > c.remaining())
        {
            return Err(malformed(b.fourcc, "entry count larger than the box"));
        }
        let data = c.rest();
        Ok((0..count)
            .map(|i| match bits {
                4 => u32::from(if i % 2 == 0 {
                    data[i / 2] >> 4
                } else {
                    data[i / 2] & 0x0f
                }),
                8 => u32::from(data[i]),
                _ => u32::from(u16::from_be_bytes([data[2 * i], data[2 * i + 1]])),
            })
            .collect())
    }
}

fn read_decode_times(b: &RawBox<'_>, index: &mut SampleIndex) -> Result<()> {
    let n = index.sizes.len() as u64;
    let mut c = b.cursor();
    c.version_flags()?;
    let entries = c.u32()?;
    let entries = checked_count(&c, entries, 8, b.fourcc)?;
    let (mut first, mut t) = (0u64, 0u64);
    for _ in 0..entries {
        if first == n {
            break;
        }
        let count = u64::from(c.u32()?).min(n - first);
        let delta = c.u32()?;
        if count == 0 {
            continue;
        }
        // first < n, a count from stsz or stz2: 32 bits.
        let first32 = u32::try_from(first).expect("sample counts are 32 bits");
        index.push_time(first32, t, delta);
        first += count;
        t = count
            .checked_mul(u64::from(delta))
            .and_then(|d| t.checked_add(d))
            .ok_or_else(|| malformed(b.fourcc, "decode time overflows"))?;
    }
    if first != n {
        return Err(malformed(b.fourcc, "fewer decode times than samples"));
    }
    Ok(())
}

fn read_composition_offsets(b: &RawBox<'_>, n: usize) -> Result<Vec<i32>> {
    let mut c = b.cursor();
    // Version 0 declares the offsets unsigned, but writers put negative values
    // there too; reading them as signed is what every demuxer does.
    c.version_flags()?;
    let entries = c.u32()?;
    let entries = checked_count(&c, entries, 8, b.fourcc)?;
    let mut out = Vec::with_capacity(n);
    for e in c.rest()[..entries * 8].chunks_exact(8) {
        let count = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
        let offset = i32::from_be_bytes([e[4], e[5], e[6], e[7]]);
        let take = (count as usize).min(n - out.len());
        out.extend(std::iter::repeat_n(offset, take));
    }
    // A short ctts leaves the remaining samples at offset 0, as demuxers do.
    out.resize(n, 0);
    Ok(out)
}

fn read_sync(b: &RawBox<'_>, n: usize) -> Result<Vec<u32>> {
    let mut c = b.cursor();
    c.version_flags()?;
    let entries = c.u32()?;
    let entries = checked_count(&c, entries, 4, b.fourcc)?;
    let mut out = Vec::with_capacity(entries.min(n));
    for _ in 0..entries {
        let number = c.u32()?;
        if number == 0 || number as usize > n {
            return Err(malformed(b.fourcc, "sync sample number out of range"));
        }
        out.push(number - 1);
    }
    Ok(out)
}

fn read_chunks(
    stsc: &RawBox<'_>,
    stco: &RawBox<'_>,
    index: &mut SampleIndex,
    file_size: u64,
) -> Result<()> {
    let mut c = stco.cursor();
    c.version_flags()?;
    let chunk_count = c.u32()?;
    let width = if stco.fourcc == types::CO64 { 8 } else { 4 };
    let chunk_count = checked_count(&c, chunk_count, width, stco.fourcc)?;
    let table = &c.rest()[..chunk_count * width];

    let mut s = stsc.cursor();
    s.version_flags()?;
    let entries = s.u32()?;
    let entries = checked_count(&s, entries, 12, stsc.fourcc)?;
    // (first_chunk, samples_per_chunk); the sample description index is unused.
    let runs: Vec<(u32, u32)> = s.rest()[..entries * 12]
        .chunks_exact(12)
        .map(|e| {
            (
                u32::from_be_bytes([e[0], e[1], e[2], e[3]]),
                u32::from_be_bytes([e[4], e[5], e[6], e[7]]),
            )
        })
        .collect();
    if runs.first().is_some_and(|r| r.0 != 1) || runs.windows(2).any(|w| w[1].0 <= w[0].0) {
        return Err(malformed(
            stsc.fourcc,
            "first_chunk values must start at 1 and increase",
        ));
    }

    let sizes = &index.sizes;
    let sample = match &mut index.offsets {
        // Offsets are checked against the file size (below 2^32 here) by
        // `walk_chunks`: one past it only before an error.
        Offsets::Narrow(v) => walk_chunks(table, width, &runs, sizes, file_size, |o| {
            v.push(u32::try_from(o).unwrap_or(u32::MAX));
        })?,
        Offsets::Wide(v) => walk_chunks(table, width, &runs, sizes, file_size, |o| v.push(o))?,
    };
    let n = sizes.len();
    if sample != n {
        return Err(malformed(
            stsc.fourcc,
            "chunks hold fewer samples than stsz lists",
        ));
    }
    Ok(())
}

/// Walks the chunk table, handing the offset of every sample to `push` and
/// returning how many samples the chunks hold (at most `sizes.len()`).
fn walk_chunks(
    table: &[u8],
    width: usize,
    runs: &[(u32, u32)],
    sizes: &[u32],
    file_size: u64,
    mut push: impl FnMut(u64),
) -> Result<usize> {
    let n = sizes.len();
    let mut sample = 0usize;
    let mut run = 0;
    for (k, entry) in table.chunks_exact(width).enumerate() {
        let mut offset = if width == 8 {
            u64::from_be_bytes([
                entry[0], entry[1], entry[2], entry[3], entry[4], entry[5], entry[6], entry[7],
            ])
        } else {
            u64::from(u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]))
        };
        let chunk = k as u64 + 1;
        while run + 1 < runs.len() && u64::from(runs[run + 1].0) <= chunk {
            run += 1;
        }
        let Some(&(_, per_chunk)) = runs.get(run) else {
            break;
        };
        let count = (per_chunk as usize).min(n - sample);
        if offset > file_size {
            return Err(Error::Truncated {
                what: "sample data (file shorter than its sample table)",
            });
        }
        // No overflow: offset <= file_size and each size adds < 2^32.
        for &size in &sizes[sample..sample + count] {
            push(offset);
            offset += u64::from(size);
        }
        if offset > file_size {
            return Err(Error::Truncated {
                what: "sample data (file shorter than its sample table)",
            });
        }
        sample += count;
        if sample == n {
            break;
        }
    }
    Ok(sample)
}

//! The movie box `moov` (ISO/IEC 14496-12 §8.2) and its tracks `trak` (§8.3).

use super::fragment::{self, FragmentedTrack, Trex};
use super::sample_table::index_from_stbl;
use crate::codec::SampleEntry;
use crate::cursor::{BoxIter, Cursor, RawBox};
use crate::error::{Error, Result, malformed};
use crate::fourcc::{FourCc, types};
use crate::index::SampleIndex;
use crate::limits::Limits;
use crate::time::Timescale;

/// What a track carries, from its handler (`hdlr`, §8.4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrackKind {
    /// `vide`.
    Video,
    /// `soun`.
    Audio,
    /// Anything else (hint, text, metadata): indexed but not packaged here.
    Other,
}

/// One entry of an edit list (`elst`, §8.6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edit {
    /// Duration of the edit in the movie timescale (0: the rest of the media).
    pub segment_duration: u64,
    /// Start of the edit in media time; -1 for an empty edit.
    pub media_time: i64,
    /// Playback rate as 16.16 fixed point.
    pub rate: i32,
}

/// A track: its description and its sample index.
#[derive(Clone, Debug)]
pub struct Track {
    /// `track_ID` from `tkhd`.
    pub id: u32,
    /// Video, audio or other.
    pub kind: TrackKind,
    /// Handler type from `hdlr`.
    pub handler: FourCc,
    /// Media timescale from `mdhd`.
    pub timescale: Timescale,
    /// Media duration from `mdhd`, in the media timescale.
    pub media_duration: u64,
    /// ISO 639-2/T language code from `mdhd` (`und` when unset).
    pub language: String,
    /// A human name from the `hdlr` box, unless it is a muxer's default
    /// (`SoundHandler`, ...) or empty.
    pub name: Option<String>,
    /// Presentation width from `tkhd` (integer part of the 16.16 value).
    pub width: u32,
    /// Presentation height from `tkhd`.
    pub height: u32,
    /// Transformation matrix from `tkhd`.
    pub matrix: [u32; 9],
    /// The sample entry (only the first is used; see `Error::Malformed`).
    pub sample_entry: SampleEntry,
    /// The edit list, as found.
    pub edits: Vec<Edit>,
    /// Every sample.
    pub samples: SampleIndex,
}

/// A parsed `moov` with the sample index of every track.
#[derive(Clone, Debug)]
pub struct Movie {
    /// Movie timescale from `mvhd`.
    pub timescale: Timescale,
    /// Whether the samples came from movie fragments.
    pub fragmented: bool,
    /// Tracks in file order.
    pub tracks: Vec<Track>,
}

const IDENTITY: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

impl Movie {
    /// Parses a whole `moov` box and, for fragmented files, every `moof`.
    pub(crate) fn parse(
        moov: &[u8],
        moofs: &[(u64, Vec<u8>)],
        limits: &Limits,
        file_size: u64,
    ) -> Result<Self> {
        let moov = BoxIter::new(moov)
            .find(types::MOOV)?
            .ok_or(Error::NoMovie)?;
        let mvhd = moov
            .children()
            .find(types::MVHD)?
            .ok_or(malformed(types::MOOV, "no mvhd"))?;
        let mut c = mvhd.cursor();
        let (version, _) = c.version_flags()?;
        c.skip(if version == 1 { 16 } else { 8 })?;
        let timescale = Timescale::new(c.u32()?).ok_or(malformed(types::MVHD, "zero timescale"))?;

        let mut trex = Vec::new();
        if let Some(mvex) = moov.children().find(types::MVEX)? {
            for b in mvex.children() {
                let b = b?;
                if b.fourcc == types::TREX {
                    trex.push(fragment::parse_trex(&b)?);
                }
            }
        }
        let fragmented = !moofs.is_empty();

        let mut tracks = Vec::new();
        for trak in moov.children() {
            let trak = trak?;
            if trak.fourcc != types::TRAK {
                continue;
            }
            if tracks.len() >= limits.max_tracks {
                return Err(Error::Limit {
                    what: "number of tracks",
                    value: tracks.len() as u64 + 1,
                    limit: limits.max_tracks as u64,
                });
            }
            tracks.push(parse_trak(&trak, limits, file_size, !fragmented)?);
        }

        if fragmented {
            let mut acc: Vec<FragmentedTrack> = tracks
                .iter()
                .map(|t: &Track| {
                    let defaults = trex.iter().find(|x| x.track_id == t.id).copied();
                    FragmentedTrack::new(
                        defaults.unwrap_or(Trex {
                            track_id: t.id,
                            ..Trex::default()
                        }),
                        file_size,
                    )
                })
                .collect();
            for (offset, moof) in moofs {
                fragment::add_moof(moof, *offset, &mut acc, limits, file_size)?;
            }
            for (track, acc) in tracks.iter_mut().zip(acc) {
                track.samples = acc.finish();
            }
        }
        for track in &mut tracks {
            track.samples.validate()?;
            if track.kind == TrackKind::Audio {
                // Every audio frame is a random-access point, whatever the flags say.
                track.samples.sync = None;
            }
        }
        Ok(Movie {
            timescale,
            fragmented,
            tracks,
        })
    }
}

fn parse_trak(
    trak: &RawBox<'_>,
    limits: &Limits,
    file_size: u64,
    progressive: bool,
) -> Result<Track> {
    let tkhd = trak
        .children()
        .find(types::TKHD)?
        .ok_or(malformed(types::TRAK, "no tkhd"))?;
    let mut c = tkhd.cursor();
    let (version, _) = c.version_flags()?;
    c.skip(if version == 1 { 16 } else { 8 })?;
    let id = c.u32()?;
    c.skip(4)?; // reserved
    c.u32_or_u64(version)?; // duration
    c.skip(8 + 2 + 2 + 2 + 2)?; // reserved, layer, alternate_group, volume, reserved
    let mut matrix = IDENTITY;
    for m in &mut matrix {
        *m = c.u32()?;
    }
    let width = c.u32()? >> 16;
    let height = c.u32()? >> 16;

    let mut edits = Vec::new();
    if let Some(edts) = trak.children().find(types::EDTS)? {
        if let Some(elst) = edts.children().find(types::ELST)? {
            edits = parse_elst(&elst, limits)?;
        }
    }

    let mdia = trak
        .children()
        .find(types::MDIA)?
        .ok_or(malformed(types::TRAK, "no mdia"))?;
    let mdhd = mdia
        .children()
        .find(types::MDHD)?
        .ok_or(malformed(types::MDIA, "no mdhd"))?;
    let mut c = mdhd.cursor();
    let (version, _) = c.version_flags()?;
    c.skip(if version == 1 { 16 } else { 8 })?;
    let timescale = Timescale::new(c.u32()?).ok_or(malformed(types::MDHD, "zero timescale"))?;
    let media_duration = c.u32_or_u64(version)?;
    let language = decode_language(c.u16()?);

    let hdlr = mdia
        .children()
        .find(types::HDLR)?
        .ok_or(malformed(types::MDIA, "no hdlr"))?;
    let mut c = hdlr.cursor();
    c.version_flags()?;
    c.u32()?; // pre_defined
    let handler = c.fourcc()?;
    let kind = match handler {
        types::VIDE => TrackKind::Video,
        types::SOUN => TrackKind::Audio,
        _ => TrackKind::Other,
    };
    let name = handler_name(c.rest());

    let minf = mdia
        .children()
        .find(types::MINF)?
        .ok_or(malformed(types::MDIA, "no minf"))?;
    let stbl = minf
        .children()
        .find(types::STBL)?
        .ok_or(malformed(types::MINF, "no stbl"))?;
    let stsd = stbl
        .children()
        .find(types::STSD)?
        .ok_or(malformed(types::STBL, "no stsd"))?;
    let sample_entry = SampleEntry::from_stsd(stsd.body)?;
    let samples = if progressive {
        index_from_stbl(&stbl, limits, file_size)?
    } else {
        SampleIndex::default()
    };

    Ok(Track {
        id,
        kind,
        handler,
        timescale,
        media_duration,
        language,
        name,
        width,
        height,
        matrix,
        sample_entry,
        edits,
        samples,
    })
}

/// The `name` of an `hdlr` after `handler_type` (§8.4.3): reserved bytes,
/// then a UTF-8 string, null-terminated (or, from QuickTime, a Pascal
/// string). Names muxers write by default say nothing and are dropped.
fn handler_name(rest: &[u8]) -> Option<String> {
    const DEFAULTS: [&str; 10] = [
        "SoundHandler",
        "VideoHandler",
        "Core Media Audio",
        "Core Media Video",
        "GPAC ISO Audio Handler",
        "GPAC ISO Video Handler",
        "Apple Sound Media Handler",
        "Apple Video Media Handler",
        "SubtitleHandler",
        "TextHandler",
    ];
    let raw = rest.get(12..)?;
    let raw = match raw.first() {
        // A Pascal string: a length byte that matches the rest.
        Some(&n) if usize::from(n) + 1 == raw.len() && n > 0 => &raw[1..],
        _ => raw,
    };
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let name = std::str::from_utf8(&raw[..end.min(256)]).ok()?.trim();
    let printable = name.chars().all(|c| !c.is_control());
    (!name.is_empty() && printable && !DEFAULTS.contains(&name)).then(|| name.to_owned())
}

fn parse_elst(elst: &RawBox<'_>, limits: &Limits) -> Result<Vec<Edit>> {
    let mut c: Cursor<'_> = elst.cursor();
    let (version, _) = c.version_flags()?;
    let count = c.u32()?;
    if count as usize > limits.max_edits {
        return Err(Error::Limit {
            what: "edit list entries",
            value: count.into(),
            limit: limits.max_edits as u64,
        });
    }
    (0..count)
        .map(|_| {
            let segment_duration = c.u32_or_u64(version)?;
            let media_time = if version == 1 {
                c.i64()?
            } else {
                i64::from(c.i32()?)
            };
            let rate = c.i32()?;
            Ok(Edit {
                segment_duration,
                media_time,
                rate,
            })
        })
        .collect()
}

/// Decodes the packed ISO 639-2/T code of `mdhd` (§8.4.2.3).
fn decode_language(packed: u16) -> String {
    let chars: Vec<u8> = [10u16, 5, 0]
        .iter()
        .map(|s| (((packed >> s) & 0x1f) as u8).wrapping_add(0x60))
        .collect();
    if chars.iter().all(u8::is_ascii_lowercase) && &chars[..] != b"```" {
        String::from_utf8_lossy(&chars).into_owned()
    } else {
        "und".to_owned()
    }
}

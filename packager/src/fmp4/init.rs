//! CMAF headers: `ftyp` + `moov` with `mvex` for one track (ISO/IEC 23000-19 §7.3.1).

use super::Put;
use crate::fourcc::{FourCc, types};
use crate::mp4::{Track, TrackKind};
use crate::time::Timescale;
use crate::timing::TrackTiming;

/// What an init segment describes: one track, without its samples. VOD
/// builds it from a source [`Track`]; live from a configured sample entry.
#[derive(Clone, Copy, Debug)]
pub struct InitTrack<'a> {
    /// `track_ID` (also in `tfhd` of every fragment).
    pub id: u32,
    /// Video, audio or other: picks the media header and handler name.
    pub kind: TrackKind,
    /// Handler type (`vide`, `soun`).
    pub handler: FourCc,
    /// Media timescale.
    pub timescale: Timescale,
    /// ISO 639-2/T language code (anything else becomes `und`).
    pub language: &'a str,
    /// Presentation width and height for `tkhd` (integer pixels).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// `tkhd` transformation matrix.
    pub matrix: [u32; 9],
    /// The whole sample-entry box, copied verbatim into `stsd`.
    pub sample_entry: &'a [u8],
    /// Duration for `mehd` (0 for live: unknown).
    pub duration: u64,
}

/// Appends the init segment of `track` to `out`.
///
/// The sample entry is copied byte for byte from the source; everything
/// else is generated. There is no edit list: the timing is in the
/// fragments' own timestamps (see [`crate::timing`]).
pub fn write_init(track: &Track, timing: &TrackTiming, out: &mut Vec<u8>) {
    write_init_track(
        &InitTrack {
            id: track.id,
            kind: track.kind,
            handler: track.handler,
            timescale: track.timescale,
            language: &track.language,
            width: track.width,
            height: track.height,
            matrix: track.matrix,
            sample_entry: &track.sample_entry.raw,
            duration: u64::try_from(timing.end - timing.start).unwrap_or(0),
        },
        out,
    );
}

/// Appends the init segment (`ftyp` + `moov` with `mvex`) of `track` to `out`.
pub fn write_init_track(track: &InitTrack<'_>, out: &mut Vec<u8>) {
    write_ftyp(out);
    out.boxed(types::MOOV, |b| {
        write_mvhd(track, b);
        b.boxed(types::TRAK, |b| {
            write_tkhd(track, b);
            b.boxed(types::MDIA, |b| {
                write_mdhd_hdlr(track, b);
                write_minf(track, b);
            });
        });
        write_mvex(track, b);
    });
}

/// `ftyp` (§4.3): CMAF brands.
fn write_ftyp(out: &mut Vec<u8>) {
    out.boxed(types::FTYP, |b| {
        b.put(&types::ISO6.0);
        b.put_u32(0);
        for brand in [types::ISO6, types::CMFC, types::MSIX] {
            b.put(&brand.0);
        }
        b.put(b"mp41");
        b.put(b"dash");
    });
}

/// `mvhd` (§8.2.2), version 1.
fn write_mvhd(track: &InitTrack<'_>, b: &mut Vec<u8>) {
    b.full(types::MVHD, 1, 0, |b| {
        b.put_u64(0); // creation_time
        b.put_u64(0); // modification_time
        b.put_u32(track.timescale.get());
        b.put_u64(0); // duration: in mehd for fragmented files
        b.put_u32(0x0001_0000); // rate 1.0
        b.put_u16(0x0100); // volume 1.0
        b.put(&[0; 10]);
        for m in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            b.put_u32(m);
        }
        b.put(&[0; 24]); // pre_defined
        b.put_u32(track.id.saturating_add(1)); // next_track_ID
    });
}

/// `tkhd` (§8.3.2), version 1, enabled and in the movie.
fn write_tkhd(track: &InitTrack<'_>, b: &mut Vec<u8>) {
    b.full(types::TKHD, 1, 0x3, |b| {
        b.put_u64(0);
        b.put_u64(0);
        b.put_u32(track.id);
        b.put_u32(0);
        b.put_u64(0); // duration
        b.put(&[0; 8]);
        b.put_u16(0); // layer
        b.put_u16(0); // alternate_group
        b.put_u16(if track.kind == TrackKind::Audio {
            0x0100
        } else {
            0
        });
        b.put_u16(0);
        for m in track.matrix {
            b.put_u32(m);
        }
        b.put_u32(track.width << 16);
        b.put_u32(track.height << 16);
    });
}

/// `mdhd` (§8.4.2), version 1, and `hdlr` (§8.4.3).
fn write_mdhd_hdlr(track: &InitTrack<'_>, b: &mut Vec<u8>) {
    b.full(types::MDHD, 1, 0, |b| {
        b.put_u64(0);
        b.put_u64(0);
        b.put_u32(track.timescale.get());
        b.put_u64(0);
        b.put_u16(pack_language(track.language));
        b.put_u16(0);
    });
    b.full(types::HDLR, 0, 0, |b| {
        b.put_u32(0);
        b.put(&track.handler.0);
        b.put(&[0; 12]);
        b.put(match track.kind {
            TrackKind::Video => b"VideoHandler\0",
            TrackKind::Audio => b"SoundHandler\0",
            TrackKind::Other => b"DataHandler\0\0",
        });
    });
}

/// `minf` (§8.4.4): the media header, a self-contained `dref`, and an
/// `stbl` with the sample entry and no samples.
fn write_minf(track: &InitTrack<'_>, b: &mut Vec<u8>) {
    b.boxed(types::MINF, |b| {
        match track.kind {
            TrackKind::Video => b.full(types::VMHD, 0, 1, |b| b.put(&[0; 8])),
            TrackKind::Audio => b.full(types::SMHD, 0, 0, |b| b.put_u32(0)),
            TrackKind::Other => {}
        }
        b.boxed(types::DINF, |b| {
            b.full(types::DREF, 0, 0, |b| {
                b.put_u32(1);
                b.full(types::URL_, 0, 1, |_| {});
            });
        });
        b.boxed(types::STBL, |b| {
            b.full(types::STSD, 0, 0, |b| {
                b.put_u32(1);
                b.put(track.sample_entry);
            });
            b.full(types::STTS, 0, 0, |b| b.put_u32(0));
            b.full(types::STSC, 0, 0, |b| b.put_u32(0));
            b.full(types::STSZ, 0, 0, |b| b.put(&[0; 8]));
            b.full(types::STCO, 0, 0, |b| b.put_u32(0));
        });
    });
}

/// `mvex` (§8.8.1): `mehd` with the duration, `trex` with no defaults.
fn write_mvex(track: &InitTrack<'_>, b: &mut Vec<u8>) {
    b.boxed(types::MVEX, |b| {
        b.full(types::MEHD, 1, 0, |b| b.put_u64(track.duration));
        b.full(types::TREX, 0, 0, |b| {
            b.put_u32(track.id);
            b.put_u32(1); // default_sample_description_index
            b.put_u32(0);
            b.put_u32(0);
            b.put_u32(0);
        });
    });
}

/// Packs an ISO 639-2/T code for `mdhd` (§8.4.2.3); anything else becomes `und`.
fn pack_language(lang: &str) -> u16 {
    let b = lang.as_bytes();
    let code = if b.len() == 3 && b.iter().all(u8::is_ascii_lowercase) {
        b
    } else {
        b"und"
    };
    code.iter()
        .fold(0u16, |acc, &c| (acc << 5) | u16::from(c - 0x60))
}

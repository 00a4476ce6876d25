//! One elementary stream of a TS program: how a rendition's samples become
//! PES payloads, and their 90 kHz timestamps.

use super::adts::Adts;
use super::annexb::{NalFormat, SHORT_LENGTH_FIELDS};
use super::pes::{STREAM_ID_AUDIO, STREAM_ID_PRIVATE_1, STREAM_ID_VIDEO};
use super::psi::EsInfo;
use super::{AUDIO_PID, TS_TIME_OFFSET, VIDEO_PID};
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::fourcc::types;
use crate::index::signed;
use crate::mp4::{Track, TrackKind};
use crate::presentation::{Presentation, Rendition};
use crate::time::{Timescale, rescale};

/// How a sample becomes PES payload bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Payload {
    /// H.264 or H.265: Annex B access units.
    Nal(NalFormat),
    /// AAC: an ADTS header before every frame.
    Adts(Adts),
    /// AC-3 and E-AC-3 sync frames: as they are.
    Raw,
}

/// A rendition as one elementary stream of the program.
#[derive(Clone, Debug)]
pub(super) struct Stream {
    /// Index in [`Presentation::renditions`].
    pub(super) rendition: usize,
    pub(super) pid: u16,
    pub(super) stream_id: u8,
    pub(super) payload: Payload,
    pub(super) es: EsInfo,
    scale: Timescale,
    /// Presentation time = composition time + `shift` (the rendition's).
    shift: i64,
    /// Output time = presentation time + `delay` (the presentation's).
    delay: i64,
    /// Decode time = source decode time + `dts_shift`: the presentation
    /// shift and the delay, less the most negative composition offset, so no DTS is
    /// ever after its PTS.
    dts_shift: i64,
}

const MPEG_TS_90K: Timescale = match Timescale::new(90_000) {
    Some(t) => t,
    None => unreachable!(),
};

/// The track of `r`, if `r` indexes into `p`.
pub(super) fn track_of<'p>(p: &'p Presentation, r: &Rendition) -> Option<&'p Track> {
    p.sources.get(r.source)?.source.movie.tracks.get(r.track)
}

/// Why `r` cannot be carried, or how it is.
pub(super) fn payload_of(p: &Presentation, r: &Rendition) -> Result<Payload> {
    let unsupported = |reason| Error::TsUnsupported {
        rendition: r.id.clone(),
        reason,
    };
    let track = track_of(p, r).ok_or(Error::NotFound("rendition of another presentation"))?;
    let entry = &track.sample_entry;
    let config = || {
        entry
            .config_box()
            .ok_or(unsupported("no codec configuration box"))
    };
    let short = || unsupported(SHORT_LENGTH_FIELDS);
    match (&entry.codec, entry.fourcc) {
        (Codec::Avc { .. }, types::AVC1 | types::AVC3) => {
            Ok(Payload::Nal(NalFormat::avcc(config()?)?.ok_or_else(short)?))
        }
        (Codec::Hevc { .. }, types::HVC1 | types::HEV1) => {
            Ok(Payload::Nal(NalFormat::hvcc(config()?)?.ok_or_else(short)?))
        }
        (Codec::Mpeg4Audio { object_type, .. }, _) if *object_type == 0x40 => entry
            .audio_specific_config()
            .and_then(Adts::from_config)
            .map(Payload::Adts)
            .ok_or(unsupported(
                "its AudioSpecificConfig cannot be described by an ADTS header",
            )),
        (Codec::Ac3 | Codec::Eac3, _) => Ok(Payload::Raw),
        _ => Err(unsupported("codec not carried in TS by this writer")),
    }
}

impl Stream {
    /// The stream of rendition `index` of `p`, which must be of `kind`.
    pub(super) fn new(p: &Presentation, index: usize, kind: TrackKind) -> Result<Self> {
        let r = &p.renditions[index];
        let payload = payload_of(p, r)?;
        let video = matches!(payload, Payload::Nal(_));
        if r.kind != kind || video != (kind == TrackKind::Video) {
            return Err(Error::TsUnsupported {
                rendition: r.id.clone(),
                reason: if kind == TrackKind::Video {
                    "given as the program's video, but it is not a video track"
                } else {
                    "given as the program's audio, but it is not an audio track"
                },
            });
        }
        let track = track_of(p, r).ok_or(Error::NotFound("rendition of another presentation"))?;
        let s = &track.samples;
        let min_cts = s.min_cts_offset(0..s.len()).min(0);
        let registration = |id: &[u8; 4]| [&[0x05, 4][..], id].concat();
        let mut descriptors = Vec::new();
        let (pid, stream_id, stream_type) = match (&track.sample_entry.codec, kind) {
            (Codec::Avc { .. }, _) => (VIDEO_PID, STREAM_ID_VIDEO, 0x1b),
            (Codec::Hevc { .. }, _) => {
                // As ffmpeg writes it; some demuxers look for it.
                descriptors = registration(b"HEVC");
                (VIDEO_PID, STREAM_ID_VIDEO, 0x24)
            }
            // ATSC A/52 Annex A (AC-3) and Annex G (E-AC-3): the ATSC
            // stream types with their registration descriptors.
            (Codec::Ac3, _) => {
                descriptors = registration(b"AC-3");
                (AUDIO_PID, STREAM_ID_PRIVATE_1, 0x81)
            }
            (Codec::Eac3, _) => {
                descriptors = registration(b"EAC3");
                (AUDIO_PID, STREAM_ID_PRIVATE_1, 0x87)
            }
            // AAC in ADTS (ISO/IEC 13818-7).
            _ => (AUDIO_PID, STREAM_ID_AUDIO, 0x0f),
        };
        let lang = track.language.as_bytes();
        if kind == TrackKind::Audio
            && lang.len() == 3
            && lang.iter().all(u8::is_ascii_lowercase)
            && lang != b"und"
        {
            // ISO_639_language_descriptor (§2.6.18), audio_type undefined.
            descriptors.extend_from_slice(&[0x0a, 4, lang[0], lang[1], lang[2], 0]);
        }
        Ok(Stream {
            rendition: index,
            pid,
            stream_id,
            payload,
            es: EsInfo {
                stream_type,
                pid,
                descriptors,
            },
            scale: track.timescale,
            shift: r.timing.shift,
            delay: r.timing.delay,
            dts_shift: r
                .timing
                .shift
                .saturating_add(r.timing.delay)
                .saturating_add(min_cts),
        })
    }

    /// The 90 kHz presentation time (before the 2^33 wrap) of a sample with
    /// decode time `dts` and composition offset `cts`: the rendition's
    /// output presentation time plus [`TS_TIME_OFFSET`].
    pub(super) fn pts(&self, dts: u64, cts: i32) -> i64 {
        self.to_90k(self.presentation(dts, cts).saturating_add(self.delay))
    }

    /// The 90 kHz decode time (before the wrap) of a sample.
    pub(super) fn dts(&self, dts: u64) -> i64 {
        self.to_90k(signed(dts).saturating_add(self.dts_shift))
    }

    /// Times saturate: only a hostile file comes near the limits, and its
    /// timestamps wrap modulo 2^33 on the way out like any other.
    fn to_90k(&self, t: i64) -> i64 {
        i64::try_from(TS_TIME_OFFSET)
            .expect("1.4 s of 90 kHz ticks")
            .saturating_add(rescale(t, self.scale, MPEG_TS_90K))
    }

    /// Seconds of a presentation time in the track's timescale.
    pub(super) fn seconds(&self, t: i64) -> f64 {
        crate::time::seconds(t, self.scale)
    }

    /// The rendition's presentation time of a sample, in track ticks.
    pub(super) fn presentation(&self, dts: u64, cts: i32) -> i64 {
        signed(dts)
            .saturating_add(i64::from(cts))
            .saturating_add(self.shift)
    }
}

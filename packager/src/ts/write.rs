//! Turning a segment's [`Unit`]s into bytes: PSI packets, PES headers,
//! payloads read through the caller's callback, TS packets.

use super::packet::{self, Pcr};
use super::plan::Unit;
use super::psi;
use super::stream::{Payload, Stream, track_of};
use super::{AUDIO, PCR_DELAY, PMT_PID, ReadSamples};
use crate::error::{Error, Result};
use crate::presentation::Presentation;

/// Indices of the continuity counters: PAT, PMT, then one per stream.
pub(super) const CC_PAT: usize = 0;
pub(super) const CC_PMT: usize = 1;
/// The counter of stream `s` ([`super::VIDEO`] or [`AUDIO`]).
pub(super) const fn cc_of(stream: usize) -> usize {
    2 + stream
}

/// A 90 kHz time as the 33-bit field carries it: modulo 2^33, so the few
/// frames a mid-GOP edit puts more than [`super::TS_TIME_OFFSET`] before
/// zero wrap around, as the system clock does.
fn wrap(t: i64) -> u64 {
    t.rem_euclid(1 << 33) as u64
}

/// Everything one segment's writing needs besides its units.
pub(super) struct Writer<'a> {
    pub(super) p: &'a Presentation,
    pub(super) streams: &'a [Option<Stream>; 2],
    pub(super) pat: &'a [u8],
    pub(super) pmt: &'a [u8],
}

impl Writer<'_> {
    /// Appends the TS packets of `units`, advancing the counters `cc`.
    pub(super) fn write(
        &self,
        units: &[Unit],
        cc: &mut [u8; 4],
        read: &mut ReadSamples<'_>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let mut pes = Vec::new();
        for u in units {
            if u.psi {
                psi::write_packet(out, psi::PAT_PID, &mut cc[CC_PAT], self.pat);
                psi::write_packet(out, PMT_PID, &mut cc[CC_PMT], self.pmt);
            }
            let Some(stream) = &self.streams[u.stream] else {
                return Err(Error::NotFound("a TS unit of a stream the program lacks"));
            };
            pes.clear();
            pes.reserve(u.pes_len());
            self.pes(stream, u, read, &mut pes)?;
            debug_assert_eq!(pes.len(), u.pes_len(), "the plan sized this PES");
            let pcr = u.pcr.then(|| Pcr {
                base: wrap(u.dts - i64::try_from(PCR_DELAY).expect("0.1 s of 90 kHz ticks")),
                random_access: u.sync,
            });
            packet::write_pes(out, stream.pid, &mut cc[cc_of(u.stream)], pcr, &pes);
        }
        Ok(())
    }

    /// Builds the PES packet of `u` into `pes`.
    fn pes(
        &self,
        s: &Stream,
        u: &Unit,
        read: &mut ReadSamples<'_>,
        pes: &mut Vec<u8>,
    ) -> Result<()> {
        let r = &self.p.renditions[s.rendition];
        let track =
            track_of(self.p, r).ok_or(Error::NotFound("rendition of another presentation"))?;
        let samples = &track.samples;
        let bounded = (u.stream == AUDIO).then_some(u.payload);
        let dts = u.has_dts().then_some(wrap(u.dts));
        super::pes::write_header(pes, s.stream_id, wrap(u.pts), dts, bounded).map_err(
            |reason| Error::BadSample {
                rendition: r.id.clone(),
                sample: u.first,
                reason,
            },
        )?;
        // Appends sample i's bytes; returns where they start.
        let mut sample = |i: usize, pes: &mut Vec<u8>| -> Result<usize> {
            let at = pes.len();
            let (offset, size) = (samples.offset(i), samples.size(i) as usize);
            let read = read(r.source, offset, size, pes).and_then(|()| {
                (pes.len() == at + size)
                    .then_some(())
                    .ok_or_else(|| std::io::Error::other("the reader appended another length"))
            });
            read.map_err(|source| {
                pes.truncate(at);
                Error::Read {
                    offset,
                    len: size,
                    source,
                }
            })?;
            Ok(at)
        };
        match &s.payload {
            Payload::Nal(nal) => {
                nal.write_prefix(u.sync, pes);
                let at = sample(u.first as usize, pes)?;
                nal.convert(&mut pes[at..])
                    .map_err(|reason| Error::BadSample {
                        rendition: r.id.clone(),
                        sample: u.first,
                        reason,
                    })?;
            }
            Payload::Adts(adts) => {
                for i in u.first as usize..u.end as usize {
                    pes.extend_from_slice(&adts.header(samples.size(i) as usize));
                    sample(i, pes)?;
                }
            }
            Payload::Raw => {
                for i in u.first as usize..u.end as usize {
                    sample(i, pes)?;
                }
            }
        }
        Ok(())
    }
}

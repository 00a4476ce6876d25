//! Turning a segment's [`Unit`]s into bytes: PSI packets, then each PES
//! packet (header, codec framing, the sample bytes its source lends)
//! copied straight into its TS packets.

use super::packet::{Pcr, PesPackets};
use super::plan::Unit;
use super::psi;
use super::stream::{Payload, Stream, track_of};
use super::{AUDIO, PCR_DELAY, PMT_PID, ReadSamples};
use crate::error::{Error, Result};
use crate::index::SampleIndex;
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
        let mut header = Vec::new();
        for u in units {
            if u.psi {
                psi::write_packet(out, psi::PAT_PID, &mut cc[CC_PAT], self.pat);
                psi::write_packet(out, PMT_PID, &mut cc[CC_PMT], self.pmt);
            }
            let Some(stream) = &self.streams[u.stream] else {
                return Err(Error::NotFound("a TS unit of a stream the program lacks"));
            };
            let pcr = u.pcr.then(|| Pcr {
                base: wrap(
                    u.dts
                        .saturating_sub(i64::try_from(PCR_DELAY).expect("0.1 s of 90 kHz ticks")),
                ),
                random_access: u.sync,
            });
            let cc = &mut cc[cc_of(u.stream)];
            let mut packets = PesPackets::new(out, stream.pid, cc, pcr, u.pes_len());
            self.pes(stream, u, read, &mut header, &mut packets)?;
            packets
                .finish()
                .map_err(|reason| self.bad(stream, u, reason))?;
        }
        Ok(())
    }

    /// Writes the PES packet of `u` into `packets`, its header through
    /// the scratch buffer `header`, its samples as `read` lends them.
    fn pes(
        &self,
        s: &Stream,
        u: &Unit,
        read: &mut ReadSamples<'_>,
        header: &mut Vec<u8>,
        packets: &mut PesPackets<'_>,
    ) -> Result<()> {
        let r = &self.p.renditions[s.rendition];
        let track =
            track_of(self.p, r).ok_or(Error::NotFound("rendition of another presentation"))?;
        let samples = &track.samples;
        let bounded = (u.stream == AUDIO).then_some(u.payload);
        let dts = u.has_dts().then_some(wrap(u.dts));
        header.clear();
        super::pes::write_header(header, s.stream_id, wrap(u.pts), dts, bounded)
            .map_err(|reason| self.bad(s, u, reason))?;
        packets.push(header);
        let mut push = |b: &[u8]| packets.push(b);
        match &s.payload {
            Payload::Nal(nal) => {
                nal.write_prefix(u.sync, &mut push);
                let bytes = lend(read, r.source, samples, u.first as usize)?;
                nal.write_sample(bytes, &mut push)
                    .map_err(|reason| self.bad(s, u, reason))?;
            }
            Payload::Adts(adts) => {
                for i in u.first as usize..u.end as usize {
                    push(&adts.header(samples.size(i) as usize));
                    push(lend(read, r.source, samples, i)?);
                }
            }
            Payload::Raw => {
                for i in u.first as usize..u.end as usize {
                    push(lend(read, r.source, samples, i)?);
                }
            }
        }
        Ok(())
    }

    /// The error of a unit whose samples cannot become its PES packet.
    fn bad(&self, s: &Stream, u: &Unit, reason: &'static str) -> Error {
        Error::BadSample {
            rendition: self.p.renditions[s.rendition].id.clone(),
            sample: u.first,
            reason,
        }
    }
}

/// Sample `i` of `samples` (in source `source`), as `read` lends it.
fn lend<'r>(
    read: &'r mut ReadSamples<'_>,
    source: usize,
    samples: &SampleIndex,
    i: usize,
) -> Result<&'r [u8]> {
    let (offset, len) = (samples.offset(i), samples.size(i) as usize);
    let bytes = read.read(source, offset, len).and_then(|b| {
        (b.len() == len)
            .then_some(b)
            .ok_or_else(|| std::io::Error::other("the reader lent another length"))
    });
    bytes.map_err(|source| Error::Read {
        offset,
        len,
        source,
    })
}

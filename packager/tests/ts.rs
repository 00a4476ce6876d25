//! MPEG-TS segments of the real test media, checked three ways: their
//! lengths against the sizes computed from the index; the concatenated
//! segments against an independent reader written here (`ts/reader.rs`);
//! and against ffmpeg, whose decoded frames must hash the same as the
//! source's — the lossless bar.

#[path = "ts/reader.rs"]
mod reader;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use headwater_packager::clip::{Clip, Piece};
use headwater_packager::mp4::TrackKind;
use headwater_packager::ts::{self, TsLayout, TsProgram};
use headwater_packager::{Error, Limits, NamedSource, PackagingConfig, Presentation, Source};
use headwater_testkit::ffmpeg::{frame_hashes, probe};
use reader::PACKET;

struct Asset {
    p: Presentation,
    files: Vec<Vec<u8>>,
    paths: Vec<String>,
}

/// The test's source files, in memory, lending sample bytes in place.
struct Files<'a>(&'a [Vec<u8>]);

impl ts::SampleSource for Files<'_> {
    fn read(&mut self, source: usize, offset: u64, len: usize) -> std::io::Result<&[u8]> {
        let start = offset as usize;
        self.0[source]
            .get(start..start + len)
            .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
    }
}

fn asset(files: &[&str]) -> Asset {
    let media = headwater_testkit::media();
    let mut sources = Vec::new();
    let mut bytes = Vec::new();
    let mut paths = Vec::new();
    for f in files {
        let path = media.join(f);
        let b = std::fs::read(&path).unwrap();
        let source = Source::index(&b, b.len() as u64, &Limits::default()).unwrap();
        let name = Path::new(f)
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        sources.push(NamedSource::new(name, Arc::new(source)));
        bytes.push(b);
        paths.push(path.to_str().unwrap().to_owned());
    }
    let p = Presentation::new(sources, PackagingConfig::default()).unwrap();
    Asset {
        p,
        files: bytes,
        paths,
    }
}

impl Asset {
    fn programs(&self) -> Vec<TsProgram<'_>> {
        let audio = self
            .p
            .renditions
            .iter()
            .find(|r| r.kind == TrackKind::Audio);
        let videos: Vec<_> = self
            .p
            .renditions
            .iter()
            .filter(|r| r.kind == TrackKind::Video)
            .collect();
        if videos.is_empty() {
            return vec![TsProgram { video: None, audio }];
        }
        videos
            .into_iter()
            .map(|v| TsProgram {
                video: Some(v),
                audio,
            })
            .collect()
    }

    fn read(&self) -> Files<'_> {
        Files(&self.files)
    }

    /// Every segment of `prog`, each checked against the computed size.
    fn segments(&self, prog: TsProgram<'_>) -> (TsLayout, Vec<Vec<u8>>) {
        let layout = TsLayout::new(&self.p, prog).unwrap();
        let mut read = self.read();
        let mut out = Vec::new();
        for i in 0..layout.segment_count() {
            let mut seg = vec![0xaa; 3]; // appends, never overwrites
            layout.write(&self.p, i, &mut read, &mut seg).unwrap();
            assert_eq!(&seg[..3], &[0xaa; 3]);
            seg.drain(..3);
            assert_eq!(seg.len() as u64, layout.size(i).unwrap(), "segment {i}");
            out.push(seg);
        }
        // The free functions agree with the layout.
        let last = layout.segment_count() - 1;
        assert_eq!(
            ts::segment_size(&self.p, prog, last).unwrap(),
            out[last].len() as u64
        );
        let mut again = Vec::new();
        ts::write_segment(&self.p, prog, last, &mut read, &mut again).unwrap();
        assert_eq!(again, out[last]);
        assert_eq!(
            ts::keyframe_ranges(&self.p, prog, last).unwrap(),
            layout.keyframes(last).unwrap()
        );
        assert!(layout.size(last + 1).is_err());
        (layout, out)
    }

    fn source_of(&self, kind: TrackKind, prog: TsProgram<'_>) -> Option<(&str, usize)> {
        let r = if kind == TrackKind::Video {
            prog.video
        } else {
            prog.audio
        }?;
        let track = self.p.track(r);
        let stream = self.p.sources[r.source]
            .source
            .movie
            .tracks
            .iter()
            .filter(|t| t.kind == kind)
            .position(|t| std::ptr::eq(t, track))
            .unwrap();
        Some((self.paths[r.source].as_str(), stream))
    }
}

/// The PTS of every packet of a source stream as ffprobe reads it (edit
/// list applied), as the 90 kHz TS time it should become.
/// The source's packet times as ffmpeg reads them (its edit list applied),
/// on the output's clock: at 90 kHz, plus the presentation's delay and the
/// TS offset.
fn source_pts(path: &str, kind: char, stream: usize, delay_90k: u64) -> Vec<i64> {
    let sel = format!("{kind}:{stream}");
    let tb = probe(path, &sel, "stream=time_base");
    // (AC-3 streams print their side data as an extra column.)
    let tb = tb[0].split(',').next().unwrap();
    let den: i64 = tb.split_once('/').unwrap().1.parse().unwrap();
    probe(path, &sel, "packet=pts")
        .iter()
        .map(|l| {
            let pts: i64 = l.split(',').next().unwrap().parse().unwrap();
            // Nearest 90 kHz tick, halves away from zero, plus the offset.
            let num = i128::from(pts) * 90_000;
            let d = i128::from(den);
            let q = if num >= 0 {
                (num + d / 2) / d
            } else {
                (num - d / 2) / d
            };
            q as i64 + ts::TS_TIME_OFFSET as i64 + delay_90k as i64
        })
        .collect()
}

/// `nal_unit_type` of every NAL unit of an Annex B access unit (emulation
/// prevention keeps `00 00 01` out of NAL payloads).
fn nal_types(au: &[u8], hevc: bool) -> Vec<u8> {
    au.windows(4)
        .filter(|w| w[..3] == [0, 0, 1])
        .map(|w| {
            if hevc {
                (w[3] >> 1) & 0x3f
            } else {
                w[3] & 0x1f
            }
        })
        .collect()
}

/// Checks one program's segments; returns the concatenated stream.
fn check_program(a: &Asset, prog: TsProgram<'_>, tag: &str) -> Vec<u8> {
    let (layout, segments) = a.segments(prog);
    let all: Vec<u8> = segments.concat();
    let s = reader::read(&all);

    // PSI: the PMT lists what the program has, the PCR where it belongs.
    let video_type = prog.video.map(|v| {
        if v.codecs.starts_with("avc") {
            0x1b
        } else {
            0x24
        }
    });
    let audio_type = prog.audio.map(|r| match r.codecs.as_str() {
        "ac-3" => 0x81,
        "ec-3" => 0x87,
        _ => 0x0f,
    });
    let types: Vec<(u8, u16)> = s.es.iter().map(|e| (e.stream_type, e.pid)).collect();
    let want: Vec<(u8, u16)> = video_type
        .map(|t| (t, ts::VIDEO_PID))
        .into_iter()
        .chain(audio_type.map(|t| (t, ts::AUDIO_PID)))
        .collect();
    assert_eq!(types, want, "{tag}: PMT streams");
    assert_eq!(s.pmt_pid, ts::PMT_PID);
    let pcr_pid = if prog.video.is_some() {
        ts::VIDEO_PID
    } else {
        ts::AUDIO_PID
    };
    assert_eq!(s.pcr_pid, pcr_pid);
    for e in &s.es {
        let reg = match e.stream_type {
            0x24 => Some(b"HEVC"),
            0x81 => Some(b"AC-3"),
            0x87 => Some(b"EAC3"),
            _ => None,
        };
        if let Some(id) = reg {
            assert_eq!(&e.descriptors[..6], [&[5u8, 4][..], id].concat(), "{tag}");
        }
    }

    // Every segment starts with a PAT and a PMT.
    let mut at = 0;
    let mut starts = Vec::new();
    for seg in &segments {
        let n = at / PACKET;
        assert_eq!((s.pids[n], s.pids[n + 1]), (0, ts::PMT_PID), "{tag}");
        starts.push(n);
        at += seg.len();
    }

    // Keyframe ranges: PAT, PMT, then exactly one video PES, which is a
    // random access point, up to the next payload unit start.
    let mut keyframe_pes = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let end = start + segments[k].len() / PACKET;
        for kf in layout.keyframes(k).unwrap() {
            assert_eq!(kf.offset % PACKET as u64, 0);
            assert_eq!(kf.len % PACKET as u64, 0);
            let first = start + (kf.offset / PACKET as u64) as usize;
            let last = first + (kf.len / PACKET as u64) as usize;
            assert!(last <= end);
            assert_eq!((s.pids[first], s.pids[first + 1]), (0, ts::PMT_PID));
            let pes = s.pes.iter().find(|p| p.packet == first + 2).unwrap();
            assert_eq!(pes.pid, ts::VIDEO_PID);
            assert!(pes.random_access, "{tag}: keyframe PES flagged");
            let inside = (first + 3..last).filter(|&n| s.pids[n] == ts::VIDEO_PID && s.starts[n]);
            assert_eq!(inside.count(), 0, "{tag}: one PES in a keyframe range");
            assert!(
                last == end || s.starts[last],
                "{tag}: the range ends its PES"
            );
            assert!(kf.duration > 0.0);
            keyframe_pes.push(pes.pts);
        }
    }

    // Video: one PES per access unit, AUD first, PTS as the MP4 says.
    if let Some((path, stream)) = a.source_of(TrackKind::Video, prog) {
        let video: Vec<_> = s.pes.iter().filter(|p| p.pid == ts::VIDEO_PID).collect();
        let aud: &[u8] = if video_type == Some(0x1b) {
            &[0, 0, 0, 1, 0x09]
        } else {
            &[0, 0, 0, 1, 0x46, 0x01]
        };
        let hevc = video_type == Some(0x24);
        for v in &video {
            assert_eq!(v.stream_id, 0xe0);
            assert!(v.payload.starts_with(aud), "{tag}: AUD first");
            let types = nal_types(&v.payload, hevc);
            let (aud, vcl, sets): (u8, fn(u8) -> bool, &[u8]) = if hevc {
                (35, |t| t < 32, &[32, 33, 34])
            } else {
                (9, |t| (1..=5).contains(&t), &[7, 8])
            };
            let auds = types.iter().filter(|&&t| t == aud).count();
            assert_eq!(auds, 1, "{tag}: one AUD per access unit: {types:?}");
            let first_vcl = types.iter().position(|&t| vcl(t)).expect("a slice");
            if v.random_access {
                for t in sets {
                    assert!(
                        types[..first_vcl].contains(t),
                        "{tag}: parameter set {t} before a keyframe's slices: {types:?}"
                    );
                }
            }
        }
        let dts: Vec<u64> = video.iter().map(|v| v.decode_time()).collect();
        assert!(dts.windows(2).all(|w| w[0] < w[1]), "{tag}: DTS increase");
        let mut pts: Vec<i64> = video.iter().map(|v| v.pts as i64).collect();
        pts.sort_unstable();
        let mut want = source_pts(path, 'v', stream, a.p.delay_90k());
        want.sort_unstable();
        assert_eq!(pts, want, "{tag}: video PTS");
        let rand: Vec<u64> = video
            .iter()
            .filter(|v| v.random_access)
            .map(|v| v.pts)
            .collect();
        assert_eq!(rand, keyframe_pes, "{tag}: every keyframe has a range");
        let sync =
            a.p.track(prog.video.unwrap())
                .samples
                .sync_samples()
                .count();
        assert_eq!(rand.len(), sync, "{tag}: keyframes");
    }

    // Audio: PES packets of whole frames, their bytes the source's own.
    if let (Some(r), Some((path, stream))) = (prog.audio, a.source_of(TrackKind::Audio, prog)) {
        let audio: Vec<_> = s.pes.iter().filter(|p| p.pid == ts::AUDIO_PID).collect();
        let in_order = source_pts(path, 'a', stream, a.p.delay_90k());
        // Audio before the edit point (encoder priming) is not packaged:
        // the first PTS is the first packaged frame's.
        let first = in_order.get(r.timing.first_sample as usize).copied();
        let source_pts: BTreeSet<i64> = in_order.into_iter().collect();
        let pts: Vec<i64> = audio.iter().map(|p| p.pts as i64).collect();
        assert!(
            pts.windows(2).all(|w| w[0] < w[1]),
            "{tag}: audio PTS increase"
        );
        assert_eq!(pts.first().copied(), first, "{tag}: first audio PTS");
        for t in &pts {
            assert!(source_pts.contains(t), "{tag}: audio PTS {t} is a frame's");
        }
        for p in &audio {
            assert!(p.dts.is_none(), "audio has no DTS");
            assert!(p.payload.len() <= 65_000);
        }
        let track = a.p.track(r);
        let samples = &track.samples;
        let file = &a.files[r.source];
        // Every packaged frame: from the first at or after the edit point.
        let kept = r.timing.first_sample as usize..samples.len();
        let source: Vec<u8> = kept
            .clone()
            .flat_map(|i| {
                let o = samples.offset(i) as usize;
                file[o..o + samples.size(i) as usize].to_vec()
            })
            .collect();
        let carried: Vec<u8> = if audio_type == Some(0x0f) {
            // What every ADTS header must say, from ffprobe's reading of the source.
            let facts = probe(
                path,
                &format!("a:{stream}"),
                "stream=profile,sample_rate,channels",
            );
            let f: Vec<&str> = facts[0].split(',').collect();
            let profile = ["Main", "LC", "SSR", "LTP"]
                .iter()
                .position(|&n| n == f[0])
                .expect("an ADTS profile") as u8;
            let rate: u32 = f[1].parse().unwrap();
            let rates = [
                96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000,
            ];
            let rate_index = rates.iter().position(|&r| r == rate).unwrap() as u8;
            let channels: u8 = f[2].parse().unwrap();
            let mut raw = Vec::new();
            let mut frames = 0;
            for p in &audio {
                assert_eq!(p.stream_id, 0xc0);
                let mut b = &p.payload[..];
                while !b.is_empty() {
                    assert_eq!((b[0], b[1] & 0xf6), (0xff, 0xf0), "ADTS sync, layer 0");
                    assert_eq!(b[1] & 1, 1, "no CRC");
                    assert_eq!(b[2] >> 6, profile, "{tag}: ADTS profile");
                    assert_eq!((b[2] >> 2) & 0x0f, rate_index, "{tag}: sampling index");
                    let config = ((b[2] & 1) << 2) | (b[3] >> 6);
                    assert_eq!(config, channels, "{tag}: channel configuration");
                    let len = (usize::from(b[3] & 3) << 11)
                        | (usize::from(b[4]) << 3)
                        | usize::from(b[5] >> 5);
                    raw.extend_from_slice(&b[7..len]);
                    b = &b[len..];
                    frames += 1;
                }
            }
            assert_eq!(frames, kept.len(), "{tag}: AAC frames");
            raw
        } else {
            audio.iter().flat_map(|p| p.payload.clone()).collect()
        };
        assert!(carried == source, "{tag}: audio bytes are the source's");
    }
    all
}

/// ffmpeg decodes the TS to the frames the source decodes to, and ffprobe
/// reads it without a complaint, with the right codecs and packet counts.
fn check_with_ffmpeg(a: &Asset, prog: TsProgram<'_>, all: &[u8], tag: &str) {
    let dir = headwater_testkit::TempDir::new("ts");
    let out = dir.path().join(format!("{tag}.ts"));
    std::fs::write(&out, all).unwrap();
    let out = out.to_str().unwrap();
    let probe_out = Command::new("ffprobe")
        .args(["-v", "error", "-show_packets", "-show_streams", out])
        .output()
        .unwrap();
    assert!(probe_out.status.success());
    let errors = String::from_utf8_lossy(&probe_out.stderr);
    assert!(errors.trim().is_empty(), "{tag}: ffprobe: {errors}");
    for (kind, c) in [(TrackKind::Video, 'v'), (TrackKind::Audio, 'a')] {
        let Some((path, stream)) = a.source_of(kind, prog) else {
            continue;
        };
        let sel = format!("{c}:{stream}");
        // (AC-3 streams print their side data as an extra column.)
        let name: Vec<String> = probe(path, &sel, "stream=codec_name")
            .iter()
            .map(|l| l.split(',').next().unwrap().to_owned())
            .collect();
        // A TS lists its streams twice: in its program and on their own.
        let mut got = probe(out, &c.to_string(), "stream=codec_name");
        got.dedup();
        assert_eq!(got, name, "{tag}");
        // Audio before the edit point (encoder priming) is not packaged.
        let rendition = if kind == TrackKind::Video {
            prog.video
        } else {
            prog.audio
        };
        let dropped = rendition.map_or(0, |r| r.timing.first_sample as usize);
        let packets = probe(out, &c.to_string(), "packet=pts").len();
        assert_eq!(
            packets + dropped,
            probe(path, &sel, "packet=pts").len(),
            "{tag}: packets"
        );
        if dropped == 0 {
            let source = frame_hashes(path, &sel, &["-ignore_editlist", "1"]);
            let carried = frame_hashes(out, &c.to_string(), &[]);
            assert_eq!(carried.len(), source.len(), "{tag}: {c} frame count");
            assert!(carried == source, "{tag}: {c} frames decode the same");
        } else {
            // Without the priming frames a decoder's state differs (the
            // first frame's transform overlap, AAC's noise generator), so
            // decoded frames are not comparable; the access units are,
            // and they are the source's, byte for byte, from the first
            // one packaged (`audio bytes are the source's` above).
            assert_eq!(
                frame_hashes(out, &c.to_string(), &[]).len() + dropped,
                frame_hashes(path, &sel, &["-ignore_editlist", "1"]).len(),
                "{tag}: {c} frame count"
            );
        }
    }
}

/// Each keyframe range alone decodes to that keyframe.
fn check_keyframes_alone(a: &Asset, prog: TsProgram<'_>, tag: &str) {
    let (layout, segments) = a.segments(prog);
    let (path, stream) = a.source_of(TrackKind::Video, prog).unwrap();
    let sel = format!("v:{stream}");
    let source = frame_hashes(path, &sel, &["-ignore_editlist", "1"]);
    let mut pts = source_pts(path, 'v', stream, a.p.delay_90k());
    pts.sort_unstable();
    let dir = headwater_testkit::TempDir::new("ts-iframe");
    for (k, seg) in segments.iter().enumerate() {
        for (j, kf) in layout.keyframes(k).unwrap().iter().enumerate() {
            let bytes = &seg[kf.offset as usize..(kf.offset + kf.len) as usize];
            let file = dir.path().join(format!("{tag}-{k}-{j}.ts"));
            std::fs::write(&file, bytes).unwrap();
            let got = frame_hashes(file.to_str().unwrap(), "v", &[]);
            let t = ((kf.time * 90_000.0).round() as i64)
                + ts::TS_TIME_OFFSET as i64
                + a.p.delay_90k() as i64;
            let n = pts.iter().position(|&p| p == t).expect("a keyframe's PTS");
            assert_eq!(got, [source[n].clone()], "{tag}: keyframe {k}/{j} alone");
        }
    }
}

#[test]
fn h264_aac_with_b_frames() {
    let a = asset(&["bframes.mp4"]);
    let prog = a.programs()[0];
    let all = check_program(&a, prog, "bframes");
    check_with_ffmpeg(&a, prog, &all, "bframes");
    check_keyframes_alone(&a, prog, "bframes");
}

/// Clip spans (`t{from}-{to}.ts`) are sized from the index alone and join
/// the regular segments beside them: the pieces of a clip read together by
/// the independent reader, whose continuity-counter check runs across
/// them, and decode with ffmpeg to the source's frames between the clip's
/// keyframes (bframes.mp4: keyframes every 2 s, segments 4, 4 and 2 s).
#[test]
fn clip_spans_join_the_regular_segments() {
    let a = asset(&["bframes.mp4"]);
    let prog = a.programs()[0];
    let video = prog.video.unwrap();
    let layout = TsLayout::new(&a.p, prog).unwrap();
    let source = frame_hashes(&a.paths[0], "v", &["-ignore_editlist", "1"]);
    let dir = headwater_testkit::TempDir::new("ts-spans");
    let mut read = a.read();
    for (start, end, want, first, last) in [
        // A span ending its segment, then a regular segment.
        (3100, 7000, "t2000-4000 2", 50, 200),
        // A regular segment, then a span starting its segment.
        (500, 5000, "1 t4000-6000", 0, 150),
        // A span inside one segment.
        (4500, 5000, "t4000-6000", 100, 150),
    ] {
        let clip = Clip::new(&a.p, start, Some(end)).unwrap();
        let mut bytes = Vec::new();
        let mut names = Vec::new();
        for (piece, _) in clip.pieces(&a.p, video) {
            let at = bytes.len();
            match piece {
                Piece::Shared(n) => {
                    layout
                        .write(&a.p, n as usize - 1, &mut read, &mut bytes)
                        .unwrap();
                    names.push(n.to_string());
                }
                Piece::Span { from_ms, to_ms } => {
                    assert!(ts::span_exists(&a.p, prog, from_ms, to_ms));
                    let span = layout.span(&a.p, from_ms, to_ms).unwrap();
                    layout
                        .write_span(&a.p, &span, &mut read, &mut bytes)
                        .unwrap();
                    assert_eq!((bytes.len() - at) as u64, span.size(), "{from_ms}-{to_ms}");
                    names.push(format!("t{from_ms}-{to_ms}"));
                }
            }
            // Each piece starts with a PAT and a PMT.
            let s = reader::read(&bytes[at..]);
            assert_eq!((s.pids[0], s.pids[1]), (0, ts::PMT_PID));
        }
        assert_eq!(names.join(" "), want, "{start}-{end}");
        // One stream: continuity counters run on from piece to piece.
        let s = reader::read(&bytes);
        assert!(
            s.pes.iter().any(|p| p.pid == ts::AUDIO_PID),
            "audio is carried"
        );
        let file = dir.path().join(format!("{start}.ts"));
        std::fs::write(&file, &bytes).unwrap();
        let got = frame_hashes(file.to_str().unwrap(), "v", &[]);
        assert_eq!(got.len(), last - first, "{start}-{end}: frames");
        assert!(
            got == source[first..last],
            "{start}-{end}: the source's frames"
        );
    }
    // Spans that are not between two keyframes of one segment do not exist.
    for (from, to) in [(2100, 4000), (2000, 6000), (4000, 4000), (6000, 4000)] {
        assert!(layout.span(&a.p, from, to).is_err(), "{from}-{to}");
        assert!(!ts::span_exists(&a.p, prog, from, to), "{from}-{to}");
    }
}

#[test]
fn hevc_with_ac3_five_one() {
    let a = asset(&["hevc.mp4"]);
    let prog = a.programs()[0];
    let all = check_program(&a, prog, "hevc");
    check_with_ffmpeg(&a, prog, &all, "hevc");
    check_keyframes_alone(&a, prog, "hevc");
}

#[test]
fn hev1_main10_with_eac3() {
    let a = asset(&["hdr10.mp4"]);
    let prog = a.programs()[0];
    let all = check_program(&a, prog, "hdr10");
    check_with_ffmpeg(&a, prog, &all, "hdr10");
}

#[test]
fn gstreamer_ladder_with_in_band_aud_and_separate_audio() {
    let a = asset(&[
        "ladder/360p.mp4",
        "ladder/270p.mp4",
        "ladder/180p.mp4",
        "ladder/audio.m4a",
    ]);
    let programs = a.programs();
    assert_eq!(programs.len(), 3);
    for (k, prog) in programs.into_iter().enumerate() {
        let tag = format!("ladder-{k}");
        let all = check_program(&a, prog, &tag);
        check_with_ffmpeg(&a, prog, &all, &tag);
    }
}

#[test]
fn audio_only_and_video_only() {
    let a = asset(&["audio-only.m4a"]);
    let prog = a.programs()[0];
    assert!(prog.video.is_none());
    let all = check_program(&a, prog, "audio-only");
    check_with_ffmpeg(&a, prog, &all, "audio-only");
    let layout = TsLayout::new(&a.p, prog).unwrap();
    assert!(layout.keyframes(0).unwrap().is_empty());

    let v = asset(&["video-only.mp4"]);
    let prog = v.programs()[0];
    assert!(prog.audio.is_none());
    let all = check_program(&v, prog, "video-only");
    check_with_ffmpeg(&v, prog, &all, "video-only");
}

/// xorshift64*, so a failure names a reproducible seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn garbage_sample_bytes_are_errors_not_panics() {
    for (file, video) in [
        ("bframes.mp4", true),
        ("hevc.mp4", true),
        ("video-only.mp4", true),
        ("audio-only.m4a", false),
    ] {
        let a = asset(&[file]);
        let prog = a.programs()[0];
        let layout = TsLayout::new(&a.p, prog).unwrap();
        for seed in 1..=8u64 {
            let mut rng = Rng(seed * 0x9e37_79b9);
            let mut read = ts::Filled::new(|_: usize, _: u64, buf: &mut [u8]| {
                buf.iter_mut().for_each(|b| *b = rng.next() as u8);
                Ok(())
            });
            for i in 0..layout.segment_count() {
                let mut out = vec![1, 2, 3];
                let r = layout.write(&a.p, i, &mut read, &mut out);
                if video {
                    assert!(
                        matches!(r, Err(Error::BadSample { .. })),
                        "{file} seed {seed} segment {i}: {r:?}"
                    );
                    assert_eq!(out, [1, 2, 3], "nothing appended on an error");
                } else {
                    // Audio frames are opaque: garbage in, garbage out.
                    assert!(r.is_ok());
                }
            }
        }
        // A failing read is an error too.
        let mut fail =
            ts::Filled::new(|_: usize, _: u64, _: &mut [u8]| Err(std::io::ErrorKind::Other.into()));
        assert!(matches!(
            layout.write(&a.p, 0, &mut fail, &mut Vec::new()),
            Err(Error::Read { .. })
        ));
    }
}

#[test]
fn what_ts_cannot_carry_is_refused() {
    let a = asset(&["av1.mp4"]);
    for r in &a.p.renditions {
        assert!(!ts::supports(&a.p, r), "{} (AV1, Opus)", r.codecs);
    }
    let video = a.p.renditions.iter().find(|r| r.kind == TrackKind::Video);
    let r = TsLayout::new(&a.p, TsProgram { video, audio: None });
    assert!(matches!(r, Err(Error::TsUnsupported { .. })), "{r:?}");

    let b = asset(&["bframes.mp4"]);
    assert!(b.p.renditions.iter().all(|r| ts::supports(&b.p, r)));
    let (video, audio) = (b.programs()[0].video, b.programs()[0].audio);
    // Swapped roles, an empty program, another presentation's layout.
    assert!(
        TsLayout::new(
            &b.p,
            TsProgram {
                video: audio,
                audio: video
            }
        )
        .is_err()
    );
    assert!(
        TsLayout::new(
            &b.p,
            TsProgram {
                video: None,
                audio: None
            }
        )
        .is_err()
    );
    let layout = TsLayout::new(&b.p, TsProgram { video, audio }).unwrap();
    let c = asset(&["hevc.mp4"]);
    let mut read = c.read();
    assert!(layout.write(&c.p, 0, &mut read, &mut Vec::new()).is_err());
}

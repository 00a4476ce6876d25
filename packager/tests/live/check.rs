//! Independent readers for what the live packager writes: CMAF chunks
//! read box by box here, playlists through m3u8-rs (plus the LL-HLS tags
//! m3u8-rs leaves as text), MPDs through dash-mpd-core.

#![allow(dead_code)]

use std::collections::HashMap;

use headwater_packager::live::{HlsOptions, LiveStream, LiveUri, PartLookup, TrackId};

pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}
pub(crate) fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap())
}

/// One box: `(type, body)`, walking `data` end to end.
pub(crate) fn boxes(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let mut size = be32(&data[pos..]) as usize;
        let kind: [u8; 4] = data[pos + 4..pos + 8].try_into().unwrap();
        let mut header = 8;
        if size == 1 {
            size = be64(&data[pos + 8..]) as usize;
            header = 16;
        }
        assert!(size >= header && pos + size <= data.len(), "box overruns");
        out.push((kind, &data[pos + header..pos + size]));
        pos += size;
    }
    out
}

/// What one `moof` + `mdat` chunk says.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) sequence: u32,
    pub(crate) track_id: u32,
    pub(crate) tfdt: u64,
    pub(crate) durations: Vec<u32>,
    pub(crate) sizes: Vec<u32>,
    pub(crate) sync: Vec<bool>,
    pub(crate) cts: Vec<i32>,
    /// The `trun` version: 0 unless an offset is negative.
    pub(crate) version: u8,
}

impl Chunk {
    pub(crate) fn duration(&self) -> u64 {
        self.durations.iter().map(|&d| u64::from(d)).sum()
    }
}

/// Parses a part: exactly `moof` then `mdat`, the `trun` data offset
/// pointing at the `mdat` payload, the payload the sum of the sample sizes.
pub(crate) fn parse_chunk(data: &[u8]) -> Chunk {
    let top = boxes(data);
    assert_eq!(top.len(), 2, "a part is moof + mdat");
    assert_eq!(&top[0].0, b"moof");
    assert_eq!(&top[1].0, b"mdat");
    let moof_len = top[0].1.len() + 8;
    let mut c = Chunk {
        sequence: 0,
        track_id: 0,
        tfdt: 0,
        durations: vec![],
        sizes: vec![],
        sync: vec![],
        cts: vec![],
        version: 0,
    };
    let mut data_offset = 0;
    for (k, b) in boxes(top[0].1) {
        match &k {
            b"mfhd" => c.sequence = be32(&b[4..]),
            b"traf" => {
                for (k, b) in boxes(b) {
                    match &k {
                        b"tfhd" => c.track_id = be32(&b[4..]),
                        b"tfdt" => {
                            assert_eq!(b[0], 1, "tfdt version 1");
                            c.tfdt = be64(&b[4..]);
                        }
                        b"trun" => {
                            c.version = b[0];
                            let flags = be32(b) & 0xff_ffff;
                            assert_eq!(flags, 0xf01, "all per-sample fields");
                            let n = be32(&b[4..]) as usize;
                            data_offset = be32(&b[8..]) as usize;
                            assert_eq!(b.len(), 12 + 16 * n);
                            for i in 0..n {
                                let s = &b[12 + 16 * i..];
                                c.durations.push(be32(s));
                                c.sizes.push(be32(&s[4..]));
                                c.sync.push(be32(&s[8..]) & 0x0001_0000 == 0);
                                c.cts.push(be32(&s[12..]) as i32);
                            }
                        }
                        _ => panic!("unexpected box in traf"),
                    }
                }
            }
            _ => panic!("unexpected box in moof"),
        }
    }
    assert_eq!(
        data_offset,
        moof_len + 8,
        "data offset points at the mdat payload"
    );
    // Version 1 (signed offsets, which ffmpeg and GStreamer present late)
    // only where an offset must be negative: a track whose first decode
    // time came before its own B-frame delay could leave room.
    match c.version {
        0 => {}
        1 => assert!(
            c.cts.iter().any(|&x| x < 0),
            "version 1 without a negative offset"
        ),
        v => panic!("trun version {v}"),
    }
    let payload: usize = c.sizes.iter().map(|&s| s as usize).sum();
    assert_eq!(top[1].1.len(), payload, "mdat holds exactly the samples");
    assert!(!c.durations.is_empty(), "a part has samples");
    c
}

/// An attribute list (RFC 8216bis §4.2) as a map; quotes removed.
pub(crate) fn attrs(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (k, r) = rest.split_once('=').expect("attribute without =");
        let (v, r) = if let Some(r) = r.strip_prefix('"') {
            let end = r.find('"').expect("unterminated quoted string");
            (
                &r[..end],
                r[end + 1..].strip_prefix(',').unwrap_or(&r[end + 1..]),
            )
        } else {
            match r.split_once(',') {
                Some((v, r)) => (v, r),
                None => (r, ""),
            }
        };
        out.insert(k.to_owned(), v.to_owned());
        rest = r;
    }
    out
}

fn num(m: &HashMap<String, String>, k: &str) -> f64 {
    m.get(k)
        .unwrap_or_else(|| panic!("missing {k}"))
        .parse()
        .unwrap()
}

/// One media playlist, read back.
#[derive(Debug, Clone)]
pub(crate) struct Media {
    pub(crate) text: String,
    pub(crate) pl: m3u8_rs::MediaPlaylist,
    pub(crate) part_target: f64,
    pub(crate) target: u64,
    pub(crate) skipped: u64,
    /// `(msn, uri, EXTINF)` of the listed segments.
    pub(crate) segments: Vec<(u64, String, f64)>,
    /// `(msn, part, duration, uri, independent)` of every listed part.
    pub(crate) parts: Vec<(u64, u32, f64, String, bool)>,
    pub(crate) preload: Option<String>,
    /// `uri → (LAST-MSN, LAST-PART)`.
    pub(crate) reports: HashMap<String, (u64, u32)>,
    pub(crate) ended: bool,
    /// MSNs of the segments that start with `EXT-X-DISCONTINUITY`.
    pub(crate) discontinuities: Vec<u64>,
}

impl Media {
    pub(crate) fn last_part(&self) -> Option<(u64, u32)> {
        self.parts.last().map(|p| (p.0, p.1))
    }
}

/// Parses and checks one media playlist of `track`.
pub(crate) fn media(s: &LiveStream, track: TrackId, skip: bool) -> Media {
    let mut text = String::new();
    s.hls_media_playlist(track, &HlsOptions { skip, query: None }, &mut text)
        .unwrap();
    let name = s.track_info(track).unwrap().0.to_owned();
    let pl = m3u8_rs::parse_media_playlist_res(text.as_bytes())
        .unwrap_or_else(|e| panic!("m3u8-rs rejects the playlist: {e:?}\n{text}"));
    assert_eq!(pl.version, Some(9));
    let target = pl.target_duration;
    assert!(target >= 1);

    // LL-HLS tags, read from the text in order.
    let mut part_target = None;
    let mut control = None;
    let mut skipped = 0;
    let mut parts = Vec::new();
    let mut segments = Vec::new();
    let mut preload = None;
    let mut reports = HashMap::new();
    let mut msn = pl.media_sequence;
    let mut seen_segment_tag = false;
    let mut discontinuities = Vec::new();
    for line in text.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            discontinuities.push(msn);
        } else if let Some(a) = line.strip_prefix("#EXT-X-PART-INF:") {
            part_target = Some(num(&attrs(a), "PART-TARGET"));
        } else if let Some(a) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
            control = Some(attrs(a));
        } else if let Some(a) = line.strip_prefix("#EXT-X-SKIP:") {
            assert!(!seen_segment_tag, "EXT-X-SKIP before the segments");
            skipped = num(&attrs(a), "SKIPPED-SEGMENTS") as u64;
            assert!(skipped > 0);
            msn += skipped;
        } else if let Some(a) = line.strip_prefix("#EXT-X-PART:") {
            seen_segment_tag = true;
            let a = attrs(a);
            let uri = a["URI"].clone();
            let index = parts
                .iter()
                .filter(|p: &&(u64, u32, f64, String, bool)| p.0 == msn)
                .count() as u32;
            assert_eq!(uri, format!("{name}/{msn}.{index}.m4s"));
            parts.push((
                msn,
                index,
                num(&a, "DURATION"),
                uri,
                a.get("INDEPENDENT").is_some_and(|v| v == "YES"),
            ));
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            seen_segment_tag = true;
            let d: f64 = d.trim_end_matches(',').parse().unwrap();
            segments.push((msn, String::new(), d));
        } else if let Some(a) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            let a = attrs(a);
            assert_eq!(a["TYPE"], "PART");
            preload = Some(a["URI"].clone());
        } else if let Some(a) = line.strip_prefix("#EXT-X-RENDITION-REPORT:") {
            let a = attrs(a);
            reports.insert(
                a["URI"].clone(),
                (num(&a, "LAST-MSN") as u64, num(&a, "LAST-PART") as u32),
            );
        } else if !line.starts_with('#') && !line.is_empty() {
            let last = segments.last_mut().expect("URI after EXTINF");
            assert_eq!(line, format!("{name}/{msn}.m4s"));
            last.1 = line.to_owned();
            msn += 1;
        }
    }
    let part_target = part_target.expect("EXT-X-PART-INF");
    let control = control.expect("EXT-X-SERVER-CONTROL");
    assert_eq!(control["CAN-BLOCK-RELOAD"], "YES");
    let phb = num(&control, "PART-HOLD-BACK");
    assert!(
        phb >= 2.0 * part_target - 1e-9,
        "PART-HOLD-BACK {phb} < 2 × {part_target}"
    );
    assert!(num(&control, "HOLD-BACK") >= 3.0 * target as f64);
    assert!(num(&control, "CAN-SKIP-UNTIL") >= 6.0 * target as f64);

    // m3u8-rs and the text agree on the segments.
    assert_eq!(pl.segments.len(), segments.len());
    for (a, b) in pl.segments.iter().zip(&segments) {
        assert_eq!(a.uri, b.1);
        assert!((f64::from(a.duration) - b.2).abs() < 1e-3);
        assert!(
            b.2.round() as u64 <= target,
            "EXTINF {} above TARGETDURATION {target}",
            b.2
        );
        assert!(a.program_date_time.is_some(), "every segment has a PDT");
    }
    for w in pl.segments.windows(2) {
        assert!(
            w[0].program_date_time <= w[1].program_date_time,
            "PDT goes back"
        );
    }
    // Listed parts add up to their segment.
    for (m, _, d) in &segments {
        let ps: Vec<_> = parts.iter().filter(|p| p.0 == *m).collect();
        if !ps.is_empty() {
            let sum: f64 = ps.iter().map(|p| p.2).sum();
            assert!(
                (sum - d).abs() < 1e-5 * (ps.len() as f64 + 1.0),
                "parts of {m} sum to {sum}, EXTINF {d}"
            );
        }
    }
    let ended = pl.end_list;
    if !ended {
        let hint = preload.clone().expect("EXT-X-PRELOAD-HINT");
        if let Some((m, p)) = parts.last().map(|p| (p.0, p.1)) {
            // The hint names the part after the last one: the next in its
            // segment, or the first of a later one.
            let stem = hint
                .strip_prefix(&format!("{name}/"))
                .and_then(|h| h.strip_suffix(".m4s"))
                .expect("hint URI");
            let (hm, hp) = stem.split_once('.').expect("a part URI");
            let (hm, hp): (u64, u32) = (hm.parse().unwrap(), hp.parse().unwrap());
            assert!(
                (hm == m && hp == p + 1) || (hm > m && hp == 0),
                "hint {hint} after {m}.{p}"
            );
        }
    }
    // Every URI routes back, to bytes that exist (the hint: to a wait).
    let route = |uri: &str| {
        let u = LiveUri::parse(uri).unwrap_or_else(|| panic!("{uri} does not parse"));
        assert_eq!(u.to_string(), uri);
        u
    };
    for (msn, part, _, uri, _) in &parts {
        let LiveUri::Part {
            rendition,
            msn: m,
            part: p,
        } = route(uri)
        else {
            panic!("{uri} is not a part");
        };
        assert!(rendition == name && m == *msn && p == *part);
        assert!(matches!(s.part_lookup(track, m, p), PartLookup::Ready(_)));
    }
    for (msn, uri, _) in &segments {
        assert_eq!(
            route(uri),
            LiveUri::Segment {
                rendition: name.clone(),
                msn: *msn
            }
        );
    }
    if let Some(hint) = &preload {
        let LiveUri::Part { msn, part, .. } = route(hint) else {
            panic!("{hint} is not a part");
        };
        assert_eq!(s.part_lookup(track, msn, part), PartLookup::Wait, "{hint}");
    }
    // Every map names an init segment of this rendition that exists; the
    // first comes before any segment.
    let maps: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .map(|l| l.trim_end_matches('"'))
        .collect();
    assert!(!maps.is_empty(), "{text}");
    assert!(text.find("#EXT-X-MAP").unwrap() < text.find("#EXTINF").unwrap_or(text.len()));
    for uri in &maps {
        let LiveUri::Init {
            rendition,
            generation,
        } = route(uri)
        else {
            panic!("{uri} is not an init segment");
        };
        assert_eq!(rendition, name);
        assert!(s.init_of(track, generation).is_some(), "{uri}");
    }
    Media {
        text,
        pl,
        part_target,
        target,
        skipped,
        segments,
        parts,
        preload,
        reports,
        ended,
        discontinuities,
    }
}

/// Checks every playlist of the stream against each other and against the
/// bytes: rendition reports, part sizes, tfdt continuity, segment =
/// styp + parts. Returns the playlists.
pub(crate) fn all(s: &LiveStream) -> Vec<Media> {
    let ids: Vec<TrackId> = s.track_ids().collect();
    let lists: Vec<Media> = ids.iter().map(|&t| media(s, t, false)).collect();
    for (i, &t) in ids.iter().enumerate() {
        let name = s.track_info(t).unwrap().0;
        for (j, &u) in ids.iter().enumerate() {
            if i == j {
                continue;
            }
            let uname = s.track_info(u).unwrap().0;
            let report = lists[i].reports.get(&format!("{uname}.m3u8")).copied();
            // The other rendition's last segment and its last part.
            let o = &lists[j];
            let last_msn = o
                .segments
                .last()
                .map(|s| s.0)
                .max(o.parts.last().map(|p| p.0));
            let expected = o.last_part().filter(|p| Some(p.0) == last_msn);
            assert_eq!(report, expected, "rendition report of {uname} in {name}");
        }
        bytes(s, t, &lists[i]);
    }
    // All renditions share MSNs: the same first MSN (they evict together).
    for w in lists.windows(2) {
        if !w[0].segments.is_empty() && !w[1].segments.is_empty() {
            assert_eq!(w[0].pl.media_sequence, w[1].pl.media_sequence);
        }
    }
    lists
}

/// The bytes of every listed segment and part of `track`.
pub(crate) fn bytes(s: &LiveStream, track: TrackId, m: &Media) {
    let styp_len = 28;
    let mut prev: Option<Chunk> = None;
    let scale = f64::from(s.config().tracks[track.0].timescale);
    let pt_ticks = s.part_target_ticks(track).unwrap();
    let discontinuity_at = &m.discontinuities;
    for (i, seg) in m.pl.segments.iter().enumerate() {
        assert_eq!(
            seg.discontinuity,
            discontinuity_at.contains(&m.segments[i].0)
        );
    }
    let first = m.segments.first().map(|s| s.0);
    let msns: Vec<u64> = m
        .segments
        .iter()
        .map(|s| s.0)
        .chain(m.parts.iter().map(|p| p.0))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for msn in msns {
        let Some(seg) = s.segment(track, msn) else {
            // A gap: the playlist says so.
            assert!(
                m.text.contains("#EXT-X-GAP\n#EXTINF"),
                "missing bytes for {msn}"
            );
            prev = None;
            continue;
        };
        let whole = seg.to_vec();
        assert_eq!(&whole[4..8], b"styp");
        let mut concat = whole[..styp_len].to_vec();
        let mut idx = 0;
        let mut seg_duration = 0u64;
        while let Some(p) = s.part(track, msn, idx) {
            concat.extend_from_slice(&p);
            let c = parse_chunk(&p);
            assert_eq!(c.track_id, track.0 as u32 + 1);
            if let Some(prev) = &prev {
                assert!(c.sequence > prev.sequence, "mfhd sequence grows");
                let end = prev.tfdt + prev.duration();
                assert!(c.tfdt >= end || c.tfdt > prev.tfdt, "tfdt goes back");
                let continuous = !(idx == 0 && discontinuity_at.contains(&msn));
                if continuous {
                    assert_eq!(
                        c.tfdt, end,
                        "tfdt of {msn}.{idx} continues the previous part"
                    );
                }
            }
            // A part exceeds the target only when one sample must.
            assert!(
                c.duration() <= pt_ticks || c.durations.len() == 1,
                "part {msn}.{idx}: {} ticks > {pt_ticks} in {} samples",
                c.duration(),
                c.durations.len()
            );
            if let Some(listed) = m.parts.iter().find(|x| x.0 == msn && x.1 == idx) {
                assert!((listed.2 - c.duration() as f64 / scale).abs() < 1e-5);
                assert_eq!(listed.4, c.sync[0], "INDEPENDENT matches the first sample");
            }
            seg_duration += c.duration();
            prev = Some(c);
            idx += 1;
        }
        assert_eq!(whole, concat, "segment {msn} is styp + its parts");
        if let Some(&(_, _, d)) = m.segments.iter().find(|x| x.0 == msn) {
            assert!(seg.complete);
            assert!(
                (d - seg_duration as f64 / scale).abs() < 1e-5,
                "EXTINF of {msn}"
            );
        }
        let _ = first;
    }
}

/// Parses the MPD and checks its live attributes and timelines.
pub(crate) fn mpd(s: &LiveStream, now: std::time::Instant) -> dash_mpd_core::MPD {
    let mut text = String::new();
    s.dash_mpd(
        now,
        &headwater_packager::live::DashOptions {
            utc_timing_url: "/time",
            query: None,
        },
        &mut text,
    );
    let mpd = dash_mpd_core::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    assert_eq!(mpd.mpdtype.as_deref(), Some("dynamic"));
    assert!(mpd.availabilityStartTime.is_some());
    assert!(mpd.publishTime.is_some());
    assert_eq!(
        mpd.minimumUpdatePeriod.is_some(),
        mpd.mediaPresentationDuration.is_none()
    );
    assert!(mpd.timeShiftBufferDepth.is_some());
    assert_eq!(mpd.UTCTiming.len(), 1);
    assert_eq!(
        mpd.UTCTiming[0].schemeIdUri,
        "urn:mpeg:dash:utc:http-iso:2014"
    );
    assert_eq!(mpd.UTCTiming[0].value.as_deref(), Some("/time"));
    let lat = &mpd.ServiceDescription[0].Latency[0];
    assert!(lat.target.unwrap() > 0.0);
    let mut prev_start = None;
    let mut leads = std::collections::HashMap::new();
    for p in &mpd.periods {
        let start = p.start.unwrap();
        assert!(prev_start.is_none_or(|x| x < start), "periods in order");
        prev_start = Some(start);
        for a in &p.adaptations {
            for r in &a.representations {
                let st = r.SegmentTemplate.as_ref().unwrap();
                assert_eq!(st.availabilityTimeComplete, Some(false));
                assert!(st.availabilityTimeOffset.unwrap() > 0.0);
                let track = s.track_id(r.id.as_deref().unwrap()).unwrap();
                let tl = st.SegmentTimeline.as_ref().unwrap();
                let mut msn = st.startNumber.unwrap();
                let mut t = None;
                for e in &tl.segments {
                    let start = e.t.or(t).expect("first S has t");
                    assert!(t.is_none_or(|t| start >= t), "timeline goes back");
                    for k in 0..=e.r.unwrap_or(0) {
                        let seg_start = start + k as u64 * e.d;
                        let bytes = s.segment(track, msn).expect("listed segment exists");
                        // The bytes' decode times are the timeline's less a
                        // constant (the B-frame delay): the same for every
                        // segment of the track.
                        let first = parse_chunk(&bytes.chunks[1]);
                        let lead = seg_start
                            .checked_sub(first.tfdt)
                            .expect("S t at or after the tfdt");
                        assert_eq!(
                            *leads.entry(track).or_insert(lead),
                            lead,
                            "S t is the segment's tfdt plus the track's decode lead"
                        );
                        msn += 1;
                    }
                    t = Some(start + (e.r.unwrap_or(0) as u64 + 1) * e.d);
                }
            }
        }
    }
    mpd
}

/// The wall clock agrees between HLS and DASH: every segment's
/// `EXT-X-PROGRAM-DATE-TIME` is `availabilityStartTime + Period@start +
/// (t − presentationTimeOffset) / timescale` of the same segment in the
/// MPD, to the millisecond (both are written in milliseconds). Returns
/// how many segments were compared.
pub(crate) fn wall_clock(s: &LiveStream, now: std::time::Instant) -> usize {
    let mpd = mpd(s, now);
    let ast = mpd.availabilityStartTime.unwrap().timestamp_millis() as f64;
    let mut compared = 0;
    for p in &mpd.periods {
        let start = p.start.unwrap().as_secs_f64() * 1000.0;
        for a in &p.adaptations {
            for r in &a.representations {
                let track = s.track_id(r.id.as_deref().unwrap()).unwrap();
                let hls = media(s, track, false);
                let st = r.SegmentTemplate.as_ref().unwrap();
                let (ts, pto) = (
                    st.timescale.unwrap() as f64,
                    st.presentationTimeOffset.unwrap() as f64,
                );
                let mut msn = st.startNumber.unwrap();
                let mut t = 0;
                for e in &st.SegmentTimeline.as_ref().unwrap().segments {
                    t = e.t.unwrap_or(t);
                    for _ in 0..=e.r.unwrap_or(0) {
                        let dash = ast + start + (t as f64 - pto) / ts * 1000.0;
                        if let Some(k) = hls.segments.iter().position(|x| x.0 == msn) {
                            let pdt = hls.pl.segments[k].program_date_time.unwrap();
                            let pdt = pdt.timestamp_millis() as f64;
                            assert!(
                                (pdt - dash).abs() <= 1.5,
                                "segment {msn} of {}: PDT {pdt} ms, MPD {dash} ms",
                                r.id.as_deref().unwrap()
                            );
                            compared += 1;
                        }
                        t += e.d;
                        msn += 1;
                    }
                }
            }
        }
    }
    compared
}

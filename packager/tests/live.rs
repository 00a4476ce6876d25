//! The live packager driven by a virtual clock with synthetic access
//! units: every playlist read back by m3u8-rs, every MPD by
//! dash-mpd-core, every part and segment box by box (`live/check.rs`),
//! and property tests over random frame orders, gaps, jumps, keyframe
//! patterns and reconnects.

#[path = "live/check.rs"]
mod check;

use std::time::{Duration, Instant};

use headwater_packager::Error;
use headwater_packager::live::{
    AccessUnit, Event, HlsOptions, LiveConfig, LiveStream, LiveUri, PartLookup, Reload, Timeline,
    TrackConfig, TrackId,
};
use proptest::prelude::*;

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

/// An `avc1` sample entry with a High profile level 3.1 `avcC`.
fn avc1(w: u16, h: u16) -> Vec<u8> {
    let mut b = vec![0; 6];
    b.extend([0, 1]); // data_reference_index
    b.extend([0; 16]);
    b.extend(w.to_be_bytes());
    b.extend(h.to_be_bytes());
    b.extend([0, 0x48, 0, 0, 0, 0x48, 0, 0, 0, 0, 0, 0, 0, 1]);
    b.extend([0; 32]);
    b.extend([0, 0x18, 0xff, 0xff]);
    let sps = [
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10,
    ];
    let pps = [0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
    let mut c = vec![1, 0x64, 0x00, 0x1f, 0xff, 0xe1];
    c.extend((sps.len() as u16).to_be_bytes());
    c.extend(sps);
    c.push(1);
    c.extend((pps.len() as u16).to_be_bytes());
    c.extend(pps);
    b.extend(bx(b"avcC", &c));
    bx(b"avc1", &b)
}

/// An `mp4a` sample entry: AAC-LC, 48 kHz, stereo.
fn mp4a() -> Vec<u8> {
    let mut b = vec![0; 6];
    b.extend([0, 1]);
    b.extend([0; 8]);
    b.extend([0, 2, 0, 16, 0, 0, 0, 0]);
    b.extend((48000u32 << 16).to_be_bytes());
    let dsi = [0x05, 2, 0x11, 0x90];
    let mut dcd = vec![0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    dcd.extend(dsi);
    let mut es = vec![0, 1, 0, 0x04, dcd.len() as u8];
    es.extend(dcd);
    es.extend([0x06, 1, 0x02]);
    let mut esds = vec![0, 0, 0, 0, 0x03, es.len() as u8];
    esds.extend(es);
    b.extend(bx(b"esds", &esds));
    bx(b"mp4a", &b)
}

fn video(name: &str, w: u16, h: u16, scale: u32) -> TrackConfig {
    TrackConfig {
        name: name.into(),
        sample_entry: avc1(w, h),
        timescale: scale,
        language: None,
        bandwidth: None,
    }
}

fn audio(name: &str) -> TrackConfig {
    TrackConfig {
        name: name.into(),
        sample_entry: mp4a(),
        timescale: 48000,
        language: Some("en".into()),
        bandwidth: Some(128_000),
    }
}

/// A synthetic elementary stream: constant frame duration, a keyframe
/// every `gop` frames, B-frame style composition offsets for video.
#[derive(Clone, Debug)]
struct Gen {
    track: TrackId,
    scale: u32,
    dur: i64,
    base: i64,
    n: i64,
    gop: i64,
    video: bool,
}

impl Gen {
    fn video(track: usize, scale: u32, fps: u32, gop: i64) -> Self {
        Gen {
            track: TrackId(track),
            scale,
            dur: i64::from(scale / fps),
            base: 0,
            n: 0,
            gop,
            video: true,
        }
    }
    fn audio(track: usize) -> Self {
        Gen {
            track: TrackId(track),
            scale: 48000,
            dur: 1024,
            base: 0,
            n: 0,
            gop: 1,
            video: false,
        }
    }
    fn dts(&self) -> i64 {
        self.base + self.n * self.dur
    }
    /// Seconds of media time of the next access unit.
    fn time(&self) -> f64 {
        (self.n * self.dur) as f64 / f64::from(self.scale)
    }
    fn next(&mut self) -> AccessUnit {
        let dts = self.dts();
        let reorder = [2, 3, 1][(self.n % 3) as usize];
        let key = self.n % self.gop == 0;
        let size = 50 + (self.n * 7919 % 900) as usize;
        self.n += 1;
        AccessUnit {
            dts,
            pts: if self.video {
                dts + reorder * self.dur
            } else {
                dts
            },
            duration: None,
            keyframe: key,
            data: vec![(self.n % 251) as u8; size],
        }
    }
}

struct Rig {
    s: LiveStream,
    t0: Instant,
    gens: Vec<Gen>,
    /// Wall-clock offset of the media timeline (reconnect gaps).
    wall_offset: f64,
    events: Vec<Event>,
}

const UNIX_START: i64 = 1_700_000_000_000;

impl Rig {
    fn new(cfg: LiveConfig, gens: Vec<Gen>) -> Self {
        let t0 = Instant::now();
        Rig {
            s: LiveStream::new(cfg, t0, UNIX_START).unwrap(),
            t0,
            gens,
            wall_offset: 0.0,
            events: Vec::new(),
        }
    }

    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs.max(0.0))
    }

    fn now(&self) -> Instant {
        let t = self.gens.iter().map(Gen::time).fold(0.0, f64::max);
        self.at(t + self.wall_offset)
    }

    /// Pushes every generator's frames up to media time `until` (seconds),
    /// in time order, with the clock at each frame's time.
    fn run_until(&mut self, until: f64) {
        loop {
            let Some(g) = (0..self.gens.len())
                .min_by(|&a, &b| self.gens[a].time().total_cmp(&self.gens[b].time()))
            else {
                return;
            };
            let t = self.gens[g].time();
            if t >= until {
                return;
            }
            let now = self.at(t + self.wall_offset);
            while self.s.poll_timeout().is_some_and(|d| d <= now) {
                self.s.handle_timeout(now);
            }
            let au = self.gens[g].next();
            self.s.push(now, self.gens[g].track, au).unwrap();
            while let Some(e) = self.s.poll_event() {
                self.events.push(e);
            }
        }
    }

    /// The publisher drops for `gap` seconds and comes back with its clock
    /// reset to `base`.
    fn reconnect(&mut self, gap: f64, base: i64) {
        let now = self.now();
        self.s.discontinuity(now);
        self.wall_offset += gap;
        for g in &mut self.gens {
            let t = g.n * g.dur;
            g.base = base - t;
        }
    }
}

fn av_config() -> LiveConfig {
    LiveConfig::new(vec![video("v", 1280, 720, 90000), audio("a")])
}

fn av_rig(cfg: LiveConfig) -> Rig {
    Rig::new(cfg, vec![Gen::video(0, 90000, 30, 60), Gen::audio(1)])
}

#[test]
fn ll_hls_playlists_parts_and_bytes_agree() {
    let mut r = av_rig(av_config());
    let mut prev: Option<Vec<check::Media>> = None;
    for step in 1..=40 {
        r.run_until(f64::from(step) * 0.5);
        let lists = check::all(&r.s);
        if let Some(prev) = &prev {
            for (a, b) in prev.iter().zip(&lists) {
                assert!(b.pl.media_sequence >= a.pl.media_sequence);
                assert!(b.pl.discontinuity_sequence >= a.pl.discontinuity_sequence);
                assert!(b.last_part() >= a.last_part(), "last part went back");
                assert!(b.segments.len() >= a.segments.len());
                // A segment once listed keeps its duration.
                for s in &a.segments {
                    if let Some(t) = b.segments.iter().find(|t| t.0 == s.0) {
                        assert_eq!(s, t);
                    }
                }
            }
        }
        prev = Some(lists);
    }
    let lists = prev.unwrap();
    let v = &lists[0];
    // 20 s of a 2 s GOP: segments 0..=8 complete, 9 in progress.
    assert_eq!(v.segments.len(), 9, "{}", v.text);
    for s in &v.segments {
        assert!(
            (s.2 - 2.0).abs() < 1e-9,
            "video segments are one GOP: {s:?}"
        );
    }
    assert_eq!(v.target, 2);
    assert!((v.part_target - 0.333).abs() < 1e-9);
    // Every segment's first part is independent, the others are not.
    for p in &v.parts {
        assert_eq!(p.4, p.1 == 0, "{p:?}");
        assert!(p.2 <= v.part_target + 1e-9);
    }
    // Parts are listed only near the live edge (three target durations).
    let first_with_parts = v.parts[0].0;
    assert!(
        first_with_parts >= 5,
        "parts of {first_with_parts} are too old to list"
    );
    // Audio segments share the MSNs, cut at the video boundaries.
    let a = &lists[1];
    assert_eq!(
        a.segments.iter().map(|s| s.0).collect::<Vec<_>>(),
        v.segments.iter().map(|s| s.0).collect::<Vec<_>>()
    );
    for (sa, sv) in a.segments.iter().zip(&v.segments).skip(1) {
        assert!((sa.2 - sv.2).abs() < 0.03, "audio {sa:?} vs video {sv:?}");
    }
    // The first keyframe presents 67 ms in (its B-frame delay); the audio
    // before it is kept, in the first segment.
    assert!((a.segments[0].2 - v.segments[0].2 - 0.067).abs() < 0.01);
    assert_eq!(r.s.track_info(TrackId(1)).unwrap().2.dropped, 0);
    // Every event refers to something that exists (nothing was evicted).
    for e in &r.events {
        match e {
            Event::PartReady { track, msn, part } => {
                assert!(r.s.part(*track, *msn, *part).is_some())
            }
            Event::SegmentReady { track, msn } => {
                assert!(r.s.segment(*track, *msn).unwrap().complete)
            }
            _ => panic!("unexpected {e:?}"),
        }
    }
    check::mpd(&r.s, r.now());
}

#[test]
fn b_frames_keep_presentation_and_start_segments_at_the_keyframe() {
    let mut r = av_rig(av_config());
    r.run_until(4.5);
    let v = TrackId(0);
    let c = check::parse_chunk(&r.s.part(v, 1, 0).unwrap());
    // The keyframe keeps its composition offset (2 frames, version 0
    // offsets, none negative): it presents two frames after its tfdt, at
    // the segment's start.
    assert_eq!(c.cts[0], 2 * 3000);
    assert_eq!(c.tfdt, 60 * 3000);
    assert_eq!(c.cts[1], 3 * 3000);
    assert_eq!(c.cts[2], 3000);
    assert!(c.sync[0] && !c.sync[1]);
    assert_eq!(c.version, 0, "no negative offsets: version 0");
    // 9 frames of 3000 ticks fit 0.333 s; the 10th would not.
    assert_eq!(c.durations, vec![3000; 9]);
}

#[test]
fn blocking_reload_decisions() {
    let mut r = av_rig(av_config());
    r.run_until(6.1);
    let v = TrackId(0);
    let m = check::media(&r.s, v, false);
    let (lm, lp) = m.last_part().unwrap();
    let last_seg = m.segments.last().unwrap().0;
    assert_eq!(r.s.hls_reload(v, None, None), Reload::Ready);
    assert_eq!(r.s.hls_reload(v, None, Some(0)), Reload::BadRequest);
    assert_eq!(r.s.hls_reload(v, Some(lm), Some(lp)), Reload::Ready);
    assert_eq!(r.s.hls_reload(v, Some(lm - 1), Some(50)), Reload::Ready);
    assert_eq!(r.s.hls_reload(v, Some(last_seg), None), Reload::Ready);
    assert_eq!(r.s.hls_reload(v, Some(lm), Some(lp + 1)), Reload::Wait);
    assert_eq!(r.s.hls_reload(v, Some(last_seg + 1), None), Reload::Wait);
    assert_eq!(r.s.hls_reload(v, Some(lm + 1), Some(0)), Reload::Wait);
    // More than two segments ahead, or parts beyond the Advance Part
    // Limit (3 / 0.333 s = 9 parts), is a bad request.
    assert_eq!(r.s.hls_reload(v, Some(lm + 3), None), Reload::BadRequest);
    assert_eq!(
        r.s.hls_reload(v, Some(lm), Some(lp + 10)),
        Reload::BadRequest
    );
    assert_eq!(r.s.hls_reload(v, Some(lm), Some(lp + 9)), Reload::Wait);
    assert_eq!(
        r.s.hls_reload(TrackId(9), Some(0), None),
        Reload::BadRequest
    );
    // Part requests: published, coming (the preload hint), never coming.
    assert!(matches!(r.s.part_lookup(v, lm, lp), PartLookup::Ready(_)));
    let Some(LiveUri::Part { msn, part, .. }) = m.preload.as_deref().and_then(LiveUri::parse)
    else {
        panic!("no preload hint");
    };
    assert_eq!(r.s.part_lookup(v, msn, part), PartLookup::Wait);
    // At 6.1 s the lead just started segment 3 (no part yet): part 7 of
    // the finished segment 2 will never exist.
    assert_eq!((lm, lp, msn, part), (2, 6, 3, 0));
    assert_eq!(r.s.part_lookup(v, lm, lp + 1), PartLookup::NotFound);
    assert_eq!(r.s.part_lookup(v, lm - 1, 40), PartLookup::NotFound);
    assert_eq!(r.s.part_lookup(v, lm + 5, 0), PartLookup::NotFound);
    assert_eq!(r.s.part_lookup(TrackId(9), 0, 0), PartLookup::NotFound);

    // The wait ends with a PartReady event, and then the answer is Ready.
    r.events.clear();
    let mut t = 6.1;
    while !r
        .events
        .iter()
        .any(|e| matches!(e, Event::PartReady { track, .. } if *track == v))
    {
        t += 0.01;
        r.run_until(t);
    }
    assert_eq!(r.s.hls_reload(v, Some(lm), Some(lp + 1)), Reload::Ready);
    let m2 = check::media(&r.s, v, false);
    assert!(m2.last_part().unwrap() > (lm, lp));
}

#[test]
fn delta_updates_skip_what_is_older_than_can_skip_until() {
    let mut r = av_rig(av_config());
    r.run_until(40.2);
    for t in r.s.track_ids() {
        let full = check::media(&r.s, t, false);
        let delta = check::media(&r.s, t, true);
        assert!(delta.text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS="));
        assert_eq!(delta.pl.media_sequence, full.pl.media_sequence);
        assert_eq!(
            delta.skipped as usize + delta.segments.len(),
            full.segments.len()
        );
        assert_eq!(delta.segments[..], full.segments[delta.skipped as usize..]);
        assert_eq!(delta.parts, full.parts);
        // The skipped segments are older than CAN-SKIP-UNTIL (12 s) from the
        // end of the playlist; the first kept one is not.
        let until = 6.0 * full.target as f64;
        let open: f64 = full
            .parts
            .iter()
            .filter(|p| p.0 > full.segments.last().unwrap().0)
            .map(|p| p.2)
            .sum();
        let after =
            |i: usize| -> f64 { full.segments[i + 1..].iter().map(|s| s.2).sum::<f64>() + open };
        let k = delta.skipped as usize;
        assert!(after(k - 1) >= until - 1e-6);
        assert!(after(k) < until);
    }
    // Nothing to skip in a young stream: the full playlist.
    let mut young = av_rig(av_config());
    young.run_until(5.0);
    let d = check::media(&young.s, TrackId(0), true);
    assert_eq!(d.skipped, 0);
}

#[test]
fn reconnect_continues_the_timeline_with_a_discontinuity() {
    let mut r = av_rig(av_config());
    r.run_until(9.0);
    let before = check::all(&r.s);
    // The publisher is gone for 3 s and comes back with a clock at 5000 s.
    r.reconnect(3.0, 5000 * 90000);
    r.gens[1].base = 5000 * 48000 - r.gens[1].n * 1024;
    r.run_until(20.0);
    let after = check::all(&r.s);
    for (b, a) in before.iter().zip(&after) {
        assert!(a.pl.media_sequence == b.pl.media_sequence);
        let last_before = b.last_part().unwrap().0;
        assert_eq!(a.discontinuities, vec![last_before + 1], "{}", a.text);
        assert_eq!(a.pl.discontinuity_sequence, 0);
        // MSNs continue without a hole.
        for w in a.segments.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1);
        }
    }
    // The first segment after the reconnect starts 4 s later on the wall
    // clock than the last one before it ended: 3 s away, then 1 s of video
    // before the new session's first keyframe (dropped).
    let v = &after[0];
    let i = v
        .segments
        .iter()
        .position(|s| s.0 == v.discontinuities[0])
        .unwrap();
    let pdt = |k: usize| v.pl.segments[k].program_date_time.unwrap();
    let gap = (pdt(i) - pdt(i - 1)).num_milliseconds() as f64 / 1000.0 - v.segments[i - 1].2;
    assert!((gap - 4.0).abs() < 0.1, "gap {gap}");
    // The first keyframe presents two frames (67 ms) after the first
    // access unit's decode time, which is the stream's start.
    assert_eq!(pdt(0).timestamp_millis(), UNIX_START + 67);
    // The media timeline does not have the 3 s away in it: the new
    // session's first keyframe follows the old session's end by the 1 s
    // of dropped video only (its first frame presents at the old end, not
    // a B-frame delay later), so a player's buffer has no 4 s hole.
    let tfdt = |msn: u64| {
        let seg = r.s.segment(TrackId(0), msn).unwrap();
        check::parse_chunk(&seg.chunks[1]).tfdt
    };
    let (msn, prev) = (v.segments[i].0, &v.segments[i - 1]);
    let hole = (tfdt(msn) as f64 - tfdt(prev.0) as f64) / 90000.0 - prev.2;
    assert!((hole - 1.0).abs() < 0.005, "media hole {hole} s");
    // DASH: a Period per session, starting later than its first segment's
    // output time (the presentationTimeOffset) by the 3 s away: both
    // sessions tie their first access unit's decode time to its arrival.
    let mpd = check::mpd(&r.s, r.now());
    assert_eq!(mpd.periods.len(), 2);
    assert_eq!(mpd.periods[0].id.as_deref(), Some("p0"));
    assert_eq!(mpd.periods[1].id.as_deref(), Some("p1"));
    let p1 = &mpd.periods[1];
    let st = p1.adaptations[0].representations[0]
        .SegmentTemplate
        .as_ref()
        .unwrap();
    let pto = st.presentationTimeOffset.unwrap() as f64 / 90000.0;
    let lead = p1.start.unwrap().as_secs_f64() - pto;
    let want = 3.0;
    assert!(
        (lead - want).abs() < 0.002,
        "Period starts {lead} s after its PTO"
    );
    // And HLS and DASH agree on every segment's wall-clock time.
    assert!(check::wall_clock(&r.s, r.now()) > 10);
}

/// A returning publisher with another picture size and another clock rate
/// (issue 22, item 6: SRT at 320x240 and 90 kHz, then RTMP at another size)
/// starts a new period with init segments of its own, the window's earlier
/// segments keeping theirs; until they leave the window, then the old
/// configuration is forgotten.
/// The input timeline: what redundant ingest needs.
fn input_config() -> LiveConfig {
    let mut c = av_config();
    c.timeline = Timeline::Input;
    c
}

/// `secs` of 30 fps video with a 1 s GOP (B-frame offsets) and AAC, in
/// arrival order, each with the second it arrives at (its decode time).
fn arrivals(secs: f64) -> Vec<(f64, TrackId, AccessUnit)> {
    let mut gens = [Gen::video(0, 90000, 30, 30), Gen::audio(1)];
    let mut out = Vec::new();
    loop {
        let g = usize::from(gens[1].time() < gens[0].time());
        let t = gens[g].time();
        if t >= secs {
            return out;
        }
        out.push((t, gens[g].track, gens[g].next()));
    }
}

/// Pushes `aus` with the clock at each one's arrival (`t0` is second 0).
fn feed(s: &mut LiveStream, t0: Instant, aus: &[(f64, TrackId, AccessUnit)]) {
    for (t, track, au) in aus {
        let now = t0 + Duration::from_secs_f64(*t);
        while s.poll_timeout().is_some_and(|d| d <= now) {
            s.handle_timeout(now);
        }
        s.push(now, *track, au.clone()).unwrap();
        while s.poll_event().is_some() {}
    }
}

/// Per segment of a media playlist: (msn, `EXT-X-PROGRAM-DATE-TIME`,
/// `EXTINF`, gap), and whether it has a discontinuity.
fn entries(s: &LiveStream, track: TrackId) -> (Vec<(u64, String, String, bool)>, bool) {
    let mut text = String::new();
    let opts = HlsOptions {
        skip: false,
        query: None,
    };
    s.hls_media_playlist(track, &opts, &mut text).unwrap();
    let (mut pdt, mut inf, mut gap, mut out) = (String::new(), String::new(), false, Vec::new());
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = v.to_owned();
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            inf = v.to_owned();
        } else if line == "#EXT-X-GAP" {
            gap = true;
        } else if let Some(LiveUri::Segment { msn, .. }) = LiveUri::parse(line) {
            out.push((msn, pdt.clone(), inf.clone(), gap));
            gap = false;
        }
    }
    (out, text.contains("#EXT-X-DISCONTINUITY\n"))
}

fn bytes(s: &LiveStream, track: TrackId, msn: u64) -> Option<Vec<u8>> {
    let seg = s.segment(track, msn)?;
    seg.complete.then(|| seg.chunks.concat())
}

#[test]
fn on_the_input_timeline_a_late_node_makes_the_same_segments_under_the_same_numbers() {
    let aus = arrivals(30.0);
    let t0 = Instant::now();
    let mut a = LiveStream::new(input_config(), t0, UNIX_START).unwrap();
    feed(&mut a, t0, &aus);
    // Node b gets the same input from second 7.3, its stream made then.
    let join = 7.3;
    let late: Vec<_> = aus.iter().filter(|x| x.0 >= join).cloned().collect();
    let at = t0 + Duration::from_secs_f64(join);
    let mut b = LiveStream::new(input_config(), at, UNIX_START + 7300).unwrap();
    feed(&mut b, t0, &late);
    let (v, au) = (TrackId(0), TrackId(1));
    // Slots are 2 s of output time; b saw slot 4 (8 s) from its start,
    // so its first segment is slot 4's, numbered 4; a's first is slot 1's
    // (its first frame came 67 ms into slot 0, after the B-frame delay).
    let first = |s: &LiveStream| (0..20).find(|&m| s.segment(v, m).is_some()).unwrap();
    assert_eq!((first(&a), first(&b)), (1, 4));
    let (ea, disc_a) = entries(&a, v);
    let (eb, disc_b) = entries(&b, v);
    assert!(!disc_a && !disc_b);
    // Every complete segment b has after its first: the same bytes,
    // parts, duration and program date-time as a's of that number.
    let mut compared = 0;
    for m in 5..20 {
        let (Some(x), Some(y)) = (bytes(&b, v, m), bytes(&a, v, m)) else {
            continue;
        };
        assert!(x == y, "video segment {m} differs");
        assert!(
            bytes(&b, au, m) == bytes(&a, au, m),
            "audio segment {m} differs"
        );
        for p in 0..8 {
            assert_eq!(b.part(v, m, p), a.part(v, m, p), "part {m}.{p}");
        }
        let e = |l: &[(u64, String, String, bool)]| l.iter().find(|e| e.0 == m).cloned();
        assert_eq!(e(&eb), e(&ea), "playlist entry of {m}");
        compared += 1;
    }
    assert!(compared >= 9, "only {compared} segments compared");
}

#[test]
fn on_the_input_timeline_a_returning_publisher_leaves_gaps_not_a_discontinuity() {
    let aus = arrivals(30.0);
    let t0 = Instant::now();
    let mut a = LiveStream::new(input_config(), t0, UNIX_START).unwrap();
    feed(&mut a, t0, &aus);
    // Node c loses its publisher from second 10.5 to 15.2.
    let mut c = LiveStream::new(input_config(), t0, UNIX_START).unwrap();
    let (before, rest): (Vec<_>, Vec<_>) = aus.iter().cloned().partition(|x| x.0 < 10.5);
    feed(&mut c, t0, &before);
    c.discontinuity(t0 + Duration::from_secs_f64(10.5));
    let after: Vec<_> = rest.into_iter().filter(|x| x.0 >= 15.2).collect();
    feed(&mut c, t0, &after);
    let v = TrackId(0);
    let (ea, _) = entries(&a, v);
    let (ec, disc) = entries(&c, v);
    assert!(!disc, "a discontinuity where the timeline went on");
    // Segment 5 (10-12 s) was cut short, 6 and 7 were missed (gaps that
    // fill the time to 8), 8 (16 s on, whose first keyframe c saw) and on
    // are a's again, at the same program date-times.
    let of =
        |l: &[(u64, String, String, bool)], m: u64| l.iter().find(|e| e.0 == m).cloned().unwrap();
    let secs = |e: (u64, String, String, bool)| e.2.trim_end_matches(',').parse::<f64>().unwrap();
    for m in [6, 7] {
        let (g, x) = (of(&ec, m), of(&ea, m));
        assert!(g.3 && !x.3, "segment {m} is not a gap: {g:?}");
    }
    let span = |l: &[(u64, String, String, bool)]| (5..8).map(|m| secs(of(l, m))).sum::<f64>();
    assert!(
        (span(&ec) - span(&ea)).abs() < 0.002,
        "{} s to segment 8, not {}",
        span(&ec),
        span(&ea)
    );
    for m in 8..14 {
        assert_eq!(of(&ec, m), of(&ea, m));
        assert!(bytes(&c, v, m) == bytes(&a, v, m), "segment {m} differs");
    }
}

#[test]
fn a_returning_publisher_may_change_its_codec_configuration() {
    let mut cfg = LiveConfig::new(vec![video("v", 320, 240, 90000), audio("a")]);
    cfg.dvr_window = Duration::from_secs(12);
    let mut r = av_rig(cfg);
    r.run_until(8.0);
    let first_init = r.s.init(TrackId(0)).unwrap();
    // Another size, its video on a 1 kHz clock (FLV's), same tracks.
    r.reconnect(1.0, 0);
    let changed = vec![video("v", 640, 360, 1000), audio("a")];
    // Only between sessions: pushing first would refuse it (checked below).
    r.s.reconfigure(changed.clone()).unwrap();
    // The track keeps its clock: the configuration says 90 kHz.
    assert_eq!(r.s.config().tracks[0].timescale, 90000);
    assert_eq!(r.s.generation(), 1);
    // The video generator now counts 33 ms frames on a 1 kHz clock from 0.
    let g = &mut r.gens[0];
    let t = g.time();
    g.scale = 1000;
    g.dur = 33;
    g.n = (t * 1000.0 / 33.0).round() as i64;
    g.base = -g.n * g.dur;
    r.run_until(14.0);
    assert!(
        r.s.reconfigure(vec![video("v", 320, 240, 90000), audio("a")])
            .is_err(),
        "a configuration changes only between sessions"
    );
    let new_init = r.s.init(TrackId(0)).unwrap();
    assert_ne!(first_init, new_init);
    assert_eq!(r.s.init_of(TrackId(0), 0), Some(first_init.clone()));
    assert_eq!(r.s.init_of(TrackId(0), 1), Some(new_init));
    let all = check::all(&r.s);
    let v = &all[0];
    // The new session's segments follow a discontinuity and a new map.
    let maps: Vec<&str> = v
        .text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MAP"))
        .collect();
    assert_eq!(
        maps,
        [
            "#EXT-X-MAP:URI=\"v/init.mp4\"",
            "#EXT-X-MAP:URI=\"v/init-1.mp4\""
        ],
        "{}",
        v.text
    );
    let disc = v.text.find("#EXT-X-DISCONTINUITY\n").unwrap();
    assert!(v.text.find("v/init-1.mp4").unwrap() > disc);
    // The track kept its 90 kHz clock: the new session's frames last
    // 1/30 s there too (1 kHz input converted as it came).
    let last = v.segments.last().unwrap();
    let seg = r.s.segment(TrackId(0), last.0).unwrap();
    let chunk = check::parse_chunk(&seg.chunks[1]);
    assert!(
        chunk.durations.iter().all(|&d| (2970..=3030).contains(&d)),
        "{:?}",
        chunk.durations
    );
    // DASH: the second Period names its own init segment and size.
    let mpd = check::mpd(&r.s, r.now());
    assert_eq!(mpd.periods.len(), 2);
    let rep = |p: usize| &mpd.periods[p].adaptations[0].representations[0];
    let init = |p: usize| {
        rep(p)
            .SegmentTemplate
            .as_ref()
            .unwrap()
            .initialization
            .clone()
            .unwrap()
    };
    assert_eq!(init(0), "$RepresentationID$/init.mp4");
    assert_eq!(init(1), "$RepresentationID$/init-1.mp4");
    assert_eq!((rep(0).width, rep(1).width), (Some(320), Some(640)));
    // Other tracks or kinds cannot continue the stream.
    r.reconnect(1.0, 0);
    assert!(r.s.reconfigure(vec![video("v", 640, 360, 1000)]).is_err());
    assert!(r.s.reconfigure(vec![audio("v"), audio("a")]).is_err());
    // The same configuration again is no change; once the old session
    // has left the window, its configuration goes.
    r.s.reconfigure(changed).unwrap();
    assert_eq!(r.s.generation(), 1);
    r.run_until(30.0);
    assert_eq!(r.s.init_of(TrackId(0), 0), None);
    check::all(&r.s);
}

#[test]
fn dvr_window_evicts_and_discontinuity_sequence_grows() {
    let mut cfg = av_config();
    cfg.dvr_window = Duration::from_secs(10);
    let mut r = av_rig(cfg);
    r.run_until(15.0);
    r.reconnect(1.0, 0);
    r.run_until(60.0);
    let lists = check::all(&r.s);
    let v = &lists[0];
    let held: f64 = v.segments.iter().map(|s| s.2).sum();
    assert!(
        (10.0 - 1e-9..12.0 + 1e-9).contains(&held),
        "window holds {held} s"
    );
    assert!(v.pl.media_sequence > 20);
    assert_eq!(v.pl.discontinuity_sequence, 1, "the discontinuity slid out");
    assert!(v.discontinuities.is_empty());
    let evicted: Vec<_> = r
        .events
        .iter()
        .filter_map(|e| match e {
            Event::SegmentEvicted(s) => Some(s),
            _ => None,
        })
        .collect();
    let video_evicted: Vec<u64> = evicted
        .iter()
        .filter(|e| e.track == TrackId(0))
        .map(|e| e.msn)
        .collect();
    assert_eq!(video_evicted, (0..v.pl.media_sequence).collect::<Vec<_>>());
    for e in &evicted {
        let b = e.bytes.as_ref().unwrap();
        assert!(b.complete && b.len() > 28);
        assert!(r.s.segment(e.track, e.msn).is_none());
    }
    // bytes_held is what the held parts weigh.
    let mut sum = 0;
    for t in r.s.track_ids() {
        let m = &lists[t.0];
        let last = m.parts.last().unwrap().0;
        for msn in m.pl.media_sequence..=last {
            sum += r.s.segment(t, msn).map_or(0, |s| s.len() - 28);
        }
    }
    assert_eq!(sum, r.s.bytes_held());
    check::mpd(&r.s, r.now());
}

#[test]
fn byte_cap_bounds_memory() {
    let mut cfg = av_config();
    cfg.max_bytes = Some(200_000);
    let mut r = av_rig(cfg);
    for step in 1..=60 {
        r.run_until(f64::from(step));
        let open: u64 =
            r.s.track_ids()
                .map(|t| {
                    let m = check::media(&r.s, t, false);
                    m.last_part()
                        .and_then(|(msn, _)| r.s.segment(t, msn).filter(|s| !s.complete))
                        .map_or(0, |s| s.len())
                })
                .sum();
        let v = check::media(&r.s, TrackId(0), false);
        let tail: f64 = v.segments.iter().skip(1).map(|s| s.2).sum();
        assert!(
            r.s.bytes_held() <= 200_000 + open || tail < 3.0 * v.target as f64 + 1e-6,
            "{} held",
            r.s.bytes_held()
        );
    }
    check::all(&r.s);
}

#[test]
fn bad_timestamps_are_rejected_and_change_nothing() {
    let mut r = av_rig(av_config());
    r.run_until(3.0);
    let now = r.now();
    let snapshot = check::media(&r.s, TrackId(0), false).text;
    let last = r.gens[0].dts() - 3000;
    let au = |dts| AccessUnit {
        dts,
        pts: dts,
        duration: None,
        keyframe: false,
        data: vec![1; 10],
    };
    assert!(matches!(
        r.s.push(now, TrackId(0), au(last)),
        Err(Error::NonMonotonicDts { track: 0, .. })
    ));
    assert!(matches!(
        r.s.push(now, TrackId(0), au(last - 90000)),
        Err(Error::NonMonotonicDts { .. })
    ));
    assert!(matches!(
        r.s.push(now, TrackId(0), au(last + 11 * 90000)),
        Err(Error::TimestampJump { .. })
    ));
    let mut huge = au(last + 3000);
    huge.pts = huge.dts + (1 << 40);
    assert!(matches!(
        r.s.push(now, TrackId(0), huge),
        Err(Error::LiveTimestamp { .. })
    ));
    assert!(matches!(
        r.s.push(now, TrackId(7), au(0)),
        Err(Error::UnknownTrack(7))
    ));
    assert_eq!(check::media(&r.s, TrackId(0), false).text, snapshot);
    // And the stream goes on.
    r.run_until(6.0);
    check::all(&r.s);
    // A follower far ahead of the lead is refused, not buffered forever.
    let t = r.now();
    let mut a = r.gens[1].clone();
    let mut refused = false;
    for _ in 0..1000 {
        if let Err(e) = r.s.push(t, TrackId(1), a.next()) {
            assert!(matches!(e, Error::TrackAhead { track: 1 }));
            refused = true;
            break;
        }
    }
    assert!(refused);
}

#[test]
fn audio_only_streams_cut_on_duration() {
    let cfg = LiveConfig::new(vec![audio("a")]);
    let mut r = Rig::new(cfg, vec![Gen::audio(0)]);
    r.run_until(21.0);
    let lists = check::all(&r.s);
    let a = &lists[0];
    assert_eq!(a.segments.len(), 10);
    for s in &a.segments {
        // 94 frames of 1024 at 48 kHz: the first frame at or after 2 s.
        assert!((s.2 - 94.0 * 1024.0 / 48000.0).abs() < 1e-6, "{s:?}");
    }
    let mut text = String::new();
    r.s.hls_multivariant(None, &mut text);
    let m3u8_rs::Playlist::MasterPlaylist(m) =
        m3u8_rs::parse_playlist_res(text.as_bytes()).unwrap()
    else {
        panic!("not multivariant: {text}");
    };
    assert_eq!(m.variants.len(), 1);
    assert_eq!(m.variants[0].codecs.as_deref(), Some("mp4a.40.2"));
    check::mpd(&r.s, r.now());
}

#[test]
fn a_ladder_shares_segment_numbers() {
    let cfg = LiveConfig::new(vec![
        video("v720", 1280, 720, 90000),
        video("v360", 640, 360, 15360),
        audio("a"),
    ]);
    let mut r = Rig::new(
        cfg,
        vec![
            Gen::video(0, 90000, 30, 60),
            Gen::video(1, 15360, 30, 60),
            Gen::audio(2),
        ],
    );
    r.run_until(12.3);
    let lists = check::all(&r.s);
    let msns = |m: &check::Media| m.segments.iter().map(|s| s.0).collect::<Vec<_>>();
    assert_eq!(msns(&lists[0]), msns(&lists[1]));
    assert_eq!(msns(&lists[0]), msns(&lists[2]));
    for (a, b) in lists[0].segments.iter().zip(&lists[1].segments) {
        assert!((a.2 - b.2).abs() < 1e-3);
    }
    let mut text = String::new();
    r.s.hls_multivariant(Some("token=abc"), &mut text);
    let m3u8_rs::Playlist::MasterPlaylist(m) =
        m3u8_rs::parse_playlist_res(text.as_bytes()).unwrap()
    else {
        panic!("not multivariant: {text}");
    };
    assert_eq!(m.variants.len(), 2);
    assert_eq!(m.variants[0].uri, "v720.m3u8?token=abc");
    assert_eq!(
        m.variants[0].codecs.as_deref(),
        Some("avc1.64001f,mp4a.40.2")
    );
    assert_eq!(m.variants[0].audio.as_deref(), Some("audio"));
    assert_eq!(m.variants[1].resolution.unwrap().width, 640);
    assert_eq!(m.alternatives.len(), 1);
    assert_eq!(m.alternatives[0].uri.as_deref(), Some("a.m3u8?token=abc"));
    assert_eq!(m.alternatives[0].channels.as_deref(), Some("2"));
    let mpd = check::mpd(&r.s, r.now());
    assert_eq!(mpd.periods[0].adaptations.len(), 2);
    assert_eq!(mpd.periods[0].adaptations[0].representations.len(), 2);
}

#[test]
fn a_stalled_input_gets_its_part_closed_by_the_timer() {
    let cfg = LiveConfig::new(vec![video("v", 640, 360, 90000)]);
    let t0 = Instant::now();
    let mut s = LiveStream::new(cfg, t0, UNIX_START).unwrap();
    assert_eq!(s.poll_timeout(), None);
    for n in 0..3 {
        let au = AccessUnit {
            dts: n * 3000,
            pts: n * 3000,
            duration: Some(3000),
            keyframe: n == 0,
            data: vec![7; 100],
        };
        s.push(t0 + Duration::from_millis(n as u64 * 33), TrackId(0), au)
            .unwrap();
    }
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + Duration::from_millis(333));
    s.handle_timeout(deadline - Duration::from_millis(1));
    assert!(s.part(TrackId(0), 0, 0).is_none());
    s.handle_timeout(deadline);
    let c = check::parse_chunk(&s.part(TrackId(0), 0, 0).unwrap());
    assert_eq!(c.durations, vec![3000; 3]);
    assert!(matches!(
        s.poll_event(),
        Some(Event::PartReady {
            msn: 0,
            part: 0,
            ..
        })
    ));
    assert_eq!(s.poll_timeout(), None);
    // The playlist shows it and hints at the next one.
    let m = check::media(&s, TrackId(0), false);
    assert_eq!(m.last_part(), Some((0, 0)));
    assert_eq!(m.preload.as_deref(), Some("v/0.1.m4s"));
    s.finish(t0 + Duration::from_secs(1));
    let m = check::media(&s, TrackId(0), false);
    assert!(m.ended && m.segments.len() == 1);
    assert!(matches!(
        s.push(
            t0,
            TrackId(0),
            AccessUnit {
                dts: 9000,
                pts: 9000,
                duration: None,
                keyframe: true,
                data: vec![]
            }
        ),
        Err(Error::LiveEnded)
    ));
}

#[test]
fn a_stream_can_move_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<LiveStream>();
    shared::<Event>();
}

#[test]
fn a_finished_stream_has_a_final_mpd() {
    let s = feed_files(&["bframes.mp4"], false);
    let mpd = check::mpd(&s, Instant::now());
    assert!(mpd.minimumUpdatePeriod.is_none());
    let d = mpd.mediaPresentationDuration.unwrap().as_secs_f64();
    assert!((d - 10.08).abs() < 0.05, "{d}");
}

#[test]
fn bad_configurations_are_errors() {
    let t0 = Instant::now();
    let bad = |cfg: LiveConfig| LiveStream::new(cfg, t0, 0).unwrap_err();
    assert!(matches!(bad(LiveConfig::new(vec![])), Error::LiveConfig(_)));
    assert!(matches!(
        bad(LiveConfig::new(vec![video("a/b", 1, 1, 90000)])),
        Error::LiveConfig(_)
    ));
    assert!(matches!(
        bad(LiveConfig::new(vec![video("v", 1, 1, 0)])),
        Error::LiveConfig(_)
    ));
    assert!(matches!(
        bad(LiveConfig::new(vec![audio("x"), audio("x")])),
        Error::LiveConfig(_)
    ));
    let mut garbage = audio("a");
    garbage.sample_entry = vec![0, 0, 0, 9, b'm', b'p', b'4', b'a', 0];
    assert!(matches!(
        bad(LiveConfig::new(vec![garbage])),
        Error::Malformed { .. } | Error::Truncated { .. }
    ));
    let mut c = av_config();
    c.part_target = Duration::from_secs(3);
    assert!(matches!(bad(c), Error::LiveConfig(_)));
}

/// One step of a random publisher.
#[derive(Clone, Debug)]
enum Op {
    /// Video frames: how many, a keyframe first?, extra gap (ticks)
    /// before, and whether the second rendition's encoder made that frame
    /// a keyframe too (its GOPs need not line up).
    Video(u8, bool, u32, bool),
    /// Audio frames.
    Audio(u8),
    /// The wall clock moves without input.
    Idle(u16),
    /// The publisher reconnects with its clock at a new base.
    Reconnect(i64),
    /// A frame with a decode time that goes back.
    Backwards,
    /// A frame 20 s ahead (a publisher clock reset forward).
    FarJump,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..20, any::<bool>(), prop_oneof![4 => Just(0u32), 1 => 0u32..200_000], prop::bool::weighted(0.8))
            .prop_map(|(n, k, g, k2)| Op::Video(n, k, g, k2)),
        6 => (1u8..30).prop_map(Op::Audio),
        1 => (1u16..2000).prop_map(Op::Idle),
        1 => prop_oneof![(0i64..1_000_000), (-(1i64 << 60)..(1i64 << 60))].prop_map(Op::Reconnect),
        1 => Just(Op::Backwards),
        1 => Just(Op::FarJump),
    ]
}

proptest! {
    // 48 cases by default (a debug build checks every playlist and part
    // every few steps); PROPTEST_CASES=1000 for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_publishers_keep_every_invariant(ops in prop::collection::vec(op(), 1..160), cap in prop::option::of(50_000u64..400_000)) {
        let mut cfg = av_config();
        cfg.tracks.push(video("v2", 640, 360, 90000));
        cfg.dvr_window = Duration::from_secs(12);
        cfg.max_bytes = cap;
        let t0 = Instant::now();
        let mut s = LiveStream::new(cfg, t0, UNIX_START).unwrap();
        let (mut vdts, mut adts): (i64, i64) = (0, 0);
        let mut wall = Duration::ZERO;
        let mut prev: Option<Vec<check::Media>> = None;
        let mut video_in_session = false;
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Video(n, key, gap, key2) => {
                    vdts += i64::from(gap);
                    for k in 0..n {
                        let mut au = AccessUnit { dts: vdts, pts: vdts + 6000, duration: None, keyframe: key && k == 0, data: vec![k; 200] };
                        // The lead is never refused.
                        s.push(t0 + wall, TrackId(0), au.clone()).unwrap();
                        video_in_session = true;
                        au.keyframe &= key2;
                        au.data.truncate(80);
                        match s.push(t0 + wall, TrackId(2), au) {
                            Ok(()) | Err(Error::TrackAhead { .. }) => {}
                            Err(e) => panic!("second rendition refused: {e}"),
                        }
                        vdts += 3000;
                        wall += Duration::from_micros(33_333);
                    }
                }
                Op::Audio(n) => {
                    for _ in 0..n {
                        let au = AccessUnit { dts: adts, pts: adts, duration: Some(1024), keyframe: false, data: vec![9; 300] };
                        match s.push(t0 + wall, TrackId(1), au) {
                            Ok(()) | Err(Error::TrackAhead { .. }) => {}
                            Err(e) => panic!("audio refused: {e}"),
                        }
                        adts += 1024;
                    }
                }
                Op::Idle(ms) => {
                    wall += Duration::from_millis(u64::from(ms));
                    let now = t0 + wall;
                    while s.poll_timeout().is_some_and(|d| d <= now) {
                        s.handle_timeout(now);
                    }
                }
                Op::Reconnect(base) => {
                    s.discontinuity(t0 + wall);
                    video_in_session = false;
                    vdts = base;
                    adts = (i128::from(base) * 48000 / 90000) as i64;
                }
                Op::FarJump => {
                    let dts = vdts + 20 * 90000;
                    let au = AccessUnit { dts, pts: dts, duration: None, keyframe: true, data: vec![1] };
                    let r = s.push(t0 + wall, TrackId(0), au);
                    if video_in_session {
                        prop_assert!(matches!(r, Err(Error::TimestampJump { .. })), "{:?}", r);
                    } else {
                        prop_assert!(r.is_ok());
                        video_in_session = true;
                        vdts = dts + 3000;
                    }
                }
                Op::Backwards => {
                    let au = AccessUnit { dts: vdts - 6000, pts: vdts, duration: None, keyframe: true, data: vec![1] };
                    let r = s.push(t0 + wall, TrackId(0), au);
                    if video_in_session {
                        prop_assert!(matches!(r, Err(Error::NonMonotonicDts { .. })), "{:?}", r);
                    } else {
                        // The first frame of a session sets the timeline.
                        prop_assert!(r.is_ok());
                        video_in_session = true;
                    }
                }
            }
            while s.poll_event().is_some() {}
            if i % 8 == 7 || i + 1 == ops.len() {
                let lists = check::all(&s);
                check::wall_clock(&s, t0 + wall);
                if let Some(prev) = &prev {
                    for (a, b) in prev.iter().zip(&lists) {
                        prop_assert!(b.pl.media_sequence >= a.pl.media_sequence);
                        prop_assert!(b.pl.discontinuity_sequence >= a.pl.discontinuity_sequence);
                    }
                    // The lead's live edge never goes back (a follower's may
                    // leave the window when it stops sending).
                    prop_assert!(lists[0].last_part() >= prev[0].last_part());
                }
                // The DVR window: what is held beyond the oldest segment is
                // less than the window (plus the open segment).
                let v = &lists[0];
                let held: f64 = v.segments.iter().skip(1).map(|s| s.2).sum();
                let bound = 12f64.max(3.0 * v.target as f64);
                prop_assert!(held < bound + 1e-3, "window holds {} s", held);
                if let Some(cap) = cap {
                    let open: u64 = s.track_ids().map(|t| {
                        lists[t.0].last_part()
                            .and_then(|(msn, _)| s.segment(t, msn).filter(|x| !x.complete))
                            .map_or(0, |x| x.len())
                    }).sum();
                    // Over the cap only while the playlist holds no more
                    // than three target durations besides its oldest segment.
                    let tail: f64 = v.segments.iter().skip(1).map(|s| s.2).sum();
                    prop_assert!(s.bytes_held() <= cap + open || tail < 3.0 * v.target as f64 + 1e-6);
                }
                prev = Some(lists);
            }
        }
    }
}

#[test]
fn a_media_playlist_for_an_unknown_track_is_an_error() {
    let r = av_rig(av_config());
    let mut out = String::new();
    assert!(matches!(
        r.s.hls_media_playlist(TrackId(5), &HlsOptions::default(), &mut out),
        Err(Error::UnknownTrack(5))
    ));
    // An empty stream still has a valid playlist.
    check::all(&r.s);
}

/// Real media: every sample of every track of `files` pushed as an access
/// unit, interleaved by decode time on a virtual clock, then finished.
fn feed_files(files: &[&str], explicit_durations: bool) -> LiveStream {
    use headwater_packager::mp4::TrackKind;
    use headwater_packager::{Limits, Source};
    let media = headwater_testkit::media();
    let mut tracks = Vec::new();
    let mut aus: Vec<(f64, usize, AccessUnit)> = Vec::new();
    for f in files {
        let data = std::fs::read(media.join(f)).unwrap();
        let src = Source::index(&data, data.len() as u64, &Limits::default()).unwrap();
        for tr in &src.movie.tracks {
            if tr.kind == TrackKind::Other {
                continue;
            }
            let id = tracks.len();
            let scale = tr.timescale.get();
            tracks.push(TrackConfig {
                name: format!("t{id}"),
                sample_entry: tr.sample_entry.raw.clone(),
                timescale: scale,
                language: None,
                bandwidth: None,
            });
            let s = &tr.samples;
            for i in 0..s.len() {
                let dts = s.dts(i) as i64;
                let (off, size) = (s.offset(i) as usize, s.size(i) as usize);
                aus.push((
                    dts as f64 / f64::from(scale),
                    id,
                    AccessUnit {
                        dts,
                        pts: dts + i64::from(s.cts_offset(i)),
                        duration: explicit_durations.then(|| s.duration(i)),
                        keyframe: s.is_sync(i),
                        data: data[off..off + size].to_vec(),
                    },
                ));
            }
        }
    }
    aus.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let t0 = Instant::now();
    let mut s = LiveStream::new(LiveConfig::new(tracks), t0, UNIX_START).unwrap();
    let mut end = t0;
    for (t, id, au) in aus {
        let now = t0 + Duration::from_secs_f64(t);
        while s.poll_timeout().is_some_and(|d| d <= now) {
            s.handle_timeout(now);
        }
        s.push(now, TrackId(id), au).unwrap();
        end = now;
    }
    s.finish(end);
    s
}

/// Writes init + every segment of `track`, as its playlist lists them.
fn write_track(s: &LiveStream, track: TrackId, dir: &std::path::Path) -> String {
    let m = check::media(s, track, false);
    assert!(m.ended);
    let mut out = s.init(track).unwrap().to_vec();
    for (msn, _, _) in &m.segments {
        out.extend(s.segment(track, *msn).unwrap().to_vec());
    }
    let path = dir.join(format!("{}.mp4", s.track_info(track).unwrap().0));
    std::fs::write(&path, out).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The lossless bar: ffmpeg decodes the live output of a real file to the
/// same frames as the source, in count and order (edit lists ignored on
/// both sides: the live output has none, and AAC priming stays in).
fn assert_lossless(files: &[&str], explicit_durations: bool, streams: &[(&str, usize, &str)]) {
    use headwater_testkit::ffmpeg::frame_hashes;
    let s = feed_files(files, explicit_durations);
    check::all(&s);
    check::mpd(&s, Instant::now());
    let dir = headwater_testkit::TempDir::new("live");
    let media = headwater_testkit::media();
    let ignore = ["-ignore_editlist", "1"];
    for &(file, track, stream) in streams {
        let out = write_track(&s, TrackId(track), dir.path());
        let src = media.join(file);
        let want = frame_hashes(src.to_str().unwrap(), stream, &ignore);
        let got = frame_hashes(&out, stream, &ignore);
        assert!(!want.is_empty());
        assert_eq!(got.len(), want.len(), "{file} {stream}: frame count");
        assert!(got == want, "{file} {stream}: decoded frames differ");
    }
    // Nothing dropped: every access unit made it into a segment. And no
    // part needed a negative composition offset.
    for t in s.track_ids() {
        let (_, _, stats) = s.track_info(t).unwrap();
        assert_eq!(stats.dropped, 0);
        let m = check::media(&s, t, false);
        for &(msn, part, ..) in &m.parts {
            let c = check::parse_chunk(&s.part(t, msn, part).unwrap());
            assert_eq!(c.version, 0, "{files:?} track {t:?} part {msn}.{part}");
        }
    }
}

#[test]
fn live_h264_with_b_frames_and_aac_decode_like_the_source() {
    assert_lossless(
        &["bframes.mp4"],
        false,
        &[("bframes.mp4", 0, "v"), ("bframes.mp4", 1, "a")],
    );
}

#[test]
fn live_hevc_and_ac3_with_explicit_durations_decode_like_the_source() {
    let s = feed_files(&["hevc.mp4"], true);
    let (_, entry, _) = s.track_info(TrackId(0)).unwrap();
    assert!(entry.rfc6381().unwrap().starts_with("hvc1."));
    assert_lossless(
        &["hevc.mp4"],
        true,
        &[("hevc.mp4", 0, "v"), ("hevc.mp4", 1, "a")],
    );
}

#[test]
fn live_ladder_renditions_share_segments_and_decode_like_the_sources() {
    let files = [
        "ladder/180p.mp4",
        "ladder/270p.mp4",
        "ladder/360p.mp4",
        "ladder/audio.m4a",
    ];
    let s = feed_files(&files, false);
    let lists = check::all(&s);
    for m in &lists[1..3] {
        assert_eq!(m.segments.len(), lists[0].segments.len());
        for (a, b) in m.segments.iter().zip(&lists[0].segments) {
            assert_eq!(a.0, b.0);
            assert!((a.2 - b.2).abs() < 1e-3, "{a:?} vs {b:?}");
        }
    }
    assert_lossless(
        &files,
        false,
        &[
            ("ladder/180p.mp4", 0, "v"),
            ("ladder/270p.mp4", 1, "v"),
            ("ladder/360p.mp4", 2, "v"),
            ("ladder/audio.m4a", 3, "a"),
        ],
    );
}

/// ffmpeg plays the finished HLS media playlists themselves (init and
/// segments through their URIs) and decodes the source's frames.
#[test]
fn live_hls_playlists_play_in_ffmpeg() {
    use headwater_testkit::ffmpeg::frame_hashes;
    let s = feed_files(&["bframes.mp4"], false);
    let dir = headwater_testkit::TempDir::new("live-hls");
    for t in s.track_ids() {
        let name = s.track_info(t).unwrap().0.to_owned();
        std::fs::create_dir_all(dir.path().join(&name)).unwrap();
        let m = check::media(&s, t, false);
        std::fs::write(dir.path().join(format!("{name}.m3u8")), &m.text).unwrap();
        std::fs::write(
            dir.path().join(format!("{name}/init.mp4")),
            &*s.init(t).unwrap(),
        )
        .unwrap();
        for (msn, uri, _) in &m.segments {
            std::fs::write(dir.path().join(uri), s.segment(t, *msn).unwrap().to_vec()).unwrap();
        }
    }
    let media = headwater_testkit::media();
    let src = media.join("bframes.mp4");
    let ignore = ["-ignore_editlist", "1"];
    for (name, stream) in [("t0", "v"), ("t1", "a")] {
        let pl = dir.path().join(format!("{name}.m3u8"));
        let got = frame_hashes(pl.to_str().unwrap(), stream, &[]);
        let want = frame_hashes(src.to_str().unwrap(), stream, &ignore);
        assert_eq!(got.len(), want.len(), "{name}: frame count");
        assert!(got == want, "{name}: decoded frames differ");
    }
}

/// What the origin serves, as text: a stream 16 s in, reconnected for 1 s,
/// then 3 s more. `UPDATE_GOLDEN=1` rewrites the files after a deliberate
/// change; review the diff.
#[test]
fn live_manifests_match_the_golden_files() {
    let mut r = av_rig(av_config());
    r.run_until(16.2);
    r.reconnect(1.0, 0);
    r.run_until(19.3);
    check::all(&r.s);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/live");
    let mut text = String::new();
    r.s.hls_multivariant(None, &mut text);
    headwater_testkit::golden(&dir.join("master.m3u8"), &text);
    for (file, track, skip) in [
        ("v.m3u8", 0, false),
        ("v.skip.m3u8", 0, true),
        ("a.m3u8", 1, false),
    ] {
        let mut text = String::new();
        let opts = HlsOptions { skip, query: None };
        r.s.hls_media_playlist(TrackId(track), &opts, &mut text)
            .unwrap();
        headwater_testkit::golden(&dir.join(file), &text);
    }
    let mut text = String::new();
    r.s.dash_mpd(
        r.now(),
        &headwater_packager::live::DashOptions {
            utc_timing_url: "/time",
            query: None,
        },
        &mut text,
    );
    headwater_testkit::golden(&dir.join("manifest.mpd"), &text);
}

#[test]
fn extreme_timestamps_are_errors_not_panics() {
    let cfg = LiveConfig::new(vec![video("v", 640, 360, 90000), audio("a")]);
    let t0 = Instant::now();
    let mut s = LiveStream::new(cfg, t0, UNIX_START).unwrap();
    let au = |dts: i64, pts: i64, key| AccessUnit {
        dts,
        pts,
        duration: None,
        keyframe: key,
        data: vec![0; 4],
    };
    s.push(t0, TrackId(0), au(i64::MIN, i64::MIN, true))
        .unwrap();
    assert!(
        s.push(t0, TrackId(0), au(i64::MAX, i64::MAX, false))
            .is_err()
    );
    assert!(
        s.push(t0, TrackId(0), au(i64::MIN + 1, i64::MAX, false))
            .is_err()
    );
    assert!(
        s.push(t0, TrackId(1), au(i64::MAX, i64::MIN, true))
            .is_err()
    );
    s.push(t0, TrackId(1), au(i64::MIN, i64::MIN, true))
        .unwrap();
    let mut big = au(i64::MIN + 3000, i64::MIN + 3000, false);
    big.data = vec![0; (32 << 20) + 1];
    assert!(matches!(
        s.push(t0, TrackId(0), big),
        Err(Error::AccessUnitTooLarge { .. })
    ));
    s.push(t0, TrackId(0), au(i64::MIN + 3000, i64::MIN + 3000, false))
        .unwrap();
    s.discontinuity(t0 + Duration::from_secs(1));
    s.push(t0, TrackId(0), au(i64::MAX - 10, i64::MAX - 10, true))
        .unwrap();
    check::all(&s);
}

/// What a spill holds: the stream record and every segment record, kept
/// from the packager's events as `ingest`'s spill keeps them on disk.
#[derive(Default)]
struct Spill {
    stream: Vec<u8>,
    segments: std::collections::BTreeMap<(usize, u64), Vec<u8>>,
}

impl Spill {
    fn take(&mut self, s: &LiveStream, events: &mut Vec<Event>) {
        for e in events.drain(..) {
            match e {
                Event::PartReady { track, msn, part } => {
                    if part == 0 {
                        if track == TrackId(0) {
                            self.stream = s.saved_stream();
                        }
                        let header = s.saved_segment_header(track, msn).unwrap();
                        self.segments.insert((track.0, msn), header);
                    }
                    let record = s.saved_part(track, msn, part).unwrap();
                    self.segments
                        .get_mut(&(track.0, msn))
                        .unwrap()
                        .extend(record);
                }
                Event::SegmentReady { track, msn } => {
                    let file = self
                        .segments
                        .entry((track.0, msn))
                        .or_insert_with(|| s.saved_segment_header(track, msn).unwrap());
                    file.extend(s.saved_close(track, msn).unwrap());
                }
                Event::SegmentEvicted(ev) => {
                    self.segments.remove(&(ev.track.0, ev.msn));
                }
                _ => {}
            }
        }
    }

    fn restore(&self, tracks: usize, now: Instant, unix_ms: i64) -> LiveStream {
        let files: Vec<Vec<Vec<u8>>> = (0..tracks)
            .map(|t| {
                self.segments
                    .iter()
                    .filter(|((i, _), _)| *i == t)
                    .map(|(_, f)| f.clone())
                    .collect()
            })
            .collect();
        LiveStream::restore(&self.stream, &files, now, unix_ms).unwrap()
    }
}

#[test]
fn a_spilled_stream_comes_back_as_if_its_publisher_had_left() {
    let mut cfg = LiveConfig::new(vec![video("v", 320, 240, 90000), audio("a")]);
    cfg.dvr_window = Duration::from_secs(10);
    let mut r = av_rig(cfg);
    let mut spill = Spill::default();
    for step in 1..=12 {
        r.run_until(f64::from(step) * 0.5);
        spill.take(&r.s, &mut r.events);
    }
    // A reconnect with another picture size: two periods, two generations.
    r.reconnect(1.0, 0);
    r.s.reconfigure(vec![video("v", 640, 360, 90000), audio("a")])
        .unwrap();
    spill.take(&r.s, &mut r.events);
    spill.stream = r.s.saved_stream();
    for step in 13..=27 {
        r.run_until(f64::from(step) * 0.5 + 0.27);
        spill.take(&r.s, &mut r.events);
    }
    // The process dies here, mid-segment; what it had published is on disk.
    let now = r.now();
    let unix_ms = UNIX_START + now.duration_since(r.t0).as_millis() as i64;
    let mut back = spill.restore(2, now, unix_ms);
    // The original, had its publisher left instead.
    // Parts published per segment, as far as any reader could see.
    let published: Vec<Vec<(u64, usize)>> = (0..2)
        .map(|t| {
            let m = check::media(&r.s, TrackId(t), false);
            let first = m.segments[0].0;
            let count = |msn| {
                (0..)
                    .take_while(|&p| r.s.part(TrackId(t), msn, p).is_some())
                    .count()
            };
            (first..=m.segments.last().unwrap().0 + 1)
                .map(|msn| (msn, count(msn)))
                .collect()
        })
        .collect();
    r.s.discontinuity(now);
    let (was, is) = (check::all(&r.s), check::all(&back));
    for t in 0..2 {
        let (a, b) = (&was[t], &is[t]);
        assert_eq!(a.pl.media_sequence, b.pl.media_sequence);
        assert_eq!(a.pl.discontinuity_sequence, b.pl.discontinuity_sequence);
        // Every segment up to the one cut short is listed as it was, with
        // its program date-time, and its bytes are the same.
        let n = b.segments.len();
        assert_eq!(n, a.segments.len(), "{}\n---\n{}", a.text, b.text);
        assert_eq!(a.segments[..n - 1], b.segments[..n - 1]);
        for seg in &b.segments[..n - 1] {
            let (x, y) = (
                r.s.segment(TrackId(t), seg.0),
                back.segment(TrackId(t), seg.0),
            );
            let same = x.map(|x| x.to_vec()) == y.map(|y| y.to_vec());
            assert!(same, "segment {} of track {t}", seg.0);
        }
        // The last one holds the parts published before the crash.
        let last = b.segments[n - 1].0;
        let parts = published[t].iter().find(|p| p.0 == last).map_or(0, |p| p.1);
        assert!(parts > 0, "the crash came mid-segment");
        for p in 0..parts as u32 {
            let same = r.s.part(TrackId(t), last, p) == back.part(TrackId(t), last, p);
            assert!(same, "part {last}.{p} of track {t}");
        }
        assert!(back.part(TrackId(t), last, parts as u32).is_none());
        let pdt = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| {
                    l.starts_with("#EXT-X-PROGRAM-DATE-TIME") || l.starts_with("#EXT-X-MAP")
                })
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(pdt(&a.text), pdt(&b.text));
    }
    assert_eq!(back.init_of(TrackId(0), 0), r.s.init_of(TrackId(0), 0));
    assert_eq!(back.init_of(TrackId(0), 1), r.s.init_of(TrackId(0), 1));
    // The publisher comes back: numbers go on after a discontinuity.
    let last_msn = is[0].segments.last().unwrap().0;
    let disc = is[0].pl.discontinuity_sequence;
    back.reconfigure(vec![video("v", 640, 360, 90000), audio("a")])
        .unwrap();
    r.s = back;
    r.reconnect(2.0, 0);
    r.events.clear();
    r.run_until(20.0);
    let after = check::all(&r.s);
    let first_new = after[0]
        .segments
        .iter()
        .find(|s| s.0 > last_msn)
        .expect("new segments");
    assert_eq!(first_new.0, last_msn + 1);
    assert!(after[0].text.contains("#EXT-X-DISCONTINUITY"));
    assert!(after[0].pl.discontinuity_sequence >= disc);
    check::mpd(&r.s, r.now());
}

#[test]
fn a_torn_or_foreign_spill_is_an_error_or_a_shorter_stream() {
    let mut r = av_rig(av_config());
    let mut spill = Spill::default();
    r.run_until(7.0);
    spill.take(&r.s, &mut r.events);
    let now = r.now();
    let unix_ms = UNIX_START + now.duration_since(r.t0).as_millis() as i64;
    // Each segment record cut anywhere still reads (what tore is dropped).
    for ((_, _), file) in spill.segments.iter_mut() {
        file.truncate(file.len() - 3);
    }
    let back = spill.restore(2, now, unix_ms);
    check::all(&back);
    // The stream record cut or foreign is an error, not a panic.
    for cut in [0, 4, 5, spill.stream.len() / 2, spill.stream.len() - 1] {
        let files = vec![Vec::new(), Vec::new()];
        assert!(LiveStream::restore(&spill.stream[..cut], &files, now, unix_ms).is_err());
    }
    let files = vec![Vec::new(), Vec::new(), Vec::new()];
    assert!(LiveStream::restore(&spill.stream, &files, now, unix_ms).is_err());
}

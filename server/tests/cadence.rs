//! Keyframe cadence edge cases: NTSC 30000/1001 timing, GOPs from 0.5 s to
//! 8 s with a last segment of three frames, open GOPs, and B-frames whose
//! first composition time is not zero. Every EXTINF and SegmentTimeline
//! entry must equal the real duration of the frames in that segment (as
//! ffprobe counts them), and the rounded EXTINF never exceeds the target.

use std::process::Command;

use headwater_testkit::http::get;
use headwater_testkit::server::Server;
use headwater_testkit::{TempDir, media};
use m3u8_rs::Playlist;

fn server() -> Server {
    Server::start(env!("CARGO_BIN_EXE_headwater").as_ref(), &media(), &[])
}

/// Video packets in a file, by ffprobe.
fn packets(path: &std::path::Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a packet count")
}

fn check(asset: &str, frame: f64, max_target: u64) {
    let s = server();
    let dir = TempDir::new("cadence");
    let body = get(s.addr, &format!("/vod/{asset}/hls/v1.m3u8")).body;
    let Playlist::MediaPlaylist(p) = m3u8_rs::parse_playlist_res(&body).unwrap() else {
        panic!("not a media playlist")
    };
    let init = get(s.addr, &format!("/vod/{asset}/cmaf/v1/init.mp4")).body;
    let mut extinf = Vec::new();
    for (n, seg) in p.segments.iter().enumerate() {
        let mut bytes = init.clone();
        bytes.extend(get(s.addr, &format!("/vod/{asset}/cmaf/v1/{}.m4s", n + 1)).body);
        let file = dir.path().join(format!("{n}.mp4"));
        std::fs::write(&file, bytes).unwrap();
        let real = packets(&file) as f64 * frame;
        let declared = f64::from(seg.duration);
        assert!(
            (declared - real).abs() < 1e-5,
            "{asset} segment {}: EXTINF {declared} but {real} s of frames",
            n + 1
        );
        extinf.push(declared);
    }
    let rounded_max = extinf.iter().map(|d| d.round() as u64).max().unwrap();
    assert_eq!(
        p.target_duration,
        rounded_max.max(1),
        "{asset}: the smallest valid target"
    );
    assert!(
        p.target_duration <= max_target,
        "{asset}: target {}",
        p.target_duration
    );

    // The MPD's timeline says the same in ticks.
    let mpd = dash_mpd_core::parse(&get(s.addr, &format!("/vod/{asset}/dash/manifest.mpd")).text())
        .unwrap();
    let set = &mpd.periods[0].adaptations[0];
    let tpl = set.SegmentTemplate.as_ref().expect("SegmentTemplate");
    let scale = tpl.timescale.unwrap() as f64;
    let mut ds = Vec::new();
    for e in &tpl.SegmentTimeline.as_ref().unwrap().segments {
        for _ in 0..=e.r.unwrap_or(0) {
            ds.push(e.d as f64 / scale);
        }
    }
    assert_eq!(ds.len(), extinf.len(), "{asset}: segment count");
    for (d, e) in ds.iter().zip(&extinf) {
        assert!((d - e).abs() < 1e-5, "{asset}: DASH {d} vs HLS {e}");
    }
}

#[test]
fn ntsc_timescale() {
    check("ntsc", 1001.0 / 30000.0, 4);
}

#[test]
fn gops_from_half_a_second_to_eight_and_a_three_frame_end() {
    check("gops", 0.04, 8);
    // The plan really has those shapes.
    let s = server();
    let body = get(s.addr, "/vod/gops/hls/v1.m3u8").body;
    let Playlist::MediaPlaylist(p) = m3u8_rs::parse_playlist_res(&body).unwrap() else {
        panic!()
    };
    let d: Vec<f32> = p.segments.iter().map(|x| x.duration).collect();
    assert_eq!(d, [1.52, 8.0, 4.0, 0.12]);
}

#[test]
fn open_gop() {
    check("open-gop", 0.04, 4);
}

#[test]
fn first_composition_time_not_zero() {
    check("cts-offset", 0.04, 4);
    // Without an edit list the presentation starts two frames in; the
    // timeline says so rather than pretending it starts at zero.
    let s = server();
    let mpd = get(s.addr, "/vod/cts-offset/dash/manifest.mpd").text();
    assert!(mpd.contains("<S t=\"1024\""), "{mpd}");
}

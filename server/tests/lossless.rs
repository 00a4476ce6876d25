//! Lossless packaging, judged by ffmpeg: decoding the HLS and DASH output
//! over HTTP gives the same video frames (per-frame MD5, same count and
//! order) as decoding the source file, the audio access units are the
//! source's byte for byte from the first one presented, and the durations
//! match.
//!
//! Audio before the edit point (AAC encoder priming, the audio before a
//! mid-GOP trim) is not packaged (ARCHITECTURE.md, "Timestamps"): the
//! output's packets are the source's, less exactly those that present
//! before time 0 (by their midpoint). Decoded audio frames are not compared
//! there: without the priming frame a decoder's state differs (the first
//! frame's transform overlap, AAC's noise generator), not the data.
//!
//! Sources are decoded with `-ignore_editlist 1`: ffmpeg 5.1 applies an
//! edit list's sample skipping (AAC priming, pre-roll before a mid-GOP
//! edit) to progressive MP4 but not to fragmented MP4, which would make
//! the counts differ by the skipped frames even though every access unit
//! is there. Durations are checked two ways: the manifests' declared
//! durations (read back with m3u8-rs and dash-mpd-core) against ffmpeg's
//! edit-list-aware presented durations, and — where the edit list drops no
//! frames — the span of the frames ffmpeg decodes from the output.

use headwater_testkit::ffmpeg::{
    assert_same_audio, decoded_span, frame_hashes, keyframe_hashes, packet_times,
};
use headwater_testkit::http;
use headwater_testkit::server::Server;

fn server() -> Server {
    Server::start(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        &headwater_testkit::media(),
        &[],
    )
}

/// Checks one stream of `source` against an output URL: decoded frames
/// for video, access units for audio.
fn same_frames(source: &str, output: &str, source_stream: &str, output_stream: &str) {
    if source_stream.starts_with('a') {
        assert_same_audio(source, output, source_stream, output_stream);
        return;
    }
    let want = frame_hashes(source, source_stream, &["-ignore_editlist", "1"]);
    let got = frame_hashes(output, output_stream, &[]);
    assert!(!want.is_empty(), "{source} has no {source_stream} frames");
    assert_eq!(
        got.len(),
        want.len(),
        "{output}: {output_stream} frame count differs from {source}"
    );
    if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
        panic!("{output}: {output_stream} frame {i} differs from {source}");
    }
}

/// Seconds of video a mid-GOP edit keeps before the edit point (ffprobe's
/// negative packet times): the first segment carries them, and says so in
/// its duration.
fn preroll(source: &str) -> f64 {
    let first = packet_times(source, "v:0")
        .iter()
        .map(|p| p.0)
        .fold(0.0, f64::min);
    -first
}

/// Durations of every rendition as the HLS media playlists and the MPD declare them.
fn declared(s: &Server, asset: &str) -> Vec<(String, f64, f64)> {
    let master = http::get(s.addr, &format!("/vod/{asset}/hls/master.m3u8"));
    assert_eq!(master.status, 200);
    let m3u8_rs::Playlist::MasterPlaylist(master) =
        m3u8_rs::parse_playlist_res(&master.body).expect("valid HLS")
    else {
        panic!("not a multivariant playlist");
    };
    let mut uris: Vec<String> = master
        .variants
        .iter()
        .filter(|v| !v.is_i_frame)
        .map(|v| v.uri.clone())
        .collect();
    uris.extend(master.alternatives.iter().filter_map(|a| a.uri.clone()));
    uris.sort();
    uris.dedup();
    let mpd_text = http::get(s.addr, &format!("/vod/{asset}/dash/manifest.mpd")).text();
    let mpd = dash_mpd_core::parse(&mpd_text).expect("valid MPD");
    uris.iter()
        .map(|uri| {
            let id = uri.trim_end_matches(".m3u8").to_owned();
            let media = http::get(s.addr, &format!("/vod/{asset}/hls/{uri}"));
            let m3u8_rs::Playlist::MediaPlaylist(media) =
                m3u8_rs::parse_playlist_res(&media.body).expect("valid HLS")
            else {
                panic!("not a media playlist");
            };
            let hls: f64 = media.segments.iter().map(|s| f64::from(s.duration)).sum();
            let mut dash = None;
            for set in &mpd.periods[0].adaptations {
                for rep in &set.representations {
                    if rep.id.as_deref() == Some(id.as_str()) {
                        let tpl = rep
                            .SegmentTemplate
                            .as_ref()
                            .or(set.SegmentTemplate.as_ref())
                            .expect("SegmentTemplate");
                        let scale = tpl.timescale.unwrap_or(1) as f64;
                        let tl = tpl.SegmentTimeline.as_ref().expect("SegmentTimeline");
                        let ticks: u64 = tl
                            .segments
                            .iter()
                            .map(|s| s.d * (1 + s.r.unwrap_or(0).max(0) as u64))
                            .sum();
                        dash = Some(ticks as f64 / scale);
                    }
                }
            }
            let dash = dash.unwrap_or_else(|| panic!("representation {id} missing from the MPD"));
            (id, hls, dash)
        })
        .collect()
}

fn check_asset(asset: &str, source_file: &str, streams: &[&str]) {
    let s = server();
    let source = headwater_testkit::media().join(source_file);
    let source = source.to_str().unwrap();
    for manifest in [
        format!("/vod/{asset}/hls/master.m3u8"),
        format!("/vod/{asset}/dash/manifest.mpd"),
    ] {
        let url = s.url(&manifest);
        for stream in streams {
            same_frames(source, &url, stream, stream);
            // Where the edit list hides decoder pre-roll (more than AAC's one
            // priming frame), ffmpeg shows the pre-roll from fragmented MP4.
            let dropped = frame_hashes(source, stream, &["-ignore_editlist", "1"]).len()
                - frame_hashes(source, stream, &[]).len();
            if dropped <= 1 {
                let want = decoded_span(source, stream, &[]);
                let got = decoded_span(&url, stream, &[]);
                let tolerance = if *stream == "a" { 0.025 } else { 0.045 };
                assert!(
                    (got - want).abs() <= tolerance,
                    "{url}: {stream} lasts {got:.4}s, source {want:.4}s"
                );
            }
        }
    }
    for (id, hls, dash) in declared(&s, asset) {
        let stream = if id.starts_with('a') || id.contains("-a") {
            "a"
        } else {
            "v"
        };
        let mut want = decoded_span(source, stream, &[]);
        if stream == "v" {
            want += preroll(source);
        }
        let tolerance = if stream == "a" { 0.025 } else { 0.045 };
        assert!(
            (hls - want).abs() <= tolerance,
            "{asset}/{id}: HLS declares {hls:.4}s, source stream lasts {want:.4}s"
        );
        assert!(
            (dash - want).abs() <= tolerance,
            "{asset}/{id}: DASH declares {dash:.4}s, source stream lasts {want:.4}s"
        );
    }
}

#[test]
fn bframes_moov_at_end() {
    check_asset("bframes", "bframes.mp4", &["v", "a"]);
}

/// Video interleaved frame by frame with its audio: each video segment is
/// one span of the source with a trun per run of frames.
#[test]
fn muxed_video_segments_span_their_audio() {
    check_asset("muxed", "muxed.mp4", &["v", "a"]);
}

#[test]
fn faststart() {
    check_asset("faststart", "faststart.mp4", &["v", "a"]);
}

#[test]
fn fragmented_input() {
    check_asset("fragmented", "fragmented.mp4", &["v", "a"]);
}

#[test]
fn fragmented_input_with_sidx() {
    check_asset("fragmented-sidx", "fragmented-sidx.mp4", &["v", "a"]);
}

#[test]
fn edit_list_starting_mid_gop() {
    check_asset("editlist", "editlist.mp4", &["v", "a"]);
}

#[test]
fn audio_delayed_by_an_empty_edit() {
    check_asset("delayed-audio", "delayed-audio.mp4", &["v", "a"]);
}

#[test]
fn video_only() {
    check_asset("video-only", "video-only.mp4", &["v"]);
}

#[test]
fn audio_only() {
    check_asset("audio-only", "audio-only.m4a", &["a"]);
}

/// The GStreamer ladder: every video rendition and the separate audio file,
/// through each rendition's HLS playlist and through the MPD.
#[test]
fn ladder_every_rendition() {
    let s = server();
    let media = headwater_testkit::media();
    let mpd = s.url("/vod/ladder/dash/manifest.mpd");
    for (i, (rendition, file, stream)) in [
        ("180p-v1", "180p.mp4", "v"),
        ("270p-v1", "270p.mp4", "v"),
        ("360p-v1", "360p.mp4", "v"),
        ("audio-a1", "audio.m4a", "a"),
    ]
    .into_iter()
    .enumerate()
    {
        let source = media.join("ladder").join(file);
        let source = source.to_str().unwrap();
        same_frames(
            source,
            &s.url(&format!("/vod/ladder/hls/{rendition}.m3u8")),
            stream,
            stream,
        );
        // ffmpeg lists DASH representations in MPD order: 180p, 270p, 360p.
        let dash_stream = if stream == "v" {
            format!("v:{i}")
        } else {
            "a".to_owned()
        };
        same_frames(source, &mpd, stream, &dash_stream);
    }
}

/// HEVC (`hvc1`) with 5.1 AC-3.
#[test]
fn hevc_and_ac3() {
    check_asset("hevc", "hevc.mp4", &["v", "a"]);
}

/// HEVC (`hev1`) Main 10 with PQ, and E-AC-3.
#[test]
fn hevc_main10_and_eac3() {
    check_asset("hdr10", "hdr10.mp4", &["v", "a"]);
}

/// AV1 with Opus.
#[test]
fn av1_and_opus() {
    check_asset("av1", "av1.mp4", &["v", "a"]);
}

/// Each of three audio tracks of one file, through its own media playlist.
#[test]
fn every_audio_track_of_a_file() {
    let s = server();
    let source = headwater_testkit::media().join("multi-audio.mp4");
    let source = source.to_str().unwrap();
    same_frames(source, &s.url("/vod/multi-audio/hls/v1.m3u8"), "v", "v");
    for (i, id) in ["a2", "a3", "a4"].into_iter().enumerate() {
        let url = s.url(&format!("/vod/multi-audio/hls/{id}.m3u8"));
        same_frames(source, &url, &format!("a:{i}"), "a");
    }
}

/// I-frame playlists (byte ranges of the trick resource) decode to exactly
/// the source's keyframes, in order, and last as long as the rendition.
/// The DASH trick-mode segments are the same bytes (`http::ranges_on_the_trick_resource`).
#[test]
fn iframe_playlists_are_the_keyframes() {
    let s = server();
    let media = headwater_testkit::media();
    for (asset, file, rendition) in [
        ("bframes", "bframes.mp4", "v1"),
        ("editlist", "editlist.mp4", "v1"),
        ("hevc", "hevc.mp4", "v1"),
        ("av1", "av1.mp4", "v1"),
        ("ladder", "ladder/270p.mp4", "270p-v1"),
    ] {
        let source = media.join(file);
        let source = source.to_str().unwrap();
        let want = keyframe_hashes(source, &["-ignore_editlist", "1"]);
        assert!(want.len() >= 2, "{file}: {} keyframes", want.len());
        let url = s.url(&format!("/vod/{asset}/hls/{rendition}.iframes.m3u8"));
        assert_eq!(frame_hashes(&url, "v", &[]), want, "{url}");

        let body = http::get(
            s.addr,
            &format!("/vod/{asset}/hls/{rendition}.iframes.m3u8"),
        )
        .body;
        let m3u8_rs::Playlist::MediaPlaylist(p) = m3u8_rs::parse_playlist_res(&body).unwrap()
        else {
            panic!("not a media playlist")
        };
        assert!(p.i_frames_only, "{url}: EXT-X-I-FRAMES-ONLY");
        assert_eq!(p.segments.len(), want.len());
        // What ffmpeg decoded above were byte ranges of one trick resource.
        for seg in &p.segments {
            assert!(seg.byte_range.is_some(), "{url}: EXT-X-BYTERANGE");
            assert_eq!(seg.uri, format!("../cmaf/{rendition}/iframes.m4s"));
        }
        for seg in &p.segments {
            assert!((seg.duration.round() as u64) <= p.target_duration, "{url}");
        }
        let total: f64 = p.segments.iter().map(|s| f64::from(s.duration)).sum();
        let span = decoded_span(source, "v", &[]);
        assert!(
            (total - span).abs() < 0.045,
            "{url}: {total} s of keyframes, {span} s of video"
        );
    }
}

/// NTSC 30000/1001 timing.
#[test]
fn ntsc_timescale() {
    check_asset("ntsc", "ntsc.mp4", &["v", "a"]);
}

/// GOPs from 0.5 s to 8 s, a last segment of three frames.
#[test]
fn irregular_gops() {
    check_asset("gops", "gops.mp4", &["v", "a"]);
}

/// Open GOPs: leading B-frames after each keyframe in decode order.
#[test]
fn open_gops() {
    check_asset("open-gop", "open-gop.mp4", &["v", "a"]);
}

/// B-frames with no edit list: presentation starts two frames in.
#[test]
fn first_composition_time_not_zero() {
    check_asset("cts-offset", "cts-offset.mp4", &["v", "a"]);
}

/// HEVC Main 10 with HLG signalled in `colr`.
#[test]
fn hevc_hlg() {
    check_asset("hlg", "hlg.mp4", &["v", "a"]);
}

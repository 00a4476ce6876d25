//! Live end to end: ffmpeg and GStreamer publish over RTMP and SRT, and
//! the origin serves LL-HLS and low-latency DASH while they do. Checked:
//! the playlists parse and keep RFC 8216bis' rules, blocking reloads and
//! preload-hinted parts answer when the part exists, too-far requests are
//! 400, delta updates skip, ffmpeg decodes the live HLS and DASH without
//! errors, a wrong key is refused, a publisher who returns continues the
//! stream with a discontinuity, and a stream that needs a token gets one
//! into every URI. Real players on live streams are in `live_players.rs`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use headwater_testkit::live::{
    self, KEY, attr, ffmpeg_push, ffmpeg_push_sized, get_text, media_playlist_path, msn_range,
    rtmp_url, wait_until,
};
use headwater_testkit::server::{Server, admin_args, sqlite_in};
use headwater_testkit::{ffmpeg, http, scratch_dir};

const HEADWATER: &str = env!("CARGO_BIN_EXE_headwater");

#[test]
fn rtmp_publish_to_ll_hls_and_dash() {
    let s = live::start(HEADWATER.as_ref(), &["--stream", &format!("cam:{KEY}")]);
    let rtmp = s.logged_addr("rtmp");
    let mut pusher = ffmpeg_push(&rtmp_url(rtmp, "cam", KEY), 40, "flv");
    assert!(
        wait_until(Duration::from_secs(20), || get_text(
            &s,
            "/live/cam/hls/master.m3u8"
        )
        .0 == 200),
        "the stream never appeared"
    );
    let (_, master) = get_text(&s, "/live/cam/hls/master.m3u8");
    m3u8_rs::parse_master_playlist_res(master.as_bytes()).expect("multivariant parses");
    assert!(
        master.contains("avc1.") && master.contains("mp4a.40.2"),
        "{master}"
    );
    let media = media_playlist_path(&s, "cam");

    // Enough playlist for every check: 3 segments.
    assert!(wait_until(Duration::from_secs(20), || msn_range(
        &get_text(&s, &media).1
    )
    .1 >= 3));
    let r = http::get(s.addr, &media);
    assert_eq!(r.header("Cache-Control"), Some("public, max-age=1"));
    let text = r.text();
    let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("media playlist parses");
    let target = parsed.target_duration as f64;
    for seg in &parsed.segments {
        assert!(
            (seg.duration as f64).round() <= target,
            "EXTINF over TARGETDURATION: {text}"
        );
    }
    let part_target: f64 = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-PART-INF:"))
        .and_then(|l| attr(l, "PART-TARGET"))
        .expect("EXT-X-PART-INF")
        .parse()
        .unwrap();
    let control = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-SERVER-CONTROL:"))
        .expect("EXT-X-SERVER-CONTROL");
    assert!(control.contains("CAN-BLOCK-RELOAD=YES"), "{control}");
    let phb: f64 = attr(control, "PART-HOLD-BACK").unwrap().parse().unwrap();
    assert!(phb >= 2.0 * part_target, "{control}");
    let hb: f64 = attr(control, "HOLD-BACK").unwrap().parse().unwrap();
    assert!(hb >= 3.0 * target, "{control}");
    let mut parts = 0;
    for l in text.lines().filter(|l| l.starts_with("#EXT-X-PART:")) {
        let d: f64 = attr(l, "DURATION").unwrap().parse().unwrap();
        assert!(d <= part_target + 1e-3, "part longer than PART-TARGET: {l}");
        parts += 1;
    }
    assert!(parts >= 3, "{text}");
    assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{text}");
    assert!(text.contains("INDEPENDENT=YES"), "{text}");
    let hint = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))
        .expect("EXT-X-PRELOAD-HINT");
    assert!(hint.contains("TYPE=PART"), "{hint}");

    // A preload-hinted part is held until it exists, then served.
    let hinted = attr(hint, "URI").unwrap();
    let base = media.rsplit_once('/').unwrap().0;
    let part = http::get(s.addr, &format!("{base}/{hinted}"));
    assert_eq!(part.status, 200, "{hinted}");
    assert_eq!(&part.body[4..8], b"moof", "a part is moof+mdat");

    // Blocking reload: the next segment's first part.
    let (first, n) = msn_range(&get_text(&s, &media).1);
    let next = first + n;
    let r = http::get(s.addr, &format!("{media}?_HLS_msn={next}&_HLS_part=0"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Cache-Control"), Some("public, max-age=60"));
    let blocked = r.text();
    let rendition = media.rsplit('/').next().unwrap().trim_end_matches(".m3u8");
    assert!(
        blocked.contains(&format!("{rendition}/{next}.0.m4s")),
        "the blocking reload came back without part {next}.0:\n{blocked}"
    );
    // Too far ahead: 400.
    let far = http::get(s.addr, &format!("{media}?_HLS_msn={}", next + 10));
    assert_eq!(far.status, 400);
    assert_eq!(
        http::get(s.addr, &format!("{media}?_HLS_msn=x")).status,
        400
    );
    // A rendition report for the other rendition (audio).
    assert!(blocked.contains("#EXT-X-RENDITION-REPORT:"), "{blocked}");

    // ffmpeg decodes the live HLS and DASH without errors.
    for path in [&media, &"/live/cam/dash/manifest.mpd".to_owned()] {
        let said = ffmpeg::run(["-i", &s.url(path), "-t", "3", "-f", "null", "-"]);
        assert!(said.is_empty(), "ffmpeg on {path}: {said}");
    }
    let (status, mpd) = get_text(&s, "/live/cam/dash/manifest.mpd");
    assert_eq!(status, 200);
    assert!(mpd.contains("type=\"dynamic\"") && mpd.contains("availabilityTimeComplete=\"false\""));
    dash_mpd_core::parse(&mpd).expect("MPD parses");
    let (status, now) = get_text(&s, "/time");
    assert_eq!(status, 200);
    assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");

    // Delta updates once the playlist is longer than CAN-SKIP-UNTIL.
    let skip_until: f64 = attr(control, "CAN-SKIP-UNTIL").unwrap().parse().unwrap();
    assert!(skip_until >= 6.0 * target, "{control}");
    assert!(wait_until(Duration::from_secs(30), || {
        let (f, n) = msn_range(&get_text(&s, &media).1);
        let _ = f;
        n as f64 * target > skip_until + 2.0 * target
    }));
    let full = get_text(&s, &media).1;
    let delta = get_text(&s, &format!("{media}?_HLS_skip=YES")).1;
    let skipped: u64 = delta
        .lines()
        .find(|l| l.starts_with("#EXT-X-SKIP:"))
        .and_then(|l| attr(l, "SKIPPED-SEGMENTS"))
        .expect("EXT-X-SKIP in a delta update")
        .parse()
        .unwrap();
    assert!(skipped >= 1);
    assert!(delta.len() < full.len());
    let _ = pusher.kill();
    let _ = pusher.wait();
}

#[test]
fn wrong_keys_are_refused_and_nothing_is_created() {
    let s = live::start(HEADWATER.as_ref(), &["--stream", &format!("cam:{KEY}")]);
    let rtmp = s.logged_addr("rtmp");
    let mut bad = ffmpeg_push(&rtmp_url(rtmp, "cam", "not-the-key-000000"), 5, "flv");
    let t = Instant::now();
    let status = loop {
        if let Some(st) = bad.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "a refused publisher kept publishing"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut unknown = ffmpeg_push(&rtmp_url(rtmp, "other", KEY), 5, "flv");
    assert!(!unknown.wait().unwrap().success());
    assert_eq!(get_text(&s, "/live/cam/hls/master.m3u8").0, 404);
    assert_eq!(get_text(&s, "/live/other/hls/master.m3u8").0, 404);
    assert!(
        s.log().iter().any(|l| l.contains("refused")),
        "no log line for a refusal"
    );
    assert!(
        !s.log().iter().any(|l| l.contains("not-the-key-000000")),
        "a key in the log"
    );
}

#[test]
fn a_returning_publisher_continues_the_stream_with_a_discontinuity() {
    let s = live::start(HEADWATER.as_ref(), &["--stream", &format!("cam:{KEY}")]);
    let rtmp = s.logged_addr("rtmp");
    let mut first = ffmpeg_push(&rtmp_url(rtmp, "cam", KEY), 7, "flv");
    assert!(first.wait().unwrap().success());
    let media = media_playlist_path(&s, "cam");
    let before = get_text(&s, &media).1;
    let (f1, n1) = msn_range(&before);
    assert!(n1 >= 2, "{before}");
    let mut second = ffmpeg_push(&rtmp_url(rtmp, "cam", KEY), 7, "flv");
    assert!(second.wait().unwrap().success());
    assert!(wait_until(Duration::from_secs(10), || {
        msn_range(&get_text(&s, &media).1).1 > n1 + 1
    }));
    let after = get_text(&s, &media).1;
    let (f2, n2) = msn_range(&after);
    assert!(
        f2 >= f1 && f2 + n2 > f1 + n1,
        "MSNs went backwards:\n{before}\n{after}"
    );
    assert!(after.contains("#EXT-X-DISCONTINUITY\n"), "{after}");
    m3u8_rs::parse_media_playlist_res(after.as_bytes()).expect("parses");
    // ffmpeg reads across the discontinuity.
    reads_from_the_start(&s.url(&media), 10);
}

/// `kill -9` mid-stream loses no DVR window (issue 22): with
/// `ingest.spill_dir`, the restarted server lists every segment it had
/// listed, with the same bytes, before the publisher is back; when it is,
/// media sequence numbers go on after a discontinuity and ffmpeg plays
/// from the first restored segment across the crash into the new session.
#[test]
fn a_live_stream_survives_kill_9() {
    let d = scratch_dir("live-spill");
    let conf = d.join("headwater.toml");
    let spill = d.join("spill");
    std::fs::write(
        &conf,
        format!("[ingest]\nspill_dir = \"{}\"\n", spill.display()),
    )
    .unwrap();
    let stream = format!("cam:{KEY}");
    let args = ["--config", conf.to_str().unwrap(), "--stream", &stream];
    let s = live::start(HEADWATER.as_ref(), &args);
    let mut pusher = ffmpeg_push(&rtmp_url(s.logged_addr("rtmp"), "cam", KEY), 60, "flv");
    let media = {
        assert!(wait_until(Duration::from_secs(20), || get_text(
            &s,
            "/live/cam/hls/master.m3u8"
        )
        .0 == 200));
        media_playlist_path(&s, "cam")
    };
    assert!(wait_until(Duration::from_secs(30), || msn_range(
        &get_text(&s, &media).1
    )
    .1 >= 4));
    let before = get_text(&s, &media).1;
    let listed = segment_lines(&before);
    let bytes: Vec<Vec<u8>> = listed
        .iter()
        .map(|(_, uri)| segment(&s, &media, uri))
        .collect();
    s.kill9();
    let _ = pusher.kill();
    let _ = pusher.wait();

    let s = live::start(HEADWATER.as_ref(), &args);
    let (status, restored) = get_text(&s, &media);
    assert_eq!(status, 200, "the stream is back before its publisher");
    let now_listed = segment_lines(&restored);
    for (i, seg) in listed.iter().enumerate() {
        assert!(
            now_listed.contains(seg),
            "{seg:?} is listed again:\n{before}\n---\n{restored}"
        );
        assert!(
            segment(&s, &media, &seg.1) == bytes[i],
            "{} has the same bytes",
            seg.1
        );
    }
    let (first, n) = msn_range(&restored);
    let mut again = ffmpeg_push(&rtmp_url(s.logged_addr("rtmp"), "cam", KEY), 8, "flv");
    assert!(again.wait().unwrap().success());
    assert!(wait_until(Duration::from_secs(15), || {
        msn_range(&get_text(&s, &media).1).1 >= n + 3
    }));
    let after = get_text(&s, &media).1;
    let (first_after, _) = msn_range(&after);
    assert_eq!(first_after, first, "nothing left the window");
    assert!(after.contains("#EXT-X-DISCONTINUITY\n"), "{after}");
    m3u8_rs::parse_media_playlist_res(after.as_bytes()).expect("parses");
    // From the first restored segment across the crash into the new session.
    reads_from_the_start(&s.url(&media), n * 2 + 4);
}

/// ffmpeg decodes `seconds` of a live media playlist from its first
/// listed segment, without an error.
fn reads_from_the_start(url: &str, seconds: u64) {
    let t = seconds.to_string();
    ffmpeg::run([
        "-live_start_index",
        "0",
        "-i",
        url,
        "-t",
        &t,
        "-f",
        "null",
        "-",
    ]);
}

/// `(EXTINF line, URI)` of every complete segment of a media playlist.
fn segment_lines(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("#EXTINF"))
        .filter_map(|(i, l)| {
            let uri = lines[i + 1..].iter().find(|u| !u.starts_with('#'))?;
            Some(((*l).to_owned(), (*uri).to_owned()))
        })
        .collect()
}

fn segment(s: &Server, media: &str, uri: &str) -> Vec<u8> {
    let dir = &media[..media.rfind('/').unwrap() + 1];
    let r = http::get(s.addr, &format!("{dir}{uri}"));
    assert_eq!(r.status, 200, "{uri}");
    r.body
}

/// A publisher that comes back over another protocol with another picture
/// size continues the stream in a new period with its own init segment
/// (issue 22, item 6: it used to be refused until a restart).
#[test]
fn a_returning_publisher_may_change_size_and_protocol() {
    let s = live::start(HEADWATER.as_ref(), &["--stream", &format!("cam:{KEY}")]);
    let (srt, rtmp) = (s.logged_addr("srt"), s.logged_addr("rtmp"));
    let mut first = ffmpeg_push_sized(
        &format!("srt://{srt}?linger=5&streamid=live/cam?key={KEY}"),
        6,
        "mpegts",
        "320x240",
    );
    assert!(first.wait().unwrap().success());
    let media = media_playlist_path(&s, "cam");
    assert!(wait_until(Duration::from_secs(10), || {
        msn_range(&get_text(&s, &media).1).1 >= 2
    }));
    let n1 = msn_range(&get_text(&s, &media).1).1;
    let mut second = ffmpeg_push_sized(&rtmp_url(rtmp, "cam", KEY), 6, "flv", "640x360");
    assert!(second.wait().unwrap().success());
    assert!(
        wait_until(Duration::from_secs(10), || {
            msn_range(&get_text(&s, &media).1).1 > n1 + 1
        }),
        "the second publisher was not taken: {:?}",
        s.log()
    );
    let text = get_text(&s, &media).1;
    let maps: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .map(|l| l.trim_end_matches('"').to_owned())
        .collect();
    assert_eq!(maps.len(), 2, "{text}");
    let disc = text
        .find("#EXT-X-DISCONTINUITY\n")
        .expect("a discontinuity");
    assert!(text.find(&maps[1]).unwrap() > disc, "{text}");
    // Each map with a segment after it decodes at its publisher's size.
    let dir = media.rsplit_once('/').unwrap().0;
    let segs: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let first_after = text[disc..]
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    for (map, seg, size) in [
        (&maps[0], segs[0], (320, 240)),
        (&maps[1], first_after, (640, 360)),
    ] {
        let mut bytes = headwater_testkit::http::get(s.addr, &format!("{dir}/{map}")).body;
        let r = headwater_testkit::http::get(s.addr, &format!("{dir}/{seg}"));
        assert_eq!(r.status, 200, "{seg}");
        bytes.extend(r.body);
        let file =
            std::env::temp_dir().join(format!("reconf-{}-{}.mp4", std::process::id(), size.0));
        std::fs::write(&file, bytes).unwrap();
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=width,height", "-of", "csv=p=0"])
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&file);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{},{}", size.0, size.1),
            "{map} + {seg}"
        );
    }
    assert!(
        !s.log().iter().any(|l| l.contains("publisher refused")),
        "{:?}",
        s.log()
    );
}

#[test]
fn srt_publishers_share_one_port() {
    let s = live::start(
        HEADWATER.as_ref(),
        &[
            "--stream",
            &format!("a:{KEY}"),
            "--stream",
            &format!("b:{KEY}"),
        ],
    );
    let srt = s.logged_addr("srt");
    let mut one = ffmpeg_push(
        &format!("srt://{srt}?streamid=#!::r=live/a,m=publish,k={KEY}"),
        10,
        "mpegts",
    );
    let mut two = ffmpeg_push(
        &format!("srt://{srt}?streamid=live/b?key={KEY}"),
        10,
        "mpegts",
    );
    for name in ["a", "b"] {
        assert!(
            wait_until(Duration::from_secs(25), || {
                get_text(&s, &format!("/live/{name}/hls/master.m3u8")).0 == 200
                    && msn_range(&get_text(&s, &media_playlist_path(&s, name)).1).1 >= 2
            }),
            "stream {name} never got segments over SRT"
        );
    }
    let _ = one.kill();
    let _ = two.kill();
    let _ = one.wait();
    let _ = two.wait();
}

#[test]
fn gstreamer_publishes_over_rtmp() {
    let s = live::start(HEADWATER.as_ref(), &["--stream", &format!("gst:{KEY}")]);
    let rtmp = s.logged_addr("rtmp");
    let mut gst = Command::new("gst-launch-1.0")
        .args(["-q", "-e"])
        .args(["videotestsrc", "is-live=true", "num-buffers=250", "!"])
        .args(["video/x-raw,width=320,height=180,framerate=25/1", "!"])
        .args([
            "x264enc",
            "tune=zerolatency",
            "key-int-max=50",
            "!",
            "h264parse",
            "!",
            "queue",
            "!",
        ])
        .args(["flvmux", "name=m", "streamable=true", "!"])
        .arg("rtmp2sink")
        .arg(format!("location={}", rtmp_url(rtmp, "gst", KEY)))
        .args([
            "audiotestsrc",
            "is-live=true",
            "num-buffers=470",
            "!",
            "audioconvert",
            "!",
        ])
        .args(["avenc_aac", "!", "aacparse", "!", "queue", "!", "m."])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(25), || get_text(
            &s,
            "/live/gst/hls/master.m3u8"
        )
        .0 == 200
            && msn_range(&get_text(&s, &media_playlist_path(&s, "gst")).1).1
                >= 2),
        "the GStreamer publisher's stream never got segments"
    );
    let _ = gst.kill();
    let _ = gst.wait();
}

#[test]
fn catalog_streams_publish_with_their_key_and_play_with_a_token() {
    const ADMIN: &str = "admin-token-for-live-tests-01234";
    let db = sqlite_in(&scratch_dir("live-catalog"));
    let s = live::start(HEADWATER.as_ref(), &admin_args(ADMIN, &db));
    let api = headwater_testkit::admin::Api::new(s.admin_addr(), ADMIN);
    let r = api.call(
        "POST",
        "/api/v1/streams",
        Some(&format!(r#"{{"name": "sec", "publish_key": "{KEY}", "require_token": true, "dvr_window_secs": 600}}"#)),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let rtmp = s.logged_addr("rtmp");
    let mut pusher = ffmpeg_push(&rtmp_url(rtmp, "sec", KEY), 30, "flv");
    // Publishing works with the catalog's key; playback needs a token.
    assert!(wait_until(Duration::from_secs(20), || {
        get_text(&s, "/live/sec/hls/master.m3u8").0 == 403
    }));
    let r = api.call(
        "POST",
        "/api/v1/tokens",
        Some(r#"{"stream": "sec", "ttl_seconds": 600}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let t: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let token = t["token"].as_str().unwrap().to_owned();
    let master_url = t["hls"].as_str().unwrap().to_owned();
    assert!(wait_until(Duration::from_secs(20), || get_text(
        &s,
        &master_url
    )
    .0 == 200));
    let (_, master) = get_text(&s, &master_url);
    let variant = master
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap()
        .to_owned();
    assert!(variant.ends_with(&format!("token={token}")), "{master}");
    let media = format!("/live/sec/hls/{variant}");
    assert!(wait_until(Duration::from_secs(20), || msn_range(
        &get_text(&s, &media).1
    )
    .1 >= 1));
    let text = get_text(&s, &media).1;
    for l in text.lines().filter(|l| l.contains("URI=\"")) {
        let uri = attr(l, "URI").unwrap();
        assert!(uri.ends_with(&format!("token={token}")), "{l}");
    }
    let part = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .filter_map(|l| attr(l, "URI"))
        .next()
        .unwrap();
    assert_eq!(
        http::get(s.addr, &format!("/live/sec/hls/{part}")).status,
        200
    );
    let bare = part.split('?').next().unwrap();
    assert_eq!(
        http::get(s.addr, &format!("/live/sec/hls/{bare}")).status,
        403
    );
    let (status, mpd) = get_text(&s, t["dash"].as_str().unwrap());
    assert_eq!(status, 200);
    assert!(mpd.contains(&format!("m4s?token={token}")), "{mpd}");
    // Per-stream stats, in /metrics and in the API.
    assert!(
        wait_until(Duration::from_secs(10), || {
            api.call("GET", "/metrics", None)
                .body
                .contains("headwater_live_keyframe_interval_seconds{stream=\"sec\",track=\"v0\"} 2")
        }),
        "{}",
        api.call("GET", "/metrics", None).body
    );
    let m = api.call("GET", "/metrics", None).body;
    for needle in [
        "headwater_live_on_air{stream=\"sec\"} 1",
        "headwater_live_input_frames_total{stream=\"sec\",track=\"v0\"}",
        "headwater_live_input_bytes_total{stream=\"sec\",track=\"a0\"}",
        "headwater_live_last_frame_age_seconds{stream=\"sec\"}",
        "headwater_live_requests_total{stream=\"sec\"}",
        "headwater_ingest_refused_total{reason=\"key\"}",
        "headwater_ingest_refused_total{reason=\"rate\"}",
    ] {
        assert!(m.contains(needle), "/metrics lacks {needle}:\n{m}");
    }
    let r = api.call("GET", "/api/v1/streams/sec/stats", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let st: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(st["on_air"], true, "{st}");
    assert!(st["tracks"][0]["frames"].as_u64().unwrap() > 25, "{st}");
    assert!(st["requests"].as_u64().unwrap() >= 3, "{st}");
    assert_eq!(
        api.call("GET", "/api/v1/streams/nope/stats", None).status,
        404
    );
    // A rotated publish key stops the old one from publishing again.
    let _ = pusher.kill();
    let _ = pusher.wait();
    let r = api.call("POST", "/api/v1/streams/sec/key", None);
    assert_eq!(r.status, 200);
    std::thread::sleep(Duration::from_millis(300));
    let mut old = ffmpeg_push(&rtmp_url(rtmp, "sec", KEY), 5, "flv");
    assert!(
        !old.wait().unwrap().success(),
        "the rotated-out key still publishes"
    );
}

/// `(timescale, end of the last listed segment)` per Representation of a
/// dynamic MPD, in seconds, from its `SegmentTimeline` (exact ticks).
fn mpd_track_ends(mpd: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for rep in mpd.split("<Representation").skip(1) {
        let id = attr_xml(rep, "id").unwrap();
        let scale: f64 = attr_xml(rep, "timescale").unwrap().parse().unwrap();
        let mut t = 0i64;
        let mut end = 0i64;
        let body = &rep[..rep.find("</Representation>").unwrap_or(rep.len())];
        for s in body.split("<S ").skip(1) {
            let s = &format!(" {s}");
            if let Some(start) = attr_xml(s, "t") {
                t = start.parse().unwrap();
            }
            let d: i64 = attr_xml(s, "d").unwrap().parse().unwrap();
            let r: i64 = attr_xml(s, "r").map_or(0, |r| r.parse().unwrap());
            t += d * (r + 1);
            end = t;
        }
        out.push((id, end as f64 / scale));
    }
    out
}

fn attr_xml(s: &str, name: &str) -> Option<String> {
    let p = s.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(s[p..p + s[p..].find('"')?].to_owned())
}

/// The end of each stream of a media file, from its packets: `(video, audio)` seconds.
fn input_ends(path: &std::path::Path) -> (f64, f64) {
    let mut ends = (0.0f64, 0.0f64);
    for (sel, slot) in [("v:0", 0), ("a:0", 1)] {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", sel, "-show_entries"])
            .args(["packet=pts_time,duration_time", "-of", "csv=p=0"])
            .arg(path)
            .output()
            .unwrap();
        let end = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.split(',');
                Some(f.next()?.parse::<f64>().ok()? + f.next()?.parse::<f64>().ok()?)
            })
            .fold(0.0, f64::max);
        if slot == 0 {
            ends.0 = end;
        } else {
            ends.1 = end;
        }
    }
    ends
}

/// Ten minutes of media through RTMP (pushed faster than real time) keep
/// audio and video in sync: the difference between the tracks' ends in the
/// output equals the input's within one AAC frame.
#[test]
fn ten_minutes_of_media_stay_in_sync() {
    let s = live::start(HEADWATER.as_ref(), &["--stream", &format!("long:{KEY}")]);
    let rtmp = s.logged_addr("rtmp");
    let dir = scratch_dir("live-sync");
    let flv = dir.join("long.flv");
    let flv_path = flv.to_str().unwrap();
    let mut args = vec!["-y", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25"];
    args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    args.extend(["-t", "600", "-c:v", "libx264", "-preset", "ultrafast"]);
    args.extend(["-bf", "2", "-g", "50", "-c:a", "aac", "-b:a", "64k"]);
    args.push(flv_path);
    ffmpeg::run(args);
    let (in_v, in_a) = input_ends(&flv);
    let url = rtmp_url(rtmp, "long", KEY);
    ffmpeg::run(["-i", flv_path, "-c", "copy", "-f", "flv", &url]);
    // Everything pushed is packaged once the pipeline has drained and the
    // publisher's session ended.
    assert!(
        s.wait_for_log("publisher left", Duration::from_secs(60)),
        "the publisher's session never ended"
    );
    let (status, mpd) = get_text(&s, "/live/long/dash/manifest.mpd");
    assert_eq!(status, 200);
    let ends = mpd_track_ends(&mpd);
    let video = ends
        .iter()
        .find(|(id, _)| id.starts_with('v'))
        .expect("video")
        .1;
    let audio = ends
        .iter()
        .find(|(id, _)| id.starts_with('a'))
        .expect("audio")
        .1;
    assert!(
        video > 590.0,
        "only {video} s of video were packaged: {ends:?}"
    );
    let drift = (audio - video) - (in_a - in_v);
    let aac_frame = 1024.0 / 48_000.0;
    assert!(
        drift.abs() < aac_frame,
        "A/V drift {drift:.4} s after 10 minutes (output ends {ends:?}, input ends video {in_v} audio {in_a})"
    );
}

/// A recorded stream's segments become a VOD asset the VOD URLs serve
/// after the stream ends: every frame the publisher sent is in it.
#[test]
fn recorded_streams_become_vod_assets() {
    const ADMIN: &str = "admin-token-for-record-tests-0123";
    let dir = scratch_dir("live-record");
    let media = dir.join("media");
    let s = Server::start_in(
        HEADWATER.as_ref(),
        &dir,
        ADMIN,
        &["--rtmp-listen", "127.0.0.1:0", "--srt-listen", "off"],
    );
    let api = headwater_testkit::admin::Api::new(s.admin_addr(), ADMIN);
    let r = api.call(
        "POST",
        "/api/v1/streams",
        Some(&format!(
            r#"{{"name": "show", "publish_key": "{KEY}", "record": true}}"#
        )),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let rtmp = s.logged_addr("rtmp");
    let mut pusher = ffmpeg_push(&rtmp_url(rtmp, "show", KEY), 6, "flv");
    assert!(pusher.wait().unwrap().success());
    assert!(s.wait_for_log("publisher left", Duration::from_secs(30)));
    let stats: serde_json::Value =
        serde_json::from_str(&api.call("GET", "/api/v1/streams/show/stats", None).body).unwrap();
    let sent = stats["tracks"][0]["frames"].as_u64().unwrap();
    assert!(sent >= 140, "{stats}");
    let rec = std::fs::read_dir(&media)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("rec-show-"))
        .expect("a recording directory");
    // Give the writer thread a moment to flush the last segment.
    let master = format!("/vod/{rec}/hls/master.m3u8");
    assert!(
        wait_until(Duration::from_secs(10), || get_text(&s, &master).0 == 200),
        "{}",
        get_text(&s, &master).1
    );
    for url in [master.clone(), format!("/vod/{rec}/dash/manifest.mpd")] {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(s.url(&url))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let n: u64 = text
            .lines()
            .find_map(|l| l.trim().trim_end_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("{url}: no frame count in {text:?}"));
        assert_eq!(
            n, sent,
            "{url}: the recording has {n} frames, the publisher sent {sent}"
        );
    }
}

/// Datagrams from nobody on the SRT port are a few log lines, not one
/// each; the rest is counted in `/metrics` (issue 22, item 7: 23,000
/// datagrams in a second were 14,766 WARN lines).
#[test]
fn a_datagram_flood_is_a_few_log_lines() {
    let admin = "admin-token-for-the-flood-test-01";
    let s = live::start(
        HEADWATER.as_ref(),
        &["--admin-listen", "127.0.0.1:0", "--admin-token", admin],
    );
    let srt = s.logged_addr("srt");
    let sockets: Vec<std::net::UdpSocket> = (0..50)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for n in 0u32..23_000 {
        let mut packet = [0u8; 64];
        if n % 2 == 0 {
            // Junk.
            for (i, b) in packet.iter_mut().enumerate() {
                *b = (n as usize * 31 + i * 17) as u8;
            }
        } else {
            // A control packet of the handshake kind, from a stranger.
            packet[0] = 0x80;
            packet[16..20].copy_from_slice(&4u32.to_be_bytes());
            packet[20..24].copy_from_slice(&n.to_be_bytes());
        }
        let _ = sockets[n as usize % 50].send_to(&packet, srt);
    }
    std::thread::sleep(Duration::from_secs(2));
    let warnings = s.log().iter().filter(|l| l.contains("WARN")).count();
    assert!(warnings <= 40, "{warnings} warnings for a datagram flood");
    let api = headwater_testkit::admin::Api::new(s.admin_addr(), admin);
    let metrics = api.call("GET", "/metrics", None).body;
    let suppressed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("headwater_log_lines_suppressed_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the suppressed-lines counter");
    assert!(suppressed > 1000, "{suppressed}");
    assert_eq!(http::get(s.addr, "/healthz").status, 200);
}

/// A live stream's video and audio meet as the publisher's do, as ffmpeg
/// and GStreamer present them: the live parts carry no negative
/// composition offsets (version 0 `trun`), which both would present late
/// by the B-frame delay (issue 15). The publisher sends bframes.mp4 as it
/// is (`-c copy`), so every sample is identified by its bytes.
#[test]
fn live_audio_and_video_meet_as_the_publishers_do_over_rtmp() {
    audio_and_video_meet_as_the_publishers_do(false);
}

/// The same over SRT: MPEG-TS, where the audio's first time is the video's
/// first presentation time, a B-frame delay after its first decode time.
#[test]
fn live_audio_and_video_meet_as_the_publishers_do_over_srt() {
    audio_and_video_meet_as_the_publishers_do(true);
}

fn audio_and_video_meet_as_the_publishers_do(srt: bool) {
    use headwater_testkit::av::{self, GstMode, Reference};
    let s = live::start(HEADWATER.as_ref(), &["--stream", &format!("sync:{KEY}")]);
    let source = headwater_testkit::media().join("bframes.mp4");
    let (format, url) = if srt {
        let srt = s.logged_addr("srt");
        (
            "mpegts",
            format!("srt://{srt}?linger=5&streamid=live/sync?key={KEY}"),
        )
    } else {
        ("flv", rtmp_url(s.logged_addr("rtmp"), "sync", KEY))
    };
    let source_path = source.to_str().unwrap();
    ffmpeg::run([
        "-re",
        "-i",
        source_path,
        "-t",
        "7",
        "-c",
        "copy",
        "-f",
        format,
        &url,
    ]);
    let reference = Reference::of(&source);
    let want = reference.sync();
    let url = s.url("/live/sync/hls/master.m3u8");
    let measured = [
        av::ffprobe(&url, Some(3.0)),
        av::gst(
            GstMode::Hls,
            &[&url],
            &["--seconds", "3", "--timeout", "20"],
        ),
    ];
    for m in &measured {
        let got = av::analyze(m, &reference).unwrap_or_else(|e| panic!("{e}"));
        for r in &got {
            let src = want
                .iter()
                .find(|w| w.video == r.video)
                .expect("the source's video");
            // FLV carries milliseconds: half a millisecond of rounding each way.
            assert!(
                (r.content_sync - src.content_sync).abs() <= 0.0015,
                "{}: video meets audio {:.1} ms off the publisher's ({})",
                m.reader,
                (r.content_sync - src.content_sync) * 1e3,
                r.how
            );
        }
        assert!(!got.is_empty(), "{}: nothing measured", m.reader);
    }
}

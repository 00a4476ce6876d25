//! RTMP publishers (ffmpeg, GStreamer's rtmp2sink, a scripted client) into
//! the registry, and what it packaged decoded by ffmpeg.

mod common;

use common::*;

#[test]
fn ffmpeg_rtmp_publish_is_packaged_and_decodes() {
    let (registry, h) = setup();
    let (status, err) = run(
        ffmpeg_publish(6, "flv", &rtmp_url(&h, "s1", KEY), &[]),
        Duration::from_secs(30),
    );
    assert!(status.success(), "ffmpeg failed: {err}");
    let live = registry.get("s1").expect("the stream was published");
    assert!(
        wait_for(Duration::from_secs(5), || !live.on_air()),
        "the publisher's session ended"
    );
    assert!(segments(&registry, "s1", "v0").len() >= 3);
    let video = track_file(&registry, "s1", "v0");
    decodes_cleanly(video.path());
    // 6 s at 25 fps: every frame ffmpeg sent is in a segment.
    assert_eq!(probe_video(video.path()), (150, 320, 240));
    let audio = track_file(&registry, "s1", "a0");
    decodes_cleanly(audio.path());
    let secs = audio_seconds(audio.path());
    assert!((secs - 6.0).abs() < 0.2, "audio lasts {secs} s");
}

#[test]
fn gstreamer_rtmp2sink_publish_is_packaged() {
    let (registry, h) = setup();
    let url = rtmp_url(&h, "g1", KEY);
    let pipeline = format!(
        "videotestsrc num-buffers=125 is-live=true ! video/x-raw,width=320,height=240,framerate=25/1 \
         ! x264enc tune=zerolatency key-int-max=50 speed-preset=veryfast ! h264parse ! flvmux name=m streamable=true \
         ! rtmp2sink location={url} \
         audiotestsrc is-live=true num-buffers=240 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 \
         ! audioconvert ! avenc_aac ! aacparse ! m."
    );
    let mut c = Command::new("gst-launch-1.0");
    c.arg("-e").args(pipeline.split_whitespace());
    let (status, err) = run(c, Duration::from_secs(30));
    assert!(status.success(), "gst-launch failed: {err}");
    let live = registry.get("g1").expect("the stream was published");
    assert!(
        wait_for(Duration::from_secs(5), || !live.on_air()),
        "the session ended"
    );
    assert!(
        segments(&registry, "g1", "v0").len() >= 2,
        "segments appear"
    );
    let video = track_file(&registry, "g1", "v0");
    decodes_cleanly(video.path());
    let (frames, w, hgt) = probe_video(video.path());
    assert_eq!((w, hgt), (320, 240));
    assert_eq!(frames, 125);
}

#[test]
fn wrong_or_missing_rtmp_key_is_refused() {
    let (registry, h) = setup();
    let before = refused_total();
    for url in [
        rtmp_url(&h, "bad", "wrong"),
        format!("rtmp://{}/live/bad", h.rtmp_addr.expect("RTMP")),
        format!("rtmp://{}/other/bad?key={KEY}", h.rtmp_addr.expect("RTMP")),
    ] {
        let (status, _) = run(ffmpeg_publish(3, "flv", &url, &[]), Duration::from_secs(20));
        assert!(!status.success(), "{url} was refused");
    }
    assert!(
        registry.get("bad").is_none(),
        "nothing created for a refused publisher"
    );
    assert!(refused_total() >= before + 3);
}

#[test]
fn a_second_publisher_of_a_live_stream_is_refused() {
    let (registry, h) = setup();
    let url = rtmp_url(&h, "busy", KEY);
    let first = {
        let c = ffmpeg_publish(8, "flv", &url, &[]);
        std::thread::spawn(move || run(c, Duration::from_secs(30)))
    };
    assert!(wait_for(Duration::from_secs(10), || registry
        .get("busy")
        .is_some_and(|l| l.on_air())));
    let before = refused_total();
    let (status, _) = run(ffmpeg_publish(3, "flv", &url, &[]), Duration::from_secs(20));
    assert!(!status.success(), "the second publisher was refused");
    assert!(refused_total() > before);
    let (status, err) = first.join().expect("thread");
    assert!(status.success(), "the first publisher kept going: {err}");
    let live = registry.get("busy").expect("published");
    assert!(
        wait_for(Duration::from_secs(5), || !live.on_air()),
        "the session ended"
    );
    let video = track_file(&registry, "busy", "v0");
    decodes_cleanly(video.path());
    assert_eq!(probe_video(video.path()).0, 200);
}

#[test]
fn a_returning_publisher_continues_the_stream() {
    let (registry, h) = setup();
    let url = rtmp_url(&h, "r1", KEY);
    let (status, err) = run(ffmpeg_publish(5, "flv", &url, &[]), Duration::from_secs(30));
    assert!(status.success(), "first publish: {err}");
    let live = registry.get("r1").expect("published");
    assert!(wait_for(Duration::from_secs(5), || !live.on_air()));
    let first = segments(&registry, "r1", "v0");
    assert!(!first.is_empty());
    let (status, err) = run(ffmpeg_publish(5, "flv", &url, &[]), Duration::from_secs(30));
    assert!(status.success(), "second publish: {err}");
    assert!(wait_for(Duration::from_secs(5), || !live.on_air()));
    let all = segments(&registry, "r1", "v0");
    assert!(all.len() > first.len(), "{first:?} then {all:?}");
    assert!(
        all.windows(2).all(|w| w[1] == w[0] + 1),
        "MSNs keep increasing: {all:?}"
    );
    assert_eq!(&all[..first.len()], &first[..]);
    let text = playlist(&registry, "r1", "v0").expect("a playlist");
    assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    let video = track_file(&registry, "r1", "v0");
    decodes_cleanly(video.path());
}

#[test]
fn a_returning_publisher_with_other_codec_settings_starts_a_new_period() {
    let (registry, h) = setup();
    let url = rtmp_url(&h, "c1", KEY);
    let (status, err) = run(ffmpeg_publish(3, "flv", &url, &[]), Duration::from_secs(30));
    assert!(status.success(), "first publish: {err}");
    let live = registry.get("c1").expect("published");
    assert!(wait_for(Duration::from_secs(10), || !live.on_air()));
    let before_segments = segments(&registry, "c1", "v0");
    assert_eq!(probe_video(track_file(&registry, "c1", "v0").path()).1, 320);
    // Same stream, twice the size: a new init segment for the new session.
    let (status, err) = run(
        ffmpeg_publish(4, "flv", &url, &["-s", "640x480"]),
        Duration::from_secs(30),
    );
    assert!(status.success(), "the second publisher was taken: {err}");
    assert!(wait_for(Duration::from_secs(10), || !live.on_air()));
    let after: Vec<u64> = segments(&registry, "c1", "v0")
        .into_iter()
        .filter(|m| !before_segments.contains(m))
        .collect();
    assert!(!after.is_empty(), "the new session was packaged");
    assert_eq!(live.read(|s, _| s.generation()), 1);
    // Its segments decode with its own init segment, at its own size.
    let bytes = live.read(|s, _| {
        let id = s.track_id("v0").unwrap();
        let mut out = s.init_of(id, 1).expect("the new init segment").to_vec();
        for msn in &after {
            out.extend(s.segment(id, *msn).unwrap().to_vec());
        }
        out
    });
    let file = tempfile::Builder::new().suffix(".mp4").tempfile().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let (frames, width, height) = probe_video(file.path());
    assert_eq!((width, height), (640, 480));
    assert!(frames >= 75, "{frames} frames of the 4 s session");
}

#[test]
fn an_audio_only_rtmp_stream_gets_one_track() {
    let (registry, h) = setup();
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "5",
        ])
        .args([
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "flv",
            &rtmp_url(&h, "a1", KEY),
        ]);
    let (status, err) = run(c, Duration::from_secs(30));
    assert!(status.success(), "ffmpeg failed: {err}");
    let live = registry.get("a1").expect("published");
    assert!(
        wait_for(Duration::from_secs(10), || !live.on_air()),
        "the session ended"
    );
    assert!(live.read(|s, _| s.track_id("v0").is_none() && s.track_id("a0").is_some()));
    let audio = track_file(&registry, "a1", "a0");
    decodes_cleanly(audio.path());
    let secs = audio_seconds(audio.path());
    assert!((secs - 5.0).abs() < 0.2, "audio lasts {secs} s");
}

#[test]
fn rtmp_timestamps_crossing_the_32_bit_wrap_stay_continuous() {
    let (registry, h) = setup();
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("in.flv");
    let mut c = ffmpeg_publish(4, "flv", path.to_str().expect("utf-8"), &[]);
    // Not real time: this only makes the file.
    c.args(["-y"]);
    let mut args: Vec<String> = c
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    args.retain(|a| a != "-re");
    let mut c = Command::new("ffmpeg");
    c.args(&args);
    let (status, err) = run(c, Duration::from_secs(60));
    assert!(status.success(), "ffmpeg failed: {err}");
    let tags = flv_tags(&std::fs::read(&path).expect("the file"));
    assert!(tags.len() > 200, "{} tags", tags.len());
    let start = u32::MAX - 1_500; // wraps 1.5 s in
    let mut client = client::Client::connect(h.rtmp_addr.expect("RTMP"), "live");
    assert!(client.publish(&format!("w1?key={KEY}")));
    for (kind, ts, body) in tags {
        let ts = ts.wrapping_add(start);
        if kind == 9 {
            client.video(body, ts);
        } else {
            client.audio(body, ts);
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    drop(client);
    let live = registry.get("w1").expect("published");
    assert!(
        wait_for(Duration::from_secs(10), || !live.on_air()),
        "the session ended"
    );
    let video = track_file(&registry, "w1", "v0");
    decodes_cleanly(video.path());
    assert_eq!(
        probe_video(video.path()).0,
        100,
        "every frame, in order, across the wrap"
    );
    let audio = track_file(&registry, "w1", "a0");
    let secs = audio_seconds(audio.path());
    assert!((secs - 4.0).abs() < 0.2, "audio lasts {secs} s");
}

//! SRT publishers (ffmpeg, GStreamer's srtsink) on one port, told apart by
//! their streamid, into the registry; what it packaged decoded by ffmpeg.

mod common;

use common::*;

#[test]
fn two_srt_publishers_on_one_port() {
    let (registry, h) = setup();
    let url = srt_url(&h);
    let a = {
        let c = ffmpeg_publish(
            6,
            "mpegts",
            &url,
            &["-srt_streamid", &format!("#!::r=live/s2,m=publish,k={KEY}")],
        );
        std::thread::spawn(move || run(c, Duration::from_secs(30)))
    };
    let b = {
        let c = ffmpeg_publish(
            6,
            "mpegts",
            &url,
            &["-srt_streamid", &format!("live/s3?key={KEY}")],
        );
        std::thread::spawn(move || run(c, Duration::from_secs(30)))
    };
    for (name, t) in [("s2", a), ("s3", b)] {
        let (status, err) = t.join().expect("thread");
        assert!(status.success(), "{name}: ffmpeg failed: {err}");
    }
    for name in ["s2", "s3"] {
        let live = registry.get(name).expect("the stream was published");
        assert!(
            wait_for(Duration::from_secs(15), || !live.on_air()),
            "{name}'s session ended"
        );
        assert!(
            wait_for(Duration::from_secs(5), || segments(&registry, name, "v0")
                .len()
                >= 2),
            "{name} has segments"
        );
        let video = track_file(&registry, name, "v0");
        decodes_cleanly(video.path());
        let (frames, w, hgt) = probe_video(video.path());
        assert_eq!((w, hgt), (320, 240));
        assert!(frames >= 140, "{name}: {frames} frames");
        let audio = track_file(&registry, name, "a0");
        decodes_cleanly(audio.path());
    }
}

#[test]
fn wrong_srt_key_is_refused() {
    let (registry, h) = setup();
    let before = refused_total();
    let c = ffmpeg_publish(
        3,
        "mpegts",
        &srt_url(&h),
        &["-srt_streamid", "#!::r=live/s4,m=publish,k=nope"],
    );
    let (status, _) = run(c, Duration::from_secs(20));
    assert!(!status.success(), "ffmpeg was refused");
    assert!(registry.get("s4").is_none());
    assert!(refused_total() > before);
}

/// `alignment=7` (1316-byte buffers) as SRT wants them: srtsink drops
/// larger buffers, which loses every keyframe.
#[test]
fn gstreamer_srtsink_publish_is_packaged() {
    let (registry, h) = setup();
    let addr = h.srt_addr.expect("SRT listens");
    let pipeline = format!(
        "videotestsrc num-buffers=100 is-live=true ! video/x-raw,width=320,height=240,framerate=25/1 \
         ! x264enc tune=zerolatency key-int-max=50 speed-preset=veryfast ! h264parse config-interval=-1 ! mpegtsmux name=m alignment=7 \
         ! srtsink uri=srt://{addr} mode=caller latency=500 streamid=#!::r=live/g2,m=publish,k={KEY} \
         audiotestsrc is-live=true num-buffers=190 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 \
         ! audioconvert ! avenc_aac ! aacparse ! m."
    );
    let mut c = Command::new("gst-launch-1.0");
    c.arg("-e").args(pipeline.split_whitespace());
    let (status, err) = run(c, Duration::from_secs(30));
    assert!(status.success(), "gst-launch failed: {err}");
    assert!(
        wait_for(Duration::from_secs(5), || registry.get("g2").is_some()),
        "published"
    );
    let live = registry.get("g2").expect("the stream was published");
    assert!(
        wait_for(Duration::from_secs(15), || !live.on_air()),
        "the session ended"
    );
    let video = track_file(&registry, "g2", "v0");
    decodes_cleanly(video.path());
    let (frames, w, hgt) = probe_video(video.path());
    assert_eq!((w, hgt), (320, 240));
    assert!(frames >= 95, "{frames} frames");
    let audio = track_file(&registry, "g2", "a0");
    decodes_cleanly(audio.path());
}

#[test]
fn hevc_over_srt_becomes_an_hvc1_track() {
    let (registry, h) = setup();
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-t",
            "4",
        ])
        .args([
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "keyint=50:min-keyint=50:log-level=error",
        ])
        .args([
            "-pix_fmt",
            "yuv420p",
            "-srt_streamid",
            &format!("live/h1?key={KEY}"),
        ])
        .args(["-f", "mpegts", &srt_url(&h)]);
    let (status, err) = run(c, Duration::from_secs(30));
    assert!(status.success(), "ffmpeg failed: {err}");
    let live = registry.get("h1").expect("the stream was published");
    assert!(
        wait_for(Duration::from_secs(15), || !live.on_air()),
        "the session ended"
    );
    let codec = live.read(|s, _| {
        let id = s.track_id("v0").expect("a video track");
        s.track_info(id).and_then(|(_, e, _)| e.rfc6381())
    });
    assert!(
        codec.as_deref().is_some_and(|c| c.starts_with("hvc1.")),
        "{codec:?}"
    );
    assert!(live.read(|s, _| s.track_id("a0").is_none()), "video only");
    let video = track_file(&registry, "h1", "v0");
    decodes_cleanly(video.path());
    let (frames, w, hgt) = probe_video(video.path());
    assert_eq!((w, hgt), (320, 240));
    assert!(frames >= 95, "{frames} frames");
}

#[test]
fn srt_passphrase_is_required() {
    let pass = "a-long-enough-secret";
    let (registry, h) = setup_with(Some(pass));
    let c = ffmpeg_publish(
        4,
        "mpegts",
        &srt_url(&h),
        &[
            "-srt_streamid",
            &format!("live/e1?key={KEY}"),
            "-passphrase",
            pass,
        ],
    );
    let (status, err) = run(c, Duration::from_secs(30));
    assert!(status.success(), "the encrypted publisher got in: {err}");
    let live = registry.get("e1").expect("the stream was published");
    assert!(
        wait_for(Duration::from_secs(15), || !live.on_air()),
        "the session ended"
    );
    decodes_cleanly(track_file(&registry, "e1", "v0").path());
    let c = ffmpeg_publish(
        3,
        "mpegts",
        &srt_url(&h),
        &["-srt_streamid", &format!("live/e2?key={KEY}")],
    );
    let (status, _) = run(c, Duration::from_secs(20));
    assert!(!status.success(), "an unencrypted publisher is refused");
    assert!(registry.get("e2").is_none());
}

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

/// A handshake: the header, the 32-bit words of its body up to the peer
/// address (version, encryption and extension fields, initial sequence,
/// MTU, flow window, type, socket id, cookie), 127.0.0.1, then extension
/// blocks `(type, payload)`.
fn handshake(words: [u32; 8], blocks: &[(u16, &[u8])]) -> Vec<u8> {
    let mut d = vec![0x80, 0, 0, 0];
    d.extend([0u8; 12]);
    for word in words {
        d.extend(word.to_be_bytes());
    }
    d.extend([127, 0, 0, 1]);
    d.extend([0u8; 12]);
    for (kind, payload) in blocks {
        d.extend(kind.to_be_bytes());
        d.extend(((payload.len() / 4) as u16).to_be_bytes());
        d.extend(*payload);
    }
    d
}

/// A handshake conclusion (HSv5) with extension blocks `(type, payload)`.
fn conclusion(key_field: u16, blocks: &[(u16, &[u8])]) -> Vec<u8> {
    let fields = u32::from(key_field) << 16 | 5;
    handshake([5, fields, 1, 1500, 8192, u32::MAX, 77, 0], blocks)
}

fn control(kind: u16, subtype: u16) -> Vec<u8> {
    let mut d = (0x8000 | kind).to_be_bytes().to_vec();
    d.extend(subtype.to_be_bytes());
    d.extend([0u8; 12]);
    d
}

#[test]
fn datagrams_srt_protocol_panics_on_leave_the_port_serving() {
    // Each of these, read by srt-protocol's listener task, ended SRT
    // ingest for every caller until a restart (fuzz/tests/srt_gate.rs
    // shows each panic).
    let (registry, h) = setup();
    let addr = h.srt_addr.expect("SRT listens");
    let hsreq = [0, 1, 4, 3, 0, 0, 0, 0x3f, 0, 0x78, 0, 0x78];
    let hostile = [
        conclusion(0, &[(1, &hsreq), (6, b"live")]),
        conclusion(0, &[(5, b""), (1, &hsreq)]),
        control(4, 0),
        control(8, 0),
        control(0x7FFF, 5),
        control(3, 0),
    ];
    let before = Refused::Datagram.total();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    for d in &hostile {
        udp.send_to(d, addr).expect("send");
    }
    assert!(
        wait_for(Duration::from_secs(5), || Refused::Datagram.total()
            >= before + hostile.len() as u64),
        "each was dropped and counted"
    );
    // An encrypting caller, with no passphrase here: refused, not a panic.
    let c = ffmpeg_publish(
        2,
        "mpegts",
        &srt_url(&h),
        &[
            "-srt_streamid",
            &format!("live/x1?key={KEY}"),
            "-passphrase",
            "a-long-enough-secret",
        ],
    );
    let (status, _) = run(c, Duration::from_secs(20));
    assert!(!status.success(), "an encrypting caller is refused");
    assert!(registry.get("x1").is_none());
    // The port still serves.
    let c = ffmpeg_publish(
        3,
        "mpegts",
        &srt_url(&h),
        &["-srt_streamid", &format!("live/x2?key={KEY}")],
    );
    let (status, err) = run(c, Duration::from_secs(30));
    assert!(status.success(), "a publisher after them got in: {err}");
    let live = registry.get("x2").expect("the stream was published");
    assert!(
        wait_for(Duration::from_secs(15), || !live.on_air()),
        "the session ended"
    );
    decodes_cleanly(track_file(&registry, "x2", "v0").path());
}

/// An induction handshake (a caller's first packet) with socket id `id`.
fn induction(id: u32) -> Vec<u8> {
    handshake([4, 2, 1, 1500, 8192, 1, id, 0], &[])
}

#[test]
fn an_induction_flood_from_many_ports_does_not_stop_a_publisher() {
    // Each induction from a new address takes a relay socket; a flood of
    // them (spoofed sources look like this) may not take the port from a
    // caller that is sending.
    let (registry, h) = setup();
    let addr = h.srt_addr.expect("SRT listens");
    let c = ffmpeg_publish(
        6,
        "mpegts",
        &srt_url(&h),
        &["-srt_streamid", &format!("live/f1?key={KEY}")],
    );
    let publisher = std::thread::spawn(move || run(c, Duration::from_secs(40)));
    assert!(wait_for(Duration::from_secs(15), || registry
        .get("f1")
        .is_some_and(|l| l.on_air())));
    let flood: Vec<std::net::UdpSocket> = (0..300)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP socket"))
        .collect();
    for round in 0..3u32 {
        for (i, s) in flood.iter().enumerate() {
            s.send_to(&induction(round * 1000 + i as u32), addr)
                .expect("send");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let (status, err) = publisher.join().expect("thread");
    assert!(status.success(), "the publisher was cut off: {err}");
    let live = registry.get("f1").expect("published");
    assert!(wait_for(Duration::from_secs(15), || !live.on_air()));
    decodes_cleanly(track_file(&registry, "f1", "v0").path());
    // And a new caller still gets in.
    let c = ffmpeg_publish(
        2,
        "mpegts",
        &srt_url(&h),
        &["-srt_streamid", &format!("live/f2?key={KEY}")],
    );
    let (status, err) = run(c, Duration::from_secs(30));
    assert!(status.success(), "a caller after the flood: {err}");
}

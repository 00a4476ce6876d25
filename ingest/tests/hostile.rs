//! Bad input on the RTMP port (garbage, silence, junk media, huge
//! messages) and the start-up API: the server closes what it must and goes on.

mod common;

use common::*;

#[test]
fn garbage_on_the_rtmp_port_is_closed_and_the_server_goes_on() {
    let (registry, h) = setup();
    let addr = h.rtmp_addr.expect("RTMP");
    // Not RTMP at all.
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    assert!(
        closed_within(&mut s, Duration::from_secs(3)),
        "an HTTP request is dropped"
    );
    // A valid version byte, a random handshake, then random chunks.
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut x: u32 = 0x1234_5678;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    };
    let mut hs = vec![3u8];
    hs.extend(noise(1536 * 2));
    let _ = s.write_all(&hs);
    let _ = s.write_all(&noise(200_000));
    assert!(
        closed_within(&mut s, Duration::from_secs(15)),
        "random chunks end the connection"
    );
    // Silence: closed by the handshake timeout.
    let mut s = TcpStream::connect(addr).expect("connect");
    assert!(
        closed_within(&mut s, Duration::from_secs(15)),
        "a silent peer is dropped"
    );
    // And a real publisher still gets in.
    let (status, err) = run(
        ffmpeg_publish(4, "flv", &rtmp_url(&h, "after", KEY), &[]),
        Duration::from_secs(30),
    );
    assert!(status.success(), "ffmpeg failed: {err}");
    assert!(wait_for(Duration::from_secs(5), || !segments(
        &registry, "after", "v0"
    )
    .is_empty()));
}

#[test]
fn the_key_may_come_in_the_app_query_and_a_silent_publisher_is_dropped() {
    let (registry, h) = setup();
    let addr = h.rtmp_addr.expect("RTMP");
    let mut c = client::Client::connect(addr, &format!("live?key={KEY}"));
    assert!(c.publish("q1"), "the key in the app's query is taken");
    let start = Instant::now();
    assert!(
        closed_within(&mut c.sock, Duration::from_secs(15)),
        "silence ends the connection"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "not before the idle timeout"
    );
    assert!(registry.get("q1").is_none(), "no media, no stream");
    // Refused at publish time over the same path.
    let before = refused_total();
    let mut c = client::Client::connect(addr, "live?key=nope");
    assert!(
        !c.publish("q2"),
        "a wrong key in the app's query is refused"
    );
    assert!(refused_total() > before);
}

#[test]
fn junk_and_huge_media_messages_do_not_hurt_the_server() {
    let (registry, h) = setup();
    let addr = h.rtmp_addr.expect("RTMP");
    let mut c = client::Client::connect(addr, "live");
    assert!(c.publish(&format!("z1?key={KEY}")));
    let mut x: u32 = 0x9e37_79b9;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    };
    // An AVC sequence header and NAL units of noise, AAC config and frames of noise.
    let mut seq = vec![0x17, 0, 0, 0, 0];
    seq.extend(noise(40));
    c.video(seq, 0);
    let mut asc = vec![0xaf, 0];
    asc.extend(noise(2));
    c.audio(asc, 0);
    for i in 0..100u32 {
        let mut v = vec![if i % 50 == 0 { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        v.extend(noise(500));
        c.video(v, i * 40);
        let mut a = vec![0xaf, 1];
        a.extend(noise(100));
        c.audio(a, i * 40);
    }
    // One message just under RTMP's 16 MiB limit.
    let mut huge = vec![0x27, 1, 0, 0, 0];
    huge.extend(noise((16 << 20) - 100));
    c.video(huge, 4000);
    drop(c);
    // The server goes on: a real publisher of the same name gets in.
    let (status, err) = run(
        ffmpeg_publish(3, "flv", &rtmp_url(&h, "z1", KEY), &[]),
        Duration::from_secs(30),
    );
    assert!(status.success(), "ffmpeg failed: {err}");
    assert!(wait_for(Duration::from_secs(10), || !segments(
        &registry, "z1", "v0"
    )
    .is_empty()));
}

#[test]
fn start_reports_a_taken_port_and_works_inside_a_runtime() {
    let (_, h) = setup();
    let taken = h.rtmp_addr.expect("RTMP");
    let keys: KeyCheck = Arc::new(|_, _| None);
    let registry = Arc::new(Registry::new(RegistryConfig::default()));
    let err = start(
        IngestConfig {
            rtmp_listen: Some(taken),
            ..IngestConfig::default()
        },
        registry.clone(),
        keys.clone(),
    )
    .expect_err("the port is taken");
    assert!(err.to_string().contains(&taken.to_string()), "{err}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let h = rt.block_on(async {
        start(
            IngestConfig {
                srt_listen: Some("127.0.0.1:0".parse().expect("an address")),
                ..IngestConfig::default()
            },
            registry,
            keys,
        )
    });
    let h = h.expect("starts from inside a runtime");
    assert!(h.rtmp_addr.is_none() && h.srt_addr.is_some());
}

#[test]
fn a_connection_flood_from_one_source_is_cut_off_and_counted() {
    let limits = SourceLimits {
        burst: 5,
        per_second: 1.0,
        ..SourceLimits::default()
    };
    let (registry, h) = setup_limited(None, limits);
    let addr = h.rtmp_addr.expect("RTMP");
    let before = Refused::Rate.total();
    // Forty connections at once: the first five are let in (and wait in the
    // handshake), the rest are closed at accept.
    let mut held = Vec::new();
    let mut cut = 0;
    for _ in 0..40 {
        let mut s = TcpStream::connect(addr).expect("connect");
        if closed_within(&mut s, Duration::from_millis(300)) {
            cut += 1;
        } else {
            held.push(s);
        }
    }
    assert!(cut >= 30, "only {cut} of 40 cut off");
    assert!(held.len() >= 5, "the burst was let in");
    assert!(Refused::Rate.total() >= before + 30);
    // The bucket refills: a second later a real publisher gets in.
    std::thread::sleep(Duration::from_secs(2));
    let (status, err) = run(
        ffmpeg_publish(3, "flv", &rtmp_url(&h, "flood", KEY), &[]),
        Duration::from_secs(30),
    );
    assert!(status.success(), "ffmpeg failed: {err}");
    assert!(registry.get("flood").is_some());
}

#[test]
fn a_source_that_guesses_keys_is_shut_out_then_let_back() {
    let limits = SourceLimits {
        key_failures: 3,
        lockout: Duration::from_secs(3),
        ..SourceLimits::default()
    };
    let (registry, h) = setup_limited(None, limits);
    let addr = h.rtmp_addr.expect("RTMP");
    let (keys, locked) = (Refused::Key.total(), Refused::LockedOut.total());
    for guess in ["a", "b", "c"] {
        let mut c = client::Client::connect(addr, "live");
        assert!(!c.publish(&format!("g1?key={guess}")), "{guess} is wrong");
    }
    assert_eq!(Refused::Key.total(), keys + 3);
    // Shut out: even the right key is refused now.
    let mut c = client::Client::connect(addr, "live");
    assert!(!c.publish(&format!("g1?key={KEY}")), "locked out");
    assert_eq!(Refused::LockedOut.total(), locked + 1);
    assert!(registry.get("g1").is_none());
    // After the lockout the right key works.
    std::thread::sleep(Duration::from_secs(4));
    let mut c = client::Client::connect(addr, "live");
    assert!(c.publish(&format!("g1?key={KEY}")), "let back in");
}

#[test]
fn an_srt_handshake_flood_from_one_source_is_rejected_and_counted() {
    let limits = SourceLimits {
        burst: 3,
        per_second: 0.5,
        ..SourceLimits::default()
    };
    let (_registry, h) = setup_limited(None, limits);
    let addr = h.srt_addr.expect("SRT");
    let before = Refused::Rate.total();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rejected = rt.block_on(async {
        let mut rejected = 0;
        for i in 0..10 {
            let id = format!("live/f{i}?key=wrong");
            let call = srt_tokio::SrtSocket::builder().call(addr, Some(&id));
            // Every caller is refused (wrong key or rate); what counts is why.
            match tokio::time::timeout(Duration::from_secs(5), call).await {
                Ok(Ok(_)) => panic!("a wrong key got in"),
                Ok(Err(_)) => rejected += 1,
                Err(_) => panic!("a caller was neither accepted nor rejected"),
            }
        }
        rejected
    });
    assert_eq!(rejected, 10);
    assert!(
        Refused::Rate.total() >= before + 7,
        "{} refused for rate",
        Refused::Rate.total() - before
    );
}

#[test]
fn a_pipeline_that_fails_drops_its_publisher_only() {
    // "broken" is transcoded; while `odd` holds, its one rung is 161x91,
    // which x264 cannot encode: that publisher's pipeline fails at its
    // first frame (a GStreamer error on its bus).
    let odd = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let keys: KeyCheck = {
        let odd = odd.clone();
        Arc::new(move |stream, key| {
            let (w, h) = if odd.load(std::sync::atomic::Ordering::Relaxed) {
                (161, 91)
            } else {
                (160, 90)
            };
            (key == KEY).then(|| StreamSettings {
                ladder: (stream == "broken").then(|| Ladder {
                    frame_rate: 25,
                    keyframe_frames: 50,
                    rungs: vec![Rung {
                        name: "low".into(),
                        width: w,
                        height: h,
                        bitrate_kbps: 150,
                    }],
                }),
                ..StreamSettings::default()
            })
        })
    };
    let (registry, h) = setup_keys(keys);
    // A stream on air the whole time.
    let mut steady = ffmpeg_publish(40, "flv", &rtmp_url(&h, "steady", KEY), &[])
        .spawn()
        .expect("ffmpeg");
    assert!(wait_for(Duration::from_secs(20), || !segments(
        &registry, "steady", "v0"
    )
    .is_empty()));
    // The failing publisher is dropped long before its 30 s are sent.
    let started = Instant::now();
    let (status, _) = run(
        ffmpeg_publish(30, "flv", &rtmp_url(&h, "broken", KEY), &[]),
        Duration::from_secs(60),
    );
    assert!(
        !status.success(),
        "the publisher of a failed pipeline was not dropped"
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "dropped only after {:?}",
        started.elapsed()
    );
    assert!(segments(&registry, "broken", "low").is_empty());
    // The other stream went on making segments...
    let before = segments(&registry, "steady", "v0").len();
    assert!(
        wait_for(Duration::from_secs(10), || segments(
            &registry, "steady", "v0"
        )
        .len()
            > before),
        "the other stream stopped when one pipeline failed"
    );
    // ...and the failed stream's name takes the next publisher.
    odd.store(false, std::sync::atomic::Ordering::Relaxed);
    let (status, err) = run(
        ffmpeg_publish(3, "flv", &rtmp_url(&h, "broken", KEY), &[]),
        Duration::from_secs(30),
    );
    assert!(status.success(), "ffmpeg failed: {err}");
    assert!(wait_for(Duration::from_secs(20), || !segments(
        &registry, "broken", "low"
    )
    .is_empty()));
    let _ = steady.kill();
    let _ = steady.wait();
}

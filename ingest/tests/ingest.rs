//! The listeners with real publishers (ffmpeg, GStreamer) on loopback, the
//! registry inspected, and what it packaged decoded by ffmpeg.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use headwater_ingest::{
    IngestConfig, IngestHandle, KeyCheck, Registry, RegistryConfig, StreamSettings, refused_total,
    start,
};
use headwater_packager::live::HlsOptions;

const KEY: &str = "K3y-for-tests";

fn setup() -> (Arc<Registry>, IngestHandle) {
    setup_with(None)
}

fn setup_with(srt_passphrase: Option<&str>) -> (Arc<Registry>, IngestHandle) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let registry = Arc::new(Registry::new(RegistryConfig::default()));
    let keys: KeyCheck = Arc::new(|_stream, key| (key == KEY).then(StreamSettings::default));
    let local: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    let handle = start(
        IngestConfig {
            rtmp_listen: Some(local),
            srt_listen: Some(local),
            srt_passphrase: srt_passphrase.map(str::to_owned),
        },
        registry.clone(),
        keys,
    )
    .expect("ingest starts");
    (registry, handle)
}

/// Runs `cmd` for at most `limit`, killing it then.
fn run(mut cmd: Command, limit: Duration) -> (ExitStatus, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tool runs");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (status, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let status = child.wait().expect("wait");
            return (status, "killed: took too long".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// ffmpeg encoding `secs` of 320x240 25 fps H.264 (B-frames, 2 s GOP) and
/// AAC, in real time, to `format` at `url`.
fn ffmpeg_publish(secs: u32, format: &str, url: &str, extra: &[&str]) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &secs.to_string()])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "50",
        ])
        .args([
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-b:a", "64k"])
        .args(extra)
        .args(["-f", format, url]);
    c
}

fn rtmp_url(h: &IngestHandle, stream: &str, key: &str) -> String {
    let addr = h.rtmp_addr.expect("RTMP listens");
    format!("rtmp://{addr}/live/{stream}?key={key}")
}

fn srt_url(h: &IngestHandle) -> String {
    let addr = h.srt_addr.expect("SRT listens");
    format!("srt://{addr}?mode=caller&latency=500000")
}

fn playlist(registry: &Registry, stream: &str, track: &str) -> Option<String> {
    registry.get(stream)?.read(|s, _| {
        let id = s.track_id(track)?;
        let mut out = String::new();
        s.hls_media_playlist(id, &HlsOptions::default(), &mut out)
            .ok()?;
        Some(out)
    })
}

/// The MSNs of the complete segments of `track`.
fn segments(registry: &Registry, stream: &str, track: &str) -> Vec<u64> {
    let Some(text) = playlist(registry, stream, track) else {
        return Vec::new();
    };
    let prefix = format!("{track}/");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(&prefix)?.strip_suffix(".m4s")?.parse().ok())
        .collect()
}

/// Waits until `f` holds, at most `limit`.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// The init segment and every complete segment of `track`, concatenated
/// into a file.
fn track_file(registry: &Registry, stream: &str, track: &str) -> tempfile::NamedTempFile {
    let msns = segments(registry, stream, track);
    assert!(!msns.is_empty(), "{stream}/{track} has segments");
    let bytes = registry
        .get(stream)
        .expect("the stream exists")
        .read(|s, _| {
            let id = s.track_id(track).expect("the track exists");
            let mut out = s.init(id).expect("an init segment").to_vec();
            for msn in &msns {
                out.extend(s.segment(id, *msn).expect("a listed segment").to_vec());
            }
            out
        });
    let mut f = tempfile::Builder::new()
        .suffix(".mp4")
        .tempfile()
        .expect("a temp file");
    f.write_all(&bytes).expect("write");
    f
}

/// (frames, width, height) of the first video stream, decoded by ffprobe.
fn probe_video(path: &std::path::Path) -> (u64, u32, u32) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=nb_read_frames,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<u64> = text
        .trim()
        .split(',')
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(f.len(), 3, "ffprobe said {text:?}");
    (f[2], f[0] as u32, f[1] as u32)
}

/// ffmpeg decodes the file with no error message.
fn decodes_cleanly(path: &std::path::Path) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "decode errors: {err}"
    );
}

/// Audio seconds decoded from the file.
fn audio_seconds(path: &std::path::Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries"])
        .args(["packet=duration_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
        .sum()
}

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

/// Reads until the server closes; true if it did within `limit`.
fn closed_within(sock: &mut TcpStream, limit: Duration) -> bool {
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match sock.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

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

mod client {
    //! A scripted RTMP publisher (rml_rtmp's client session), for what
    //! ffmpeg will not do: stay silent, send junk, send a huge message.

    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::{Duration, Instant};

    use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
    use rml_rtmp::sessions::{
        ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
        PublishRequestType,
    };

    pub(crate) struct Client {
        pub(crate) sock: TcpStream,
        session: ClientSession,
    }

    impl Client {
        /// Handshake and `connect` to `app`.
        pub(crate) fn connect(addr: SocketAddr, app: &str) -> Client {
            let mut sock = TcpStream::connect(addr).expect("connect");
            sock.set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            let mut hs = Handshake::new(PeerType::Client);
            sock.write_all(&hs.generate_outbound_p0_and_p1().expect("p0p1"))
                .expect("write");
            let mut buf = vec![0u8; 65536];
            let remaining = loop {
                let n = read(&mut sock, &mut buf).expect("handshake reply");
                match hs.process_bytes(&buf[..n]).expect("handshake") {
                    HandshakeProcessResult::InProgress { response_bytes } => {
                        sock.write_all(&response_bytes).expect("write")
                    }
                    HandshakeProcessResult::Completed {
                        response_bytes,
                        remaining_bytes,
                    } => {
                        sock.write_all(&response_bytes).expect("write");
                        break remaining_bytes;
                    }
                }
            };
            let (session, results) =
                ClientSession::new(ClientSessionConfig::new()).expect("session");
            let mut c = Client { sock, session };
            c.send_all(results);
            let r = c.session.handle_input(&remaining).expect("input");
            c.send_all(r);
            let r = c
                .session
                .request_connection(app.to_owned())
                .expect("connect");
            c.send_all(vec![r]);
            assert!(
                c.wait(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted)),
                "connect accepted"
            );
            c
        }

        fn send_all(&mut self, results: Vec<ClientSessionResult>) -> Vec<ClientSessionEvent> {
            let mut events = Vec::new();
            for r in results {
                match r {
                    ClientSessionResult::OutboundResponse(p) => {
                        let _ = self.sock.write_all(&p.bytes);
                    }
                    ClientSessionResult::RaisedEvent(e) => events.push(e),
                    ClientSessionResult::UnhandleableMessageReceived(_) => {}
                }
            }
            events
        }

        /// Processes input until an event matches (true) or the server
        /// closes or 10 s pass (false).
        pub(crate) fn wait(&mut self, f: impl Fn(&ClientSessionEvent) -> bool) -> bool {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut buf = vec![0u8; 65536];
            while Instant::now() < deadline {
                let Some(n) = read(&mut self.sock, &mut buf) else {
                    return false;
                };
                if n == 0 {
                    continue;
                }
                let Ok(results) = self.session.handle_input(&buf[..n]) else {
                    return false;
                };
                if self.send_all(results).iter().any(&f) {
                    return true;
                }
            }
            false
        }

        /// Asks to publish `name`; whether the server accepted.
        pub(crate) fn publish(&mut self, name: &str) -> bool {
            let r = self
                .session
                .request_publishing(name.to_owned(), PublishRequestType::Live)
                .expect("publish request");
            self.send_all(vec![r]);
            self.wait(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted))
        }

        pub(crate) fn video(&mut self, data: Vec<u8>, ms: u32) {
            let r = self
                .session
                .publish_video_data(data.into(), rml_rtmp::time::RtmpTimestamp::new(ms), false)
                .expect("video");
            self.send_all(vec![r]);
        }

        pub(crate) fn audio(&mut self, data: Vec<u8>, ms: u32) {
            let r = self
                .session
                .publish_audio_data(data.into(), rml_rtmp::time::RtmpTimestamp::new(ms), false)
                .expect("audio");
            self.send_all(vec![r]);
        }
    }

    /// Some(0) on a read timeout, None once closed.
    fn read(sock: &mut TcpStream, buf: &mut [u8]) -> Option<usize> {
        match sock.read(buf) {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                Some(0)
            }
            Err(_) => None,
        }
    }
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

/// (type, timestamp, body) of the audio and video tags of an FLV file.
fn flv_tags(data: &[u8]) -> Vec<(u8, u32, Vec<u8>)> {
    let mut tags = Vec::new();
    let mut at = 13;
    while at + 11 <= data.len() {
        let b = &data[at..];
        let size = u32::from_be_bytes([0, b[1], b[2], b[3]]) as usize;
        let ts = u32::from_be_bytes([b[7], b[4], b[5], b[6]]);
        let Some(body) = b.get(11..11 + size) else {
            break;
        };
        if b[0] == 8 || b[0] == 9 {
            tags.push((b[0], ts, body.to_vec()));
        }
        at += 11 + size + 4;
    }
    tags
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
fn a_returning_publisher_with_other_codec_settings_is_refused() {
    let (registry, h) = setup();
    let url = rtmp_url(&h, "c1", KEY);
    let (status, err) = run(ffmpeg_publish(3, "flv", &url, &[]), Duration::from_secs(30));
    assert!(status.success(), "first publish: {err}");
    let live = registry.get("c1").expect("published");
    assert!(wait_for(Duration::from_secs(10), || !live.on_air()));
    let before_segments = segments(&registry, "c1", "v0");
    let before = refused_total();
    // Same stream, twice the size: a new init segment would be needed.
    let (status, _) = run(
        ffmpeg_publish(4, "flv", &url, &["-s", "640x480"]),
        Duration::from_secs(30),
    );
    assert!(!status.success(), "the second publisher was dropped");
    assert!(refused_total() > before);
    assert!(wait_for(Duration::from_secs(10), || !live.on_air()));
    assert_eq!(
        segments(&registry, "c1", "v0"),
        before_segments,
        "nothing of it was packaged"
    );
    assert_eq!(probe_video(track_file(&registry, "c1", "v0").path()).1, 320);
}

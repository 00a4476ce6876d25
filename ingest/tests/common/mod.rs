//! What the ingest tests share: an ingest on loopback with a registry,
//! publishers (ffmpeg, GStreamer, a scripted RTMP client), and ffmpeg
//! referees for what the registry packaged.

#![allow(dead_code, unused_imports)] // each test binary uses its own part of this

pub(crate) use std::io::{Read, Write};
pub(crate) use std::net::{SocketAddr, TcpStream};
pub(crate) use std::process::{Command, ExitStatus, Stdio};
pub(crate) use std::sync::Arc;
pub(crate) use std::time::{Duration, Instant};

pub(crate) use headwater_ingest::guard::{Refused, SourceLimits};
pub(crate) use headwater_ingest::{
    IngestConfig, IngestHandle, KeyCheck, Ladder, Registry, RegistryConfig, Rung, StreamSettings,
    refused_total, start,
};
pub(crate) use headwater_packager::live::HlsOptions;

pub(crate) const KEY: &str = "K3y-for-tests";

pub(crate) fn setup() -> (Arc<Registry>, IngestHandle) {
    setup_with(None)
}

pub(crate) fn setup_with(srt_passphrase: Option<&str>) -> (Arc<Registry>, IngestHandle) {
    setup_limited(srt_passphrase, SourceLimits::default())
}

/// A server with per-source limits of the test's choosing.
pub(crate) fn setup_limited(
    srt_passphrase: Option<&str>,
    limits: SourceLimits,
) -> (Arc<Registry>, IngestHandle) {
    let keys: KeyCheck = Arc::new(|_stream, key| (key == KEY).then(StreamSettings::default));
    setup_full(srt_passphrase, limits, keys)
}

/// A server whose publish check is the test's.
pub(crate) fn setup_keys(keys: KeyCheck) -> (Arc<Registry>, IngestHandle) {
    setup_full(None, SourceLimits::default(), keys)
}

fn setup_full(
    srt_passphrase: Option<&str>,
    limits: SourceLimits,
    keys: KeyCheck,
) -> (Arc<Registry>, IngestHandle) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let registry = Arc::new(Registry::new(RegistryConfig::default()));
    let local: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    let handle = start(
        IngestConfig {
            rtmp_listen: Some(local),
            srt_listen: Some(local),
            srt_passphrase: srt_passphrase.map(str::to_owned),
            limits,
        },
        registry.clone(),
        keys,
    )
    .expect("ingest starts");
    (registry, handle)
}

/// Runs `cmd` for at most `limit`, killing it then.
pub(crate) fn run(mut cmd: Command, limit: Duration) -> (ExitStatus, String) {
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
pub(crate) fn ffmpeg_publish(secs: u32, format: &str, url: &str, extra: &[&str]) -> Command {
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

pub(crate) fn rtmp_url(h: &IngestHandle, stream: &str, key: &str) -> String {
    let addr = h.rtmp_addr.expect("RTMP listens");
    format!("rtmp://{addr}/live/{stream}?key={key}")
}

/// An SRT caller URL. `linger=5`: libsrt's live mode otherwise discards
/// what it has not yet sent when ffmpeg closes, so the stream's last
/// 0.1-0.3 s (and, under load, half a frame) never arrive, and the
/// packaged stream could not decode cleanly however right it is.
pub(crate) fn srt_url(h: &IngestHandle) -> String {
    let addr = h.srt_addr.expect("SRT listens");
    format!("srt://{addr}?mode=caller&latency=500000&linger=5")
}

pub(crate) fn playlist(registry: &Registry, stream: &str, track: &str) -> Option<String> {
    registry.get(stream)?.read(|s, _| {
        let id = s.track_id(track)?;
        let mut out = String::new();
        s.hls_media_playlist(id, &HlsOptions::default(), &mut out)
            .ok()?;
        Some(out)
    })
}

/// The MSNs of the complete segments of `track`.
pub(crate) fn segments(registry: &Registry, stream: &str, track: &str) -> Vec<u64> {
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
pub(crate) fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
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
pub(crate) fn track_file(
    registry: &Registry,
    stream: &str,
    track: &str,
) -> tempfile::NamedTempFile {
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
pub(crate) fn probe_video(path: &std::path::Path) -> (u64, u32, u32) {
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
///
/// Frames keep the file's own time base (`-enc_time_base -1`): a live
/// publisher under load stamps frames irregularly (GStreamer's flvmux sends
/// 15, 64, 95 ms for the first frames of a 25 fps stream when its sources
/// run late), and ffmpeg's default 1/frame-rate grid would fold two such
/// frames onto one tick and report its own muxer's complaint as ours.
pub(crate) fn decodes_cleanly(path: &std::path::Path) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-enc_time_base", "-1", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "decode errors: {err}"
    );
}

/// Audio seconds decoded from the file.
pub(crate) fn audio_seconds(path: &std::path::Path) -> f64 {
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

/// Reads until the server closes; true if it did within `limit`.
pub(crate) fn closed_within(sock: &mut TcpStream, limit: Duration) -> bool {
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

pub(crate) mod client {
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

/// (type, timestamp, body) of the audio and video tags of an FLV file.
pub(crate) fn flv_tags(data: &[u8]) -> Vec<(u8, u32, Vec<u8>)> {
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

//! The live latency benchmark: how long after a frame reaches the origin
//! is the LL-HLS part holding it fetchable?
//!
//! A real file (`target/test-media/bframes.mp4` by default: H.264 with
//! B-frames + AAC) is pushed into the origin's live registry at wall-clock
//! pace, looped, as ingest would push it; each video frame's arrival
//! instant is kept. A client on a keep-alive loopback connection asks for
//! every video part in turn with a blocking request (held by the origin
//! until the part exists, as LL-HLS players do with the preload hint), and
//! when a part's response has arrived, every frame in it (counted from its
//! `trun`) has a delay: response arrival − frame arrival. The target
//! (issue 5) is p99 ≤ part duration + 50 ms for a pass-through stream.
//!
//! ```sh
//! cargo run --release -p headwater-benches --bin live-latency -- [SECONDS] [FILE]
//! VIA=varnish cargo run ...   # the same parts through Varnish (conf/varnish.vcl)
//! VIA=node cargo run ...      # through a second node pulling the stream (issue 21)
//! ```
//!
//! `VIA=node` starts a second origin with an empty registry whose cluster
//! view says the stream is on air at the first, so it passes every request
//! on (`origin/src/relay`), as a node without the publisher does.
//!
//! This measures packaging and serving (the part closes when the frame
//! after it arrives, or when the part target elapses); ingest's demuxing
//! (GStreamer) comes before it and is not included.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use headwater_ingest::{Registry, RegistryConfig};
use headwater_packager::live::{AccessUnit, TrackConfig};
use headwater_packager::mp4::TrackKind;
use headwater_packager::{Limits, Source};

struct Au {
    at: f64,
    track: usize,
    video: bool,
    scale: f64,
    au: AccessUnit,
}

fn load(path: &std::path::Path) -> (Vec<TrackConfig>, Vec<Au>, f64) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let src = Source::index(&data, data.len() as u64, &Limits::default()).expect("an MP4");
    let mut tracks = Vec::new();
    let mut aus = Vec::new();
    let mut length: f64 = 0.0;
    for tr in &src.movie.tracks {
        let video = match tr.kind {
            TrackKind::Video => true,
            TrackKind::Audio => false,
            TrackKind::Other => continue,
        };
        let id = tracks.len();
        let scale = tr.timescale.get();
        tracks.push(TrackConfig {
            name: format!("{}{id}", if video { "v" } else { "a" }),
            sample_entry: tr.sample_entry.raw.clone(),
            timescale: scale,
            language: None,
            bandwidth: None,
        });
        let s = &tr.samples;
        length = length.max(s.end_dts() as f64 / f64::from(scale));
        for i in 0..s.len() {
            let dts = s.dts(i) as i64;
            let (off, size) = (s.offset(i) as usize, s.size(i) as usize);
            aus.push(Au {
                at: dts as f64 / f64::from(scale),
                track: id,
                video,
                scale: f64::from(scale),
                au: AccessUnit {
                    dts,
                    pts: dts + i64::from(s.cts_offset(i)),
                    duration: Some(s.duration(i)),
                    keyframe: s.is_sync(i),
                    data: data[off..off + size].to_vec(),
                },
            });
        }
    }
    aus.sort_by(|a, b| a.at.total_cmp(&b.at).then(a.track.cmp(&b.track)));
    (tracks, aus, length)
}

/// One GET on a keep-alive connection: status and body.
fn get(c: &mut TcpStream, path: &str) -> (u16, Vec<u8>) {
    write!(c, "GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let status = text[9..12].parse().unwrap_or(0);
    let len = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0; len];
    c.read_exact(&mut body).expect("response body");
    (status, body)
}

/// Samples in a part: the sum of its `trun` sample counts.
fn samples(part: &[u8]) -> usize {
    fn walk(b: &[u8], n: &mut usize) {
        let mut i = 0;
        while i + 8 <= b.len() {
            let size = u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
            if size < 8 || i + size > b.len() {
                return;
            }
            match &b[i + 4..i + 8] {
                b"moof" | b"traf" => walk(&b[i + 8..i + size], n),
                b"trun" => *n += u32::from_be_bytes(b[i + 12..i + 16].try_into().unwrap()) as usize,
                _ => {}
            }
            i += size;
        }
    }
    let mut n = 0;
    walk(part, &mut n);
    n
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().map_or(30.0, |s| s.parse().expect("SECONDS"));
    let file = args.next().map_or_else(
        || headwater_testkit::media().join("bframes.mp4"),
        Into::into,
    );
    let (tracks, aus, length) = load(&file);
    let config = RegistryConfig::default();
    let part_target = config.part_target;
    let registry = Arc::new(Registry::new(config));
    let origin = Origin::start(registry.clone(), None);
    let publisher = registry
        .publish(
            "bench",
            tracks,
            &headwater_ingest::StreamSettings::default(),
        )
        .expect("publish");
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let pushing = push_at_pace(publisher, aus, length, seconds, arrivals.clone());
    let via = std::env::var("VIA").unwrap_or_default();
    let varnish =
        (via == "varnish").then(|| headwater_testkit::varnish::Varnish::start(&[origin.addr]));
    let node = (via == "node").then(|| {
        let empty = Arc::new(Registry::new(RegistryConfig::default()));
        Origin::start(empty, Some(origin.addr))
    });
    let target = match (&varnish, &node) {
        (Some(v), _) => v.addr,
        (_, Some(n)) => n.addr,
        _ => origin.addr,
    };
    let delays = fetch_parts(origin.addr, target, &pushing, &arrivals);
    pushing.join().unwrap();
    if let Some(n) = node {
        n.stop();
    }
    origin.stop();
    report(delays, part_target, seconds);
}

/// The origin on a loopback port, one worker, reading `registry`; its
/// timers on a thread of their own. With `pull_from`, a node of a cluster
/// that sees the stream on air at that address.
struct Origin {
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    serving: std::thread::JoinHandle<Result<(), headwater_origin::OriginError>>,
}

impl Origin {
    fn start(registry: Arc<Registry>, pull_from: Option<SocketAddr>) -> Self {
        let mut cfg = headwater_origin::Config::default();
        cfg.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        cfg.server.threads = 1;
        // A readable root, so that /readyz (Varnish's health check) is 200.
        cfg.media.root = headwater_testkit::media();
        let shared = headwater_origin::Shared::with_catalog(
            cfg,
            headwater_control_api::catalog::empty(),
            Arc::new(headwater_control_api::metrics::Metrics::new()),
            registry.clone(),
        )
        .expect("the library");
        let shared = match pull_from {
            None => shared,
            Some(a) => {
                let on_air = headwater_common::cluster::nowhere();
                let mut view = headwater_common::cluster::OnAirView::default();
                view.streams.insert(
                    "bench".into(),
                    headwater_common::cluster::Holders {
                        publishing: vec![Arc::from(format!("http://{a}").as_str())],
                        held: Vec::new(),
                    },
                );
                on_air.store(Arc::new(view));
                shared.with_cluster(on_air)
            }
        };
        let server = headwater_origin::Server::bind_with(shared).expect("bind");
        let addr = server.local_addr();
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let serving = std::thread::spawn(move || server.run(stop_rx));
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(registry.run_timers())
        });
        Origin {
            addr,
            stop,
            serving,
        }
    }

    fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.serving.join();
    }
}

/// Pushes the file's access units at wall-clock pace, looped for
/// `seconds`, keeping each video frame's arrival instant.
fn push_at_pace(
    publisher: headwater_ingest::Publisher,
    aus: Vec<Au>,
    length: f64,
    seconds: f64,
    arrivals: Arc<Mutex<Vec<Instant>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let rounds = (seconds / length).ceil() as u32;
        for r in 0..rounds {
            for a in &aus {
                let at = f64::from(r) * length + a.at;
                if at > seconds {
                    break;
                }
                let due = t0 + Duration::from_secs_f64(at);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let mut au = a.au.clone();
                let offset = (f64::from(r) * length * a.scale).round() as i64;
                au.dts += offset;
                au.pts += offset;
                if a.video {
                    arrivals.lock().unwrap().push(Instant::now());
                }
                publisher.push(a.track, au).expect("push");
            }
        }
        drop(publisher);
    })
}

/// Asks for every video part in turn with blocking requests until the
/// pushing stops; each fetched frame's delay in milliseconds.
fn fetch_parts(
    origin: SocketAddr,
    addr: SocketAddr,
    pushing: &std::thread::JoinHandle<()>,
    arrivals: &Mutex<Vec<Instant>>,
) -> Vec<f64> {
    // The first playlist from the origin itself: a CDN would keep a 404
    // from before the stream started.
    let mut direct = TcpStream::connect(origin).unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let (mut msn, mut part) = loop {
        let (status, body) = get(&mut direct, "/live/bench/hls/v0.m3u8");
        if status == 200 {
            let text = String::from_utf8_lossy(&body).into_owned();
            let first: u64 = text
                .lines()
                .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            break (first, 0u32);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut delays = Vec::new();
    let mut next_frame = 0usize;
    let mut misses = 0;
    while !pushing.is_finished() || misses < 2 {
        let (status, body) = get(&mut c, &format!("/live/bench/hls/v0/{msn}.{part}.m4s"));
        let now = Instant::now();
        match status {
            200 => {
                misses = 0;
                let n = samples(&body);
                let arrivals = arrivals.lock().unwrap();
                for i in next_frame..(next_frame + n).min(arrivals.len()) {
                    delays.push(now.duration_since(arrivals[i]).as_secs_f64() * 1000.0);
                }
                next_frame += n;
                part += 1;
            }
            404 => {
                misses += 1;
                msn += 1;
                part = 0;
            }
            _ => {
                misses += 1;
                if misses > 5 {
                    break;
                }
            }
        }
    }
    delays
}

fn report(mut delays: Vec<f64>, part_target: Duration, seconds: f64) {
    delays.sort_by(f64::total_cmp);
    assert!(!delays.is_empty(), "no part was fetched");
    let part_ms = part_target.as_secs_f64() * 1000.0;
    let (p50, p99, max) = (
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        *delays.last().unwrap(),
    );
    println!(
        "live latency (frame arrival -> its part fetched), {} frames over {seconds} s, part target {part_ms:.0} ms",
        delays.len()
    );
    println!("  p50 {p50:.1} ms   p99 {p99:.1} ms   max {max:.1} ms");
    println!(
        "  target p99 <= part + 50 ms = {:.0} ms: {}",
        part_ms + 50.0,
        if p99 <= part_ms + 50.0 {
            "met"
        } else {
            "missed"
        }
    );
    println!(
        "{{\"frames\": {}, \"p50_ms\": {p50:.2}, \"p99_ms\": {p99:.2}, \"max_ms\": {max:.2}, \"part_ms\": {part_ms:.0}}}",
        delays.len()
    );
}

//! Live on every node (issue 21): nodes sharing a catalog (PostgreSQL, or
//! one SQLite file on one machine) announce the live streams they have on
//! air, and a node without the publisher serves the stream by passing
//! requests to the node with it, LL-HLS intact: blocking reloads held
//! there, parts and segments the same bytes, LL-DASH segments chunked as
//! they grow; hls.js and ffmpeg play it. A node that stops answering is
//! not asked; a playback token is checked with the viewer's address.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use headwater_testkit::admin::Api;
use headwater_testkit::av::{self, GstMode, Kind};
use headwater_testkit::http::{Conn, Response, get};
use headwater_testkit::live::{KEY, ffmpeg_push, media_playlist_path, msn_range, play, rtmp_url};
use headwater_testkit::postgres::Postgres;
use headwater_testkit::server::{Server, admin_args, sqlite_in};
use headwater_testkit::{TempDir, within};

const HEADWATER: &str = env!("CARGO_BIN_EXE_headwater");
const TOKEN: &str = "cluster-admin-token-0123456789";
const MASTER: &str = "/live/cam/hls/master.m3u8";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Node `i` on `database`, advertising its data plane, taking RTMP for
/// `cam` (and whatever `extra` adds).
fn node(dir: &Path, i: usize, database: &str, extra: &[&str]) -> Server {
    let listen = format!("127.0.0.1:{}", free_port());
    let advertise = format!("http://{listen}");
    let media = dir.join(format!("media{i}"));
    std::fs::create_dir_all(&media).unwrap();
    let stream = format!("cam:{KEY}");
    let mut args = vec![
        "--listen",
        &listen,
        "--advertise",
        &advertise,
        "--rtmp-listen",
        "127.0.0.1:0",
        "--stream",
        &stream,
    ];
    args.extend(admin_args(TOKEN, database));
    args.extend_from_slice(extra);
    Server::start(HEADWATER.as_ref(), &media, &args)
}

/// Waits until `s` lists at least `n` segments of `cam`.
fn wait_for_segments(s: &Server, n: u64) {
    let listed = within(Duration::from_secs(30), || {
        get(s.addr, MASTER).status == 200
            && msn_range(&get(s.addr, &media_playlist_path(s, "cam")).text()).1 >= n
    });
    assert!(listed.is_some(), "{}: no {n} segments of cam", s.addr);
}

/// The URIs a media playlist names (segments, maps, parts), as paths.
fn listed(playlist: &str, text: &str) -> Vec<String> {
    let base = &playlist[..playlist.rfind('/').unwrap() + 1];
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("#EXT-X-PRELOAD-HINT") {
            continue;
        }
        if !line.starts_with('#') && !line.is_empty() {
            out.push(format!("{base}{line}"));
        } else if let Some(i) = line.find("URI=\"") {
            let rest = &line[i + 5..];
            out.push(format!("{base}{}", &rest[..rest.find('"').unwrap()]));
        }
    }
    out
}

/// Data-plane requests for media playlists that `s` answered with 200.
fn playlist_requests(s: &Server) -> u64 {
    let m = Api::new(s.admin_addr(), TOKEN).call("GET", "/metrics", None);
    m.body
        .lines()
        .filter(|l| {
            l.starts_with("headwater_http_requests_total{")
                && l.contains("plane=\"data\"")
                && l.contains("route=\"hls_playlist\"")
                && l.contains("status=\"200\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn stop(mut publisher: std::process::Child) {
    let _ = publisher.kill();
    let _ = publisher.wait();
}

#[test]
fn a_stream_published_to_one_node_plays_from_another_with_ll_hls_intact() {
    let dir = TempDir::new("cluster-pull");
    let pg = Postgres::start();
    let database = pg.database("cluster");
    let a = node(dir.path(), 0, &database, &[]);
    let b = node(dir.path(), 1, &database, &[]);
    let publisher = ffmpeg_push(&rtmp_url(a.logged_addr("rtmp"), "cam", KEY), 90, "flv");
    wait_for_segments(&a, 2);
    wait_for_segments(&b, 2);

    // Node b names what node a names, and serves the same bytes.
    let media = media_playlist_path(&b, "cam");
    assert_eq!(media, media_playlist_path(&a, "cam"));
    let text = get(b.addr, &media).text();
    let uris = listed(&media, &text);
    assert!(uris.iter().any(|u| u.ends_with("init.mp4")), "{text}");
    for uri in &uris {
        let (from_a, from_b) = (get(a.addr, uri), get(b.addr, uri));
        assert_eq!((from_a.status, from_b.status), (200, 200), "{uri}");
        assert!(from_a.body == from_b.body, "{uri}: other bytes on node b");
    }

    // A blocking reload asked of b is held at a until the part exists.
    let (first, n) = msn_range(&text);
    let next = first + n + 1;
    let r = get(b.addr, &format!("{media}?_HLS_msn={next}&_HLS_part=0"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
    let part = format!("/{next}.0.m4s\"");
    assert!(
        r.text().contains(&part),
        "no part {next}.0 in\n{}",
        r.text()
    );

    // Four viewers of b waiting for the same part are one request to a.
    let before = playlist_requests(&a);
    let wanted = format!("{media}?_HLS_msn={}&_HLS_part=0", next + 1);
    let viewers: Vec<_> = (0..4)
        .map(|_| {
            let (addr, path) = (b.addr, wanted.clone());
            std::thread::spawn(move || get(addr, &path))
        })
        .collect();
    let answers: Vec<Response> = viewers.into_iter().map(|t| t.join().unwrap()).collect();
    let asked = playlist_requests(&a) - before;
    for r in &answers {
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.body == answers[0].body,
            "viewers of b got different playlists"
        );
    }
    assert!(
        asked <= 2,
        "{asked} requests to a for 4 viewers of one blocking reload"
    );

    // LL-DASH: a segment still being made comes through b chunk by chunk
    // (curl decodes the chunked body and fails on a cut one), and is then
    // the bytes a has for it.
    let growing = next + 2;
    let r = get(b.addr, &format!("{media}?_HLS_msn={growing}&_HLS_part=0"));
    assert_eq!(r.status, 200);
    let rendition = media.rsplit('/').next().unwrap().trim_end_matches(".m3u8");
    let segment = format!("/live/cam/dash/{rendition}/{growing}.m4s");
    let saved = dir.path().join("growing.m4s");
    let curl = Command::new("curl")
        .args(["-sS", "--fail", "-D", "-", "-o"])
        .arg(&saved)
        .arg(b.url(&segment))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&curl.stdout).to_ascii_lowercase();
    assert!(
        curl.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert!(headers.contains("transfer-encoding: chunked"), "{headers}");
    let whole = get(a.addr, &segment);
    assert_eq!(whole.status, 200);
    assert!(
        std::fs::read(&saved).unwrap() == whole.body,
        "b's growing segment differs from a's"
    );

    // Real players on b: ffmpeg decodes it, GStreamer's hlsdemux reads
    // both tracks, hls.js plays it in low latency.
    let ffmpeg = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-i"])
        .arg(b.url(MASTER))
        .args(["-t", "4", "-f", "null", "-"])
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&ffmpeg.stderr);
    assert!(
        ffmpeg.status.success() && errors.trim().is_empty(),
        "ffmpeg: {errors}"
    );
    let g = av::gst(
        GstMode::Hls,
        &[&b.url(MASTER)],
        &["--seconds", "3", "--timeout", "30"],
    );
    assert!(g.errors.is_empty(), "GStreamer on node b: {:?}", g.errors);
    for kind in [Kind::Video, Kind::Audio] {
        let read = g.tracks(kind).map(|t| t.packets.len()).max().unwrap_or(0);
        assert!(
            read > 10,
            "GStreamer read {read} {kind:?} packets from node b"
        );
    }
    let (ok, out) = play(
        &b.url(MASTER),
        &[
            "--player",
            "hls",
            "--low-latency",
            "--seconds",
            "10",
            "--timeout",
            "90",
        ],
    );
    stop(publisher);
    assert!(ok, "hls.js on node b failed:\n{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["live"], true, "{v:#}");
    assert!(v["playedSeconds"].as_f64().unwrap_or(0.0) >= 10.0, "{v:#}");

    // The publisher has left; a still holds the window, and a node that
    // never relayed cam (started now) serves it from a.
    let c = node(dir.path(), 2, &database, &[]);
    let held = within(Duration::from_secs(20), || {
        let (from_a, from_c) = (get(a.addr, &media), get(c.addr, &media));
        from_c.status == 200 && from_c.body == from_a.body
    });
    assert!(held.is_some(), "node c does not serve the window a holds");
}

#[test]
fn a_node_that_stops_answering_is_not_asked_and_is_asked_again_once_back() {
    let dir = TempDir::new("cluster-stale");
    let database = sqlite_in(dir.path());
    let a = node(dir.path(), 0, &database, &[]);
    let b = node(dir.path(), 1, &database, &[]);
    let rtmp = rtmp_url(a.logged_addr("rtmp"), "cam", KEY);
    let publisher = ffmpeg_push(&rtmp, 90, "flv");
    wait_for_segments(&b, 1);
    let media = media_playlist_path(&b, "cam");
    // Node a stops answering (and beating). Asking it would hold b's
    // answer until the upstream wait ran out (a 504, "did not answer in
    // time"); once a's row is stale b asks nobody: it waits a while for a
    // node with the stream (cam was relayed lately) and answers 503.
    a.signal("STOP");
    let gone = within(Duration::from_secs(30), || {
        get(b.addr, MASTER).status == 503
    });
    assert!(
        gone.is_some(),
        "node b still serves cam from a stopped node"
    );
    let r = get(b.addr, &media);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().contains("no node with the stream answers"),
        "{}",
        r.text()
    );
    a.signal("CONT");
    stop(publisher);
    // Back, with a publisher again: b serves it again.
    let publisher = ffmpeg_push(&rtmp, 90, "flv");
    wait_for_segments(&b, 1);
    stop(publisher);
}

#[test]
fn a_playback_token_is_checked_with_the_viewers_address_and_not_bypassed() {
    let dir = TempDir::new("cluster-tokens");
    let database = sqlite_in(dir.path());
    let config = dir.path().join("tokens.toml");
    std::fs::write(&config, "[tokens]\nclient_ip_header = \"X-Viewer\"\n").unwrap();
    let config = config.to_str().unwrap();
    let a = node(dir.path(), 0, &database, &["--config", config]);
    let b = node(dir.path(), 1, &database, &["--config", config]);
    let api = Api::new(a.admin_addr(), TOKEN);
    let r = api.call(
        "POST",
        "/api/v1/streams",
        Some(&format!(
            r#"{{"name":"sec","publish_key":"{KEY}","require_token":true}}"#
        )),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api.call(
        "POST",
        "/api/v1/tokens",
        Some(r#"{"stream":"sec","ttl_seconds":600,"client_ip":"192.0.2.7"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let token = serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let publisher = ffmpeg_push(&rtmp_url(a.logged_addr("rtmp"), "sec", KEY), 90, "flv");
    let master = format!("/live/sec/hls/master.m3u8?token={token}");
    let ask =
        |s: &Server, path: &str, headers: &[&str]| Conn::open(s.addr).request("GET", path, headers);
    let viewer = "X-Viewer: 192.0.2.7";
    let served = within(Duration::from_secs(30), || {
        ask(&b, &master, &[viewer]).status == 200
    });
    assert!(
        served.is_some(),
        "node b does not serve the token-protected stream"
    );
    let text = ask(&b, &master, &[viewer]).text();
    let variant = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    assert!(variant.contains(&format!("token={token}")), "{text}");
    let playlist = ask(&b, &format!("/live/sec/hls/{variant}"), &[viewer]);
    assert_eq!(playlist.status, 200, "{}", playlist.text());

    // Refused on b: no token, another viewer's address.
    assert_eq!(ask(&b, "/live/sec/hls/master.m3u8", &[viewer]).status, 403);
    assert_eq!(ask(&b, &master, &["X-Viewer: 192.0.2.8"]).status, 403);
    // Refused on a: the viewer's token from the wrong address, the token
    // as a relay token (it is bound to the viewer's address), a forged one.
    assert_eq!(ask(&a, &master, &[]).status, 403);
    let as_relay = format!("Headwater-Relay: {token}");
    assert_eq!(ask(&a, &master, &[&as_relay]).status, 403);
    assert_eq!(
        ask(&a, &master, &["Headwater-Relay: k0.forged"]).status,
        403
    );
    stop(publisher);
}

/// A 60 s source for redundant publishers: 320x180 at 25 fps with a
/// keyframe every second and no B-frames, AAC, in MPEG-TS (no edit lists:
/// every timestamp positive, so copying it keeps them as they are).
fn redundant_source(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("source.ts");
    let ok = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-t", "60", "-c:v", "libx264", "-preset", "veryfast", "-bf", "0",
        ])
        .args(["-g", "25", "-keyint_min", "25", "-sc_threshold", "0"])
        .args([
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-f", "mpegts",
        ])
        .arg(&out)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ffmpeg could not make the source");
    out
}

/// How a publisher reaches a node.
#[derive(Clone, Copy)]
enum Ingest {
    Rtmp,
    Srt,
}

/// ffmpeg sending `source` from second `skip` on, at its pace and with its
/// timestamps (`-copyts`), to `s`.
fn push(source: &Path, s: &Server, skip: u32, ingest: Ingest) -> std::process::Child {
    let (format, url) = match ingest {
        Ingest::Rtmp => ("flv", rtmp_url(s.logged_addr("rtmp"), "cam", KEY)),
        Ingest::Srt => (
            "mpegts",
            format!(
                "srt://{}?linger=5&streamid=live/cam?key={KEY}",
                s.logged_addr("srt")
            ),
        ),
    };
    Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-ss", &skip.to_string()])
        .args(["-re", "-copyts", "-i"])
        .arg(source)
        .args(["-c", "copy", "-f", format])
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The broadcaster's pair: the same source to two nodes at the same pace
/// with the same timestamps, the second `from` seconds later and from
/// that far into the source (an encoder that joined later).
fn publish_pair(
    source: &Path,
    first: &Server,
    second: &Server,
    from: u32,
    ingest: Ingest,
) -> [std::process::Child; 2] {
    let first = push(source, first, 0, ingest);
    std::thread::sleep(Duration::from_secs(from.into()));
    [first, push(source, second, from, ingest)]
}

/// Asserts that `b`, which joined later, serves the same init segments,
/// parts and segments as `a` under the same names, after its first
/// segment (it joined inside it).
fn same_segments(a: &Server, b: &Server) {
    let media = media_playlist_path(b, "cam");
    let text = get(b.addr, &media).text();
    let (first_b, n) = msn_range(&text);
    let (first_a, _) = msn_range(&get(a.addr, &media).text());
    assert!(first_a < first_b, "a started first: {first_a} vs {first_b}");
    let uris = listed(&media, &text);
    let mut compared = 0;
    for uri in uris
        .iter()
        .filter(|u| u.ends_with(".m4s") || u.ends_with(".mp4"))
    {
        if uri.contains(&format!("/{first_b}.")) {
            continue;
        }
        let (from_a, from_b) = (get(a.addr, uri), get(b.addr, uri));
        assert_eq!((from_a.status, from_b.status), (200, 200), "{uri}");
        assert!(from_a.body == from_b.body, "{uri}: a's and b's differ");
        compared += 1;
    }
    assert!(n >= 2 && compared >= 3, "compared {compared} of\n{text}");
}

/// Nodes whose live streams follow the publisher's timestamps.
fn input_timeline(dir: &Path) -> String {
    let config = dir.join("input.toml");
    std::fs::write(&config, "[ingest]\ntimeline = \"input\"\n").unwrap();
    config.to_str().unwrap().to_owned()
}

/// hls.js in standard-latency mode playing `seconds` of cam from `s`.
fn hlsjs(s: &Server, seconds: u32) -> headwater_testkit::live::Player {
    let seconds = seconds.to_string();
    headwater_testkit::live::Player::start(
        &s.url(MASTER),
        &[
            "--player",
            "hls",
            "--standard-latency",
            "--seconds",
            &seconds,
            "--timeout",
            "120",
        ],
    )
}

fn played_through(ok: bool, out: &str, seconds: f64) {
    assert!(ok, "hls.js failed:\n{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v:#}");
    assert!(
        v["fatalErrors"].as_array().is_some_and(|e| e.is_empty()),
        "{v:#}"
    );
    assert!(
        v["playedSeconds"].as_f64().unwrap_or(0.0) >= seconds,
        "{v:#}"
    );
}

#[test]
fn redundant_publishers_make_interchangeable_segments_and_a_lost_one_is_not_seen() {
    let dir = TempDir::new("cluster-redundant");
    let database = sqlite_in(dir.path());
    let config = input_timeline(dir.path());
    let source = redundant_source(dir.path());
    let a = node(dir.path(), 0, &database, &["--config", &config]);
    let b = node(dir.path(), 1, &database, &["--config", &config]);
    let [first, second] = publish_pair(&source, &a, &b, 5, Ingest::Rtmp);
    wait_for_segments(&a, 4);
    wait_for_segments(&b, 3);
    // Whichever node a CDN asks, the same names and the same bytes.
    same_segments(&a, &b);
    // hls.js on a; a's encoder dies mid-play. a then has no publisher and
    // serves b's stream, under the same numbers: hls.js plays on.
    let viewer = hlsjs(&a, 20);
    std::thread::sleep(Duration::from_secs(8));
    stop(first);
    let (ok, out) = viewer.finish();
    stop(second);
    played_through(ok, &out, 20.0);
}

#[test]
fn viewers_of_a_third_node_play_on_when_the_node_they_pull_from_is_killed() {
    let dir = TempDir::new("cluster-kill");
    let database = sqlite_in(dir.path());
    let config = input_timeline(dir.path());
    let source = redundant_source(dir.path());
    let a = node(dir.path(), 0, &database, &["--config", &config]);
    let b = node(dir.path(), 1, &database, &["--config", &config]);
    // c keeps trusting a killed node's row for 10 s, so that it surely
    // still lists it when asked right after the kill (and skips it).
    let patient = dir.path().join("patient.toml");
    std::fs::write(&patient, "[cluster]\nstale_after_ms = 10000\n").unwrap();
    let c = node(
        dir.path(),
        2,
        &database,
        &["--config", patient.to_str().unwrap()],
    );
    let [p_a, p_b] = publish_pair(&source, &a, &b, 0, Ingest::Rtmp);
    wait_for_segments(&a, 2);
    wait_for_segments(&c, 2);
    // c pulls from the first node in the order of their advertised URLs.
    let url = |s: &Server| format!("http://{}", s.addr);
    let (pulled, other, lost, kept) = if url(&a) < url(&b) {
        (a, b, p_a, p_b)
    } else {
        (b, a, p_b, p_a)
    };
    let viewer = hlsjs(&c, 20);
    std::thread::sleep(Duration::from_secs(8));
    pulled.kill9();
    stop(lost);
    let media = media_playlist_path(&c, "cam");
    assert_eq!(get(c.addr, &media).status, 200);
    let (ok, out) = viewer.finish();
    stop(kept);
    drop(other);
    played_through(ok, &out, 20.0);
    // c counted the node that refused it, and what the other answered.
    let m = Api::new(c.admin_addr(), TOKEN)
        .call("GET", "/metrics", None)
        .body;
    let value = |name: &str| {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        value("headwater_data_relay_unreachable_nodes_total ") >= 1.0,
        "{m}"
    );
    assert!(
        value("headwater_data_relayed_requests_total{outcome=\"answered\"}") > 10.0,
        "{m}"
    );
}

#[test]
fn viewers_play_on_when_the_publishers_node_dies_and_it_moves_to_another() {
    let dir = TempDir::new("cluster-move");
    let database = sqlite_in(dir.path());
    let config = input_timeline(dir.path());
    let source = redundant_source(dir.path());
    let a = node(dir.path(), 0, &database, &["--config", &config]);
    let b = node(dir.path(), 1, &database, &["--config", &config]);
    let c = node(dir.path(), 2, &database, &["--config", &config]);
    let first = push(&source, &a, 0, Ingest::Rtmp);
    wait_for_segments(&c, 2);
    let viewer = hlsjs(&c, 24);
    std::thread::sleep(Duration::from_secs(10));
    // Node a dies with the publisher's connection; the encoder reconnects
    // to node b and carries on with its timestamps.
    let started = std::time::Instant::now();
    a.kill9();
    stop(first);
    let second = push(
        &source,
        &b,
        10 + started.elapsed().as_secs() as u32,
        Ingest::Rtmp,
    );
    let (ok, out) = viewer.finish();
    let media = media_playlist_path(&b, "cam");
    let text = get(b.addr, &media).text();
    stop(second);
    played_through(ok, &out, 24.0);
    // b's numbers go on from where a's were, not from 0.
    assert!(
        msn_range(&text).0 >= 5,
        "b numbered its segments afresh:\n{text}"
    );
}

#[test]
fn redundant_srt_publishers_make_interchangeable_segments() {
    let dir = TempDir::new("cluster-redundant-srt");
    let database = sqlite_in(dir.path());
    let config = input_timeline(dir.path());
    let source = redundant_source(dir.path());
    let args = ["--config", &config, "--srt-listen", "127.0.0.1:0"];
    let a = node(dir.path(), 0, &database, &args);
    let b = node(dir.path(), 1, &database, &args);
    let pair = publish_pair(&source, &a, &b, 5, Ingest::Srt);
    wait_for_segments(&a, 4);
    wait_for_segments(&b, 3);
    same_segments(&a, &b);
    pair.into_iter().for_each(stop);
}

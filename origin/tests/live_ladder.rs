//! Live ladders: a catalog stream with a 3-rung ladder is transcoded by
//! GStreamer while ffmpeg publishes it over RTMP. Checked: the multivariant
//! playlist and the MPD offer the three rungs at their sizes and bit rates,
//! the rungs' segments line up (same sequence numbers, same durations: the
//! keyframes are on the same frames), ffprobe decodes each rung at its
//! size, and hls.js plays the stream and switches through all three rungs.

use std::process::Command;
use std::time::Duration;

use headwater_testkit::admin::Api;
use headwater_testkit::live::{KEY, attr, ffmpeg_push, get_text, play, rtmp_url, wait_until};
use headwater_testkit::server::Server;

const ADMIN: &str = "admin-token-for-ladder-tests-0123";
/// (name, width, height, kbit/s), as the ladder below declares them.
const RUNGS: [(&str, u32, u32, u32); 3] = [
    ("r180", 320, 180, 400),
    ("r144", 256, 144, 250),
    ("r90", 160, 90, 120),
];

fn start() -> Server {
    let dir = headwater_testkit::workspace()
        .join("target/tmp")
        .join(format!("live-ladder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("c.db").display());
    headwater_testkit::live::start(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        &[
            "--admin-listen",
            "127.0.0.1:0",
            "--admin-token",
            ADMIN,
            "--database",
            &db,
        ],
    )
}

/// `(EXT-X-MEDIA-SEQUENCE, EXTINF durations)` of a media playlist.
fn segments(text: &str) -> (u64, Vec<String>) {
    let msn = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no EXT-X-MEDIA-SEQUENCE in {text}"));
    let durations = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').to_owned())
        .collect();
    (msn, durations)
}

#[test]
fn a_three_rung_ladder_stream_is_transcoded_aligned_and_switches_in_hlsjs() {
    let s = start();
    let api = Api::new(s.admin_addr(), ADMIN);
    let rungs: Vec<String> = RUNGS
        .iter()
        .map(|(n, w, h, b)| {
            format!(r#"{{"name": "{n}", "width": {w}, "height": {h}, "video_bitrate_kbps": {b}}}"#)
        })
        .collect();
    let ladder = format!(
        r#"{{"name": "live3", "frame_rate": 25, "keyframe_interval_secs": 2, "rungs": [{}]}}"#,
        rungs.join(",")
    );
    let r = api.call("POST", "/api/v1/ladders", Some(&ladder));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api.call(
        "POST",
        "/api/v1/streams",
        Some(&format!(
            r#"{{"name": "abr", "publish_key": "{KEY}", "ladder": "live3"}}"#
        )),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let rtmp = s.logged_addr("rtmp");
    let mut pusher = ffmpeg_push(&rtmp_url(rtmp, "abr", KEY), 75, "flv");

    // Every rung, at its size and bit rate, in the multivariant playlist.
    let playlists = |s: &Server| -> Vec<(String, (u64, Vec<String>))> {
        RUNGS
            .iter()
            .map(|(n, ..)| {
                let (st, text) = get_text(s, &format!("/live/abr/hls/{n}.m3u8"));
                assert_eq!(st, 200, "{n}.m3u8: {text}");
                (n.to_string(), segments(&text))
            })
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(30), || {
            get_text(&s, "/live/abr/hls/master.m3u8").0 == 200
                && playlists(&s).iter().all(|(_, (_, d))| d.len() >= 3)
        }),
        "the transcoded stream never had three segments in every rung: {}",
        get_text(&s, "/live/abr/hls/master.m3u8").1
    );
    let (_, master) = get_text(&s, "/live/abr/hls/master.m3u8");
    let variants: Vec<(&str, &str)> = master
        .lines()
        .zip(master.lines().skip(1))
        .filter(|(l, _)| l.starts_with("#EXT-X-STREAM-INF:"))
        .collect();
    assert_eq!(variants.len(), RUNGS.len(), "{master}");
    for (name, w, h, kbps) in RUNGS {
        let (inf, _) = variants
            .iter()
            .find(|(_, uri)| uri.starts_with(&format!("{name}.m3u8")))
            .unwrap_or_else(|| panic!("no variant {name} in {master}"));
        assert_eq!(
            attr(inf, "RESOLUTION").as_deref(),
            Some(&*format!("{w}x{h}")),
            "{inf}"
        );
        let bw: u64 = attr(inf, "BANDWIDTH").unwrap().parse().unwrap();
        assert!(
            bw > u64::from(kbps) * 1000,
            "{inf}: BANDWIDTH below the rung's {kbps} kbit/s"
        );
        assert!(attr(inf, "CODECS").unwrap().starts_with("avc1."), "{inf}");
    }

    // Aligned: the same sequence numbers and the same durations in every
    // rung, for the segments all of them list.
    let all = playlists(&s);
    let first = all.iter().map(|(_, (m, _))| *m).max().unwrap();
    let last = all
        .iter()
        .map(|(_, (m, d))| m + d.len() as u64)
        .min()
        .unwrap();
    assert!(last >= first + 2, "{all:?}");
    let window =
        |(m, d): &(u64, Vec<String>)| d[(first - m) as usize..(last - m) as usize].to_vec();
    for (name, p) in &all[1..] {
        assert_eq!(
            window(p),
            window(&all[0].1),
            "{name} against {}: {all:?}",
            all[0].0
        );
    }

    // The MPD has the three rungs as representations of their sizes.
    let (st, mpd) = get_text(&s, "/live/abr/dash/manifest.mpd");
    assert_eq!(st, 200, "{mpd}");
    for (_, w, h, _) in RUNGS {
        assert!(
            mpd.contains(&format!("width=\"{w}\"")) && mpd.contains(&format!("height=\"{h}\"")),
            "no {w}x{h} representation in {mpd}"
        );
    }

    // Each rung's init segment and first complete segment decode at the
    // rung's size: two seconds, 50 frames at 25 fps, from a keyframe.
    let dir = headwater_testkit::workspace()
        .join("target/tmp")
        .join(format!("live-ladder-rungs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, w, h, _) in RUNGS {
        let (_, text) = get_text(&s, &format!("/live/abr/hls/{name}.m3u8"));
        let init = text
            .lines()
            .find(|l| l.starts_with("#EXT-X-MAP:"))
            .and_then(|l| attr(l, "URI"))
            .unwrap_or_else(|| panic!("no EXT-X-MAP in {text}"));
        let segment = text
            .lines()
            .skip_while(|l| !l.starts_with("#EXTINF:"))
            .find(|l| !l.starts_with('#') && !l.is_empty())
            .unwrap_or_else(|| panic!("no segment in {text}"));
        let mut bytes = Vec::new();
        for uri in [init.as_str(), segment] {
            let r = headwater_testkit::http::get(s.addr, &format!("/live/abr/hls/{uri}"));
            assert_eq!(r.status, 200, "{uri}");
            bytes.extend_from_slice(&r.body);
        }
        let file = dir.join(format!("{name}.mp4"));
        std::fs::write(&file, &bytes).unwrap();
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
            .args([
                "-show_entries",
                "stream=width,height,nb_read_frames",
                "-of",
                "csv=p=0",
            ])
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ffprobe {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fields: Vec<&str> = text.trim().split(',').collect();
        assert_eq!(
            fields,
            [w.to_string(), h.to_string(), "50".to_owned()],
            "{name}"
        );
    }

    // hls.js plays it and switches through every rung, each confirmed by
    // the decoded video's height.
    let args = [
        "--player",
        "hls",
        "--expect-video-renditions",
        "3",
        "--seconds",
        "6",
    ];
    let (ok, report) = play(
        &s.url("/live/abr/hls/master.m3u8"),
        &[&args[..], &["--dwell", "1", "--timeout", "120"]].concat(),
    );
    let _ = pusher.kill();
    let _ = pusher.wait();
    assert!(ok, "hls.js failed:\n{report}");
    let v: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["live"], true, "{v:#}");
    assert_eq!(
        v["renditionsPlayed"].as_array().map(Vec::len),
        Some(3),
        "{v:#}"
    );
}

//! Manifests read back by independent parsers (m3u8-rs, dash-mpd-core),
//! checked against the HLS and DASH rules, and compared with golden files:
//! the manifests plus a box-tree dump of init and media segments.

use std::collections::BTreeSet;
use std::fmt::Write;

use headwater_testkit::http::{Conn, get};
use headwater_testkit::server::Server;
use m3u8_rs::Playlist;

fn server() -> Server {
    Server::start(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        &headwater_testkit::media(),
        &[],
    )
}

fn media_playlist_uris(s: &Server, asset: &str) -> Vec<String> {
    let body = get(s.addr, &format!("/vod/{asset}/hls/master.m3u8")).body;
    let Playlist::MasterPlaylist(master) = m3u8_rs::parse_playlist_res(&body).expect("valid HLS")
    else {
        panic!("not a multivariant playlist")
    };
    let mut uris: Vec<String> = master.variants.iter().map(|v| v.uri.clone()).collect();
    uris.extend(master.alternatives.iter().filter_map(|a| a.uri.clone()));
    uris.sort();
    uris.dedup();
    uris
}

/// Resolves `rel` against the directory `/vod/{asset}/{dir}/`.
fn resolve(asset: &str, dir: &str, rel: &str) -> String {
    rel.strip_prefix("../")
        .map(|r| format!("/vod/{asset}/{r}"))
        .unwrap_or_else(|| format!("/vod/{asset}/{dir}/{rel}"))
}

/// Every init and media segment URL an HLS client would fetch, and checks
/// the media playlists' rules on the way.
fn hls_urls(s: &Server, asset: &str) -> BTreeSet<String> {
    let mut urls = BTreeSet::new();
    for uri in media_playlist_uris(s, asset) {
        let body = get(s.addr, &format!("/vod/{asset}/hls/{uri}")).body;
        let text = String::from_utf8(body.clone()).unwrap();
        let Playlist::MediaPlaylist(p) = m3u8_rs::parse_playlist_res(&body).expect("valid HLS")
        else {
            panic!("not a media playlist")
        };
        assert_eq!(p.version, Some(7));
        assert!(p.end_list, "{uri}: EXT-X-ENDLIST");
        assert_eq!(p.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
        assert!(!p.segments.is_empty());
        for seg in &p.segments {
            // RFC 8216bis §4.4.3.1: rounded EXTINF never exceeds the target.
            assert!(
                (seg.duration.round() as u64) <= p.target_duration,
                "{uri}: {} > {}",
                seg.duration,
                p.target_duration
            );
            urls.insert(resolve(asset, "hls", &seg.uri));
        }
        let rounded_max = p
            .segments
            .iter()
            .map(|s| s.duration.round() as u64)
            .max()
            .unwrap();
        assert_eq!(
            p.target_duration,
            rounded_max.max(1),
            "{uri}: target duration is the smallest valid one"
        );
        if uri.ends_with(".vtt.m3u8") {
            // WebVTT segments carry no init segment.
            continue;
        }
        let map = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
            .expect("EXT-X-MAP");
        urls.insert(resolve(asset, "hls", map.trim_end_matches('"')));
    }
    urls
}

/// Every URL a DASH client would fetch, from SegmentTemplate + SegmentTimeline.
fn dash_urls(s: &Server, asset: &str) -> BTreeSet<String> {
    let text = get(s.addr, &format!("/vod/{asset}/dash/manifest.mpd")).text();
    let mpd = dash_mpd_core::parse(&text).expect("valid MPD");
    assert_eq!(mpd.mpdtype.as_deref(), Some("static"));
    assert!(
        mpd.profiles
            .as_deref()
            .unwrap()
            .contains("urn:mpeg:dash:profile:isoff-live:2011")
    );
    let mut urls = BTreeSet::new();
    for set in &mpd.periods[0].adaptations {
        for rep in &set.representations {
            if set.contentType.as_deref() == Some("text") {
                // A side-loaded WebVTT file.
                let base = &rep.BaseURL.first().expect("BaseURL").base;
                urls.insert(resolve(asset, "dash", base));
                continue;
            }
            let tpl = rep
                .SegmentTemplate
                .as_ref()
                .or(set.SegmentTemplate.as_ref())
                .expect("SegmentTemplate");
            let id = rep.id.as_deref().unwrap();
            let sub = |t: &str| t.replace("$RepresentationID$", id);
            urls.insert(resolve(
                asset,
                "dash",
                &sub(tpl.initialization.as_deref().unwrap()),
            ));
            let count: u64 = tpl
                .SegmentTimeline
                .as_ref()
                .unwrap()
                .segments
                .iter()
                .map(|s| 1 + s.r.unwrap_or(0) as u64)
                .sum();
            let start = tpl.startNumber.unwrap_or(1);
            for n in start..start + count {
                urls.insert(resolve(
                    asset,
                    "dash",
                    &sub(tpl.media.as_deref().unwrap()).replace("$Number$", &n.to_string()),
                ));
            }
        }
    }
    urls
}

/// Assets with golden files: made by encoders whose bytes are stable.
const GOLDEN: [&str; 11] = [
    "bframes",
    "fragmented",
    "editlist",
    "delayed-audio",
    "audio-only",
    "video-only",
    "ladder",
    "multi-audio",
    "multi-lang",
    "subs",
    "tx3g",
];

/// The codec corpus is not byte-stable across encoders' SIMD paths;
/// `codec_attributes` covers it with bit rates masked.
const CODECS: [&str; 4] = ["hevc", "hdr10", "av1", "hlg"];

#[test]
fn hls_and_dash_share_every_segment_url() {
    let s = server();
    for asset in GOLDEN.into_iter().chain(CODECS) {
        // Text differs by design: WebVTT segments for HLS, one file for DASH.
        // So does trick play: HLS I-frame playlists are byte ranges of
        // `iframes.m4s`, the DASH trick-mode set those fragments as
        // `k{n}.m4s` (`http::ranges_on_the_trick_resource`: the same bytes).
        let media = |u: &String| {
            let file = u.rsplit('/').next().unwrap_or("");
            let keyframe = file
                .strip_prefix('k')
                .and_then(|f| f.strip_suffix(".m4s"))
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            !u.contains("/vtt/") && file != "iframes.m4s" && !keyframe
        };
        let hls: BTreeSet<String> = hls_urls(&s, asset).into_iter().filter(media).collect();
        let dash: BTreeSet<String> = dash_urls(&s, asset).into_iter().filter(media).collect();
        assert_eq!(
            hls, dash,
            "{asset}: HLS and DASH reference different segments"
        );
        let mut c = Conn::open(s.addr);
        for url in &hls {
            let r = c.request("HEAD", url, &[]);
            assert_eq!(r.status, 200, "{url}");
            assert!(r.header("content-length").unwrap().parse::<u64>().unwrap() > 0);
        }
    }
}

#[test]
fn multivariant_attributes() {
    let s = server();
    let body = get(s.addr, "/vod/ladder/hls/master.m3u8").body;
    let Playlist::MasterPlaylist(mut m) = m3u8_rs::parse_playlist_res(&body).unwrap() else {
        panic!()
    };
    m.variants.retain(|v| !v.is_i_frame);
    assert_eq!(m.variants.len(), 3);
    assert_eq!(m.alternatives.len(), 1);
    let audio = &m.alternatives[0];
    assert_eq!(audio.media_type, m3u8_rs::AlternativeMediaType::Audio);
    assert!(audio.default && audio.autoselect);
    assert_eq!(audio.channels.as_deref(), Some("2"));
    let mut heights = Vec::new();
    for v in &m.variants {
        assert!(v.average_bandwidth.unwrap() <= v.bandwidth);
        assert!(
            v.codecs.as_deref().unwrap().starts_with("avc1.64"),
            "{:?}",
            v.codecs
        );
        assert!(v.codecs.as_deref().unwrap().ends_with(",mp4a.40.2"));
        assert_eq!(v.audio.as_deref(), Some(audio.group_id.as_str()));
        assert_eq!(v.frame_rate, Some(25.0));
        heights.push(v.resolution.unwrap().height);
    }
    assert_eq!(heights, vec![180, 270, 360]);
}

fn dump_asset(s: &Server, asset: &str) -> String {
    let mut out = String::new();
    let mut c = Conn::open(s.addr);
    let mut fetch = |path: &str| {
        let r = c.request("GET", path, &[]);
        assert_eq!(r.status, 200, "{path}");
        r.body
    };
    let _ = writeln!(
        out,
        "== hls/master.m3u8\n{}",
        String::from_utf8(fetch(&format!("/vod/{asset}/hls/master.m3u8"))).unwrap()
    );
    for uri in media_playlist_uris(s, asset) {
        let playlist = String::from_utf8(fetch(&format!("/vod/{asset}/hls/{uri}"))).unwrap();
        let _ = writeln!(out, "== hls/{uri}\n{playlist}");
        if uri.ends_with(".vtt.m3u8") {
            // The WebVTT segments themselves.
            for seg in playlist.lines().filter(|l| !l.starts_with('#')) {
                let path = resolve(asset, "hls", seg);
                let _ = writeln!(
                    out,
                    "== {path}\n{}",
                    String::from_utf8(fetch(&path)).unwrap()
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "== dash/manifest.mpd\n{}",
        String::from_utf8(fetch(&format!("/vod/{asset}/dash/manifest.mpd"))).unwrap()
    );
    // MPEG-TS: the multivariant playlist and every program's playlists.
    let ts_master = String::from_utf8(fetch(&format!("/vod/{asset}/hls-ts/master.m3u8"))).unwrap();
    let _ = writeln!(out, "== hls-ts/master.m3u8\n{ts_master}");
    let ts_children: Vec<String> = ts_master
        .lines()
        .filter_map(|l| {
            if l.starts_with('#') {
                l.split("URI=\"")
                    .nth(1)
                    .map(|u| u.trim_end_matches('"').to_owned())
            } else {
                (!l.is_empty()).then(|| l.to_owned())
            }
        })
        .collect();
    for uri in ts_children {
        let _ = writeln!(
            out,
            "== hls-ts/{uri}\n{}",
            String::from_utf8(fetch(&format!("/vod/{asset}/hls-ts/{uri}"))).unwrap()
        );
    }
    let ids: Vec<String> = media_playlist_uris(s, asset)
        .iter()
        .filter(|u| !u.ends_with(".iframes.m3u8") && !u.ends_with(".vtt.m3u8"))
        .map(|u| u.trim_end_matches(".m3u8").to_owned())
        .collect();
    for id in ids {
        let init = fetch(&format!("/vod/{asset}/cmaf/{id}/init.mp4"));
        let _ = writeln!(
            out,
            "== cmaf/{id}/init.mp4\n{}",
            headwater_testkit::boxes::dump(&init)
        );
        let seg = fetch(&format!("/vod/{asset}/cmaf/{id}/1.m4s"));
        let _ = writeln!(
            out,
            "== cmaf/{id}/1.m4s\n{}",
            headwater_testkit::boxes::dump(&seg)
        );
    }
    out
}

#[test]
fn golden_manifests_and_box_trees() {
    let s = server();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for asset in GOLDEN {
        headwater_testkit::golden(&dir.join(format!("{asset}.txt")), &dump_asset(&s, asset));
    }
}

/// Replaces the digits after each `key` with `N`: bit rates depend on the
/// encoders' exact bytes, the rest of the manifest does not.
fn mask_after(text: &str, key: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(key) {
        out.push_str(&rest[..i + key.len()]);
        rest = rest[i + key.len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push('N');
    }
    out.push_str(rest);
    out
}

/// HEVC, AV1, AC-3, E-AC-3 and Opus: CODECS strings from the configuration
/// boxes, channels from `dac3`/`dec3`/`dOps`, `VIDEO-RANGE` from `colr`,
/// the configuration boxes passed through into the init segments.
#[test]
fn codec_attributes() {
    let s = server();
    let mut dump = String::new();
    for (asset, video, audio, channels, range) in [
        ("hevc", "hvc1.1.6.L60.90", "ac-3", "6", None),
        ("hdr10", "hev1.2.4.L60.90", "ec-3", "2", Some("PQ")),
        ("av1", "av01.0.00M.08", "opus", "2", None),
        ("hlg", "hvc1.2.4.L60.90", "mp4a.40.2", "2", Some("HLG")),
    ] {
        let body = get(s.addr, &format!("/vod/{asset}/hls/master.m3u8")).body;
        let Playlist::MasterPlaylist(mut m) = m3u8_rs::parse_playlist_res(&body).unwrap() else {
            panic!("{asset}: not a multivariant playlist")
        };
        m.variants.retain(|v| !v.is_i_frame);
        assert_eq!(m.variants.len(), 1, "{asset}");
        let v = &m.variants[0];
        assert_eq!(
            v.codecs.as_deref(),
            Some(format!("{video},{audio}").as_str())
        );
        let video_range = v
            .other_attributes
            .as_ref()
            .and_then(|a| a.get("VIDEO-RANGE"))
            .map(|r| r.to_string());
        assert_eq!(video_range.as_deref(), range, "{asset}");
        assert_eq!(m.alternatives[0].channels.as_deref(), Some(channels));
        let mpd_text = get(s.addr, &format!("/vod/{asset}/dash/manifest.mpd")).text();
        let mpd = dash_mpd_core::parse(&mpd_text).expect("valid MPD");
        let codecs: Vec<&str> = mpd.periods[0]
            .adaptations
            .iter()
            .filter(|a| a.essential_property.is_empty())
            .flat_map(|a| &a.representations)
            .filter_map(|r| r.codecs.as_deref())
            .collect();
        assert_eq!(codecs, [video, audio], "{asset}");
        let (fourcc, config) = match asset {
            "hevc" => ("hvc1", "hvcC"),
            "hdr10" => ("hev1", "hvcC"),
            "hlg" => ("hvc1", "hvcC"),
            _ => ("av01", "av1C"),
        };
        let init = get(s.addr, &format!("/vod/{asset}/cmaf/v1/init.mp4")).body;
        let tree = headwater_testkit::boxes::dump(&init);
        assert!(
            tree.contains(fourcc) && tree.contains(config),
            "{asset}: {tree}"
        );
        let audio_config = match audio {
            "ac-3" => "dac3",
            "ec-3" => "dec3",
            "mp4a.40.2" => "esds",
            _ => "dOps",
        };
        let init = get(s.addr, &format!("/vod/{asset}/cmaf/a2/init.mp4")).body;
        let tree = headwater_testkit::boxes::dump(&init);
        assert!(tree.contains(audio_config), "{asset}: {tree}");
        // Covers AVERAGE-BANDWIDTH too.
        let masked = mask_after(&String::from_utf8(body).unwrap(), "BANDWIDTH=");
        let _ = writeln!(dump, "== {asset}/hls/master.m3u8\n{masked}");
        let _ = writeln!(
            dump,
            "== {asset}/dash/manifest.mpd\n{}",
            mask_after(&mpd_text, "bandwidth=\"")
        );
    }
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/codecs.txt");
    headwater_testkit::golden(&golden, &dump);
}

/// Several audio tracks: languages from `mdhd` or from file names, names
/// from `hdlr`, the first the default, two English tracks kept apart (in
/// HLS and as DASH adaptation sets of their own with `lang`, `Role`, `Label`).
#[test]
fn several_audio_tracks() {
    let s = server();
    for (asset, want) in [
        (
            "multi-audio",
            vec![
                ("a2", "English", Some("en")),
                ("a3", "Commentary", Some("en")),
                ("a4", "French", Some("fr")),
            ],
        ),
        (
            "multi-lang",
            vec![
                ("audio-de-a1", "German", Some("de")),
                ("audio-en-a1", "English", Some("en")),
            ],
        ),
    ] {
        let body = get(s.addr, &format!("/vod/{asset}/hls/master.m3u8")).body;
        let Playlist::MasterPlaylist(m) = m3u8_rs::parse_playlist_res(&body).unwrap() else {
            panic!("{asset}: not a multivariant playlist")
        };
        let got: Vec<(String, String, Option<String>)> = m
            .alternatives
            .iter()
            .map(|a| {
                assert_eq!(a.media_type, m3u8_rs::AlternativeMediaType::Audio);
                assert!(a.autoselect, "{asset}: AUTOSELECT");
                assert_eq!(a.channels.as_deref(), Some("2"));
                (
                    a.uri.clone().unwrap().trim_end_matches(".m3u8").to_owned(),
                    a.name.clone(),
                    a.language.clone(),
                )
            })
            .collect();
        let expected: Vec<(String, String, Option<String>)> = want
            .iter()
            .map(|(id, name, lang)| {
                (
                    (*id).to_owned(),
                    (*name).to_owned(),
                    lang.map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(got, expected, "{asset}");
        let defaults: Vec<bool> = m.alternatives.iter().map(|a| a.default).collect();
        assert!(defaults[0], "{asset}: the first is the default");
        assert!(defaults[1..].iter().all(|d| !d), "{asset}: one default");

        let mpd =
            dash_mpd_core::parse(&get(s.addr, &format!("/vod/{asset}/dash/manifest.mpd")).text())
                .expect("valid MPD");
        let audio: Vec<_> = mpd.periods[0]
            .adaptations
            .iter()
            .filter(|a| a.contentType.as_deref() == Some("audio"))
            .collect();
        assert_eq!(
            audio.len(),
            want.len(),
            "{asset}: one adaptation set per track"
        );
        for (i, (set, (id, name, lang))) in audio.iter().zip(&want).enumerate() {
            assert_eq!(set.representations.len(), 1);
            assert_eq!(set.representations[0].id.as_deref(), Some(*id));
            assert_eq!(set.lang.as_deref(), *lang);
            let role = set.Role.first().and_then(|r| r.value.as_deref());
            assert_eq!(
                role,
                Some(if i == 0 { "main" } else { "alternate" }),
                "{asset} {id}"
            );
            let label = set.Label.first().map(|l| l.content.as_str());
            assert_eq!(label, Some(*name), "{asset} {id}");
        }
    }
}

/// The multivariant playlist at `target`, I-frame streams included.
fn multivariant(s: &Server, target: &str) -> m3u8_rs::MasterPlaylist {
    let r = get(s.addr, target);
    assert_eq!(r.status, 200, "{target}: {}", r.text());
    match m3u8_rs::parse_playlist_res(&r.body).expect("valid HLS") {
        Playlist::MasterPlaylist(m) => m,
        Playlist::MediaPlaylist(_) => panic!("{target}: not a multivariant playlist"),
    }
}

/// The multivariant playlist at `target` without its I-frame streams.
fn variants(s: &Server, target: &str) -> m3u8_rs::MasterPlaylist {
    let r = get(s.addr, target);
    assert_eq!(r.status, 200, "{target}: {}", r.text());
    match m3u8_rs::parse_playlist_res(&r.body).expect("valid HLS") {
        Playlist::MasterPlaylist(mut m) => {
            m.variants.retain(|v| !v.is_i_frame);
            m
        }
        Playlist::MediaPlaylist(_) => panic!("{target}: not a multivariant playlist"),
    }
}

/// Manifest filters keep a subset of renditions and point at the same
/// shared children; garbage is a 400 naming the parameter.
#[test]
fn manifest_filters() {
    let s = server();
    let all = variants(&s, "/vod/ladder/hls/master.m3u8");
    let uris =
        |m: &m3u8_rs::MasterPlaylist| m.variants.iter().map(|v| v.uri.clone()).collect::<Vec<_>>();
    assert_eq!(uris(&all), ["180p-v1.m3u8", "270p-v1.m3u8", "360p-v1.m3u8"]);
    let bitrates: Vec<u64> = all.variants.iter().map(|v| v.bandwidth).collect();
    for (query, want) in [
        ("video_height=200-300", vec!["270p-v1.m3u8"]),
        ("video_height=270-", vec!["270p-v1.m3u8", "360p-v1.m3u8"]),
        ("video_height=-180", vec!["180p-v1.m3u8"]),
        (
            "video_codec=avc1&audio_codec=mp4a",
            uris(&all).iter().map(String::as_str).collect(),
        ),
        // Peak bit rates include the audio in BANDWIDTH; the filter is on the video rendition's own.
        ("video_bitrate=0-1", vec![]),
        ("token=abc&video_height=360", vec!["360p-v1.m3u8"]),
    ] {
        let target = format!("/vod/ladder/hls/master.m3u8?{query}");
        if want.is_empty() {
            let r = get(s.addr, &target);
            assert_eq!(r.status, 400, "{target}");
            assert!(
                r.text().contains("leaves no video rendition"),
                "{}",
                r.text()
            );
            continue;
        }
        let m = variants(&s, &target);
        assert_eq!(uris(&m), want, "{query}");
        for v in &m.variants {
            assert!(
                bitrates.contains(&v.bandwidth),
                "{query}: variant attributes unchanged"
            );
        }
    }
    // Below the lowest and above the highest bit rate.
    let lowest = all.variants[0].bandwidth;
    let m = variants(
        &s,
        &format!("/vod/ladder/hls/master.m3u8?video_bitrate={lowest}-"),
    );
    assert_eq!(
        uris(&m),
        ["270p-v1.m3u8", "360p-v1.m3u8"],
        "video alone is below BANDWIDTH"
    );

    // Audio language, HLS and DASH; the filtered MPD's templates are the shared ones.
    let m = variants(&s, "/vod/multi-audio/hls/master.m3u8?audio_language=fr");
    let names: Vec<&str> = m.alternatives.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["French"]);
    assert!(m.alternatives[0].default, "the one left is the default");
    let m = variants(&s, "/vod/multi-audio/hls/master.m3u8?audio_language=en");
    let names: Vec<&str> = m.alternatives.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["English", "Commentary"]);
    let full = get(s.addr, "/vod/multi-audio/dash/manifest.mpd").text();
    let fr = get(
        s.addr,
        "/vod/multi-audio/dash/manifest.mpd?audio_language=fr",
    )
    .text();
    let mpd = dash_mpd_core::parse(&fr).expect("valid MPD");
    let langs: Vec<Option<&str>> = mpd.periods[0]
        .adaptations
        .iter()
        .filter(|a| a.contentType.as_deref() == Some("audio"))
        .map(|a| a.lang.as_deref())
        .collect();
    assert_eq!(langs, [Some("fr")]);
    let template = |t: &str| {
        t.lines()
            .find(|l| l.contains("<SegmentTemplate"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(template(&fr), template(&full));
    assert!(
        fr.contains("value=\"main\""),
        "the French set is now the main one"
    );

    // Garbage is refused, naming the parameter; the connection stays usable.
    let mut c = Conn::open(s.addr);
    for (query, needle) in [
        ("video_height=tall", "video_height"),
        ("video_bitrate=5-1", "video_bitrate"),
        ("audio_language=en%3Cscript%3E", "audio_language"),
        ("audio_language=de", "leaves no audio"),
        ("video_codec=hvc1", "leaves no video"),
        ("video_height=1-2&video_height=3-4", "more than once"),
    ] {
        for path in [
            "/vod/multi-audio/hls/master.m3u8",
            "/vod/multi-audio/dash/manifest.mpd",
        ] {
            let r = c.request("GET", &format!("{path}?{query}"), &[]);
            assert_eq!(r.status, 400, "{path}?{query}");
            assert!(r.text().contains(needle), "{query}: {}", r.text());
        }
    }
    assert_eq!(
        c.request("GET", "/vod/multi-audio/hls/master.m3u8", &[])
            .status,
        200
    );
}

/// Trick play: an I-frame stream per video rendition in HLS, and a DASH
/// trick-mode set that points at the same keyframe segments.
#[test]
fn trick_play_streams() {
    let s = server();
    let m = multivariant(&s, "/vod/ladder/hls/master.m3u8");
    let iframes: Vec<&m3u8_rs::VariantStream> =
        m.variants.iter().filter(|v| v.is_i_frame).collect();
    assert_eq!(iframes.len(), 3);
    for v in &iframes {
        assert!(v.uri.ends_with(".iframes.m3u8"), "{}", v.uri);
        assert!(v.codecs.as_deref().unwrap().starts_with("avc1."));
        assert!(v.resolution.is_some());
        assert!(v.bandwidth > 0);
    }
    let mpd = dash_mpd_core::parse(&get(s.addr, "/vod/ladder/dash/manifest.mpd").text()).unwrap();
    let trick: Vec<_> = mpd.periods[0]
        .adaptations
        .iter()
        .filter(|a| {
            a.essential_property
                .iter()
                .any(|p| p.schemeIdUri == "http://dashif.org/guidelines/trickmode")
        })
        .collect();
    assert_eq!(trick.len(), 1);
    let main_id = mpd.periods[0].adaptations[0].id.clone();
    let value = trick[0].essential_property[0].value.clone();
    assert_eq!(
        value.as_deref(),
        main_id.as_deref(),
        "points at the main video set"
    );
    assert_eq!(trick[0].representations.len(), 3);
    // Audio-only assets have none.
    let m = multivariant(&s, "/vod/audio-only/hls/master.m3u8");
    assert!(m.variants.iter().all(|v| !v.is_i_frame));
}

/// The frame size a decoder outputs (ffprobe's), wherever a manifest gives
/// one: HLS `RESOLUTION` in fMP4 and TS multivariant playlists, DASH
/// `width`/`height`. `sar.mp4`'s track header says 853.33 wide for 854
/// pixels of aspect 1280:1281 (issue 15, item 5).
#[test]
fn resolution_is_the_decoded_frame_size() {
    let s = server();
    for asset in ["sar", "bframes", "hevc", "ladder"] {
        let decoded = |url: &str| -> (u64, u64) {
            let out = headwater_testkit::ffmpeg::probe(&s.url(url), "v:0", "stream=width,height");
            let f: Vec<u64> = out[0].split(',').map(|x| x.parse().unwrap()).collect();
            (f[0], f[1])
        };
        for dir in ["hls", "hls-ts"] {
            let master = multivariant(&s, &format!("/vod/{asset}/{dir}/master.m3u8"));
            for v in master.variants.iter().filter(|v| !v.is_i_frame) {
                let res = v.resolution.expect("RESOLUTION on a video variant");
                let want = decoded(&format!("/vod/{asset}/{dir}/{}", v.uri));
                assert_eq!((res.width, res.height), want, "{asset} {dir} {}", v.uri);
            }
        }
        let mpd = get(s.addr, &format!("/vod/{asset}/dash/manifest.mpd")).text();
        let mpd = dash_mpd_core::parse(&mpd).expect("valid MPD");
        for set in &mpd.periods[0].adaptations {
            for rep in &set.representations {
                let (Some(w), Some(h)) = (rep.width, rep.height) else {
                    continue;
                };
                let id = rep.id.clone().unwrap();
                if id.ends_with("-trick") {
                    continue;
                }
                let want = decoded(&format!("/vod/{asset}/hls/{id}.m3u8"));
                assert_eq!((w, h), want, "{asset} DASH {id}");
            }
        }
    }
}

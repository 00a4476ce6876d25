//! Playback tokens on the data plane: valid, expired, forged, for another
//! asset, signed by a retired key, bound to another IP; the token carried
//! into every child URI of HLS (fMP4 and TS) and DASH manifests, so real
//! players (ffmpeg) play a protected asset from its tokenized URL alone.

use std::path::PathBuf;
use std::time::Duration;

use headwater_testkit::admin::Api;
use headwater_testkit::http::{self, Conn};
use headwater_testkit::server::Server;
use serde_json::Value;

const HEADWATER: &str = env!("CARGO_BIN_EXE_headwater");
const ADMIN: &str = "admin-token-for-token-tests-0123";

struct Env {
    server: Server,
    api: Api,
    dir: PathBuf,
}

fn env(name: &str, extra_config: &str) -> Env {
    let dir = headwater_testkit::scratch_dir(name);
    let corpus = headwater_testkit::media();
    std::fs::copy(corpus.join("bframes.mp4"), dir.join("media/x.mp4")).unwrap();
    let conf = dir.join("headwater.toml");
    std::fs::write(&conf, extra_config).unwrap();
    let server = Server::start_in(
        HEADWATER.as_ref(),
        &dir,
        ADMIN,
        &["--config", conf.to_str().unwrap()],
    );
    let api = Api::new(server.admin_addr(), ADMIN);
    for id in ["x", "y"] {
        let body =
            format!(r#"{{"id": "{id}", "require_token": true, "sources": [{{"path": "x.mp4"}}]}}"#);
        let r = api.call("POST", "/api/v1/assets", Some(&body));
        assert_eq!(r.status, 201, "{}", r.body);
    }
    Env { server, api, dir }
}

fn mint(api: &Api, body: &str) -> Value {
    let r = api.call("POST", "/api/v1/tokens", Some(body));
    assert_eq!(r.status, 201, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

fn status(e: &Env, path: &str) -> u16 {
    http::get(e.server.addr, path).status
}

/// Every URI in an HLS playlist (lines and `URI="..."` attributes).
fn hls_uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            out.push(line.to_owned());
        }
        if let Some(p) = line.find("URI=\"") {
            let rest = &line[p + 5..];
            out.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    out
}

/// Resolves `uri` against the URL path `base` (a file in a directory).
fn resolve(base: &str, uri: &str) -> String {
    let mut dir: Vec<&str> = base.split('?').next().unwrap().split('/').collect();
    dir.pop();
    for part in uri.split('/') {
        match part {
            ".." => {
                dir.pop();
            }
            "." => {}
            p => dir.push(p),
        }
    }
    dir.join("/")
}

/// Walks the HLS tree from `master`: every child URI carries the token,
/// answers 200 with it and 403 without it. Returns how many were fetched.
fn walk_hls(e: &Env, master: &str, token: &str) -> usize {
    let mut todo = vec![master.to_owned()];
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let r = http::get(e.server.addr, &path);
        assert_eq!(r.status, 200, "{path}");
        seen += 1;
        let bare = path.split('?').next().unwrap();
        assert_eq!(status(e, bare), 403, "{bare} without a token");
        if !bare.ends_with(".m3u8") {
            continue;
        }
        for uri in hls_uris(&r.text()) {
            assert!(
                uri.ends_with(&format!("token={token}")),
                "{uri} in {path} lacks the token"
            );
            let child = resolve(&path, &uri);
            todo.push(child);
        }
    }
    seen
}

#[test]
fn a_valid_token_opens_every_child_uri_and_players_play_it() {
    let e = env("tok-valid", "");
    let t = mint(&e.api, r#"{"asset": "x", "ttl_seconds": 600}"#);
    let token = t["token"].as_str().unwrap();
    assert_eq!(status(&e, "/vod/x/hls/master.m3u8"), 403);
    assert_eq!(status(&e, "/vod/x/cmaf/v1/1.m4s"), 403);
    let fetched = walk_hls(&e, t["hls"].as_str().unwrap(), token);
    assert!(fetched > 6, "{fetched}");
    let ts = format!("/vod/x/hls-ts/master.m3u8?token={token}");
    assert!(walk_hls(&e, &ts, token) > 4);
    // DASH: every template and URL carries the token.
    let mpd = http::get(e.server.addr, t["dash"].as_str().unwrap());
    assert_eq!(mpd.status, 200);
    let text = mpd.text();
    for attr in ["initialization=\"", "media=\""] {
        for (i, _) in text.match_indices(attr) {
            let v = &text[i + attr.len()..];
            let v = &v[..v.find('"').unwrap()];
            assert!(v.ends_with(&format!("?token={token}")), "{v}");
        }
    }
    let seg = format!("/vod/x/cmaf/v1/1.m4s?token={token}");
    assert_eq!(status(&e, &seg), 200);
    // ffmpeg plays HLS, TS and DASH from the tokenized URLs alone, frame for frame.
    let source = e.dir.join("media/x.mp4");
    let want = headwater_testkit::ffmpeg::frame_hashes(source.to_str().unwrap(), "v", &[]);
    for url in [t["hls"].as_str().unwrap(), &ts, t["dash"].as_str().unwrap()] {
        let got = headwater_testkit::ffmpeg::frame_hashes(&e.server.url(url), "v", &[]);
        assert_eq!(got, want, "{url}");
    }
    // The offline signer makes tokens the server accepts.
    let out = std::process::Command::new(HEADWATER)
        .args(["token", "sign", "--asset", "x", "--ttl", "60", "--database"])
        .arg(format!("sqlite://{}", e.dir.join("catalog.db").display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        status(&e, &format!("/vod/x/dash/manifest.mpd?token={cli}")),
        200
    );
}

#[test]
fn expired_forged_and_other_asset_tokens_are_refused() {
    let e = env("tok-refused", "");
    let short = mint(&e.api, r#"{"asset": "x", "ttl_seconds": 1}"#);
    let url = short["hls"].as_str().unwrap();
    assert_eq!(status(&e, url), 200);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(status(&e, url), 403, "expired");

    let t = mint(&e.api, r#"{"asset": "x", "ttl_seconds": 600}"#);
    let token = t["token"].as_str().unwrap();
    // Forged: one character of the MAC changed; a later expiry pasted in.
    let last = token.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &token[..token.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    assert_eq!(
        status(&e, &format!("/vod/x/hls/master.m3u8?token={flipped}")),
        403
    );
    let parts: Vec<&str> = token.split('.').collect();
    let later = format!(
        "{}.{}.{}.{}",
        parts[0],
        parts[1].parse::<u64>().unwrap() + 3600,
        parts[2],
        parts[3]
    );
    assert_eq!(
        status(&e, &format!("/vod/x/hls/master.m3u8?token={later}")),
        403
    );
    assert_eq!(status(&e, "/vod/x/hls/master.m3u8?token=garbage"), 403);
    assert_eq!(status(&e, "/vod/x/hls/master.m3u8?token="), 403);
    // Another asset's token opens that asset only.
    let y = mint(&e.api, r#"{"asset": "y", "ttl_seconds": 600}"#);
    let ytok = y["token"].as_str().unwrap();
    assert_eq!(status(&e, y["hls"].as_str().unwrap()), 200);
    assert_eq!(
        status(&e, &format!("/vod/x/hls/master.m3u8?token={ytok}")),
        403
    );
    assert_eq!(
        status(&e, &format!("/vod/x/cmaf/v1/1.m4s?token={ytok}")),
        403
    );
    // Refusals are 403 with nothing else, and never log the token.
    let r = http::get(
        e.server.addr,
        &format!("/vod/x/hls/master.m3u8?token={ytok}"),
    );
    assert_eq!(r.text(), "forbidden\n");
    assert!(
        !e.server
            .log()
            .iter()
            .any(|l| l.contains(ytok) || l.contains(token))
    );
}

#[test]
fn retired_keys_stop_working_and_rotation_keeps_old_tokens_alive() {
    let e = env("tok-rotate", "");
    let keys: Value = serde_json::from_str(&e.api.call("GET", "/api/v1/keys", None).body).unwrap();
    let old_key = keys[0]["id"].as_str().unwrap().to_owned();
    assert!(
        !e.api
            .call("GET", "/api/v1/keys", None)
            .body
            .contains("secret")
    );
    // The last active key cannot be retired.
    assert_eq!(
        e.api
            .call("DELETE", &format!("/api/v1/keys/{old_key}"), None)
            .status,
        409
    );
    let old = mint(&e.api, r#"{"asset": "x", "ttl_seconds": 600}"#);
    let r = e.api.call("POST", "/api/v1/keys", None);
    assert_eq!(r.status, 201, "{}", r.body);
    let new_key = serde_json::from_str::<Value>(&r.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_key, old_key);
    let new = mint(&e.api, r#"{"asset": "x", "ttl_seconds": 600}"#);
    assert_eq!(new["key_id"], new_key.as_str());
    // Both keys are valid at once.
    assert_eq!(status(&e, old["hls"].as_str().unwrap()), 200);
    assert_eq!(status(&e, new["hls"].as_str().unwrap()), 200);
    assert_eq!(
        e.api
            .call("DELETE", &format!("/api/v1/keys/{old_key}"), None)
            .status,
        204
    );
    assert_eq!(
        status(&e, old["hls"].as_str().unwrap()),
        403,
        "rotated-out key"
    );
    assert_eq!(status(&e, new["hls"].as_str().unwrap()), 200);
}

#[test]
fn ip_bound_tokens_need_that_address() {
    let e = env("tok-ip", "");
    let other = mint(
        &e.api,
        r#"{"asset": "x", "ttl_seconds": 600, "client_ip": "192.0.2.1"}"#,
    );
    assert_eq!(
        status(&e, other["hls"].as_str().unwrap()),
        403,
        "IP mismatch"
    );
    let mine = mint(
        &e.api,
        r#"{"asset": "x", "ttl_seconds": 600, "client_ip": "127.0.0.1"}"#,
    );
    assert_eq!(status(&e, mine["hls"].as_str().unwrap()), 200);
    let r = e.api.call(
        "POST",
        "/api/v1/tokens",
        Some(r#"{"asset": "x", "ttl_seconds": 6, "client_ip": "nope"}"#),
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("client_ip"));
    // Without a configured header, a forwarded address is not believed.
    let mut c = Conn::open(e.server.addr);
    let r = c.request(
        "GET",
        other["hls"].as_str().unwrap(),
        &["X-Forwarded-For: 192.0.2.1"],
    );
    assert_eq!(r.status, 403);
}

#[test]
fn behind_a_proxy_the_configured_header_names_the_viewer() {
    let e = env(
        "tok-xff",
        "[tokens]\nclient_ip_header = \"X-Forwarded-For\"\n",
    );
    let t = mint(
        &e.api,
        r#"{"asset": "x", "ttl_seconds": 600, "client_ip": "192.0.2.1"}"#,
    );
    let url = t["hls"].as_str().unwrap();
    let mut c = Conn::open(e.server.addr);
    assert_eq!(
        c.request("GET", url, &["X-Forwarded-For: 192.0.2.1, 10.0.0.1"])
            .status,
        200
    );
    assert_eq!(
        c.request("GET", url, &["X-Forwarded-For: 192.0.2.2"])
            .status,
        403
    );
    assert_eq!(c.request("GET", url, &[]).status, 403);
}

/// What a token protects is not reachable another way: the protected
/// asset's file is not a directory-mode asset under its own name, nor
/// through a hard link or a symlink to it, nor as part of a directory
/// (issue 22, item 4).
#[test]
fn protected_files_are_not_reachable_by_file_name() {
    let e = env("tok-byname", "[media]\nsymlinks = \"within_root\"\n");
    let media = e.dir.join("media");
    let corpus = headwater_testkit::media();
    std::fs::copy(corpus.join("bframes.mp4"), media.join("movie.mp4")).unwrap();
    std::fs::hard_link(media.join("movie.mp4"), media.join("hardcopy.mp4")).unwrap();
    std::os::unix::fs::symlink("movie.mp4", media.join("softcopy.mp4")).unwrap();
    std::fs::create_dir(media.join("pack")).unwrap();
    std::fs::copy(corpus.join("bframes.mp4"), media.join("pack/v.mp4")).unwrap();
    let names = ["movie", "hardcopy", "softcopy", "pack"];
    // Unprotected, each is a directory-mode asset.
    for a in names {
        assert_eq!(status(&e, &format!("/vod/{a}/hls/master.m3u8")), 200, "{a}");
    }
    let body = r#"{"id": "film", "require_token": true,
        "sources": [{"path": "movie.mp4"}, {"path": "pack/v.mp4"}]}"#;
    let r = e.api.call("POST", "/api/v1/assets", Some(body));
    assert_eq!(r.status, 201, "{}", r.body);
    // From the moment the catalog has it, only the token opens it.
    for a in names {
        for path in [
            format!("/vod/{a}/hls/master.m3u8"),
            format!("/vod/{a}/cmaf/v1/1.m4s"),
            format!("/vod/{a}/ts/v1.a2/1.ts"),
        ] {
            assert_eq!(status(&e, &path), 404, "{path}");
        }
    }
    assert_eq!(status(&e, "/vod/film/hls/master.m3u8"), 403);
    let t = mint(&e.api, r#"{"asset": "film", "ttl_seconds": 600}"#);
    assert_eq!(status(&e, t["hls"].as_str().unwrap()), 200);
    // Unprotected again, reachable again.
    let r = e.api.call("DELETE", "/api/v1/assets/film", None);
    assert!(r.status < 300, "{}", r.body);
    assert_eq!(status(&e, "/vod/movie/hls/master.m3u8"), 200);
}

/// One canonical token per request: two `token` parameters are refused
/// even when both are valid; a token cannot be minted for an asset that
/// does not exist (issue 22, item 8).
#[test]
fn ambiguous_and_pointless_tokens_are_refused() {
    let e = env("tok-ambiguous", "");
    let t = mint(&e.api, r#"{"asset": "x", "ttl_seconds": 600}"#);
    let token = t["token"].as_str().unwrap();
    assert_eq!(
        status(&e, &format!("/vod/x/hls/master.m3u8?token={token}")),
        200
    );
    assert_eq!(
        status(
            &e,
            &format!("/vod/x/hls/master.m3u8?token={token}&token={token}")
        ),
        403
    );
    assert_eq!(
        status(&e, &format!("/vod/x/hls/master.m3u8?token=&token={token}")),
        403
    );
    // The MAC in standard base64 (`+`, `/`) is not the token.
    let mac = token.rsplit('.').next().unwrap();
    let std_mac: String = mac
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    if std_mac != mac {
        let other = format!("{}{}", &token[..token.len() - mac.len()], std_mac);
        let escaped = other.replace('+', "%2B").replace('/', "%2F");
        for t in [other, escaped] {
            assert_eq!(
                status(&e, &format!("/vod/x/hls/master.m3u8?token={t}")),
                403,
                "{t}"
            );
        }
    }
    let r = e.api.call(
        "POST",
        "/api/v1/tokens",
        Some(r#"{"asset": "nosuch", "ttl_seconds": 60}"#),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    // A directory-mode asset exists without a catalog entry.
    let r = e.api.call(
        "POST",
        "/api/v1/tokens",
        Some(r#"{"asset": "x", "ttl_seconds": 60}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

//! The control API against a real SQLite file and a real PostgreSQL
//! server: the same contract runs on both. Also: admin auth and scopes,
//! errors as JSON naming the field, catalog changes reaching the data plane
//! within a second (on one node, and across two nodes sharing PostgreSQL),
//! metrics and health, and the OpenAPI document.

use std::path::Path;
use std::time::Duration;

use headwater_testkit::admin::Api;
use headwater_testkit::http;
use headwater_testkit::postgres::Postgres;
use headwater_testkit::server::Server;
use headwater_testkit::{scratch_dir, within};
use serde_json::{Value, json};

const HEADWATER: &str = env!("CARGO_BIN_EXE_headwater");
const ADMIN: &str = "admin-token-for-tests-0123456789";
const READER: &str = "reader-token-for-tests-012345678";

/// A media root with one asset file, and a config naming a read-only token.
fn setup(dir: &Path) -> std::path::PathBuf {
    let media = dir.join("media");
    let corpus = headwater_testkit::media();
    std::fs::copy(corpus.join("bframes.mp4"), media.join("clip.mp4")).unwrap();
    std::fs::copy(corpus.join("multi-audio.mp4"), media.join("langs.mp4")).unwrap();
    std::fs::write(media.join("notes.txt"), "not media").unwrap();
    let conf = dir.join("headwater.toml");
    std::fs::write(
        &conf,
        format!(
            "[[admin.tokens]]\nname = \"reader\"\nsha256 = \"{}\"\nscopes = [\"read\"]\n",
            headwater_testkit::admin::sha256_hex(READER)
        ),
    )
    .unwrap();
    media
}

/// A server on [`setup`]'s media root and config, its catalog in `database`.
fn start(media: &Path, conf: &Path, database: &str) -> Server {
    let conf = conf.to_str().unwrap();
    Server::start_admin(
        HEADWATER.as_ref(),
        media,
        ADMIN,
        database,
        &["--config", conf],
    )
}

fn json_of(r: &headwater_testkit::admin::Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {} {}", r.status, r.body))
}

/// An error reply: status, JSON with the stable code, a message naming `needle`.
fn assert_error(r: &headwater_testkit::admin::Reply, status: u16, code: &str, needle: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let v = json_of(r);
    assert_eq!(v["code"], code, "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains(needle),
        "message {msg:?} should name {needle:?}"
    );
}

fn contract(database: &str, dir: &Path) {
    let media = setup(dir);
    let s = start(&media, &dir.join("headwater.toml"), database);
    let admin = s.admin_addr();
    let api = Api::new(admin, ADMIN);
    let reader = Api::new(admin, READER);
    let anon = Api {
        addr: admin,
        token: None,
    };

    // Auth: 401 without or with an unknown token, 403 without the scope.
    assert_error(
        &anon.call("GET", "/api/v1/assets", None),
        401,
        "unauthorized",
        "token",
    );
    assert_error(
        &Api::new(admin, "not-a-known-token-000000").call("GET", "/api/v1/assets", None),
        401,
        "unauthorized",
        "unknown",
    );
    assert_eq!(reader.call("GET", "/api/v1/assets", None).status, 200);
    assert_error(
        &reader.call("POST", "/api/v1/ladders", Some("{}")),
        403,
        "forbidden",
        "write",
    );
    assert_error(
        &reader.call(
            "POST",
            "/api/v1/tokens",
            Some(r#"{"asset":"x","ttl_seconds":5}"#),
        ),
        403,
        "forbidden",
        "tokens",
    );

    // Assets: validation names the field; unreadable media is a 422 naming the file.
    assert_error(
        &api.call("POST", "/api/v1/assets", Some(r#"{"id":"a"}"#)),
        400,
        "invalid_request",
        "sources",
    );
    assert_error(
        &api.call(
            "POST",
            "/api/v1/assets",
            Some(r#"{"id":"a","sources":[{"path":"clip.mp4"}],"colour":1}"#),
        ),
        400,
        "invalid_request",
        "colour",
    );
    assert_error(
        &api.call(
            "POST",
            "/api/v1/assets",
            Some(r#"{"id":"a b","sources":[{"path":"clip.mp4"}]}"#),
        ),
        400,
        "invalid_request",
        "id",
    );
    assert_error(
        &api.call(
            "POST",
            "/api/v1/assets",
            Some(r#"{"id":"a","sources":[{"path":"../etc/passwd"}]}"#),
        ),
        400,
        "invalid_request",
        "sources[0].path",
    );
    assert_error(
        &api.call(
            "POST",
            "/api/v1/assets",
            Some(r#"{"id":"a","sources":[{"path":"notes.txt"}]}"#),
        ),
        422,
        "unprocessable_media",
        "notes.txt",
    );
    assert_error(
        &api.call(
            "POST",
            "/api/v1/assets",
            Some(r#"{"id":"a","sources":[{"path":"missing.mp4"}]}"#),
        ),
        422,
        "unprocessable_media",
        "missing.mp4",
    );
    assert_error(
        &api.call("POST", "/api/v1/assets", Some("{not json")),
        400,
        "invalid_request",
        "",
    );

    // The contract scripts rely on.
    let r = api.call(
        "POST",
        "/api/v1/assets",
        Some(r#"{"id": "x", "require_token": true, "sources": [{"path": "clip.mp4"}]}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let a = json_of(&r);
    let kinds: Vec<&str> = a["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["video", "audio"], "{a}");
    assert_eq!(
        a["tracks"][0]["codec"].as_str().unwrap().get(..4),
        Some("avc1")
    );
    assert_eq!(a["tracks"][0]["width"], 320);
    assert!(a["duration_ms"].as_u64().unwrap() >= 9_900, "{a}");
    assert_error(
        &api.call(
            "POST",
            "/api/v1/assets",
            Some(r#"{"id": "x", "sources": [{"path": "clip.mp4"}]}"#),
        ),
        409,
        "conflict",
        "x",
    );
    let r = api.call(
        "POST",
        "/api/v1/tokens",
        Some(r#"{"asset": "x", "ttl_seconds": 60}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let t = json_of(&r);
    let token = t["token"].as_str().unwrap();
    assert_eq!(
        t["hls"].as_str().unwrap(),
        format!("/vod/x/hls/master.m3u8?token={token}")
    );
    assert_eq!(
        t["dash"].as_str().unwrap(),
        format!("/vod/x/dash/manifest.mpd?token={token}")
    );
    assert_eq!(http::get(s.addr, "/vod/x/hls/master.m3u8").status, 403);
    assert_eq!(http::get(s.addr, t["hls"].as_str().unwrap()).status, 200);
    assert_eq!(http::get(s.addr, t["dash"].as_str().unwrap()).status, 200);

    // Reading, changing, deleting; a change reaches the data plane within a second.
    let listed = json_of(&reader.call("GET", "/api/v1/assets", None));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        json_of(&reader.call("GET", "/api/v1/assets/x", None))["id"],
        "x"
    );
    assert_error(
        &reader.call("GET", "/api/v1/assets/nope", None),
        404,
        "not_found",
        "nope",
    );
    let r = api.call(
        "PATCH",
        "/api/v1/assets/x",
        Some(r#"{"title": "A clip", "require_token": false, "metadata": {"k": 1}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["title"], "A clip");
    let took = within(Duration::from_secs(1), || {
        http::get(s.addr, "/vod/x/hls/master.m3u8").status == 200
    });
    assert!(
        took.is_some(),
        "require_token=false did not reach the data plane within 1 s"
    );
    // New sources are probed, and the data plane serves them.
    let r = api.call(
        "PATCH",
        "/api/v1/assets/x",
        Some(r#"{"sources": [{"path": "langs.mp4"}]}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let audio = json_of(&r)["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "audio")
        .count();
    assert!(audio >= 2, "{}", r.body);
    let took = within(Duration::from_secs(1), || {
        http::get(s.addr, "/vod/x/hls/master.m3u8")
            .text()
            .matches("TYPE=AUDIO")
            .count()
            >= 2
    });
    assert!(
        took.is_some(),
        "new sources did not reach the data plane within 1 s"
    );
    // Catalog assets take precedence over the directory: `clip` is also a file.
    let r = api.call(
        "POST",
        "/api/v1/assets",
        Some(r#"{"id": "clip", "sources": [{"path": "langs.mp4", "language": "de"}]}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        within(Duration::from_secs(1), || {
            http::get(s.addr, "/vod/clip/hls/master.m3u8")
                .text()
                .matches("TYPE=AUDIO")
                .count()
                >= 2
        })
        .is_some()
    );
    assert_eq!(api.call("DELETE", "/api/v1/assets/clip", None).status, 204);
    assert!(
        within(Duration::from_secs(1), || {
            http::get(s.addr, "/vod/clip/hls/master.m3u8")
                .text()
                .matches("TYPE=AUDIO")
                .count()
                == 1
        })
        .is_some()
    );
    assert_error(
        &api.call("DELETE", "/api/v1/assets/clip", None),
        404,
        "not_found",
        "clip",
    );

    // Ladders: validation names the rung; duplicates are refused.
    let ladder = json!({
        "name": "abr",
        "frame_rate": 25,
        "keyframe_interval_secs": 2,
        "rungs": [
            {"name": "hi", "width": 640, "height": 360, "video_bitrate_kbps": 800},
            {"name": "lo", "width": 320, "height": 180, "video_bitrate_kbps": 200}
        ]
    });
    let r = api.call("POST", "/api/v1/ladders", Some(&ladder.to_string()));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(json_of(&r)["codec"], "h264");
    assert_error(
        &api.call("POST", "/api/v1/ladders", Some(&ladder.to_string())),
        409,
        "conflict",
        "abr",
    );
    let mut bad = ladder.clone();
    bad["name"] = json!("bad");
    bad["rungs"][1] = bad["rungs"][0].clone();
    bad["rungs"][1]["name"] = json!("again");
    assert_error(
        &api.call("POST", "/api/v1/ladders", Some(&bad.to_string())),
        400,
        "invalid_request",
        "rungs[1]",
    );
    bad["rungs"][1]["width"] = json!(641);
    assert_error(
        &api.call("POST", "/api/v1/ladders", Some(&bad.to_string())),
        400,
        "invalid_request",
        "rungs[1].width",
    );
    let mut bad = ladder.clone();
    bad["name"] = json!("odd");
    bad["keyframe_interval_secs"] = json!(0.7);
    assert_error(
        &api.call("POST", "/api/v1/ladders", Some(&bad.to_string())),
        400,
        "invalid_request",
        "keyframe_interval_secs",
    );
    assert_eq!(
        json_of(&reader.call("GET", "/api/v1/ladders/abr", None)),
        json_of(&r_ladder(&api))
    );

    // Streams and publish keys.
    let r = api.call(
        "POST",
        "/api/v1/streams",
        Some(r#"{"name": "cam1", "ladder": "abr", "record": true}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let st = json_of(&r);
    let key = st["publish_key"].as_str().unwrap().to_owned();
    assert!(key.len() >= 16, "{st}");
    assert_eq!(st["dvr_window_secs"], 3600);
    assert_error(
        &api.call(
            "POST",
            "/api/v1/streams",
            Some(r#"{"name": "cam2", "ladder": "none"}"#),
        ),
        404,
        "not_found",
        "none",
    );
    assert_error(
        &api.call(
            "POST",
            "/api/v1/streams",
            Some(r#"{"name": "cam2", "publish_key": "short"}"#),
        ),
        400,
        "invalid_request",
        "publish_key",
    );
    let rotated = json_of(&api.call("POST", "/api/v1/streams/cam1/key", None));
    assert_ne!(rotated["publish_key"].as_str().unwrap(), key);
    assert_eq!(
        json_of(&reader.call("GET", "/api/v1/streams/cam1", None))["publish_key"],
        rotated["publish_key"]
    );
    let r = api.call(
        "POST",
        "/api/v1/tokens",
        Some(r#"{"stream": "cam1", "ttl_seconds": 60}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        json_of(&r)["hls"]
            .as_str()
            .unwrap()
            .starts_with("/live/cam1/hls/master.m3u8?token=")
    );
    assert_error(
        &api.call(
            "POST",
            "/api/v1/tokens",
            Some(r#"{"asset": "x", "stream": "cam1", "ttl_seconds": 60}"#),
        ),
        400,
        "invalid_request",
        "asset",
    );
    assert_error(
        &api.call(
            "POST",
            "/api/v1/tokens",
            Some(r#"{"asset": "x", "ttl_seconds": 0}"#),
        ),
        400,
        "invalid_request",
        "ttl_seconds",
    );
    assert_eq!(api.call("DELETE", "/api/v1/streams/cam1", None).status, 204);

    // Health, readiness, metrics for both planes.
    assert_eq!(anon.call("GET", "/healthz", None).status, 200);
    assert_eq!(anon.call("GET", "/readyz", None).status, 200);
    let m = anon.call("GET", "/metrics", None);
    assert_eq!(m.status, 200);
    for needle in [
        "headwater_http_requests_total{plane=\"data\",route=\"hls_multivariant\",status=\"200\"}",
        "headwater_http_requests_total{plane=\"data\",route=\"hls_multivariant\",status=\"403\"}",
        "headwater_http_requests_total{plane=\"admin\",route=\"/api/v1/assets\",status=\"201\"}",
        "headwater_http_request_duration_seconds_bucket",
        "headwater_data_sent_bytes_total",
        "headwater_data_open_connections",
        "headwater_cache_hits_total{cache=\"asset\"}",
        "headwater_cache_misses_total{cache=\"asset\"}",
        "headwater_jobs{state=\"running\"}",
        "headwater_data_token_refusals_total",
    ] {
        assert!(
            m.body.contains(needle),
            "/metrics lacks {needle}:\n{}",
            m.body
        );
    }
    let refused = m
        .body
        .lines()
        .find(|l| l.starts_with("headwater_data_token_refusals_total"))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(refused >= 1, "{}", m.body);
    // Unknown routes are JSON errors too.
    assert_error(
        &api.call("GET", "/api/v1/nothing", None),
        404,
        "not_found",
        "route",
    );
    // The server log never shows a token, admin or playback.
    let log = s.log().join("\n");
    assert!(
        !log.contains(ADMIN) && !log.contains(token),
        "a token in the log:\n{log}"
    );
    assert!(s.terminate().success());
}

fn r_ladder(api: &Api) -> headwater_testkit::admin::Reply {
    api.call("GET", "/api/v1/ladders/abr", None)
}

#[test]
fn api_contract_on_sqlite() {
    let dir = scratch_dir("api-sqlite");
    let db = dir.join("catalog.db");
    contract(&format!("sqlite://{}", db.display()), &dir);
    // One file, in WAL mode.
    assert!(db.is_file());
    let mode = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA journal_mode').fetchone()[0])",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&mode.stdout).trim(), "wal");
}

#[test]
fn api_contract_on_postgres() {
    let pg = Postgres::start();
    let url = pg.database("contract");
    contract(&url, &scratch_dir("api-pg"));
}

/// Two nodes share one PostgreSQL catalog: a write through one is served
/// by the other within a second, with no restart.
#[test]
fn two_nodes_share_a_postgres_catalog() {
    let pg = Postgres::start();
    let url = pg.database("shared");
    let dir = scratch_dir("api-two-nodes");
    let media = setup(&dir);
    let conf = dir.join("headwater.toml");
    let a = start(&media, &conf, &url);
    let b = start(&media, &conf, &url);
    let api_a = Api::new(a.admin_addr(), ADMIN);
    let api_b = Api::new(b.admin_addr(), ADMIN);
    let r = api_a.call(
        "POST",
        "/api/v1/assets",
        Some(r#"{"id": "shared", "require_token": true, "sources": [{"path": "clip.mp4"}]}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let took = within(Duration::from_secs(1), || {
        http::get(b.addr, "/vod/shared/hls/master.m3u8").status == 403
    });
    assert!(
        took.is_some(),
        "node B did not see node A's asset within 1 s"
    );
    // A token minted by B (one key set, in the shared database) opens A.
    let t = json_of(&api_b.call(
        "POST",
        "/api/v1/tokens",
        Some(r#"{"asset": "shared", "ttl_seconds": 60}"#),
    ));
    assert_eq!(http::get(a.addr, t["hls"].as_str().unwrap()).status, 200);
    // A change through B reaches A.
    let r = api_b.call(
        "PATCH",
        "/api/v1/assets/shared",
        Some(r#"{"require_token": false}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        within(Duration::from_secs(1), || http::get(
            a.addr,
            "/vod/shared/hls/master.m3u8"
        )
        .status
            == 200)
        .is_some(),
        "node A did not see node B's change within 1 s"
    );
}

/// PostgreSQL stopped mid-run: the data plane keeps serving from its
/// catalog snapshot; the API answers `503 database_unavailable` with
/// `Retry-After` (after the pool's bounded wait, not a hang or a 500) and
/// `/readyz` says why; when the database is back, both recover by
/// themselves, with no restart of headwater.
#[test]
fn postgres_down_keeps_serving_and_recovers() {
    let pg = Postgres::start();
    let url = pg.database("down");
    let dir = scratch_dir("api-pg-down");
    let media = setup(&dir);
    let s = start(&media, &dir.join("headwater.toml"), &url);
    let api = Api::new(s.admin_addr(), ADMIN);
    let asset = |id: &str| {
        format!(r#"{{"id": "{id}", "require_token": false, "sources": [{{"path": "clip.mp4"}}]}}"#)
    };
    let r = api.call("POST", "/api/v1/assets", Some(&asset("kept")));
    assert_eq!(r.status, 201, "{}", r.body);
    let served = |id: &str| http::get(s.addr, &format!("/vod/{id}/hls/master.m3u8")).status == 200;
    assert!(within(Duration::from_secs(2), || served("kept")).is_some());

    pg.stop();
    for path in ["/vod/kept/hls/master.m3u8", "/vod/kept/dash/manifest.mpd"] {
        assert_eq!(
            http::get(s.addr, path).status,
            200,
            "{path} with the database down"
        );
    }
    for (method, path, body) in [
        ("GET", "/api/v1/assets/kept", None),
        ("POST", "/api/v1/assets", Some(asset("later"))),
    ] {
        let r = api.call(method, path, body.as_deref());
        assert_error(&r, 503, "database_unavailable", "retry later");
        assert_eq!(r.header("retry-after"), Some("5"), "{method} {path}");
    }
    let ready = http::get(s.admin_addr(), "/readyz");
    assert_eq!(ready.status, 503);
    assert!(ready.text().contains("database"), "{}", ready.text());
    assert!(served("kept"), "still served from the snapshot");

    pg.resume();
    let back = within(Duration::from_secs(30), || {
        api.call("GET", "/api/v1/assets/kept", None).status == 200
    });
    assert!(back.is_some(), "the API did not recover within 30 s");
    assert_eq!(http::get(s.admin_addr(), "/readyz").status, 200);
    let r = api.call("POST", "/api/v1/assets", Some(&asset("later")));
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        within(Duration::from_secs(2), || served("later")).is_some(),
        "a write after the recovery reaches the data plane"
    );
}

/// `/api/v1/openapi.json` is a valid OpenAPI 3 document (checked by the
/// `openapi-spec-validator` package from PyPI), and every route it lists
/// answers (none falls through to the router's 404).
#[test]
fn openapi_document_validates_and_matches_the_router() {
    let dir = scratch_dir("api-openapi");
    let media = setup(&dir);
    let s = start(
        &media,
        &dir.join("headwater.toml"),
        &format!("sqlite://{}", dir.join("c.db").display()),
    );
    let api = Api::new(s.admin_addr(), ADMIN);
    let r = api.call("GET", "/api/v1/openapi.json", None);
    assert_eq!(r.status, 200);
    let doc: Value = serde_json::from_str(&r.body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let path = dir.join("openapi.json");
    std::fs::write(&path, &r.body).unwrap();
    let validator = headwater_testkit::workspace().join("target/pyenv/bin/python");
    assert!(
        validator.exists(),
        "{} is missing: scripts/setup.sh makes it (python3 -m venv + openapi-spec-validator)",
        validator.display()
    );
    let out = std::process::Command::new(&validator)
        .args([
            "-c",
            "import sys, json; from openapi_spec_validator import validate; \
             validate(json.load(open(sys.argv[1]))); print('valid')",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "invalid OpenAPI document: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut seen = Vec::new();
    for (p, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = p.replace("{id}", "none").replace("{name}", "none");
            let body = matches!(method.as_str(), "post" | "patch").then_some("{}");
            let r = api.call(&method.to_uppercase(), &concrete, body);
            let fallthrough = r.status == 404
                && serde_json::from_str::<Value>(&r.body)
                    .is_ok_and(|v| v["message"] == "route not found");
            assert!(!fallthrough, "{method} {p} is documented but not routed");
            seen.push(format!("{} {p}", method.to_uppercase()));
            // A catalog operation says what a database outage answers.
            if p.starts_with("/api/v1/") && p != "/api/v1/openapi.json" {
                let r503 = &item[method.as_str()]["responses"]["503"];
                assert!(
                    r503["headers"]["Retry-After"].is_object(),
                    "{method} {p} documents no 503 with Retry-After: {r503}"
                );
            }
        }
    }
    // Everything the product promises is documented.
    for want in [
        "POST /api/v1/assets",
        "GET /api/v1/assets",
        "GET /api/v1/assets/{id}",
        "PATCH /api/v1/assets/{id}",
        "DELETE /api/v1/assets/{id}",
        "PUT /api/v1/assets/{id}/source",
        "POST /api/v1/assets/{id}/transcode",
        "GET /api/v1/jobs",
        "GET /api/v1/jobs/{id}",
        "POST /api/v1/ladders",
        "GET /api/v1/ladders/{name}",
        "POST /api/v1/streams",
        "POST /api/v1/streams/{name}/key",
        "POST /api/v1/tokens",
        "GET /api/v1/keys",
        "POST /api/v1/keys",
        "DELETE /api/v1/keys/{id}",
        "GET /api/v1/openapi.json",
        "GET /metrics",
        "GET /healthz",
        "GET /readyz",
    ] {
        assert!(
            seen.iter().any(|s| s == want),
            "{want} is not in the document: {seen:?}"
        );
    }
}

/// A config with a bad admin token hash exits 64 naming the key, before
/// anything is bound.
#[test]
fn bad_admin_config_is_named() {
    let dir = scratch_dir("api-badconf");
    let conf = dir.join("bad.toml");
    std::fs::write(
        &conf,
        "[[admin.tokens]]\nname = \"x\"\nsha256 = \"abc\"\nscopes = [\"read\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(HEADWATER)
        .args(["check-config", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin.tokens.sha256"));
    std::fs::write(&conf, "[admin]\nlisten = \"nowhere\"\n").unwrap();
    let out = std::process::Command::new(HEADWATER)
        .args(["check-config", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nowhere"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

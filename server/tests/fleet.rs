//! What ships for running a fleet (issue 20): the Prometheus alert rules
//! in `conf/prometheus/` pass `promtool check rules` and their unit tests
//! (`promtool test rules`), and every headwater metric that the rules and
//! the Grafana dashboard (`conf/grafana/headwater.json`) query is one a
//! node exposes, live streams' included.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use headwater_testkit::admin::Api;
use headwater_testkit::live::{self, KEY, ffmpeg_push, rtmp_url, wait_until};
use headwater_testkit::server::{admin_args, sqlite_in};
use headwater_testkit::{TempDir, workspace};

fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(workspace().join("conf/prometheus"))
        .output()
        .expect("run promtool (Debian's prometheus package; scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    promtool(&["check", "rules", "headwater-alerts.yml"]);
    promtool(&["test", "rules", "headwater-alerts.test.yml"]);
}

/// The `headwater_*` names in `text`.
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("headwater_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[i + name.len()..];
        out.insert(name);
    }
    out
}

#[test]
fn every_metric_the_dashboard_and_alerts_query_is_exposed() {
    let dir = TempDir::new("fleet-metrics");
    const TOKEN: &str = "fleet-admin-token-0123456789";
    let database = sqlite_in(dir.path());
    let mut args = admin_args(TOKEN, &database).to_vec();
    let stream = format!("cam:{KEY}");
    args.extend(["--stream", &stream]);
    let s = live::start(env!("CARGO_BIN_EXE_headwater").as_ref(), &args);
    let api = Api::new(s.admin_addr(), TOKEN);
    // A live stream, so that its families are there too.
    let mut publisher = ffmpeg_push(&rtmp_url(s.logged_addr("rtmp"), "cam", KEY), 6, "flv");
    assert!(wait_until(Duration::from_secs(15), || {
        api.call("GET", "/metrics", None)
            .body
            .contains("headwater_live_on_air{stream=\"cam\"} 1")
    }));
    let exposed: BTreeSet<String> = api
        .call("GET", "/metrics", None)
        .body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    let _ = publisher.kill();
    let _ = publisher.wait();
    let conf = workspace().join("conf");
    let rules = std::fs::read_to_string(conf.join("prometheus/headwater-alerts.yml")).unwrap();
    let dashboard = std::fs::read_to_string(conf.join("grafana/headwater.json")).unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 10));
    let queried: BTreeSet<String> = names(&rules).into_iter().chain(names(&dashboard)).collect();
    assert!(queried.len() >= 15, "{queried:?}");
    let missing: Vec<&String> = queried.iter().filter(|n| !exposed.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "queried but not exposed: {missing:?}; exposed: {exposed:?}"
    );
}

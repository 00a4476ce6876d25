//! The crate boundaries ARCHITECTURE.md states, checked from `cargo
//! metadata`: which workspace crate may depend on which, and that the data
//! plane (common, packager, origin, ingest) pulls in no web framework and
//! no database driver, however indirectly. The one HTTP client on the data
//! plane, object_store's (reqwest over hyper), is confined to `objects`,
//! which pulls in no server framework or database driver either.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Package name → (its normal dependencies' package names, all of them
/// transitively).
type Graph = BTreeMap<String, BTreeSet<String>>;

/// What `from` depends on transitively, not counting what it reaches only
/// through `skip`.
fn reach(direct: &Graph, from: &str, skip: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = direct[from].iter().cloned().collect();
    while let Some(d) = todo.pop() {
        if d != skip && seen.insert(d.clone()) {
            todo.extend(direct.get(&d).into_iter().flatten().cloned());
        }
    }
    seen
}

fn closures() -> (BTreeSet<String>, Graph, Graph) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Only this machine's platform: the others' crates (Android, Windows)
    // may not be downloaded, and nothing here builds for them.
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host");
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(headwater_testkit::workspace())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let name_of: BTreeMap<String, String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let members: BTreeSet<String> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| name_of[id.as_str().unwrap()].clone())
        .collect();
    // Direct normal (not dev, not build) dependencies of every package.
    let mut direct: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let me = name_of[node["id"].as_str().unwrap()].clone();
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| name_of[d["pkg"].as_str().unwrap()].clone());
        direct.entry(me).or_default().extend(deps);
    }
    let all = members
        .iter()
        .map(|m| (m.clone(), reach(&direct, m, "")))
        .collect();
    (members, all, direct)
}

#[test]
fn crates_depend_only_as_the_architecture_says() {
    let (members, deps, direct) = closures();
    let workspace = |p: &str| -> BTreeSet<String> {
        deps[p]
            .iter()
            .filter(|d| members.contains(*d))
            .cloned()
            .collect()
    };
    // The packager does no I/O and knows no other crate of ours.
    assert!(
        workspace("headwater-packager").is_empty(),
        "packager depends on {:?}",
        workspace("headwater-packager")
    );
    // loadtest must not share code (or bugs) with what it measures.
    assert!(
        workspace("loadtest").is_empty(),
        "{:?}",
        workspace("loadtest")
    );
    // The data plane knows nothing of the control plane's crate.
    for p in ["headwater-common", "headwater-origin", "headwater-ingest"] {
        assert!(
            !workspace(p).contains("headwater-control-api"),
            "{p} depends on the control API"
        );
    }
    assert!(workspace("headwater-common").is_empty());
    // The control API does not reach into the data plane.
    for p in ["headwater-origin", "headwater-ingest"] {
        assert!(
            !workspace("headwater-control-api").contains(p),
            "control API → {p}"
        );
    }
    // No web framework, no database driver anywhere below the data plane.
    let forbidden = |d: &str| {
        [
            "axum",
            "hyper",
            "tower",
            "utoipa",
            "sqlx",
            "libsqlite3-sys",
            "tokio-postgres",
        ]
        .iter()
        .any(|f| d == *f || d.starts_with(&format!("{f}-")))
    };
    for p in [
        "headwater-common",
        "headwater-packager",
        "headwater-origin",
        "headwater-ingest",
    ] {
        let bad: Vec<String> = reach(&direct, p, "headwater-objects")
            .into_iter()
            .filter(|d| forbidden(d))
            .collect();
        assert!(bad.is_empty(), "{p} pulls in {bad:?}");
    }
    // The object storage client is an HTTP client (hyper, tower), and no more.
    let server_side = |d: &str| {
        !["hyper", "tower"]
            .iter()
            .any(|c| d == *c || d.starts_with(&format!("{c}-")))
    };
    let bad: Vec<&String> = deps["headwater-objects"]
        .iter()
        .filter(|d| forbidden(d) && server_side(d))
        .collect();
    assert!(bad.is_empty(), "objects pulls in {bad:?}");
    assert!(workspace("headwater-objects").is_empty());
    // And the check can tell: the control API does pull them in.
    assert!(deps["headwater-control-api"].iter().any(|d| forbidden(d)));
}

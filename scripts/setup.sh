#!/usr/bin/env bash
# Installs what headwater's demo, tests and benchmarks need, on Debian 12.
# As root it installs missing apt packages; otherwise it prints the command
# to run and stops. Safe to run again: it only installs what is missing.
#
#   scripts/setup.sh            everything (demo + tests)
#   scripts/setup.sh --demo     only what the demo needs (no browser)
#   scripts/setup.sh --bench    also wrk, valgrind and perf for benches/
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-all}
pkgs=(ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
      gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav util-linux curl
      gstreamer1.0-x fonts-dejavu-core  # gstreamer1.0-x: timeoverlay (pango) for the demo
      # Building the ingest crate's GStreamer bindings (appsrc/appsink).
      pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
      procps)  # pgrep, in the transcode tests
if [ "$mode" != "--demo" ]; then
  # nginx is the static reference loadtest's tests and benches/ compare against.
  # PostgreSQL: the control API's tests run against a real server too.
  # python3-venv: the OpenAPI validator comes from PyPI into target/pyenv.
  # systemd: systemd-analyze checks the unit in systemd/ (nothing is started).
  pkgs+=(chromium nginx-light postgresql python3-venv systemd)
  # tests/av/gst_offsets.py, the A/V sync tests' GStreamer reader, runs on
  # Debian's python3 with the GStreamer introspection bindings.
  pkgs+=(python3-gi gir1.2-gstreamer-1.0)
  # Varnish: the CDN edge of the several-nodes tests (conf/varnish.vcl).
  pkgs+=(varnish)
  # promtool checks the Prometheus alert rules in conf/prometheus/.
  pkgs+=(prometheus)
  command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm)
fi
if [ "$mode" = "--bench" ]; then
  pkgs+=(wrk valgrind linux-perf)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "setup: missing Debian packages. Run:"
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) and run again" >&2
  exit 1
fi

if [ "$mode" != "--demo" ]; then
  if ! cargo nextest --version >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest"
    cargo install cargo-nextest --locked
  fi
  # The browser harness: playwright-core drives Debian's Chromium; the
  # players come from npm at the versions pinned in package-lock.json.
  if [ ! -d tests/players/node_modules ] || [ tests/players/package-lock.json -nt tests/players/node_modules ]; then
    echo "setup: installing the player harness (npm ci)"
    (cd tests/players && npm ci --no-audit --no-fund --loglevel=error)
    touch tests/players/node_modules
  fi
  # A real S3-compatible server for the object-storage tests (crates.io;
  # 0.14.1 is the newest that builds with Rust 1.95), in target/tools.
  if [ ! -x target/tools/bin/s3s-fs ]; then
    echo "setup: installing s3s-fs into target/tools"
    CARGO_TARGET_DIR=target/tools/build cargo install s3s-fs@0.14.1 --locked \
      --features binary --root target/tools --quiet
    rm -rf target/tools/build
  fi
  # The OpenAPI document's validator (PyPI), in a venv of its own.
  if ! target/pyenv/bin/python -c "import openapi_spec_validator" 2>/dev/null; then
    echo "setup: installing openapi-spec-validator into target/pyenv"
    mkdir -p target
    python3 -m venv target/pyenv
    target/pyenv/bin/pip install --quiet --disable-pip-version-check "openapi-spec-validator==0.7.1"
  fi
fi
echo "setup: ok"

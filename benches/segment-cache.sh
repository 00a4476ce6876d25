# Sourced by run.sh and cpu.sh: where headwater keeps gathered segments.
#
# SEGMENT_CACHE=tmpfs (the default when run as root): a tmpfs mounted with
# huge=within_size at $out/segment-cache, named by media.segment_cache_dir in
# $out/headwater.toml, as conf/headwater.toml recommends for production (large
# folios; benches/README.md finding 8). SEGMENT_CACHE=memfd: the built-in
# default (memfds, 4 KiB pages). Sets hw_args (extra `serve` arguments) and
# adds the unmount to cleanup_cache.
segment_cache_setup() { # OUT
  local out=$1 mode=${SEGMENT_CACHE:-}
  hw_args=()
  if [ -z "$mode" ]; then
    if [ "$(id -u)" = 0 ]; then mode=tmpfs; else mode=memfd; fi
  fi
  if [ "$mode" = tmpfs ]; then
    local dir=$out/segment-cache
    mkdir -p "$dir"
    if mountpoint -q "$dir" || mount -t tmpfs -o size=2g,huge=within_size,mode=0700 tmpfs "$dir"; then
      printf '[media]\nsegment_cache_dir = "%s"\n' "$dir" >"$out/headwater.toml"
      hw_args=(--config "$out/headwater.toml")
    elif [ -n "${SEGMENT_CACHE:-}" ]; then
      echo "cannot mount a tmpfs at $dir (SEGMENT_CACHE=tmpfs)" >&2; exit 1
    else
      echo "== cannot mount a tmpfs at $dir: using memfds" >&2
      mode=memfd
    fi
  elif [ "$mode" != memfd ]; then
    echo "SEGMENT_CACHE must be tmpfs or memfd" >&2; exit 2
  fi
  echo "segment cache: $mode" >"$out/segment-cache.txt"
  echo "== segment cache: $mode"
}
segment_cache_cleanup() { # OUT
  mountpoint -q "$1/segment-cache" 2>/dev/null && umount "$1/segment-cache" || true
}

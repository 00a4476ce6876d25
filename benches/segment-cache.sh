# Sourced by run.sh and cpu.sh: where headwater keeps gathered segments.
#
# SEGMENT_CACHE=memfd (the default): the built-in default, what `headwater
# serve` does with no config file (memfds, 4 KiB pages): the targets are met
# or missed here. SEGMENT_CACHE=tmpfs (root only): a tmpfs mounted with
# huge=within_size at $out/segment-cache, named by media.segment_cache_dir in
# $out/headwater.toml (large folios; benches/README.md finding 8), a tuning
# to compare against. Sets hw_args (extra `serve` arguments); cleanup unmounts.
segment_cache_setup() { # OUT
  local out=$1 mode=${SEGMENT_CACHE:-memfd}
  hw_args=()
  if [ "$mode" = tmpfs ]; then
    local dir=$out/segment-cache
    mkdir -p "$dir"
    if mountpoint -q "$dir" || mount -t tmpfs -o size=2g,huge=within_size,mode=0700 tmpfs "$dir"; then
      printf '[media]\nsegment_cache_dir = "%s"\n' "$dir" >"$out/headwater.toml"
      hw_args=(--config "$out/headwater.toml")
    else
      echo "cannot mount a tmpfs at $dir (SEGMENT_CACHE=tmpfs)" >&2; exit 1
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

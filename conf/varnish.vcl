vcl 4.1;
# Varnish 7.1 (Debian 12) in front of several headwater nodes.
#
# - Nodes are health-checked on /readyz (503 while a node's media library
#   or catalog cannot be read); a sick node gets no requests.
# - A request that fails on one node (connection refused, reset, a 5xx) is
#   tried again on another, so losing a node mid-run is not seen by clients.
# - Concurrent misses for one URL wait for one backend fetch (Varnish's
#   request coalescing), which is what lets LL-HLS blocking reloads scale:
#   every viewer waiting for `_HLS_msn=N` shares one request to the origin.
# - Cache keys are the full URL, query included: LL-HLS blocking reloads
#   (`_HLS_msn`, `_HLS_part`, `_HLS_skip`) and playback tokens (`token=`)
#   reach the origin as sent, and each token has its own entries (README,
#   "Playback tokens"; to share entries across viewers, validate tokens at
#   the edge and strip `token` before the hash instead).
# - Lifetimes are headwater's Cache-Control: segments a year (immutable),
#   VOD manifests 60 s, live playlists about half a segment, 404s 10 s.
#
# Edit the backends below (one per node), or generate them: the block
# between the BACKENDS markers is what the tests and README rewrite.

import directors;

probe ready {
    .url = "/readyz";
    .interval = 1s;
    .timeout = 1s;
    .window = 3;
    .threshold = 2;
    .initial = 2;
}

# BACKENDS
backend node1 {
    .host = "127.0.0.1"; .port = "8081"; .probe = ready;
    .connect_timeout = 1s; .first_byte_timeout = 15s; .between_bytes_timeout = 10s;
}
backend node2 {
    .host = "127.0.0.1"; .port = "8082"; .probe = ready;
    .connect_timeout = 1s; .first_byte_timeout = 15s; .between_bytes_timeout = 10s;
}
backend node3 {
    .host = "127.0.0.1"; .port = "8083"; .probe = ready;
    .connect_timeout = 1s; .first_byte_timeout = 15s; .between_bytes_timeout = 10s;
}

sub vcl_init {
    new nodes = directors.round_robin();
    nodes.add_backend(node1);
    nodes.add_backend(node2);
    nodes.add_backend(node3);
}
# END BACKENDS

sub vcl_recv {
    # The admin API is not served through the CDN.
    if (req.url ~ "^/api/") {
        return (synth(404, "Not Found"));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # No cookies or credentials decide what the origin answers.
    unset req.http.Cookie;
    unset req.http.Authorization;
    return (hash);
}

sub vcl_backend_fetch {
    # Chosen per attempt, so a retry goes to the next healthy node.
    set bereq.backend = nodes.backend();
}

sub vcl_backend_response {
    if (beresp.status >= 500 && bereq.retries < 2) {
        return (retry);
    }
    if (beresp.status >= 500) {
        # Never cached: the next request asks again.
        set beresp.uncacheable = true;
        set beresp.ttl = 1s;
        return (deliver);
    }
    # A live segment still being made (chunked, LL-DASH) is passed on as
    # its parts arrive.
    set beresp.do_stream = true;
    # Keep serving a stale manifest briefly if every node is failing.
    set beresp.grace = 10s;
}

sub vcl_backend_error {
    # Refused or reset (a node that went away): the next node.
    if (bereq.retries < 2) {
        return (retry);
    }
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}

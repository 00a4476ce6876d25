//! An RTMP connection replayed from bytes through an in-memory pipe, for
//! the property tests and the fuzz target: what a client sends, then
//! whatever follows, until the input ends.

use std::net::IpAddr;
use std::sync::Arc;

use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionResult, PublishRequestType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::guard::{Guard, SourceLimits};
use crate::registry::{Registry, RegistryConfig};
use crate::rtmp::{ConnError, connection};
use crate::{Ctx, KeyCheck};

fn packets(results: Vec<ClientSessionResult>) -> Vec<u8> {
    let mut out = Vec::new();
    for r in results {
        if let ClientSessionResult::OutboundResponse(p) = r {
            out.extend(p.bytes);
        }
    }
    out
}

/// What a client sends first, by `stage`: nothing (0), a handshake (1), or
/// a handshake plus connect and publish requests for `live/s?key=k` (2 and
/// above).
pub(crate) fn prefix(stage: u8) -> Vec<u8> {
    if stage == 0 {
        return Vec::new();
    }
    // The simple handshake: C0, C1, then C2 (the server does not check
    // that C2 echoes S1).
    let mut out = vec![3u8];
    out.extend(std::iter::repeat_n(0u8, 1536 * 2));
    if stage == 1 {
        return out;
    }
    let Ok((mut c, r)) = ClientSession::new(ClientSessionConfig::new()) else {
        return out;
    };
    out.extend(packets(r));
    if let Ok(r) = c.request_connection("live".into()) {
        out.extend(packets(vec![r]));
    }
    // The client refuses to publish before it saw the connect result;
    // a publish request made by hand is what the rest may imitate.
    let _ = c.request_publishing("s?key=k".into(), PublishRequestType::Live);
    out
}

/// Runs one connection on `input` (then EOF) with `keys` as the key check;
/// what the server writes is read and dropped.
pub(crate) async fn replay(input: Vec<u8>, keys: KeyCheck) -> Result<(), ConnError> {
    let (client, server) = tokio::io::duplex(1 << 16);
    let (mut from_server, mut to_server) = tokio::io::split(client);
    let ctx = Ctx {
        registry: Arc::new(Registry::new(RegistryConfig::default())),
        keys,
        guard: Guard::new(SourceLimits::default()),
    };
    let peer = IpAddr::from([127, 0, 0, 1]);
    let feed = async move {
        let _ = to_server.write_all(&input).await;
        let _ = to_server.shutdown().await;
    };
    let drain = async move {
        let mut sink = Vec::new();
        let _ = from_server.read_to_end(&mut sink).await;
    };
    let (result, (), ()) = tokio::join!(connection(server, peer, &ctx), feed, drain);
    result
}

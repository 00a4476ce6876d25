//! `/vod/{asset}/cmaf/{rendition}/iframes.m4s`: a video rendition's trick
//! resource, every keyframe's one-sample fragment back to back (see
//! [`headwater_packager::trick`]), which HLS I-frame playlists address
//! with `EXT-X-BYTERANGE`.
//!
//! Its length comes from the keyframe index, so `Content-Length`, `HEAD`
//! and `Range` are answered before any byte is made. Sending a window
//! plans only the fragments it touches, one at a time into the
//! connection's segment buffer: each one's header bytes are written and its
//! sample payload goes from the source file to the socket with `sendfile`,
//! so nothing is buffered beyond one fragment's header (about 150 bytes).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use headwater_packager::MediaSegment;
use headwater_packager::trick::{self, Keyframe};
use tokio::net::TcpStream;

use crate::io as sock;
use crate::store::Asset;

/// The trick resource of one rendition of one asset build.
pub(crate) struct Trick {
    pub(crate) asset: Arc<Asset>,
    /// Index of the rendition in the presentation.
    pub(crate) rendition: usize,
    /// Its keyframes ([`Asset::keyframes`]).
    pub(crate) keys: Arc<[Keyframe]>,
}

impl Trick {
    /// Length of the resource in bytes.
    pub(crate) fn len(&self) -> u64 {
        trick::resource_len(&self.keys)
    }
}

/// Sends bytes `start..end` of `t` after the response head already in
/// `out` (which is used, and left cleared, as the write buffer); `seg` is
/// scratch for one fragment's plan. Corked throughout, as every response
/// with payload is ([`sock::Cork`]): one fragment (what an I-frame
/// playlist asks for) is one `send` of the head and its header, then one
/// `sendfile`; more are that per fragment.
pub(crate) async fn send(
    stream: &TcpStream,
    out: &mut Vec<u8>,
    seg: &mut MediaSegment,
    t: &Trick,
    start: u64,
    end: u64,
    timeout: Duration,
) -> io::Result<()> {
    let p = &t.asset.presentation;
    let Some(r) = p.renditions.get(t.rendition) else {
        return Err(io::Error::other("trick resource of an unknown rendition"));
    };
    let file = &*t.asset.files[r.source];
    let _cork = sock::Cork::new(stream);
    for (i, window) in trick::window(&t.keys, start, end) {
        trick::fragment(p, r, &t.keys, i, seg).map_err(io::Error::other)?;
        if seg.len() != t.keys[i].size {
            // Content-Length was promised from the index: never send other bytes.
            return Err(io::Error::other(
                "a keyframe fragment differs from its indexed size",
            ));
        }
        let hlen = seg.header.len() as u64;
        if window.start < hlen {
            out.extend_from_slice(
                &seg.header[window.start as usize..window.end.min(hlen) as usize],
            );
        }
        if window.end <= hlen {
            continue;
        }
        sock::write_all_more(stream, out, timeout).await?;
        out.clear();
        for piece in seg.payload_window(window.start, window.end) {
            sock::send_source(stream, file, piece, timeout).await?;
        }
    }
    if !out.is_empty() {
        sock::write_all_more(stream, out, timeout).await?;
        out.clear();
    }
    Ok(())
}

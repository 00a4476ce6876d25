//! What of the SRT wire may reach srt-protocol.
//!
//! srt-protocol 0.4 panics on some packets it parses or handles: a
//! handshake extension other than the ones it knows, a stream id of no
//! words, congestion warnings, peer errors, some SRT control subtypes, a
//! caller's key material when no passphrase is set. Its parser runs in the
//! listener task that serves every caller, so one such datagram would end
//! SRT ingest for all of them. The gate reads each datagram's shape first
//! and admits only what a publishing caller sends, in the forms
//! srt-protocol handles; [`crate::srt_relay`] drops the rest unparsed.
//!
//! Offsets follow the SRT draft (draft-sharabayko-srt, §3): a 16-byte
//! header whose first bit tells control from data; control type in bits
//! 1-15 and subtype in 16-31 of the first word; a handshake's body is 48
//! bytes (version, encryption field and extension field, initial sequence,
//! MTU, flow window, handshake type, socket id, cookie, peer address) and
//! then HSv5 extension blocks of a 16-bit type and a 16-bit length in
//! 32-bit words.

/// What an admitted datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// A data packet (media).
    Data,
    /// The first handshake of a caller (induction): may open a new session.
    Induction,
    /// Any other handshake, or a control packet of a session.
    Control,
}

/// Why a datagram was dropped (for counters and a rate-limited log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// Shorter than a header, or than its control type needs.
    Short,
    /// A control type a publishing caller never sends to a listener that
    /// sends no media (ACK, NAK), that srt-protocol cannot handle
    /// (congestion warning, peer error), or whose handling panics on a
    /// hostile range (drop request: the receiver drops what comes too late
    /// by itself).
    ControlType(u16),
    /// An SRT control subtype other than key-material refresh.
    Subtype(u16),
    /// A handshake srt-protocol would panic on or that cannot succeed.
    Handshake(&'static str),
}

const HEADER: usize = 16;
const HANDSHAKE_BODY: usize = 48;
const INDUCTION: i32 = 1;
/// The handshake's encryption field for AES-128 (key length / 8).
const AES_128: u16 = 2;

/// Control types (draft §3.2).
mod control {
    pub(super) const HANDSHAKE: u16 = 0x0;
    pub(super) const KEEPALIVE: u16 = 0x1;
    pub(super) const SHUTDOWN: u16 = 0x5;
    pub(super) const ACK_ACK: u16 = 0x6;
    pub(super) const USER: u16 = 0x7FFF;
}

/// SRT extension and user-control subtypes (draft §3.2.1).
mod ext {
    pub(super) const HS_REQ: u16 = 1;
    pub(super) const HS_RSP: u16 = 2;
    pub(super) const KM_REQ: u16 = 3;
    pub(super) const KM_RSP: u16 = 4;
    pub(super) const SID: u16 = 5;
}

/// Whether `datagram` may be given to srt-protocol, on a listener that
/// has a passphrase (`encrypted`) or not.
///
/// One handshake is changed rather than dropped: an encrypting caller
/// that leaves the key length to the listener (libsrt's default) on a port
/// without a passphrase. srt-protocol would panic on its key material; with
/// the length it uses then (AES-128) written in, the caller is refused as
/// any encrypting caller is there ([`crate::srt::session_keys`]), and hears
/// why instead of waiting out its timeout.
pub(crate) fn admit(datagram: &mut [u8], encrypted: bool) -> Result<Admitted, Dropped> {
    if datagram.len() < HEADER {
        return Err(Dropped::Short);
    }
    if datagram[0] & 0x80 == 0 {
        return Ok(Admitted::Data);
    }
    let kind = u16_at(datagram, 0) & 0x7FFF;
    let subtype = u16_at(datagram, 2);
    match kind {
        control::HANDSHAKE => handshake(&mut datagram[HEADER..], encrypted),
        control::KEEPALIVE | control::SHUTDOWN | control::ACK_ACK => Ok(Admitted::Control),
        control::USER => match subtype {
            ext::KM_REQ | ext::KM_RSP if encrypted => Ok(Admitted::Control),
            other => Err(Dropped::Subtype(other)),
        },
        other => Err(Dropped::ControlType(other)),
    }
}

fn handshake(body: &mut [u8], encrypted: bool) -> Result<Admitted, Dropped> {
    if body.len() < HANDSHAKE_BODY {
        return Err(Dropped::Short);
    }
    let version = u32_at(body, 0);
    let key_field = u16_at(body, 4);
    let kind = u32_at(body, 20) as i32;
    if kind == INDUCTION {
        return Ok(Admitted::Induction);
    }
    if version != 5 {
        // HSv4 carries no extensions; srt-protocol refuses it cleanly.
        return Ok(Admitted::Control);
    }
    let mut rest = &body[HANDSHAKE_BODY..];
    let mut key_material = false;
    while rest.len() > 4 {
        let kind = u16_at(rest, 0);
        let len = usize::from(u16_at(rest, 2)) * 4;
        let Some(block) = rest.get(4..4 + len) else {
            return Ok(Admitted::Control); // srt-protocol: NotEnoughData
        };
        // srt-protocol goes on from where its parser of a block stopped,
        // not from the block's end: a block longer than what it holds
        // would have its tail read as the next block.
        let holds = match kind {
            ext::HS_REQ | ext::HS_RSP => HS_LEN,
            ext::KM_REQ => {
                key_material = true;
                key_material_len(block)
            }
            ext::KM_RSP => return Err(Dropped::Handshake("key-material response in a request")),
            ext::SID if block.is_empty() => return Err(Dropped::Handshake("empty stream id")),
            ext::SID => block.len(),
            _ => return Err(Dropped::Handshake("an extension srt-protocol cannot parse")),
        };
        if holds != block.len() {
            return Err(Dropped::Handshake(
                "an extension longer or shorter than it holds",
            ));
        }
        rest = &rest[4 + len..];
    }
    match (key_material, key_field, encrypted) {
        (false, _, _) | (true, 2..=4, _) | (true, 0, true) => {}
        (true, 0, false) => body[4..6].copy_from_slice(&AES_128.to_be_bytes()),
        (true, _, _) => return Err(Dropped::Handshake("key material of no key length")),
    }
    Ok(Admitted::Control)
}

/// Bytes of a handshake extension (HSREQ/HSRSP): version, flags, two
/// latencies.
const HS_LEN: usize = 12;

/// Bytes a key-material message holds by its own header (draft §3.2.2):
/// 16 bytes of header, the salt, the wrapped keys (one per key flag) and
/// the 8-byte wrap. `usize::MAX` when it has no header.
fn key_material_len(block: &[u8]) -> usize {
    let [_, _, _, flags, .., salt_words, key_words] = block.get(..16).unwrap_or(&[]) else {
        return usize::MAX;
    };
    let keys = (flags & 0b11).count_ones() as usize;
    16 + usize::from(*salt_words) * 4 + usize::from(*key_words) * 4 * keys + 8
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Datagrams for the tests.
#[cfg(test)]
pub(crate) mod shapes {
    /// A handshake of `kind` (1 induction, -1 conclusion) with HSv5
    /// extension blocks `(type, payload)`, and `key_field` (key length / 8).
    pub(crate) fn handshake(kind: i32, key_field: u16, blocks: &[(u16, &[u8])]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend(0x8000_0000u32.to_be_bytes());
        d.extend([0u8; 12]);
        d.extend(5u32.to_be_bytes());
        d.extend(key_field.to_be_bytes());
        d.extend(0x5u16.to_be_bytes()); // HSREQ | CONFIG
        d.extend(1u32.to_be_bytes());
        d.extend(1500u32.to_be_bytes());
        d.extend(8192u32.to_be_bytes());
        d.extend(kind.to_be_bytes());
        d.extend(77u32.to_be_bytes());
        d.extend(0u32.to_be_bytes());
        d.extend([127, 0, 0, 1]);
        d.extend([0u8; 12]);
        for (t, payload) in blocks {
            d.extend(t.to_be_bytes());
            d.extend(((payload.len() / 4) as u16).to_be_bytes());
            d.extend(*payload);
        }
        d
    }

    /// A control packet of `kind` and `subtype` with a `body`.
    pub(crate) fn control(kind: u16, subtype: u16, body: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend((0x8000 | kind).to_be_bytes());
        d.extend(subtype.to_be_bytes());
        d.extend([0u8; 12]);
        d.extend(body);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::shapes::{control, handshake};
    use super::*;

    const HS: &[u8] = &[0, 1, 4, 3, 0, 0, 0, 0x3f, 0, 0x78, 0, 0x78];
    /// Key material with a 16-byte salt and one 16-byte key (even).
    const KM: &[u8] = &[
        0x12, 0x20, 0x29, 1, 0, 0, 0, 0, 2, 0, 2, 0, 0, 0, 4, 4, //
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
        0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn what_a_publisher_sends_is_admitted() {
        assert_eq!(
            admit(&mut handshake(1, 0, &[]), false),
            Ok(Admitted::Induction)
        );
        let conclusion = handshake(-1, 0, &[(1, HS), (5, b"lbup")]);
        assert_eq!(admit(&mut conclusion.clone(), false), Ok(Admitted::Control));
        let with_key = handshake(-1, 2, &[(1, HS), (3, KM), (5, b"lbup")]);
        assert_eq!(admit(&mut with_key.clone(), true), Ok(Admitted::Control));
        assert_eq!(admit(&mut with_key.clone(), false), Ok(Admitted::Control));
        for kind in [1, 5, 6] {
            assert_eq!(
                admit(&mut control(kind, 0, &[0; 4]), false),
                Ok(Admitted::Control)
            );
        }
        assert_eq!(
            admit(&mut control(0x7FFF, 3, &[0; 16]), true),
            Ok(Admitted::Control)
        );
        assert_eq!(admit(&mut [0; 1316], false), Ok(Admitted::Data));
    }

    #[test]
    fn an_unsized_key_on_a_port_without_passphrase_is_sized_to_be_refused() {
        let mut d = handshake(-1, 0, &[(1, HS), (3, KM)]);
        assert_eq!(admit(&mut d, false), Ok(Admitted::Control));
        assert_eq!(&d[HEADER + 4..HEADER + 6], &AES_128.to_be_bytes());
        let mut d = handshake(-1, 0, &[(1, HS), (3, KM)]);
        assert_eq!(admit(&mut d, true), Ok(Admitted::Control));
        assert_eq!(&d[HEADER + 4..HEADER + 6], &[0, 0]);
    }

    #[test]
    fn what_srt_protocol_panics_on_is_dropped() {
        let cases = vec![
            (handshake(-1, 0, &[(1, HS), (6, b"live")]), false),
            (handshake(-1, 0, &[(1, HS), (0, b"rjct")]), false),
            (handshake(-1, 0, &[(5, b""), (1, HS)]), false),
            (handshake(-1, 2, &[(1, HS), (4, KM)]), true),
            (handshake(-1, 7, &[(1, HS), (3, KM)]), true),
            (control(4, 0, &[]), false),
            (control(8, 0, &[]), false),
            (control(2, 0, &[0; 16]), false),
            (control(3, 0, &[0x80, 0, 0, 1]), false),
            (control(0x7FFF, 5, &[]), false),
            (control(0x7FFF, 3, &[0; 16]), false),
            (control(7, 0, &[0; 8]), false),
            (handshake(-1, 0, &[(1, &[0; 16])]), false),
            (vec![0x80; 15], false),
        ];
        for (mut datagram, encrypted) in cases {
            assert!(admit(&mut datagram, encrypted).is_err(), "{datagram:02x?}");
        }
    }
}

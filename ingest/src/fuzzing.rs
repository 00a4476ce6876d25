//! Entry points of the fuzz targets (`fuzz/`), compiled only with the
//! `fuzzing` feature: the RTMP connection (handshake, chunk streams, AMF
//! commands, the publish claim), the SRT port (gate, listener and session)
//! and the stream names publishers send.

use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use srt_protocol::connection::{self, DuplexConnection};
use srt_protocol::listener::{self, AccessControlResponse, MultiplexListener, ResultOf};
use srt_protocol::options::{Passphrase, SocketOptions};
use srt_protocol::packet::{ControlTypes, Packet, ReceivePacketError, RejectReason};
use srt_protocol::settings::ConnInitSettings;

use crate::names;
use crate::rtmp_replay::{prefix, replay};
use crate::srt::session_keys;
use crate::srt_gate;

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
}

/// One RTMP connection: the first byte picks what a client sent before
/// the rest (nothing, a handshake, or a handshake with connect and
/// publish), the rest follows. Every key is refused, so no pipeline
/// starts; media before an accepted publish is dropped unparsed.
pub fn rtmp(bytes: &[u8]) {
    let Some((&stage, rest)) = bytes.split_first() else {
        return;
    };
    let mut input = prefix(stage % 3);
    input.extend_from_slice(rest);
    RUNTIME.with(|rt| {
        let _ = rt.block_on(replay(input, Arc::new(|_, _| None)));
    });
}

/// A publisher's names: the text as an SRT `streamid`, and split at its
/// first newline as an RTMP app and publish name. A claim names a valid
/// stream or is no claim.
pub fn stream_ids(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Some(c) = names::srt(text) {
        assert!(names::valid_stream(&c.stream), "{text:?}");
    }
    let (app, name) = text.split_once('\n').unwrap_or((text, ""));
    if let Some(c) = names::rtmp(app, name) {
        assert!(names::valid_stream(&c.stream), "{text:?}");
    }
}

/// Datagrams one caller sends to the SRT port: the first byte's low bit
/// says whether the port has a passphrase, then each datagram is a 16-bit
/// big-endian length and its bytes (an empty one lets a second pass, for
/// the timers). Each passes the gate; what it admits
/// goes through srt-protocol's listener and, once a session opens, the
/// session, driven as srt-tokio drives them, with this crate's key policy.
/// A handshake gets the cookie the listener last gave (a fuzzer cannot
/// guess it), so inputs reach the session. Nothing admitted may panic.
pub fn srt(bytes: &[u8]) {
    srt_port(bytes, true);
}

/// Whether [`srt`]'s datagrams open a session (for the tests of the seeds).
pub fn srt_opens_a_session(bytes: &[u8]) -> bool {
    srt_port(bytes, true).session.is_some()
}

/// [`srt`] without the gate: what srt-protocol alone does with the
/// datagrams (fuzz/tests/srt_gate.rs shows what the gate is for).
pub fn srt_ungated(bytes: &[u8]) {
    srt_port(bytes, false);
}

fn srt_port(bytes: &[u8], gated: bool) -> SrtPort {
    let (mode, mut rest) = bytes.split_first().map_or((0, &[][..]), |(m, r)| (*m, r));
    let mut port = SrtPort::new(mode & 1 == 1, gated);
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        if datagram.is_empty() {
            port.tick();
        } else {
            port.receive(datagram);
        }
    }
    port
}

struct SrtPort {
    passphrase: Option<Passphrase>,
    gated: bool,
    listener: MultiplexListener,
    session: Option<DuplexConnection>,
    cookie: Option<i32>,
    now: Instant,
}

const PEER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
    4000,
);
/// Steps an input may cause, well past what one datagram needs.
const STEPS: usize = 64;

impl SrtPort {
    fn new(encrypted: bool, gated: bool) -> Self {
        let passphrase = encrypted.then(|| {
            Passphrase::try_from("fuzzing passphrase".to_owned()).expect("a valid passphrase")
        });
        let mut options = SocketOptions::default();
        options.encryption.passphrase = passphrase.clone();
        let now = Instant::now();
        let local = SocketAddr::from(([127, 0, 0, 1], 9000));
        SrtPort {
            passphrase,
            gated,
            listener: MultiplexListener::new(now, local, ConnInitSettings::from(options)),
            session: None,
            cookie: None,
            now,
        }
    }

    fn tick(&mut self) {
        self.now += Duration::from_secs(1);
        self.listen(listener::Input::Timer);
        self.step_session(connection::Input::Timer);
    }

    fn receive(&mut self, datagram: &[u8]) {
        self.now += Duration::from_millis(10);
        let mut datagram = datagram.to_vec();
        if self.gated && srt_gate::admit(&mut datagram, self.passphrase.is_some()).is_err() {
            return;
        }
        if let (Some(cookie), Some(field)) = (self.cookie, cookie_field(&mut datagram)) {
            field.copy_from_slice(&cookie.to_be_bytes());
        }
        // The session's socket id, which a fuzzer cannot guess either.
        if let (Some(session), Some(field)) = (&self.session, datagram.get_mut(12..16)) {
            field.copy_from_slice(&session.settings().local_sockid.0.to_be_bytes());
        }
        let packet = Packet::parse(&mut Cursor::new(&datagram[..]), false);
        let packet = packet.map(|p| (p, PEER)).map_err(ReceivePacketError::Parse);
        self.listen(listener::Input::Packet(packet));
    }

    fn listen(&mut self, first: listener::Input) {
        let mut input = first;
        let mut later = None;
        for _ in 0..STEPS {
            let now = self.now;
            let result = match self.listener.handle_input(now, input) {
                listener::Action::SendPacket((packet, to)) => {
                    if let Packet::Control(c) = &packet
                        && let ControlTypes::Handshake(hs) = &c.control_type
                    {
                        self.cookie = Some(hs.syn_cookie);
                    }
                    ResultOf::SendPacket(to)
                }
                listener::Action::RequestAccess(id, request) => {
                    let response = match session_keys(self.passphrase.clone(), request.key_size) {
                        Ok(keys) => AccessControlResponse::Accepted(keys),
                        Err(reason) => AccessControlResponse::Rejected(RejectReason::Core(reason)),
                    };
                    later = Some((id, response));
                    ResultOf::RequestAccess(id)
                }
                listener::Action::RejectConnection(id, _) => ResultOf::RejectConnection(id),
                listener::Action::OpenConnection(id, opened) => {
                    self.session = Some(DuplexConnection::new(opened.1));
                    ResultOf::OpenConnection(id)
                }
                listener::Action::DelegatePacket(id, packet) => {
                    self.step_session(connection::Input::Packet(Ok(packet)));
                    ResultOf::DelegatePacket(id)
                }
                listener::Action::DropConnection(id) => {
                    self.session = None;
                    ResultOf::DropConnection(id)
                }
                listener::Action::UpdateStatistics(_) => ResultOf::UpdateStatistics,
                listener::Action::WaitForInput => match later.take() {
                    Some(response) => {
                        input = listener::Input::AccessResponse(Some(response));
                        continue;
                    }
                    None => return,
                },
                listener::Action::Close => return,
            };
            input = listener::Input::Success(result);
        }
    }

    fn step_session(&mut self, first: connection::Input) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let mut input = first;
        for _ in 0..STEPS {
            input = match session.handle_input(self.now, input) {
                connection::Action::SendPacket(_) => connection::Input::PacketSent,
                connection::Action::ReleaseData(_) => connection::Input::DataReleased,
                connection::Action::UpdateStatistics(_) => connection::Input::StatisticsUpdated,
                connection::Action::WaitForData(_) | connection::Action::Close => return,
            };
        }
    }
}

/// The cookie field of a handshake datagram.
fn cookie_field(datagram: &mut [u8]) -> Option<&mut [u8]> {
    let is_handshake = datagram.first()? & 0x80 != 0 && datagram.get(..2)? == [0x80, 0];
    if !is_handshake {
        return None;
    }
    datagram.get_mut(16 + 28..16 + 32)
}

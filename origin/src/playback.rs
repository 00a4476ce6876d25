//! Playback tokens on the data plane: one check for VOD assets and live
//! streams that require them.

use std::net::IpAddr;

use headwater_common::token::{self, Invalid, Scope};

use crate::error::OriginError;
use crate::http::request::RequestHead;
use crate::shared::Shared;

/// The `token` query parameter, as sent (tokens need no decoding).
/// Given twice it is [`Token::Ambiguous`]: which one a cache, a CDN rule
/// or this server would take is not something to guess.
pub(crate) fn token_param(query: Option<&str>) -> Token<'_> {
    let mut found = Token::Missing;
    for value in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.strip_prefix("token="))
    {
        found = match found {
            Token::Missing => Token::Given(value),
            _ => return Token::Ambiguous,
        };
    }
    found
}

/// A request another node passed on with its relay token (`relay`):
/// when that token is good for `stream`, the viewer's token in the query
/// is carried into child URIs as it came (the other node checked it).
pub(crate) fn relayed(
    shared: &Shared,
    stream: &str,
    relay_token: &str,
    token: Token<'_>,
    peer: IpAddr,
) -> Result<Option<String>, OriginError> {
    let view = shared.catalog.load();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match token::verify(relay_token, Scope::Stream(stream), now, peer, &view.keys) {
        Ok(()) => Ok(match token {
            Token::Given(t) => Some(format!("token={t}")),
            _ => None,
        }),
        Err(why) => {
            shared.metrics.data.token_refusals.inc();
            tracing::info!(
                kind = "stream",
                name = stream,
                reason = why.reason(),
                "relay token refused"
            );
            Err(OriginError::Forbidden)
        }
    }
}

/// What a request's query says about its playback token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// No `token` parameter.
    Missing,
    /// One, as sent.
    Given(&'a str),
    /// More than one.
    Ambiguous,
}

/// Checks `token` for `scope` when `required`; returns the query to carry
/// into the manifest's child URIs (`None` when no token is needed).
/// The viewer's address is the configured forwarding header's, else the peer's.
pub(crate) fn check(
    shared: &Shared,
    head: &RequestHead,
    scope: Scope<'_>,
    required: bool,
    token: Token<'_>,
    peer: IpAddr,
) -> Result<Option<String>, OriginError> {
    if !required {
        return Ok(None);
    }
    let view = shared.catalog.load();
    let client = head
        .forwarded_ip
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(peer);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let outcome = match token {
        Token::Missing => Err(Invalid::Missing),
        Token::Ambiguous => Err(Invalid::Malformed),
        Token::Given(t) => token::verify(t, scope, now, client, &view.keys).map(|()| t),
    };
    match outcome {
        Ok(t) => Ok(Some(format!("token={t}"))),
        Err(why) => {
            shared.metrics.data.token_refusals.inc();
            // The reason, never the token.
            let (kind, name) = match scope {
                Scope::Asset(n) => ("asset", n),
                Scope::Stream(n) => ("stream", n),
            };
            tracing::info!(kind, name, reason = why.reason(), "playback token refused");
            Err(OriginError::Forbidden)
        }
    }
}

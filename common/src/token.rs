//! Playback tokens: HMAC-SHA256 over the asset (or stream), an expiry and
//! optionally the viewer's IP, with a key id so keys can rotate.
//!
//! A token is `{key_id}.{expires}.{binding}.{mac}`:
//!
//! - `key_id`: `[A-Za-z0-9_-]{1,32}`, the signing key;
//! - `expires`: Unix seconds after which it is refused;
//! - `binding`: `a` (any address) or `i` (bound to the viewer's IP — the
//!   address itself is not in the token, only in the MAC);
//! - `mac`: base64url (no padding) of HMAC-SHA256(secret, message), where
//!   the message is `headwater-token/1\n{kind}\n{name}\n{key_id}\n{expires}\n{ip}`
//!   with `kind` `vod` or `live` and `ip` empty when unbound.
//!
//! Every character is URL-safe, so the token travels as `?token=` without
//! escaping. Verification compares MACs in constant time and never says
//! which check failed beyond the [`Invalid`] kind (for logs, not clients).

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// What a token grants access to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// A VOD asset: `/vod/{name}/...`.
    Asset(&'a str),
    /// A live stream: `/live/{name}/...`.
    Stream(&'a str),
}

/// A signing key: an id and its secret bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// `[A-Za-z0-9_-]{1,32}`.
    pub id: String,
    /// At least 32 bytes.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("SigningKey").field("id", &self.id).finish()
    }
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// No token where one is needed.
    Missing,
    /// Not of the token's shape.
    Malformed,
    /// Signed by a key that is not (or no longer) valid.
    UnknownKey,
    /// Past its expiry.
    Expired,
    /// The MAC does not match: forged, another asset, or another IP.
    BadSignature,
}

impl Invalid {
    /// A short reason for logs (the token itself is never logged).
    pub fn reason(self) -> &'static str {
        match self {
            Invalid::Missing => "missing token",
            Invalid::Malformed => "malformed token",
            Invalid::UnknownKey => "unknown or retired key",
            Invalid::Expired => "expired token",
            Invalid::BadSignature => "bad signature",
        }
    }
}

/// Whether `s` is a valid key id.
pub fn is_key_id(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Makes a token for `scope`, valid until `expires` (Unix seconds), bound
/// to `ip` when given.
pub fn sign(key: &SigningKey, scope: Scope<'_>, expires: u64, ip: Option<IpAddr>) -> String {
    let exp = expires.to_string();
    let ip = ip.map(|a| canonical(a).to_string());
    let mac = mac(key, scope, &key.id, &exp, ip.as_deref().unwrap_or(""));
    let binding = if ip.is_some() { "i" } else { "a" };
    format!("{}.{exp}.{binding}.{}", key.id, URL_SAFE_NO_PAD.encode(mac))
}

/// Checks `token` for `scope` at `now` (Unix seconds) from `client`,
/// against every valid key.
pub fn verify(
    token: &str,
    scope: Scope<'_>,
    now: u64,
    client: IpAddr,
    keys: &[SigningKey],
) -> Result<(), Invalid> {
    let mut parts = token.split('.');
    let (Some(kid), Some(exp), Some(binding), Some(sig), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(Invalid::Malformed);
    };
    if !is_key_id(kid) || exp.is_empty() || exp.len() > 20 || sig.len() != 43 {
        return Err(Invalid::Malformed);
    }
    let expires: u64 = exp.parse().map_err(|_| Invalid::Malformed)?;
    let ip = match binding {
        "a" => String::new(),
        "i" => canonical(client).to_string(),
        _ => return Err(Invalid::Malformed),
    };
    let given = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| Invalid::Malformed)?;
    let key = keys
        .iter()
        .find(|k| k.id == kid)
        .ok_or(Invalid::UnknownKey)?;
    let want = mac(key, scope, kid, exp, &ip);
    // The MAC first, so an attacker learns nothing from the expiry check
    // about which keys exist.
    if !bool::from(want.as_slice().ct_eq(&given)) {
        return Err(Invalid::BadSignature);
    }
    if now >= expires {
        return Err(Invalid::Expired);
    }
    Ok(())
}

fn mac(key: &SigningKey, scope: Scope<'_>, kid: &str, exp: &str, ip: &str) -> [u8; 32] {
    let (kind, name) = match scope {
        Scope::Asset(n) => ("vod", n),
        Scope::Stream(n) => ("live", n),
    };
    let mut m = HmacSha256::new_from_slice(&key.secret).expect("HMAC takes keys of any length");
    for (i, part) in ["headwater-token/1", kind, name, kid, exp, ip]
        .iter()
        .enumerate()
    {
        if i > 0 {
            m.update(b"\n");
        }
        m.update(part.as_bytes());
    }
    m.finalize().into_bytes().into()
}

/// IPv4-mapped IPv6 addresses compare as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Whether two secrets (publish keys) are equal, in constant time.
pub fn secrets_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A new random secret for a signing key.
pub fn new_secret() -> Result<Vec<u8>, getrandom::Error> {
    let mut s = vec![0u8; 32];
    getrandom::fill(&mut s)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, b: u8) -> SigningKey {
        SigningKey {
            id: id.into(),
            secret: vec![b; 32],
        }
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 8));

    #[test]
    fn round_trip_and_every_refusal() {
        let k1 = key("k1", 1);
        let k2 = key("k2", 2);
        let keys = [k1.clone(), k2.clone()];
        let t = sign(&k1, Scope::Asset("a"), 1000, None);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        );
        assert_eq!(verify(&t, Scope::Asset("a"), 999, IP, &keys), Ok(()));
        assert_eq!(
            verify(&t, Scope::Asset("a"), 1000, IP, &keys),
            Err(Invalid::Expired)
        );
        assert_eq!(
            verify(&t, Scope::Asset("b"), 999, IP, &keys),
            Err(Invalid::BadSignature)
        );
        assert_eq!(
            verify(&t, Scope::Stream("a"), 999, IP, &keys),
            Err(Invalid::BadSignature)
        );
        assert_eq!(
            verify(&t, Scope::Asset("a"), 999, IP, std::slice::from_ref(&k2)),
            Err(Invalid::UnknownKey)
        );
        // Same id, other secret: a rotated secret or a forgery.
        assert_eq!(
            verify(&t, Scope::Asset("a"), 999, IP, &[key("k1", 9)]),
            Err(Invalid::BadSignature)
        );
        // A longer expiry pasted in does not verify.
        let forged = t.replacen(".1000.", ".9000.", 1);
        assert_eq!(
            verify(&forged, Scope::Asset("a"), 999, IP, &keys),
            Err(Invalid::BadSignature)
        );
        for bad in ["", "a.b.c", "k1.x.a.AAAA", "k1.1.z.AAAA", &format!("{t}.x")] {
            assert_eq!(
                verify(bad, Scope::Asset("a"), 0, IP, &keys),
                Err(Invalid::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn ip_binding() {
        let k = key("k", 3);
        let t = sign(&k, Scope::Asset("a"), 10, Some(IP));
        assert!(t.contains(".i."));
        assert_eq!(
            verify(&t, Scope::Asset("a"), 0, IP, std::slice::from_ref(&k)),
            Ok(())
        );
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            verify(&t, Scope::Asset("a"), 0, mapped, std::slice::from_ref(&k)),
            Ok(())
        );
        assert_eq!(
            verify(&t, Scope::Asset("a"), 0, OTHER, std::slice::from_ref(&k)),
            Err(Invalid::BadSignature)
        );
        // Changing the binding flag to "any" breaks the MAC.
        let unbound = t.replacen(".i.", ".a.", 1);
        assert_eq!(
            verify(&unbound, Scope::Asset("a"), 0, OTHER, &[k]),
            Err(Invalid::BadSignature)
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", key("k", 7)).contains('7'));
    }
}

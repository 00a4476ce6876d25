//! Admin auth as an extractor: `Auth<Write>` in a handler's arguments
//! checks the bearer token before anything else of the request (its body
//! included) is looked at.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use crate::config::Scope;
use crate::error::ApiError;

/// A scope a handler needs.
pub(super) trait NeedsScope {
    /// The scope.
    const SCOPE: Scope;
}

/// Needs `read`.
pub(super) struct Read;
/// Needs `write`.
pub(super) struct Write;
/// Needs `tokens`.
pub(super) struct Tokens;

impl NeedsScope for Read {
    const SCOPE: Scope = Scope::Read;
}
impl NeedsScope for Write {
    const SCOPE: Scope = Scope::Write;
}
impl NeedsScope for Tokens {
    const SCOPE: Scope = Scope::Tokens;
}

/// Proof that the request's bearer token has scope `S`.
pub(super) struct Auth<S>(PhantomData<S>);

impl<S: NeedsScope + Send> FromRequestParts<AppState> for Auth<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state.authorize(&parts.headers, S::SCOPE)?;
        Ok(Auth(PhantomData))
    }
}

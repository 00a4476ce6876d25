//! The HTTP/1.1 pieces: request heads (parsed by `httparse`), response
//! heads, `Range`, conditional requests and dates.

pub(crate) mod date;
pub(crate) mod range;
pub(crate) mod request;
pub(crate) mod response;

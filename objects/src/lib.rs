//! Media libraries in S3-compatible object storage.
//!
//! A [`Bucket`] is a library root `s3://BUCKET/PREFIX` read through the
//! `object_store` client: listings and `HEAD`s find the assets, ranged
//! `GET`s read what indexing asks for (the `moov`/`moof` boxes, never the
//! payload). Sample payload comes through a [`ChunkCache`]: aligned chunks
//! of each object version on local disk, fetched once however many
//! requests wait for them, written under a temporary name and renamed, so
//! a partial chunk is never served, and then sent by `sendfile` like any
//! local file.
//!
//! Every object is read at one version: its ETag is part of each chunk's
//! name and every ranged read is conditional on it (`If-Match`), so a
//! replaced object is never mixed with the old one; its reads fail with
//! [`Error::Changed`] and the caller indexes it again.
//!
//! The client is async; this crate's API is blocking (callers run on a
//! blocking pool) and runs the client on a small runtime of its own. Every
//! call is bounded in time ([`BucketOptions::timeout`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bucket;
mod chunks;
mod error;

pub use bucket::{Bucket, BucketOptions, Object, parse_url};
pub use chunks::{Chunk, ChunkCache, Piece, Traffic};
pub use error::Error;

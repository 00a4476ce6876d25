//! The catalog as the data plane sees it: an immutable snapshot, swapped
//! atomically when the database changes, read without a lock by every
//! worker on every request.
//!
//! The control API (`headwater-control-api`) owns the database and builds
//! these views; the data plane (origin, ingest) only reads them. The types
//! carry what serving and publishing need and nothing of the API's own
//! (no schema derives, no database rows), so the request path depends on
//! neither the web framework nor the database driver.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::token::SigningKey;

/// A catalog asset's file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogSource {
    /// Path relative to the media root.
    pub path: String,
    /// BCP 47 language for tracks whose file says none.
    pub language: Option<String>,
}

/// What the data plane needs to know about a catalog asset.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogAsset {
    /// The asset's name.
    pub id: String,
    /// Whether playback needs a token.
    pub require_token: bool,
    /// Its files, relative to the media root.
    pub sources: Vec<CatalogSource>,
    /// Changes whenever the entry does (its `updated_at`).
    pub revision: i64,
}

/// A live stream record: who may publish, how it is packaged and played.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogStream {
    /// The stream's name.
    pub name: String,
    /// The key a publisher must present (compared in constant time).
    pub publish_key: String,
    /// The ladder it is transcoded into, if any.
    pub ladder: Option<String>,
    /// Seconds of DVR window.
    pub dvr_window_secs: u64,
    /// Whether it is recorded as a VOD asset.
    pub record: bool,
    /// Whether playback needs a token.
    pub require_token: bool,
}

/// One rung of a ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogRung {
    /// The rendition's name.
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Video bit rate in kbit/s.
    pub video_bitrate_kbps: u32,
}

/// A rendition ladder a live stream may be transcoded into.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogLadder {
    /// The ladder's name.
    pub name: String,
    /// Frames per second of every rung.
    pub frame_rate: u32,
    /// Seconds between keyframes, the same in every rung.
    pub keyframe_interval_secs: f64,
    /// The rungs.
    pub rungs: Vec<CatalogRung>,
}

impl CatalogLadder {
    /// Frames between keyframes: the interval at the ladder's frame rate.
    pub fn keyframe_frames(&self) -> u32 {
        let frames = (self.keyframe_interval_secs * f64::from(self.frame_rate)).round();
        // A validated ladder has 1 to 120 fps and at most a minute between keyframes.
        frames.clamp(1.0, f64::from(u32::MAX)) as u32
    }
}

/// One immutable view of the catalog.
#[derive(Debug, Default)]
pub struct CatalogView {
    /// `catalog_version` this view was read at.
    pub version: i64,
    /// Catalog assets by id; they take precedence over directory-mode assets.
    pub assets: HashMap<String, Arc<CatalogAsset>>,
    /// Live stream records by name.
    pub streams: HashMap<String, Arc<CatalogStream>>,
    /// Rendition ladders by name (live streams are transcoded into theirs).
    pub ladders: HashMap<String, Arc<CatalogLadder>>,
    /// Keys whose tokens are accepted.
    pub keys: Vec<SigningKey>,
    /// The key new tokens are signed with (the newest active one).
    pub signing: Option<SigningKey>,
}

/// The shared, swappable view.
pub type SharedCatalog = Arc<ArcSwap<CatalogView>>;

/// An empty view: directory mode only, no tokens.
pub fn empty() -> SharedCatalog {
    Arc::new(ArcSwap::from_pointee(CatalogView::default()))
}

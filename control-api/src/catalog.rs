//! The catalog as the data plane sees it: an immutable snapshot, swapped
//! atomically when the database changes, read without a lock by every
//! worker on every request.
//!
//! Changes show up within `catalog.poll_interval_ms` (250 ms by default,
//! at most one second): a write through this node's API refreshes at once;
//! writes by other nodes sharing a PostgreSQL catalog are noticed by polling
//! `catalog_version`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::db::{Db, KeyRow, now_ms};
use crate::error::Error;
use crate::model::{Ladder, SourceSpec, Stream};
use crate::token::SigningKey;

pub use headwater_common::catalog::{
    CatalogAsset, CatalogLadder, CatalogRung, CatalogSource, CatalogStream, CatalogView,
    SharedCatalog, empty,
};

/// Reads a whole view from the database.
pub async fn load(db: &Db) -> Result<CatalogView, Error> {
    // The version first: a write landing during the reads makes the next
    // poll see a newer version and read again.
    let version = db.version().await?;
    let assets = db
        .assets()
        .await?
        .into_iter()
        .map(|a| {
            let entry = CatalogAsset {
                id: a.id.clone(),
                require_token: a.require_token,
                sources: a.sources.iter().map(source).collect(),
                revision: a.updated_at,
            };
            (a.id, Arc::new(entry))
        })
        .collect();
    let streams = db
        .streams()
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), Arc::new(stream(s))))
        .collect();
    let ladders = db
        .ladders()
        .await?
        .into_iter()
        .map(|l| (l.name.clone(), Arc::new(ladder(l))))
        .collect();
    let rows = db.keys().await?;
    let keys: Vec<SigningKey> = rows
        .iter()
        .filter(|k| k.retired_at.is_none())
        .filter_map(decode_key)
        .collect();
    Ok(CatalogView {
        version,
        assets,
        streams,
        ladders,
        signing: keys.first().cloned(),
        keys,
    })
}

/// An asset's file as the data plane sees it.
fn source(s: &SourceSpec) -> CatalogSource {
    CatalogSource {
        path: s.path.clone(),
        language: s.language.clone(),
    }
}

/// A stream record as the data plane sees it.
fn stream(s: Stream) -> CatalogStream {
    CatalogStream {
        name: s.name,
        publish_key: s.publish_key,
        ladder: s.ladder,
        dvr_window_secs: s.dvr_window_secs,
        record: s.record,
        require_token: s.require_token,
    }
}

/// A ladder as live transcoding needs it.
fn ladder(l: Ladder) -> CatalogLadder {
    CatalogLadder {
        name: l.name,
        frame_rate: l.frame_rate,
        keyframe_interval_secs: l.keyframe_interval_secs,
        rungs: l
            .rungs
            .into_iter()
            .map(|r| CatalogRung {
                name: r.name,
                width: r.width,
                height: r.height,
                video_bitrate_kbps: r.video_bitrate_kbps,
            })
            .collect(),
    }
}

/// The secret of a key row; `None` (and a log line) when it is unreadable.
pub fn decode_key(k: &KeyRow) -> Option<SigningKey> {
    match URL_SAFE_NO_PAD.decode(&k.secret) {
        Ok(secret) if secret.len() >= 32 => Some(SigningKey {
            id: k.id.clone(),
            secret,
        }),
        _ => {
            tracing::error!(key = %k.id, "signing key secret is unreadable; ignoring it");
            None
        }
    }
}

/// Makes sure there is an active signing key, creating one if not.
pub async fn ensure_signing_key(db: &Db) -> Result<(), Error> {
    if db.keys().await?.iter().any(|k| k.retired_at.is_none()) {
        return Ok(());
    }
    create_key(db).await.map(|_| ())
}

/// Adds a new signing key (it becomes the one new tokens use) and returns its id.
pub async fn create_key(db: &Db) -> Result<String, Error> {
    let secret = crate::token::new_secret().map_err(|e| Error::Random(e.to_string()))?;
    let mut id_bytes = [0u8; 6];
    getrandom::fill(&mut id_bytes).map_err(|e| Error::Random(e.to_string()))?;
    let row = KeyRow {
        id: format!("k{}", URL_SAFE_NO_PAD.encode(id_bytes)),
        secret: URL_SAFE_NO_PAD.encode(&secret),
        created_at: now_ms(),
        retired_at: None,
    };
    match db.insert_key(&row).await {
        Ok(()) => Ok(row.id),
        Err(crate::db::WriteError::Other(e)) => Err(e),
        Err(crate::db::WriteError::Conflict) => Err(Error::Random("key id collision".into())),
    }
}

/// Reloads the view now.
pub async fn refresh(db: &Db, shared: &SharedCatalog) -> Result<(), Error> {
    let view = load(db).await?;
    shared.store(Arc::new(view));
    Ok(())
}

/// Polls the database's version and reloads the view when it changed.
/// Runs until the runtime stops.
pub async fn poll(db: Db, shared: SharedCatalog, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let seen = shared.load().version;
        match db.version().await {
            Ok(v) if v == seen => failing = false,
            Ok(_) => match refresh(&db, &shared).await {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "catalog reload failed; serving the last view");
                }
                Err(_) => {}
            },
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "catalog database unreachable; serving the last view");
            }
            Err(_) => {}
        }
    }
}

//! The catalog database: SQLite (one file, WAL) or PostgreSQL, through
//! sqlx's `Any` driver so one set of queries and migrations serves both.
//!
//! Placeholders are `$1`-style, which both accept. Every write is one
//! transaction that also bumps `catalog_version`, which is how the nodes
//! sharing a PostgreSQL catalog notice each other's changes. SQLite runs
//! with `synchronous=FULL`: a write is on disk before it is acknowledged.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::error::Error;
use crate::model::{Asset, Job, JobState, Ladder, Stream};
use headwater_common::cluster::{Announce, OnAirRow};

/// One catalog database.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One file, WAL.
    Sqlite,
    /// A server shared by several nodes.
    Postgres,
}

/// A write that hit an existing row.
#[derive(Debug)]
pub enum WriteError {
    /// The primary key exists.
    Conflict,
    /// Anything else.
    Other(Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => WriteError::Conflict,
            _ => WriteError::Other(Error::Database(e)),
        }
    }
}

/// A signing key row.
#[derive(Clone, Debug)]
pub struct KeyRow {
    /// Key id.
    pub id: String,
    /// Base64url secret.
    pub secret: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds, when retired.
    pub retired_at: Option<i64>,
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The database URL for a config value: empty means a file in the media root.
pub fn resolve_url(configured: &str, media_root: &Path) -> String {
    if configured.is_empty() {
        let path: PathBuf = media_root.join(".headwater").join("catalog.db");
        format!("sqlite://{}?mode=rwc", absolute(&path).display())
    } else if configured.starts_with("sqlite:") && !configured.contains('?') {
        format!("{configured}?mode=rwc")
    } else {
        configured.to_owned()
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// The password-free form of a URL, for logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

impl Db {
    /// Connects, creating the SQLite file (and its directory) if needed,
    /// and applies the migrations.
    pub async fn open(url: &str) -> Result<Db, Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            if let Some(path) = url
                .strip_prefix("sqlite://")
                .map(|p| p.split('?').next().unwrap_or(p))
                .filter(|p| !p.is_empty() && *p != ":memory:")
                && let Some(dir) = Path::new(path).parent()
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
            }
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let options: AnyConnectOptions = url.parse()?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            // With the database down, a request fails (503) in this long
            // instead of sqlx's default 30 s.
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA busy_timeout = 5000",
                        ] {
                            conn.execute(pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Db { pool, backend })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// The catalog version: changes with every write.
    pub async fn version(&self) -> Result<i64, Error> {
        let row = sqlx::query("SELECT version FROM catalog_version WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn bump(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE catalog_version SET version = version + 1 WHERE id = 1")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// The row `query` finds, through `map`; `None` when there is none.
    async fn fetch_optional<T>(
        &self,
        query: Query<'_>,
        map: MapRow<T>,
    ) -> Result<Option<T>, Error> {
        let row = query.fetch_optional(&self.pool).await?;
        row.map(|r| map(&r)).transpose()
    }

    /// Every row `query` finds, through `map`, in the query's order.
    async fn fetch_all<T>(&self, query: Query<'_>, map: MapRow<T>) -> Result<Vec<T>, Error> {
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(map).collect()
    }

    /// A catalog write: `query` in one transaction that also bumps
    /// `catalog_version`. Returns how many rows it changed.
    async fn write(&self, query: Query<'_>) -> Result<u64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let n = query.execute(&mut *tx).await?.rows_affected();
        Self::bump(&mut tx).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// A write outside the catalog (jobs): no transaction, no version bump.
    /// Returns how many rows it changed.
    async fn execute(&self, query: Query<'_>) -> Result<u64, sqlx::Error> {
        Ok(query.execute(&self.pool).await?.rows_affected())
    }

    // ---- assets

    /// Inserts a new asset; `Conflict` when the id exists.
    pub async fn insert_asset(&self, a: &Asset) -> Result<(), WriteError> {
        let query = sqlx::query(
            "INSERT INTO assets (id, title, metadata, require_token, sources, tracks, \
             duration_ms, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&a.id)
        .bind(&a.title)
        .bind(a.metadata.to_string())
        .bind(i64::from(a.require_token))
        .bind(json(&a.sources))
        .bind(json(&a.tracks))
        .bind(a.duration_ms as i64)
        .bind(a.created_at)
        .bind(a.updated_at);
        self.write(query).await?;
        Ok(())
    }

    /// Replaces an existing asset's fields; false when it does not exist.
    pub async fn update_asset(&self, a: &Asset) -> Result<bool, Error> {
        let query = sqlx::query(
            "UPDATE assets SET title = $2, metadata = $3, require_token = $4, sources = $5, \
             tracks = $6, duration_ms = $7, updated_at = $8 WHERE id = $1",
        )
        .bind(&a.id)
        .bind(&a.title)
        .bind(a.metadata.to_string())
        .bind(i64::from(a.require_token))
        .bind(json(&a.sources))
        .bind(json(&a.tracks))
        .bind(a.duration_ms as i64)
        .bind(a.updated_at);
        Ok(self.write(query).await? == 1)
    }

    /// One asset.
    pub async fn asset(&self, id: &str) -> Result<Option<Asset>, Error> {
        let sql = format!("{ASSET_COLUMNS} WHERE id = $1");
        let query = sqlx::query(&sql).bind(id);
        self.fetch_optional(query, asset_row).await
    }

    /// Every asset, by id.
    pub async fn assets(&self) -> Result<Vec<Asset>, Error> {
        let sql = format!("{ASSET_COLUMNS} ORDER BY id");
        self.fetch_all(sqlx::query(&sql), asset_row).await
    }

    /// Deletes an asset; false when it did not exist.
    pub async fn delete_asset(&self, id: &str) -> Result<bool, Error> {
        let query = sqlx::query("DELETE FROM assets WHERE id = $1").bind(id);
        Ok(self.write(query).await? == 1)
    }

    // ---- ladders

    /// Inserts a ladder; `Conflict` when the name exists.
    pub async fn insert_ladder(&self, l: &Ladder) -> Result<(), WriteError> {
        let query = sqlx::query("INSERT INTO ladders (name, spec, created_at) VALUES ($1, $2, $3)")
            .bind(&l.name)
            .bind(json(l))
            .bind(now_ms());
        self.write(query).await?;
        Ok(())
    }

    /// One ladder.
    pub async fn ladder(&self, name: &str) -> Result<Option<Ladder>, Error> {
        let query = sqlx::query("SELECT name, spec FROM ladders WHERE name = $1").bind(name);
        self.fetch_optional(query, ladder_row).await
    }

    /// Every ladder, by name.
    pub async fn ladders(&self) -> Result<Vec<Ladder>, Error> {
        let query = sqlx::query("SELECT name, spec FROM ladders ORDER BY name");
        self.fetch_all(query, ladder_row).await
    }

    /// Deletes a ladder; false when it did not exist.
    pub async fn delete_ladder(&self, name: &str) -> Result<bool, Error> {
        let query = sqlx::query("DELETE FROM ladders WHERE name = $1").bind(name);
        Ok(self.write(query).await? == 1)
    }

    // ---- streams

    /// Inserts a stream; `Conflict` when the name exists.
    pub async fn insert_stream(&self, s: &Stream) -> Result<(), WriteError> {
        let query = sqlx::query(
            "INSERT INTO streams (name, publish_key, ladder, dvr_window_secs, record, \
             require_token, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.name)
        .bind(&s.publish_key)
        .bind(s.ladder.clone())
        .bind(s.dvr_window_secs as i64)
        .bind(i64::from(s.record))
        .bind(i64::from(s.require_token))
        .bind(s.created_at)
        .bind(s.updated_at);
        self.write(query).await?;
        Ok(())
    }

    /// One stream.
    pub async fn stream(&self, name: &str) -> Result<Option<Stream>, Error> {
        let sql = format!("{STREAM_COLUMNS} WHERE name = $1");
        let query = sqlx::query(&sql).bind(name);
        self.fetch_optional(query, stream_row).await
    }

    /// Every stream, by name.
    pub async fn streams(&self) -> Result<Vec<Stream>, Error> {
        let sql = format!("{STREAM_COLUMNS} ORDER BY name");
        self.fetch_all(sqlx::query(&sql), stream_row).await
    }

    /// Sets a stream's publish key; false when there is no such stream.
    pub async fn set_publish_key(&self, name: &str, key: &str) -> Result<bool, Error> {
        let query =
            sqlx::query("UPDATE streams SET publish_key = $2, updated_at = $3 WHERE name = $1")
                .bind(name)
                .bind(key)
                .bind(now_ms());
        Ok(self.write(query).await? == 1)
    }

    /// Deletes a stream; false when it did not exist.
    pub async fn delete_stream(&self, name: &str) -> Result<bool, Error> {
        let query = sqlx::query("DELETE FROM streams WHERE name = $1").bind(name);
        Ok(self.write(query).await? == 1)
    }

    // ---- signing keys

    /// Every key, newest first.
    pub async fn keys(&self) -> Result<Vec<KeyRow>, Error> {
        let query = sqlx::query(
            "SELECT id, secret, created_at, retired_at FROM signing_keys \
             ORDER BY created_at DESC, id DESC",
        );
        self.fetch_all(query, key_row).await
    }

    /// Adds a key.
    pub async fn insert_key(&self, k: &KeyRow) -> Result<(), WriteError> {
        let query =
            sqlx::query("INSERT INTO signing_keys (id, secret, created_at) VALUES ($1, $2, $3)")
                .bind(&k.id)
                .bind(&k.secret)
                .bind(k.created_at);
        self.write(query).await?;
        Ok(())
    }

    /// Retires a key; false when there is no such active key.
    pub async fn retire_key(&self, id: &str) -> Result<bool, Error> {
        let query = sqlx::query(
            "UPDATE signing_keys SET retired_at = $2 WHERE id = $1 AND retired_at IS NULL",
        )
        .bind(id)
        .bind(now_ms());
        Ok(self.write(query).await? == 1)
    }

    // ---- jobs

    /// Adds a job.
    pub async fn insert_job(&self, j: &Job) -> Result<(), WriteError> {
        let query = sqlx::query(
            "INSERT INTO jobs (id, asset, ladder, state, percent, error, outputs, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&j.id)
        .bind(&j.asset)
        .bind(&j.ladder)
        .bind(j.state.as_str())
        .bind(i64::from(j.percent))
        .bind(j.error.clone())
        .bind(json(&j.outputs))
        .bind(j.created_at)
        .bind(j.updated_at);
        self.execute(query).await?;
        Ok(())
    }

    /// Records a job's progress or outcome.
    pub async fn update_job(&self, j: &Job) -> Result<(), Error> {
        let query = sqlx::query(
            "UPDATE jobs SET state = $2, percent = $3, error = $4, outputs = $5, updated_at = $6 \
             WHERE id = $1",
        )
        .bind(&j.id)
        .bind(j.state.as_str())
        .bind(i64::from(j.percent))
        .bind(j.error.clone())
        .bind(json(&j.outputs))
        .bind(now_ms());
        self.execute(query).await?;
        Ok(())
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<Option<Job>, Error> {
        let sql = format!("{JOB_COLUMNS} WHERE id = $1");
        let query = sqlx::query(&sql).bind(id);
        self.fetch_optional(query, job_row).await
    }

    /// Every job, newest first.
    pub async fn jobs(&self) -> Result<Vec<Job>, Error> {
        let sql = format!("{JOB_COLUMNS} ORDER BY created_at DESC, id DESC");
        self.fetch_all(sqlx::query(&sql), job_row).await
    }

    /// Marks every job that was queued or running as failed: called at
    /// start-up, when no job of this node can be running. Returns how many.
    pub async fn fail_interrupted(&self, why: &str) -> Result<u64, Error> {
        let query = sqlx::query(
            "UPDATE jobs SET state = 'failed', error = $1, updated_at = $2 \
             WHERE state IN ('queued', 'running')",
        )
        .bind(why)
        .bind(now_ms());
        Ok(self.execute(query).await?)
    }
}

/// `live_on_air`: which node can serve which live stream (see `crate::cluster`).
impl Db {
    /// One heartbeat of this process (`run`) of `node`: a row per stream
    /// it announces, its beat bumped; its rows for streams it no longer
    /// has removed, and rows nobody has beaten for an hour. One
    /// transaction, outside the catalog (no version bump).
    pub async fn beat(&self, node: &str, run: &str, streams: &[Announce]) -> Result<(), Error> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let held: Vec<String> =
            sqlx::query("SELECT stream FROM live_on_air WHERE node = $1 AND run = $2")
                .bind(node)
                .bind(run)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
        for gone in held
            .iter()
            .filter(|h| !streams.iter().any(|a| a.stream == **h))
        {
            sqlx::query("DELETE FROM live_on_air WHERE stream = $1 AND node = $2 AND run = $3")
                .bind(gone)
                .bind(node)
                .bind(run)
                .execute(&mut *tx)
                .await?;
        }
        for a in streams {
            sqlx::query(
                "INSERT INTO live_on_air (stream, node, run, session, publishing, beat, beat_at) \
                 VALUES ($1, $2, $3, $4, $5, 0, $6) \
                 ON CONFLICT (stream, node) DO UPDATE SET run = excluded.run, \
                 session = excluded.session, publishing = excluded.publishing, \
                 beat = live_on_air.beat + 1, beat_at = excluded.beat_at",
            )
            .bind(&a.stream)
            .bind(node)
            .bind(run)
            .bind(&a.session)
            .bind(i64::from(a.publishing))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM live_on_air WHERE beat_at < $1")
            .bind(now - 3_600_000)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every `live_on_air` row.
    pub async fn on_air(&self) -> Result<Vec<OnAirRow>, Error> {
        let query = sqlx::query("SELECT stream, node, session, publishing, beat FROM live_on_air");
        self.fetch_all(query, |r| {
            Ok(OnAirRow {
                stream: r.try_get(0)?,
                node: r.try_get(1)?,
                session: r.try_get(2)?,
                publishing: r.try_get::<i64, _>(3)? != 0,
                beat: r.try_get(4)?,
            })
        })
        .await
    }

    /// Removes the rows of this process (`run`) of `node`: it is stopping.
    pub async fn leave(&self, node: &str, run: &str) -> Result<(), Error> {
        let query = sqlx::query("DELETE FROM live_on_air WHERE node = $1 AND run = $2")
            .bind(node)
            .bind(run);
        self.execute(query).await?;
        Ok(())
    }
}

/// A query with its arguments bound, ready to run.
type Query<'q> = sqlx::query::Query<'q, sqlx::Any, AnyArguments<'q>>;

/// Turns a row into a value; `Err` when the row does not parse.
type MapRow<T> = fn(&AnyRow) -> Result<T, Error>;

/// Longest wait for a pooled connection: what a request waits before its
/// 503 when the database is down (SQLite's writers wait on `busy_timeout`
/// inside a connection, not here).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

const ASSET_COLUMNS: &str = "SELECT id, title, metadata, require_token, sources, tracks, \
                             duration_ms, created_at, updated_at FROM assets";
const STREAM_COLUMNS: &str = "SELECT name, publish_key, ladder, dvr_window_secs, record, \
                              require_token, created_at, updated_at FROM streams";
const JOB_COLUMNS: &str = "SELECT id, asset, ladder, state, percent, error, outputs, \
                           created_at, updated_at FROM jobs";

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("catalog types serialize")
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T, Error> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt {
        what: what.to_owned(),
        why: e.to_string(),
    })
}

fn asset_row(r: &AnyRow) -> Result<Asset, Error> {
    let id: String = r.try_get(0)?;
    let what = format!("assets/{id}");
    Ok(Asset {
        title: r.try_get(1)?,
        metadata: parse(&what, &r.try_get::<String, _>(2)?)?,
        require_token: r.try_get::<i64, _>(3)? != 0,
        sources: parse(&what, &r.try_get::<String, _>(4)?)?,
        tracks: parse(&what, &r.try_get::<String, _>(5)?)?,
        duration_ms: r.try_get::<i64, _>(6)?.max(0) as u64,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
        id,
    })
}

fn ladder_row(r: &AnyRow) -> Result<Ladder, Error> {
    let name: String = r.try_get(0)?;
    parse(&format!("ladders/{name}"), &r.try_get::<String, _>(1)?)
}

fn key_row(r: &AnyRow) -> Result<KeyRow, Error> {
    Ok(KeyRow {
        id: r.try_get(0)?,
        secret: r.try_get(1)?,
        created_at: r.try_get(2)?,
        retired_at: r.try_get(3)?,
    })
}

fn stream_row(r: &AnyRow) -> Result<Stream, Error> {
    Ok(Stream {
        name: r.try_get(0)?,
        publish_key: r.try_get(1)?,
        ladder: r.try_get(2)?,
        dvr_window_secs: r.try_get::<i64, _>(3)?.max(0) as u64,
        record: r.try_get::<i64, _>(4)? != 0,
        require_token: r.try_get::<i64, _>(5)? != 0,
        created_at: r.try_get(6)?,
        updated_at: r.try_get(7)?,
    })
}

fn job_row(r: &AnyRow) -> Result<Job, Error> {
    let id: String = r.try_get(0)?;
    let what = format!("jobs/{id}");
    let state: String = r.try_get(3)?;
    Ok(Job {
        asset: r.try_get(1)?,
        ladder: r.try_get(2)?,
        state: JobState::parse(&state).ok_or_else(|| Error::Corrupt {
            what: what.clone(),
            why: format!("unknown state '{state}'"),
        })?,
        percent: r.try_get::<i64, _>(4)?.clamp(0, 100) as u32,
        error: r.try_get(5)?,
        outputs: parse(&what, &r.try_get::<String, _>(6)?)?,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
        id,
    })
}

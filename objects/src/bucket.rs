//! A library root in a bucket: listings, `HEAD`s and ranged `GET`s, each
//! bounded in time, on a runtime of the bucket's own.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectMeta, ObjectStore, RetryConfig};

use crate::error::Error;

/// How to reach the bucket; credentials come from the standard
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), never from here.
#[derive(Clone, Debug)]
pub struct BucketOptions {
    /// Endpoint URL of an S3-compatible server (else `AWS_ENDPOINT_URL`,
    /// else AWS itself).
    pub endpoint: Option<String>,
    /// Region (else `AWS_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// Path-style addressing (`ENDPOINT/BUCKET/KEY`), which most
    /// S3-compatible servers want, instead of `BUCKET.ENDPOINT/KEY`.
    pub path_style: bool,
    /// Longest time one call may take, retries included.
    pub timeout: Duration,
}

impl Default for BucketOptions {
    fn default() -> Self {
        BucketOptions {
            endpoint: None,
            region: None,
            path_style: true,
            timeout: Duration::from_secs(10),
        }
    }
}

/// One object at one version, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Object {
    /// Key relative to the library prefix (`asset.mp4`, `asset/v1.mp4`).
    pub rel: String,
    /// Size in bytes.
    pub size: u64,
    /// The version every read is conditional on: the ETag, or size and
    /// modification time where a server gives no ETag.
    pub etag: String,
    /// Last modification time.
    pub modified: SystemTime,
    /// Whether `etag` is a real ETag (reads are then `If-Match`).
    has_etag: bool,
}

/// A library root `s3://BUCKET/PREFIX`.
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    url: String,
    prefix: String,
    timeout: Duration,
    healthy: AtomicBool,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("url", &self.url).finish()
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async caller may not do.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A local read failure as the client's error.
fn io(e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "local file",
        source: Box::new(e),
    }
}

/// `s3://BUCKET/PREFIX` split into bucket and prefix (no slashes at its
/// ends); `None` for anything else.
pub fn parse_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, prefix.trim_matches('/')))
}

impl Bucket {
    /// Whether `root` names a bucket rather than a directory.
    pub fn is_url(root: &str) -> bool {
        root.starts_with("s3://")
    }

    /// A client for the library at `url` (`s3://BUCKET/PREFIX`).
    pub fn open(url: &str, options: &BucketOptions) -> Result<Self, Error> {
        let (bucket, prefix) = parse_url(url)
            .ok_or_else(|| Error::Config(format!("{url:?} is not s3://BUCKET[/PREFIX]")))?;
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_virtual_hosted_style_request(!options.path_style)
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: options.timeout,
                ..RetryConfig::default()
            })
            // The bound is `run`'s, one clock for the whole call: the
            // client's own timeouts are longer, so that a storage that
            // does not answer is always seen as such (a 504, not a 503).
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(options.timeout + Duration::from_secs(1))
                    .with_connect_timeout(options.timeout + Duration::from_secs(1)),
            );
        if let Some(e) = &options.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(r) = &options.region {
            b = b.with_region(r);
        }
        let endpoint = options
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT").ok());
        if endpoint.is_some_and(|e| e.starts_with("http://")) {
            b = b.with_allow_http(true);
        }
        let store = b.build().map_err(|e| Error::Config(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("objects")
            .enable_all()
            .build()
            .map_err(Error::Cache)?;
        Ok(Bucket {
            store: Arc::new(store),
            url: url.trim_end_matches('/').to_owned(),
            prefix: prefix.to_owned(),
            timeout: options.timeout,
            healthy: AtomicBool::new(true),
            runtime: Some(runtime),
        })
    }

    /// The library's URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key under the library's prefix that a catalog source names: a
    /// relative key as it is, or a full `s3://BUCKET/PREFIX/KEY` URL of
    /// this library; `None` for a URL of another bucket or prefix.
    pub fn key_of<'a>(&self, source: &'a str) -> Option<&'a str> {
        if !Self::is_url(source) {
            return Some(source);
        }
        source
            .strip_prefix(self.url.as_str())
            .and_then(|k| k.strip_prefix('/'))
            .filter(|k| !k.is_empty())
    }

    /// Whether the last call that reached the object storage succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn key(&self, rel: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn rel(&self, location: &Path) -> String {
        let full = location.as_ref();
        if self.prefix.is_empty() {
            full.to_owned()
        } else {
            full.strip_prefix(&self.prefix)
                .map(|r| r.trim_start_matches('/'))
                .unwrap_or(full)
                .to_owned()
        }
    }

    fn object(&self, m: ObjectMeta) -> Object {
        let modified = SystemTime::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(m.last_modified.timestamp_millis()).unwrap_or(0));
        let (etag, has_etag) = match m.e_tag {
            Some(e) => (e, true),
            None => (
                format!("{}-{}", m.size, m.last_modified.timestamp_millis()),
                false,
            ),
        };
        Object {
            rel: self.rel(&m.location),
            size: m.size,
            etag,
            modified,
            has_etag,
        }
    }

    /// Runs `fut` on the bucket's runtime, bounded by the timeout, and
    /// records whether the storage answered.
    fn run<T: Send + 'static>(
        &self,
        what: &str,
        fut: impl Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> Result<T, Error> {
        let Some(rt) = &self.runtime else {
            return Err(Error::Unavailable("the client is shut down".into()));
        };
        let limit = self.timeout;
        let task = rt.spawn(async move { tokio::time::timeout(limit, fut).await });
        let outcome = match futures::executor::block_on(task) {
            Err(e) => Err(Error::Unavailable(format!("{what}: {e}"))),
            Ok(Err(_)) => Err(Error::Timeout(limit)),
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(e))) => Err(match e {
                object_store::Error::NotFound { .. } => Error::NotFound(what.to_owned()),
                object_store::Error::Precondition { .. } => Error::Changed(what.to_owned()),
                e => Error::Unavailable(format!("{what}: {e}")),
            }),
        };
        match &outcome {
            Err(e) if e.is_unavailable() => self.healthy.store(false, Ordering::Relaxed),
            _ => self.healthy.store(true, Ordering::Relaxed),
        }
        outcome
    }

    /// The object at `rel`, if there is one.
    pub fn head(&self, rel: &str) -> Result<Option<Object>, Error> {
        let store = self.store.clone();
        let key = self.key(rel);
        match self.run(rel, async move { store.head(&key).await }) {
            Ok(m) => Ok(Some(self.object(m))),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The objects directly under directory `rel` (`""`: the root), and
    /// the names of the directories there.
    pub fn list(&self, rel: &str) -> Result<(Vec<Object>, Vec<String>), Error> {
        let store = self.store.clone();
        let dir = if rel.is_empty() {
            (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()))
        } else {
            Some(self.key(rel))
        };
        let listed = self.run(
            rel,
            async move { store.list_with_delimiter(dir.as_ref()).await },
        )?;
        let objects = listed.objects.into_iter().map(|m| self.object(m)).collect();
        let dirs = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        Ok((objects, dirs))
    }

    /// Bytes `range` of `object` at its listed version.
    pub fn get(&self, object: &Object, range: Range<u64>) -> Result<Bytes, Error> {
        let store = self.store.clone();
        let key = self.key(&object.rel);
        let want = range.end.saturating_sub(range.start);
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            if_match: object.has_etag.then(|| object.etag.clone()),
            ..GetOptions::default()
        };
        let (etag, bytes) = self.run(&object.rel, async move {
            let got = store.get_opts(&key, options).await?;
            let etag = got.meta.e_tag.clone();
            Ok((etag, got.bytes().await?))
        })?;
        // A server that ignores `If-Match` still names what it sent.
        let other = object.has_etag && etag.as_ref().is_some_and(|e| *e != object.etag);
        if other || bytes.len() as u64 != want {
            return Err(Error::Changed(object.rel.clone()));
        }
        Ok(bytes)
    }

    /// Uploads the local file `path` as `rel` (multipart above 64 MiB),
    /// allowing the timeout once per 16 MiB; the object appears whole or
    /// not at all.
    pub fn put_file(&self, rel: &str, path: &std::path::Path) -> Result<(), Error> {
        const PART: usize = 16 << 20;
        let size = std::fs::metadata(path)?.len();
        let store = self.store.clone();
        let key = self.key(rel);
        let path = path.to_owned();
        let limit = self.timeout * u32::try_from(1 + size / PART as u64).unwrap_or(u32::MAX);
        let Some(rt) = &self.runtime else {
            return Err(Error::Unavailable("the client is shut down".into()));
        };
        let task = rt.spawn(async move {
            let upload = async move {
                if size <= 4 * PART as u64 {
                    let bytes = tokio::fs::read(&path).await.map_err(io)?;
                    store.put(&key, bytes.into()).await.map(drop)
                } else {
                    use tokio::io::AsyncReadExt;
                    let mut file = tokio::fs::File::open(&path).await.map_err(io)?;
                    let upload = store.put_multipart(&key).await?;
                    let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, PART);
                    let mut buf = vec![0u8; PART];
                    loop {
                        let n = file.read(&mut buf).await.map_err(io)?;
                        if n == 0 {
                            break;
                        }
                        w.wait_for_capacity(2).await?;
                        w.write(&buf[..n]);
                    }
                    w.finish().await.map(drop)
                }
            };
            tokio::time::timeout(limit, upload).await
        });
        let outcome = match futures::executor::block_on(task) {
            Err(e) => Err(Error::Unavailable(format!("{rel}: {e}"))),
            Ok(Err(_)) => Err(Error::Timeout(limit)),
            Ok(Ok(r)) => r.map_err(|e| Error::Unavailable(format!("{rel}: {e}"))),
        };
        if let Err(e) = &outcome {
            if e.is_unavailable() {
                self.healthy.store(false, Ordering::Relaxed);
            }
        }
        outcome
    }

    /// Asks the storage for the library root's listing, to learn whether
    /// it answers again; returns [`Bucket::is_healthy`] after.
    pub fn probe(&self) -> bool {
        let store = self.store.clone();
        let dir = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
        let _ = self.run("probe", async move {
            store.list_with_delimiter(dir.as_ref()).await.map(drop)
        });
        self.is_healthy()
    }
}

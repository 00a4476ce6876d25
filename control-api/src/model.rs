//! The resources of the API: what is stored and what goes over the wire.
//!
//! Request bodies are parsed strictly (`deny_unknown_fields`) and then
//! validated with messages that name the field (`ladder.rungs[1].width`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;

/// `[A-Za-z0-9_-]{1,128}`: asset, ladder, stream and rung names, as in URLs.
pub fn is_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_name(field: &str, s: &str) -> Result<(), ApiError> {
    if is_name(s) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            "must be 1 to 128 of A-Z, a-z, 0-9, '_' and '-'",
        ))
    }
}

/// What a source file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Video renditions (and any audio the file holds).
    Video,
    /// Audio tracks.
    Audio,
    /// A WebVTT subtitle file.
    Subtitle,
}

/// One file of an asset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Path relative to the media root (no `..`, not absolute); with the
    /// library in a bucket, a key under its prefix or the full
    /// `s3://BUCKET/PREFIX/KEY` URL.
    pub path: String,
    /// Defaults from the file: `subtitle` for `.vtt`, `video` when the file
    /// has video, else `audio`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// BCP 47 language for tracks whose file says none (`und`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// A display label, kept with the asset for the platform's use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// `POST /assets`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAsset {
    /// The asset's name in URLs: `/vod/{id}/...`.
    pub id: String,
    /// A title for people.
    #[serde(default)]
    pub title: String,
    /// Anything the platform wants kept with the asset (a JSON object).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
    /// Whether playback needs a token.
    #[serde(default)]
    pub require_token: bool,
    /// The files, at least one.
    pub sources: Vec<SourceSpec>,
}

/// `PATCH /assets/{id}`: only the fields given change.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetPatch {
    /// New title.
    pub title: Option<String>,
    /// New metadata object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Whether playback needs a token.
    pub require_token: Option<bool>,
    /// New files (probed again).
    pub sources: Option<Vec<SourceSpec>>,
}

/// A track the probe found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrackInfo {
    /// Index into the asset's `sources`.
    pub source: usize,
    /// `video`, `audio` or `subtitle`.
    pub kind: String,
    /// RFC 6381 codec string (`avc1.64001f`, `mp4a.40.2`, `wvtt`).
    pub codec: String,
    /// Language from the file (`und` when none).
    pub language: String,
    /// Width in pixels (video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels (video).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Channels (audio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
    /// Sample rate in Hz (audio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Number of samples (frames) in the track.
    pub samples: u64,
}

/// An asset as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Asset {
    /// The asset's name in URLs.
    pub id: String,
    /// A title for people.
    pub title: String,
    /// The platform's metadata object.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Whether playback needs a token.
    pub require_token: bool,
    /// The files.
    pub sources: Vec<SourceSpec>,
    /// What the probe found in them.
    pub tracks: Vec<TrackInfo>,
    /// Longest track, in milliseconds.
    pub duration_ms: u64,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

impl NewAsset {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ApiError> {
        check_name("id", &self.id)?;
        if self.title.len() > 1024 {
            return Err(ApiError::invalid("title", "must be at most 1024 bytes"));
        }
        if let Some(m) = &self.metadata {
            check_metadata(m)?;
        }
        check_sources(&self.sources)
    }
}

impl AssetPatch {
    /// Checks every field given.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.title.as_ref().is_some_and(|t| t.len() > 1024) {
            return Err(ApiError::invalid("title", "must be at most 1024 bytes"));
        }
        if let Some(m) = &self.metadata {
            check_metadata(m)?;
        }
        if let Some(s) = &self.sources {
            check_sources(s)?;
        }
        Ok(())
    }
}

fn check_metadata(m: &Value) -> Result<(), ApiError> {
    if !m.is_object() {
        return Err(ApiError::invalid("metadata", "must be a JSON object"));
    }
    if m.to_string().len() > 64 * 1024 {
        return Err(ApiError::invalid(
            "metadata",
            "must be at most 64 KiB as JSON",
        ));
    }
    Ok(())
}

fn check_sources(sources: &[SourceSpec]) -> Result<(), ApiError> {
    if sources.is_empty() || sources.len() > 64 {
        return Err(ApiError::invalid("sources", "must hold 1 to 64 files"));
    }
    for (i, s) in sources.iter().enumerate() {
        let path = s.path.strip_prefix("s3://").unwrap_or(&s.path);
        if !is_relative_path(path) {
            return Err(ApiError::invalid(
                &format!("sources[{i}].path"),
                "must be a relative path under the media root (or an s3:// URL of the \
                 library's bucket), without '..'",
            ));
        }
        if let Some(l) = &s.language
            && !headwater_packager::is_language_tag(l)
        {
            return Err(ApiError::invalid(
                &format!("sources[{i}].language"),
                "must be a BCP 47 tag such as 'en' or 'pt-BR'",
            ));
        }
        if s.label.as_ref().is_some_and(|l| l.len() > 256) {
            return Err(ApiError::invalid(
                &format!("sources[{i}].label"),
                "must be at most 256 bytes",
            ));
        }
    }
    Ok(())
}

/// A path that stays inside the directory it is joined to.
pub fn is_relative_path(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 1024
        && !p.starts_with('/')
        && !p.contains('\0')
        && !p.contains('\\')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// One rung of a ladder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rung {
    /// The rendition's name (its file stem, and so its id in manifests).
    pub name: String,
    /// Width in pixels, even.
    pub width: u32,
    /// Height in pixels, even.
    pub height: u32,
    /// Video bit rate in kbit/s.
    pub video_bitrate_kbps: u32,
}

/// A named rendition ladder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ladder {
    /// The ladder's name.
    pub name: String,
    /// Video codec; `h264` (x264).
    #[serde(default = "default_codec")]
    pub codec: String,
    /// Frames per second of every rung.
    pub frame_rate: u32,
    /// Seconds between keyframes, the same in every rung so they align.
    pub keyframe_interval_secs: f64,
    /// AAC bit rate in kbit/s of the audio rendition.
    #[serde(default = "default_audio")]
    pub audio_bitrate_kbps: u32,
    /// The rungs, 1 to 10, no two alike.
    pub rungs: Vec<Rung>,
}

fn default_codec() -> String {
    "h264".into()
}

fn default_audio() -> u32 {
    128
}

impl Ladder {
    /// Checks every field and the rungs against each other.
    pub fn validate(&self) -> Result<(), ApiError> {
        check_name("name", &self.name)?;
        if self.codec != "h264" {
            return Err(ApiError::invalid("codec", "must be 'h264'"));
        }
        if !(1..=120).contains(&self.frame_rate) {
            return Err(ApiError::invalid("frame_rate", "must be 1 to 120"));
        }
        let k = self.keyframe_interval_secs;
        if !(k.is_finite() && (0.5..=10.0).contains(&k)) {
            return Err(ApiError::invalid(
                "keyframe_interval_secs",
                "must be between 0.5 and 10",
            ));
        }
        let frames = k * f64::from(self.frame_rate);
        if (frames - frames.round()).abs() > 1e-6 {
            return Err(ApiError::invalid(
                "keyframe_interval_secs",
                "times frame_rate must be a whole number of frames",
            ));
        }
        if !(32..=512).contains(&self.audio_bitrate_kbps) {
            return Err(ApiError::invalid("audio_bitrate_kbps", "must be 32 to 512"));
        }
        if self.rungs.is_empty() || self.rungs.len() > 10 {
            return Err(ApiError::invalid("rungs", "must hold 1 to 10 rungs"));
        }
        for (i, r) in self.rungs.iter().enumerate() {
            let field = |f: &str| format!("rungs[{i}].{f}");
            check_name(&field("name"), &r.name)?;
            if r.name == "audio" {
                return Err(ApiError::invalid(
                    &field("name"),
                    "'audio' is the audio rendition's name",
                ));
            }
            if !(16..=7680).contains(&r.width) || r.width % 2 != 0 {
                return Err(ApiError::invalid(
                    &field("width"),
                    "must be even, 16 to 7680",
                ));
            }
            if !(16..=4320).contains(&r.height) || r.height % 2 != 0 {
                return Err(ApiError::invalid(
                    &field("height"),
                    "must be even, 16 to 4320",
                ));
            }
            if !(50..=100_000).contains(&r.video_bitrate_kbps) {
                return Err(ApiError::invalid(
                    &field("video_bitrate_kbps"),
                    "must be 50 to 100000",
                ));
            }
            for (j, o) in self.rungs[..i].iter().enumerate() {
                if o.name == r.name {
                    return Err(ApiError::invalid(
                        &field("name"),
                        &format!("repeats rungs[{j}].name"),
                    ));
                }
                if (o.width, o.height, o.video_bitrate_kbps)
                    == (r.width, r.height, r.video_bitrate_kbps)
                {
                    return Err(ApiError::invalid(
                        &format!("rungs[{i}]"),
                        &format!("duplicates rungs[{j}]"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Frames between keyframes.
    pub fn keyframe_frames(&self) -> u32 {
        (self.keyframe_interval_secs * f64::from(self.frame_rate)).round() as u32
    }
}

/// `POST /streams`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStream {
    /// The stream's name: `rtmp://HOST/live/{name}`, `/live/{name}/...`.
    pub name: String,
    /// The publish key; generated when absent.
    #[serde(default)]
    pub publish_key: Option<String>,
    /// A ladder to transcode into; pass-through when absent.
    #[serde(default)]
    pub ladder: Option<String>,
    /// Seconds of DVR window (default 3600).
    #[serde(default = "default_dvr")]
    pub dvr_window_secs: u64,
    /// Whether the stream is recorded as a VOD asset.
    #[serde(default)]
    pub record: bool,
    /// Whether playback needs a token.
    #[serde(default)]
    pub require_token: bool,
}

fn default_dvr() -> u64 {
    3600
}

impl NewStream {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ApiError> {
        check_name("name", &self.name)?;
        if let Some(k) = &self.publish_key {
            check_publish_key(k)?;
        }
        if let Some(l) = &self.ladder {
            check_name("ladder", l)?;
        }
        if !(10..=7 * 24 * 3600).contains(&self.dvr_window_secs) {
            return Err(ApiError::invalid("dvr_window_secs", "must be 10 to 604800"));
        }
        Ok(())
    }
}

/// A publish key: 16 to 128 URL- and stream-id-safe characters.
pub fn check_publish_key(k: &str) -> Result<(), ApiError> {
    if (16..=128).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "publish_key",
            "must be 16 to 128 of A-Z, a-z, 0-9, '_' and '-'",
        ))
    }
}

/// A live stream record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Stream {
    /// The stream's name.
    pub name: String,
    /// The key a publisher must present.
    pub publish_key: String,
    /// The ladder it is transcoded into, if any.
    pub ladder: Option<String>,
    /// Seconds of DVR window.
    pub dvr_window_secs: u64,
    /// Whether it is recorded.
    pub record: bool,
    /// Whether playback needs a token.
    pub require_token: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// `POST /tokens`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The asset the token opens (or give `stream`).
    #[serde(default)]
    pub asset: Option<String>,
    /// The live stream the token opens (or give `asset`).
    #[serde(default)]
    pub stream: Option<String>,
    /// Seconds until it expires.
    pub ttl_seconds: u64,
    /// Bind the token to this viewer address.
    #[serde(default)]
    pub client_ip: Option<String>,
}

/// A minted token and the URLs that carry it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The token (`?token=` on any URL of the asset or stream).
    pub token: String,
    /// Unix seconds after which it is refused.
    pub expires: u64,
    /// Path of the HLS multivariant playlist, with the token.
    pub hls: String,
    /// Path of the DASH MPD, with the token.
    pub dash: String,
    /// The signing key's id.
    pub key_id: String,
}

/// A signing key, without its secret.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    /// Key id (the first field of a token).
    pub id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// When it was retired (tokens it signed are refused from then on).
    pub retired_at: Option<i64>,
    /// Whether new tokens are signed with it.
    pub signing: bool,
}

/// `POST /assets/{id}/transcode`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TranscodeRequest {
    /// The ladder's name.
    pub ladder: String,
}

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a free slot.
    Queued,
    /// The pipeline runs.
    Running,
    /// Finished; the renditions are the asset's sources.
    Succeeded,
    /// Stopped with an error (`error` says why).
    Failed,
}

impl JobState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            _ => return None,
        })
    }
}

/// A transcode job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// The asset being transcoded.
    pub asset: String,
    /// The ladder.
    pub ladder: String,
    /// Where it is.
    pub state: JobState,
    /// 0 to 100.
    pub percent: u32,
    /// Why it failed.
    pub error: Option<String>,
    /// The files it made, relative to the media root, once it succeeded.
    pub outputs: Vec<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// A finished upload.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadResult {
    /// Where the file is, relative to the media root.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of its content.
    pub sha256: String,
    /// The asset, created or updated with the file as its one source.
    pub asset: Asset,
}

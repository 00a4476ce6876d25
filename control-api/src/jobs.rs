//! Transcode jobs: one GStreamer pipeline per job that decodes the source
//! once, scales it to every rung of a ladder, encodes each with x264 with
//! keyframes at the same frames (a fixed GOP, no scene-cut keyframes, from
//! one frame-rate-converted stream, so they align across rungs), encodes
//! the audio once to AAC, and muxes every rendition with `mp4mux`.
//!
//! The pipeline runs as a `gst-launch-1.0` child process under
//! `setpriv --pdeathsig KILL`: a crashing pipeline cannot take the server
//! with it, and a server that dies takes its pipelines with it. Progress
//! comes from `progressreport`. When the pipeline succeeds, the outputs are
//! probed and become the asset's sources. A job that was queued or running
//! when the server stopped is marked failed at the next start.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::ChildStdout;
use tokio::sync::Semaphore;

use headwater_packager::Limits;

use crate::catalog::SharedCatalog;
use crate::db::{Db, now_ms};
use crate::error::ApiError;
use crate::model::{Asset, Job, JobState, Ladder, Role, SourceSpec};
use crate::probe::Probed;

/// What a job needs of the control plane (the API's state, without the
/// API): the catalog database and view, the media root, the pipeline
/// program, probing bounds.
#[derive(Clone)]
pub struct JobContext {
    /// The catalog database.
    pub db: Db,
    /// The data plane's view, refreshed when a job changes an asset.
    pub catalog: SharedCatalog,
    /// The media root the outputs go under.
    pub root: crate::probe::Root,
    /// The `gst-launch-1.0` to run.
    pub gst_launch: String,
    /// Bounds for probing the outputs.
    pub limits: Limits,
}

impl JobContext {
    async fn refresh(&self) {
        if let Err(e) = crate::catalog::refresh(&self.db, &self.catalog).await {
            tracing::warn!(error = %e, "catalog refresh after a job failed; the poller retries");
        }
    }
}

/// Where an asset's uploaded source and transcode outputs live: under the
/// media root, in `.headwater/assets/{id}/` (never a directory-mode asset).
pub fn asset_dir(root: &Path, id: &str) -> PathBuf {
    root.join(".headwater").join("assets").join(id)
}

/// The job runner: a bound on pipelines running at once.
#[derive(Clone)]
pub struct Jobs {
    slots: Arc<Semaphore>,
}

impl Jobs {
    /// At most `max` pipelines at once.
    pub fn new(max: usize) -> Self {
        Jobs {
            slots: Arc::new(Semaphore::new(max.max(1))),
        }
    }

    /// Records a queued job and starts it when a slot is free.
    pub async fn start(
        &self,
        state: &JobContext,
        asset: Asset,
        ladder: Ladder,
    ) -> Result<Job, ApiError> {
        let input = asset
            .sources
            .iter()
            .enumerate()
            .find(|(i, s)| {
                s.role != Some(Role::Subtitle)
                    && asset
                        .tracks
                        .iter()
                        .any(|t| t.source == *i && t.kind == "video")
            })
            .map(|(_, s)| s.path.clone())
            .ok_or_else(|| ApiError::media(format!("asset '{}' has no video source", asset.id)))?;
        let has_audio = asset.tracks.iter().any(|t| t.kind == "audio");
        let audio_input = asset
            .sources
            .iter()
            .enumerate()
            .find(|(i, _)| {
                asset
                    .tracks
                    .iter()
                    .any(|t| t.source == *i && t.kind == "audio")
            })
            .map(|(_, s)| s.path.clone());
        let mut id_bytes = [0u8; 8];
        getrandom::fill(&mut id_bytes)
            .map_err(|e| ApiError::from(crate::Error::Random(e.to_string())))?;
        let now = now_ms();
        let job = Job {
            id: format!(
                "j{}",
                id_bytes
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ),
            asset: asset.id.clone(),
            ladder: ladder.name.clone(),
            state: JobState::Queued,
            percent: 0,
            error: None,
            outputs: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        match state.db.insert_job(&job).await {
            Ok(()) => {}
            Err(crate::db::WriteError::Other(e)) => return Err(e.into()),
            Err(crate::db::WriteError::Conflict) => {
                return Err(ApiError::conflict("job id collision; try again"));
            }
        }
        let plan = Plan {
            input,
            audio: if has_audio { audio_input } else { None },
            ladder,
        };
        let slots = self.slots.clone();
        let st = state.clone();
        let mut running = job.clone();
        tokio::spawn(async move {
            let Ok(_permit) = slots.acquire_owned().await else {
                return;
            };
            run(&st, &mut running, plan).await;
        });
        Ok(job)
    }
}

struct Plan {
    input: String,
    audio: Option<String>,
    ladder: Ladder,
}

async fn run(state: &JobContext, job: &mut Job, plan: Plan) {
    job.state = JobState::Running;
    if let Err(e) = state.db.update_job(job).await {
        tracing::error!(job = %job.id, error = %e, "cannot record job state");
    }
    tracing::info!(job = %job.id, asset = %job.asset, ladder = %job.ladder, "transcode started");
    let started = Instant::now();
    let outcome = transcode(state, job, &plan).await;
    match outcome {
        Ok(()) => {
            job.state = JobState::Succeeded;
            job.percent = 100;
            tracing::info!(job = %job.id, secs = started.elapsed().as_secs_f64(), "transcode done");
        }
        Err(why) => {
            job.state = JobState::Failed;
            tracing::warn!(job = %job.id, error = %why, "transcode failed");
            job.error = Some(why);
        }
    }
    if let Err(e) = state.db.update_job(job).await {
        tracing::error!(job = %job.id, error = %e, "cannot record job outcome");
    }
}

/// Appends the space-separated words of `s`.
fn words(a: &mut Vec<String>, s: &str) {
    a.extend(s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned));
}

/// The `gst-launch-1.0` arguments of a plan.
pub fn pipeline(
    root: &Path,
    input: &str,
    audio: Option<&str>,
    ladder: &Ladder,
    out: &Path,
) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let loc = |p: &Path| format!("location={}", p.display());
    let k = ladder.keyframe_frames();
    let big_queue = "queue max-size-buffers=0 max-size-time=0 max-size-bytes=67108864";
    words(&mut a, "-e");
    words(
        &mut a,
        &format!("filesrc {} ! qtdemux name=demux", loc(&root.join(input))),
    );
    words(
        &mut a,
        &format!(
            "demux.video_0 ! {big_queue} ! decodebin ! videoconvert ! videorate \
             ! video/x-raw,framerate={}/1 ! progressreport update-freq=1 ! tee name=t",
            ladder.frame_rate
        ),
    );
    for r in &ladder.rungs {
        words(
            &mut a,
            &format!(
                "t. ! queue ! videoscale ! video/x-raw,width={},height={},pixel-aspect-ratio=1/1 \
                 ! x264enc bitrate={} speed-preset=veryfast key-int-max={k}",
                r.width, r.height, r.video_bitrate_kbps
            ),
        );
        // One argument: gst-launch reads it as one property value.
        a.push(format!(
            "option-string=keyint={k}:min-keyint={k}:scenecut=0"
        ));
        words(
            &mut a,
            &format!(
                "! h264parse ! mp4mux ! filesink {}",
                loc(&out.join(format!("{}.mp4", r.name)))
            ),
        );
    }
    if let Some(audio) = audio {
        let src = if audio == input {
            "demux.audio_0"
        } else {
            words(
                &mut a,
                &format!("filesrc {} ! qtdemux name=ademux", loc(&root.join(audio))),
            );
            "ademux.audio_0"
        };
        words(
            &mut a,
            &format!(
                "{src} ! {big_queue} ! decodebin ! audioconvert ! audioresample \
                 ! avenc_aac bitrate={} ! aacparse ! mp4mux ! filesink {}",
                ladder.audio_bitrate_kbps * 1000,
                loc(&out.join("audio.m4a"))
            ),
        );
    }
    a
}

/// Runs a job's pipeline into `{asset dir}/{job id}/`; when it succeeds,
/// its outputs are probed and become the asset's sources.
async fn transcode(state: &JobContext, job: &mut Job, plan: &Plan) -> Result<(), String> {
    let crate::probe::Root::Dir(root) = &state.root else {
        return Err("transcodes need a media directory".into());
    };
    let root = root.path().to_owned();
    let out: PathBuf = asset_dir(&root, &job.asset).join(&job.id);
    tokio::fs::create_dir_all(&out)
        .await
        .map_err(|e| format!("creating {}: {e}", out.display()))?;
    let args = pipeline(
        &root,
        &plan.input,
        plan.audio.as_deref(),
        &plan.ladder,
        &out,
    );
    run_pipeline(state, job, &args).await?;
    let sources = output_sources(job, plan);
    let probed = probe_outputs(state, &sources).await?;
    adopt_outputs(state, job, sources, probed).await
}

/// Runs `gst-launch-1.0 ARGS` to its end, following its progress; `Err`
/// names its exit status and its last errors and warnings.
async fn run_pipeline(state: &JobContext, job: &mut Job, args: &[String]) -> Result<(), String> {
    let mut child = tokio::process::Command::new("setpriv")
        .arg("--pdeathsig")
        .arg("KILL")
        .arg(&state.gst_launch)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", state.gst_launch))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let err_task = tokio::spawn(async move {
        let mut s = String::new();
        let _ = (&mut stderr).take(64 * 1024).read_to_string(&mut s).await;
        s
    });
    let tail = follow_progress(state, job, stdout).await;
    let status = child
        .wait()
        .await
        .map_err(|e| format!("waiting for the pipeline: {e}"))?;
    let stderr_text = err_task.await.unwrap_or_default();
    if !status.success() {
        return Err(failure(status, &tail, &stderr_text));
    }
    Ok(())
}

/// Reads the pipeline's stdout to its end: `progressreport`'s percentages
/// go into the job (written to the database at most every 500 ms), and the
/// last 8 lines with `ERROR` or `WARNING` are returned.
async fn follow_progress(state: &JobContext, job: &mut Job, stdout: ChildStdout) -> Vec<String> {
    let mut lines = BufReader::new(stdout).lines();
    let mut last_write = Instant::now();
    let mut tail: Vec<String> = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(p) = percent(&line) {
            // 99 at most until the files are checked.
            let p = p.min(99);
            if p != job.percent && last_write.elapsed() >= Duration::from_millis(500) {
                job.percent = p;
                last_write = Instant::now();
                let _ = state.db.update_job(job).await;
            }
            job.percent = p;
        } else if line.contains("ERROR") || line.contains("WARNING") {
            tail.push(line);
            if tail.len() > 8 {
                tail.remove(0);
            }
        }
    }
    tail
}

/// Why a pipeline failed: its exit status, the errors and warnings it
/// printed, and the last 4 lines of its stderr.
fn failure(status: ExitStatus, tail: &[String], stderr: &str) -> String {
    let mut why = format!("the pipeline exited with {status}");
    let err_lines: Vec<&str> = stderr.lines().rev().take(4).collect();
    for l in tail
        .iter()
        .map(String::as_str)
        .chain(err_lines.into_iter().rev())
    {
        why.push_str("; ");
        why.push_str(l.trim());
    }
    why
}

/// The sources a finished job made: one video file per rung, then the audio.
fn output_sources(job: &Job, plan: &Plan) -> Vec<SourceSpec> {
    let rel = |name: &str| format!(".headwater/assets/{}/{}/{name}", job.asset, job.id);
    let mut sources: Vec<SourceSpec> = plan
        .ladder
        .rungs
        .iter()
        .map(|r| SourceSpec {
            path: rel(&format!("{}.mp4", r.name)),
            role: Some(Role::Video),
            language: None,
            label: Some(r.name.clone()),
        })
        .collect();
    if plan.audio.is_some() {
        sources.push(SourceSpec {
            path: rel("audio.m4a"),
            role: Some(Role::Audio),
            language: None,
            label: Some("audio".into()),
        });
    }
    sources
}

/// Probes the outputs on the blocking pool; `Err` when the packager cannot use them.
async fn probe_outputs(state: &JobContext, sources: &[SourceSpec]) -> Result<Probed, String> {
    let root = state.root.clone();
    let s = sources.to_vec();
    let limits = state.limits.clone();
    tokio::task::spawn_blocking(move || crate::probe::probe(&root, &s, &limits))
        .await
        .map_err(|e| format!("probe task: {e}"))?
        .map_err(|e| format!("the pipeline's output is unusable: {e}"))
}

/// Makes the outputs the asset's sources (and the job's outputs), and
/// refreshes the catalog.
async fn adopt_outputs(
    state: &JobContext,
    job: &mut Job,
    sources: Vec<SourceSpec>,
    probed: Probed,
) -> Result<(), String> {
    let mut asset = state
        .db
        .asset(&job.asset)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("asset '{}' was deleted during the job", job.asset))?;
    asset.sources = sources.clone();
    asset.tracks = probed.tracks;
    asset.duration_ms = probed.duration_ms;
    asset.updated_at = now_ms().max(asset.updated_at + 1);
    state
        .db
        .update_asset(&asset)
        .await
        .map_err(|e| e.to_string())?;
    state.refresh().await;
    job.outputs = sources.into_iter().map(|s| s.path).collect();
    Ok(())
}

/// The percentage in a `progressreport` line: `... (42.0 %)`.
fn percent(line: &str) -> Option<u32> {
    let end = line.rfind(" %)")?;
    let start = line[..end].rfind('(')? + 1;
    let v: f64 = line[start..end].trim().parse().ok()?;
    v.is_finite().then(|| v.clamp(0.0, 100.0) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines() {
        assert_eq!(
            percent("progressreport0 (00:00:02): 2 / 10 seconds (20.0 %)"),
            Some(20)
        );
        assert_eq!(
            percent("progressreport0 (00:00:10): 10 / 10 seconds (100.0 %)"),
            Some(100)
        );
        assert_eq!(percent("Setting pipeline to PLAYING ..."), None);
        assert_eq!(percent("x (nan %)"), None);
    }
}

//! DASH discovery (ISO/IEC 23009-1): every Representation of every Period → resources.
//!
//! Segment addressing, in the order the standard gives precedence (§5.3.9):
//! - `SegmentTemplate` (§5.3.9.4), merged from Period, AdaptationSet and Representation
//!   (the most specific attribute wins), with a `SegmentTimeline` (§5.3.9.6: `@t`, `@d`,
//!   `@r`, `@r="-1"` repeating up to the next `S@t` or the period's end) or with
//!   `@duration` (segment count from the period's duration or `@endNumber`);
//! - `SegmentList` (§5.3.9.3) with `SegmentURL@media`/`@mediaRange`;
//! - otherwise `SegmentBase` or a bare `BaseURL`: one single-file resource, fetched whole.
//!
//! `BaseURL` is resolved at the MPD, Period, AdaptationSet and Representation levels (the
//! first of each, §5.6); relative paths, `../` included, go through `Url::join`.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use dash_mpd_core::{
    AdaptationSet, BaseURL, Period, Representation, SegmentTemplate, SegmentTimeline,
};
use url::Url;

use super::template::{Vars, expand};
use crate::catalog::{ByteRange, Catalog, Kind, Rendition, Resource, TrackKind};

/// Most segments one representation may list (a bound on hostile or broken MPDs).
const MAX_SEGMENTS: u64 = 1_000_000;

/// What a Representation's segments are resolved against.
struct RepContext<'a> {
    base: &'a Url,
    rep_id: &'a str,
    bandwidth: u64,
    /// Period duration in seconds, when the MPD says.
    period_duration: Option<f64>,
    rendition: usize,
}

/// Adds every representation of the MPD `text` (fetched from `url`) to `catalog`.
pub(crate) fn discover(catalog: &mut Catalog, url: &Url, text: &str) -> anyhow::Result<()> {
    let mpd = dash_mpd_core::parse(text).map_err(|e| anyhow!("not a valid MPD: {e}"))?;
    let base = join_first(url, &mpd.base_url)?;
    let total = mpd.mediaPresentationDuration.map(secs);
    let multi = mpd.periods.len() > 1;
    let mut next_start = 0.0;
    for (pi, period) in mpd.periods.iter().enumerate() {
        let start = period.start.map(secs).unwrap_or(next_start);
        let duration = period
            .duration
            .map(secs)
            .or_else(|| {
                let next = mpd.periods.get(pi + 1)?.start?;
                Some(secs(next) - start)
            })
            .or_else(|| total.map(|t| t - start))
            .filter(|d| *d > 0.0);
        next_start = start + duration.unwrap_or(0.0);
        let period_base = join_first(&base, &period.BaseURL)?;
        for (ai, set) in period.adaptations.iter().enumerate() {
            // Trick-mode sets (DASH-IF IOP §3.2.9) are not fetched in
            // normal playback, as HLS I-frame playlists are not.
            if set
                .essential_property
                .iter()
                .any(|p| p.schemeIdUri == "http://dashif.org/guidelines/trickmode")
            {
                continue;
            }
            let set_base = join_first(&period_base, &set.BaseURL)?;
            for (ri, rep) in set.representations.iter().enumerate() {
                let rep_base = join_first(&set_base, &rep.BaseURL)?;
                let rep_id = rep.id.clone().unwrap_or_else(|| format!("{ai}-{ri}"));
                let rendition = catalog.add_rendition(Rendition {
                    id: if multi {
                        format!("p{pi}-{rep_id}")
                    } else {
                        rep_id.clone()
                    },
                    kind: track_kind(set, rep),
                    bandwidth: rep.bandwidth.unwrap_or(0),
                    playlist: None,
                    init: None,
                    segments: Vec::new(),
                });
                let cx = RepContext {
                    base: &rep_base,
                    rep_id: &rep_id,
                    bandwidth: rep.bandwidth.unwrap_or(0),
                    period_duration: duration,
                    rendition,
                };
                representation(catalog, &cx, period, set, rep)
                    .with_context(|| format!("Representation `{rep_id}`"))?;
            }
        }
    }
    if catalog.renditions.is_empty() {
        bail!("the MPD has no Representation");
    }
    Ok(())
}

/// Adds the resources of one representation.
fn representation(
    catalog: &mut Catalog,
    cx: &RepContext<'_>,
    period: &Period,
    set: &AdaptationSet,
    rep: &Representation,
) -> anyhow::Result<()> {
    let templates = [
        rep.SegmentTemplate.as_ref(),
        set.SegmentTemplate.as_ref(),
        period.SegmentTemplate.as_ref(),
    ];
    if templates.iter().any(Option::is_some) {
        return template(catalog, cx, &templates);
    }
    let list = rep
        .SegmentList
        .as_ref()
        .or(set.SegmentList.as_ref())
        .or(period.SegmentList.as_ref());
    if let Some(list) = list {
        return segment_list(catalog, cx, list);
    }
    // SegmentBase or nothing: the representation is one file, fetched whole.
    add_segment(
        catalog,
        cx,
        cx.base.clone(),
        None,
        cx.period_duration.unwrap_or(0.0),
    );
    Ok(())
}

/// `SegmentTemplate` addressing.
fn template(
    catalog: &mut Catalog,
    cx: &RepContext<'_>,
    levels: &[Option<&SegmentTemplate>],
) -> anyhow::Result<()> {
    let pick =
        |f: &dyn Fn(&SegmentTemplate) -> Option<u64>| levels.iter().flatten().find_map(|t| f(t));
    let timescale = pick(&|t| t.timescale).unwrap_or(1).max(1);
    let start_number = pick(&|t| t.startNumber).unwrap_or(1);
    let end_number = pick(&|t| t.endNumber);
    let pto = pick(&|t| t.presentationTimeOffset).unwrap_or(0);
    let media = levels
        .iter()
        .flatten()
        .find_map(|t| t.media.as_deref())
        .context("SegmentTemplate without @media")?;
    let timeline = levels
        .iter()
        .flatten()
        .find_map(|t| t.SegmentTimeline.as_ref());
    let duration = levels.iter().flatten().find_map(|t| t.duration);
    let vars = Vars {
        representation_id: cx.rep_id,
        bandwidth: cx.bandwidth,
        number: None,
        time: None,
    };

    let init = levels.iter().flatten().find_map(|t| {
        t.initialization.clone().map(|u| (u, None)).or_else(|| {
            let i = t.Initialization.as_ref()?;
            Some((i.sourceURL.clone()?, i.range.clone()))
        })
    });
    if let Some((init, range)) = init {
        let url = join(cx.base, &expand(&init, &vars)?)?;
        let range = range.as_deref().map(ByteRange::parse_dash).transpose()?;
        add_init(catalog, cx, url, range);
    }

    let period_end = cx
        .period_duration
        .map(|d| pto + (d * timescale as f64).round() as u64);
    let segments = if let Some(timeline) = timeline {
        timeline_segments(timeline, start_number, period_end)?
    } else {
        let d = duration.context("SegmentTemplate with neither SegmentTimeline nor @duration")?;
        if d <= 0.0 {
            bail!("SegmentTemplate@duration must be positive");
        }
        let count = match (end_number, cx.period_duration) {
            (Some(end), _) => end.saturating_sub(start_number) + 1,
            (None, Some(p)) => ((p * timescale as f64) / d - 1e-6).ceil().max(0.0) as u64,
            (None, None) => bail!("@duration addressing needs a period duration"),
        };
        if count > MAX_SEGMENTS {
            bail!("{count} segments is more than the limit of {MAX_SEGMENTS}");
        }
        (0..count)
            .map(|k| {
                let t = pto + (k as f64 * d).round() as u64;
                let mut len = d.round() as u64;
                if let Some(end) = period_end {
                    len = len.min(end.saturating_sub(t)).max(1);
                }
                (start_number + k, t, len)
            })
            .collect()
    };
    for (number, time, d) in segments {
        let path = expand(
            media,
            &Vars {
                number: Some(number),
                time: Some(time),
                ..vars
            },
        )?;
        let url = join(cx.base, &path)?;
        add_segment(catalog, cx, url, None, d as f64 / timescale as f64);
    }
    Ok(())
}

/// Expands a `SegmentTimeline` into `(number, time, duration)` triples.
pub(crate) fn timeline_segments(
    timeline: &SegmentTimeline,
    start_number: u64,
    period_end: Option<u64>,
) -> anyhow::Result<Vec<(u64, u64, u64)>> {
    let mut out = Vec::new();
    let mut t = 0u64;
    let mut number = start_number;
    for (i, s) in timeline.segments.iter().enumerate() {
        if let Some(start) = s.t {
            t = start;
        }
        if let Some(n) = s.n {
            number = n;
        }
        if s.d == 0 {
            bail!("SegmentTimeline S@d is 0");
        }
        let repeats = match s.r {
            None => 0,
            Some(r) if r >= 0 => r as u64,
            Some(_) => {
                let end = timeline
                    .segments
                    .get(i + 1)
                    .and_then(|next| next.t)
                    .or(period_end)
                    .context("S@r=-1 with no next S@t and no period end")?;
                end.saturating_sub(t).div_ceil(s.d).saturating_sub(1)
            }
        };
        if out.len() as u64 + repeats >= MAX_SEGMENTS {
            bail!("SegmentTimeline lists more than {MAX_SEGMENTS} segments");
        }
        for _ in 0..=repeats {
            out.push((number, t, s.d));
            t += s.d;
            number += 1;
        }
    }
    Ok(out)
}

/// `SegmentList` addressing.
fn segment_list(
    catalog: &mut Catalog,
    cx: &RepContext<'_>,
    list: &dash_mpd_core::SegmentList,
) -> anyhow::Result<()> {
    let timescale = list.timescale.unwrap_or(1).max(1) as f64;
    if let Some(init) = &list.Initialization {
        let url = match &init.sourceURL {
            Some(u) => join(cx.base, u)?,
            None => cx.base.clone(),
        };
        let range = init
            .range
            .as_deref()
            .map(ByteRange::parse_dash)
            .transpose()?;
        add_init(catalog, cx, url, range);
    }
    let durations: Vec<f64> = match (&list.SegmentTimeline, list.duration) {
        (Some(tl), _) => timeline_segments(tl, 1, None)?
            .into_iter()
            .map(|(_, _, d)| d as f64 / timescale)
            .collect(),
        (None, Some(d)) => vec![d as f64 / timescale; list.segment_urls.len()],
        (None, None) => {
            let each = cx.period_duration.unwrap_or(0.0) / list.segment_urls.len().max(1) as f64;
            vec![each; list.segment_urls.len()]
        }
    };
    for (k, s) in list.segment_urls.iter().enumerate() {
        let url = match &s.media {
            Some(u) => join(cx.base, u)?,
            None => cx.base.clone(),
        };
        let range = s
            .mediaRange
            .as_deref()
            .map(ByteRange::parse_dash)
            .transpose()?;
        add_segment(
            catalog,
            cx,
            url,
            range,
            durations.get(k).copied().unwrap_or(0.0),
        );
    }
    if list.segment_urls.is_empty() {
        bail!("SegmentList without SegmentURL");
    }
    Ok(())
}

fn add_init(catalog: &mut Catalog, cx: &RepContext<'_>, url: Url, range: Option<ByteRange>) {
    let index = catalog.add(Resource {
        url,
        range,
        kind: Kind::Init,
        rendition: Some(cx.rendition),
        duration: 0.0,
    });
    catalog.renditions[cx.rendition].init = Some(index);
}

fn add_segment(
    catalog: &mut Catalog,
    cx: &RepContext<'_>,
    url: Url,
    range: Option<ByteRange>,
    duration: f64,
) {
    let index = catalog.add(Resource {
        url,
        range,
        kind: Kind::Segment,
        rendition: Some(cx.rendition),
        duration,
    });
    catalog.renditions[cx.rendition].segments.push(index);
}

/// The first `BaseURL` of a level resolved against `base` (or `base` itself).
fn join_first(base: &Url, urls: &[BaseURL]) -> anyhow::Result<Url> {
    match urls.first() {
        Some(b) if !b.base.trim().is_empty() => join(base, b.base.trim()),
        _ => Ok(base.clone()),
    }
}

fn join(base: &Url, relative: &str) -> anyhow::Result<Url> {
    base.join(relative)
        .with_context(|| format!("resolving `{relative}` against {base}"))
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Video, audio or other, from `@contentType`, `@mimeType` or `@codecs`.
fn track_kind(set: &AdaptationSet, rep: &Representation) -> TrackKind {
    let declared = [
        rep.contentType.as_deref(),
        rep.mimeType.as_deref(),
        set.contentType.as_deref(),
        set.mimeType.as_deref(),
    ];
    for d in declared.into_iter().flatten() {
        if d.starts_with("video") {
            return TrackKind::Video;
        }
        if d.starts_with("audio") {
            return TrackKind::Audio;
        }
        if d.starts_with("text") || d.starts_with("application") || d.starts_with("image") {
            return TrackKind::Other;
        }
    }
    let codecs = rep
        .codecs
        .as_deref()
        .or(set.codecs.as_deref())
        .unwrap_or("");
    if ["avc", "hvc", "hev", "vp0", "vp8", "vp9", "av01"]
        .iter()
        .any(|c| codecs.starts_with(c))
    {
        TrackKind::Video
    } else if ["mp4a", "ac-3", "ec-3", "opus", "flac"]
        .iter()
        .any(|c| codecs.starts_with(c))
    {
        TrackKind::Audio
    } else {
        TrackKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discover_text(text: &str, url: &str) -> Catalog {
        let url = Url::parse(url).unwrap();
        let mut catalog = Catalog::new(url.clone());
        discover(&mut catalog, &url, text).unwrap();
        catalog
    }

    fn paths(catalog: &Catalog) -> Vec<String> {
        catalog.resources[1..]
            .iter()
            .map(|r| match r.range {
                Some(b) => format!("{} {}", r.url.path(), b),
                None => r.url.path().to_owned(),
            })
            .collect()
    }

    #[test]
    fn timeline_with_repeats_at_adaptation_set_level() {
        let mpd = r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT10S">
  <Period id="0" start="PT0S">
    <AdaptationSet contentType="video" mimeType="video/mp4">
      <SegmentTemplate timescale="1000" initialization="../cmaf/$RepresentationID$/init.mp4"
          media="../cmaf/$RepresentationID$/$Number$.m4s" startNumber="1">
        <SegmentTimeline><S t="0" d="4000" r="1"/><S d="2000"/></SegmentTimeline>
      </SegmentTemplate>
      <Representation id="v1" bandwidth="300000"/>
      <Representation id="v2" bandwidth="900000"/>
    </AdaptationSet>
  </Period>
</MPD>"#;
        let c = discover_text(mpd, "http://h/vod/demo/dash/manifest.mpd");
        assert_eq!(
            paths(&c),
            [
                "/vod/demo/cmaf/v1/init.mp4",
                "/vod/demo/cmaf/v1/1.m4s",
                "/vod/demo/cmaf/v1/2.m4s",
                "/vod/demo/cmaf/v1/3.m4s",
                "/vod/demo/cmaf/v2/init.mp4",
                "/vod/demo/cmaf/v2/1.m4s",
                "/vod/demo/cmaf/v2/2.m4s",
                "/vod/demo/cmaf/v2/3.m4s",
            ]
        );
        let durations: Vec<f64> = c.renditions[0]
            .segments
            .iter()
            .map(|&i| c.resources[i].duration)
            .collect();
        assert_eq!(durations, [4.0, 4.0, 2.0]);
        assert_eq!(c.renditions[1].kind, TrackKind::Video);
        assert_eq!(c.renditions[1].bandwidth, 900_000);
    }

    #[test]
    fn time_addressing_and_open_repeat() {
        let mpd = r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" mediaPresentationDuration="PT9S">
  <BaseURL>http://h/media/</BaseURL>
  <Period>
    <AdaptationSet mimeType="audio/mp4">
      <BaseURL>audio/</BaseURL>
      <Representation id="a" bandwidth="64000">
        <SegmentTemplate timescale="10" media="$RepresentationID$-$Time%06d$.m4s" initialization="a-init.mp4">
          <SegmentTimeline><S t="0" d="20" r="-1"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>"#;
        let c = discover_text(mpd, "http://h/x/manifest.mpd");
        assert_eq!(
            paths(&c),
            [
                "/media/audio/a-init.mp4",
                "/media/audio/a-000000.m4s",
                "/media/audio/a-000020.m4s",
                "/media/audio/a-000040.m4s",
                "/media/audio/a-000060.m4s",
                "/media/audio/a-000080.m4s",
            ]
        );
        assert_eq!(c.renditions[0].kind, TrackKind::Audio);
    }

    #[test]
    fn duration_addressing_list_and_single_file() {
        let mpd = r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" mediaPresentationDuration="PT10S">
  <Period>
    <AdaptationSet contentType="video">
      <Representation id="tpl" bandwidth="1000">
        <SegmentTemplate timescale="90000" duration="360000" startNumber="0"
            media="tpl/seg-$Number%03d$.m4s" initialization="tpl/init.mp4"/>
      </Representation>
      <Representation id="list" bandwidth="2000">
        <BaseURL>list/whole.mp4</BaseURL>
        <SegmentList timescale="1" duration="5">
          <Initialization range="0-99"/>
          <SegmentURL mediaRange="100-599"/>
          <SegmentURL media="../other.m4s"/>
        </SegmentList>
      </Representation>
      <Representation id="single" bandwidth="3000">
        <BaseURL>../single.mp4</BaseURL>
        <SegmentBase indexRange="800-900"><Initialization range="0-799"/></SegmentBase>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>"#;
        let c = discover_text(mpd, "http://h/v/d/manifest.mpd");
        assert_eq!(
            paths(&c),
            [
                "/v/d/tpl/init.mp4",
                "/v/d/tpl/seg-000.m4s",
                "/v/d/tpl/seg-001.m4s",
                "/v/d/tpl/seg-002.m4s",
                "/v/d/list/whole.mp4 bytes=0-99",
                "/v/d/list/whole.mp4 bytes=100-599",
                "/v/d/other.m4s",
                "/v/single.mp4",
            ]
        );
        let last = c.renditions[0].segments[2];
        assert!((c.resources[last].duration - 2.0).abs() < 1e-9);
        let single = c.renditions[2].segments[0];
        assert!((c.resources[single].duration - 10.0).abs() < 1e-9);
    }

    #[test]
    fn open_repeat_stops_at_next_time() {
        let tl = SegmentTimeline {
            segments: vec![
                dash_mpd_core::S {
                    t: Some(100),
                    d: 10,
                    r: Some(-1),
                    ..Default::default()
                },
                dash_mpd_core::S {
                    t: Some(125),
                    d: 5,
                    ..Default::default()
                },
            ],
        };
        let got = timeline_segments(&tl, 3, None).unwrap();
        assert_eq!(got, [(3, 100, 10), (4, 110, 10), (5, 120, 10), (6, 125, 5)]);
        let open = SegmentTimeline {
            segments: vec![dash_mpd_core::S {
                d: 10,
                r: Some(-1),
                ..Default::default()
            }],
        };
        assert!(timeline_segments(&open, 1, None).is_err());
    }
}

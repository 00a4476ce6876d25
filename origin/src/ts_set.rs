//! The MPEG-TS programs of an asset version and what is kept of them:
//! their layouts (each built on first use: laying out a program walks
//! every one of its samples), the multivariant playlist, media and
//! I-frame playlists. Kept with the asset (`store::Rendered::ts`); the
//! routes that use it are in `hls_ts`.

use std::sync::OnceLock;

use bytes::Bytes;
use headwater_packager::Presentation;
use headwater_packager::manifest::ManifestOptions;
use headwater_packager::manifest::hls_ts::{self, TsVariant};
use headwater_packager::ts::TsLayout;

use crate::error::OriginError;

/// Everything TS about one asset version.
pub(crate) struct TsSet {
    /// Every program a TS URL can name; the first `listed` are the
    /// unfiltered multivariant playlist's.
    pub(crate) programs: Vec<TsVariant>,
    pub(crate) listed: usize,
    /// Aligned with `programs`, each built on first use.
    pub(crate) layouts: Vec<OnceLock<Result<TsLayout, String>>>,
    pub(crate) multivariant: Bytes,
    pub(crate) media: Vec<OnceLock<Bytes>>,
    pub(crate) iframes: Vec<OnceLock<Bytes>>,
}

impl TsSet {
    pub(crate) fn build(p: &Presentation) -> Result<Self, String> {
        let listed = hls_ts::programs(p).len();
        if listed == 0 {
            return Err(format!(
                "no rendition can be carried in MPEG-TS (it carries H.264, HEVC, AAC, AC-3 and E-AC-3; this asset has {})",
                p.renditions
                    .iter()
                    .map(|r| r.codecs.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let programs = hls_ts::addressable(p);
        let n = programs.len();
        let mut set = TsSet {
            programs,
            listed,
            layouts: (0..n).map(|_| OnceLock::new()).collect(),
            multivariant: Bytes::new(),
            media: (0..n).map(|_| OnceLock::new()).collect(),
            iframes: (0..n).map(|_| OnceLock::new()).collect(),
        };
        // The listed programs' layouts are built now: the multivariant
        // playlist's bit rates come from them.
        for (cell, v) in set.layouts.iter().zip(&set.programs).take(listed) {
            let layout = TsLayout::new(p, v.program(p)).map_err(|e| e.to_string())?;
            let _ = cell.set(Ok(layout));
        }
        let listed: Vec<TsVariant> = set.programs[..listed].to_vec();
        let mut text = String::new();
        set.write_multivariant(p, &listed, &ManifestOptions::default(), &mut text)
            .map_err(|e| e.to_string())?;
        set.multivariant = Bytes::from(text);
        Ok(set)
    }

    pub(crate) fn program(&self, name: &str) -> Result<usize, OriginError> {
        self.programs
            .iter()
            .position(|v| v.name == name)
            .ok_or(OriginError::NotFound)
    }

    /// The layout of program `i`, built now if it is not yet (callers on a
    /// worker thread have had [`prepare`] build it).
    pub(crate) fn layout(&self, p: &Presentation, i: usize) -> Result<&TsLayout, OriginError> {
        let (Some(cell), Some(v)) = (self.layouts.get(i), self.programs.get(i)) else {
            return Err(OriginError::NotFound);
        };
        cell.get_or_init(|| TsLayout::new(p, v.program(p)).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|why| OriginError::Unprocessable(why.clone()))
    }

    /// Writes the multivariant playlist of `programs`.
    pub(crate) fn write_multivariant(
        &self,
        p: &Presentation,
        programs: &[TsVariant],
        opts: &ManifestOptions<'_>,
        out: &mut String,
    ) -> Result<(), OriginError> {
        let layouts = programs
            .iter()
            .map(|v| self.layout(p, self.program(&v.name)?))
            .collect::<Result<Vec<_>, _>>()?;
        hls_ts::multivariant(p, programs, &layouts, opts, out);
        Ok(())
    }
}

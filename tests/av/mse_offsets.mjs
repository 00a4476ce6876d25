#!/usr/bin/env node
// What Chromium's MSE presents, and where each track's timeline lies.
//
//   node tests/av/mse_offsets.mjs [--wait S] [--timeout S] [--chromium PATH]
//        [--level N] --player hls|dash --url URL  [[--level N] --player ... --url ...]...
//
// Plays each URL in turn, in ONE headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core from tests/players/node_modules), with hls.js
// (--player hls: HLS fMP4 or MPEG-TS) or dash.js (--player dash), muted.
// --level N (before its --url) locks the video rendition: the N-th in
// ascending bandwidth (hls.js level N; dash.js the representation of the
// N-th bandwidth). Prints ONE JSON line per URL on stdout:
//
//   {"player":"hls","url":...,"level":null,"lib":"hls.js 1.7.4","chromium":"...",
//    "firstFrame":{"mediaTime":0.08,"currentTime":0.08,"width":320,"height":180},
//    "startPosition":0.08,          // where playback began: currentTime at play(), or a seek before 'playing'
//    "video":{"start":0.08,"end":10.08,"ranges":[[0.08,10.08]],"mime":"video/mp4;codecs=...",
//             "timestampOffset":0,"appendWindowStart":0,"appendWindowEnd":null,
//             "timescale":12800,"edit":null,          // the init segment's edit list, if any
//             "codedStart":0.08,"codedEnd":10.08,     // the coded frames' span (below)
//             "frames":[[pts,size,duration,key,tail],...]},  // every appended coded frame
//    "audio":{...},
//    "ended":true,                  // the player called endOfStream(): everything is buffered
//    "settled":false,               // or: no track's buffered ranges changed for 0.6 s
//    "unsupported":["audio/mp4;codecs=ac-3"],   // isTypeSupported() answers that were false
//    "errors":[...],"warnings":[...],"seeks":[...],"elapsedMs":1234}
//
// How to read it: the first presented video frame is firstFrame.mediaTime
// (requestVideoFrameCallback after play()). A SourceBuffer's buffered range is
// what MSE will present of that track, after edit lists, appendWindow
// trimming and timestampOffset: the first audio sample heard is
// max(audio.start, the playback start position), or later if the first
// frames carry no source audio (hls.js pads remuxed MPEG-TS with silent
// frames; testkit's av.rs recognises them by their bytes). The players'
// SourceBuffers are found through a wrapper around
// MediaSource.prototype.addSourceBuffer, and everything appended to them
// through one around SourceBuffer.prototype.appendBuffer: "frames" are the
// coded frames of those bytes (moof/trun; hls.js's own remuxed fMP4 for
// MPEG-TS) with the timestamps MSE gives them, pts = (tfdt + earlier
// durations + composition offset) / timescale - the init segment's edit
// (media_time; Chromium honours a one-entry edit list) + the
// timestampOffset of the append, and "tail", the FNV-1a hash of the last
// 64 bytes of the frame (trailing zeros left out), which identifies the
// source sample it carries. codedStart/codedEnd against the buffered range
// check that model: MSE only ever trims frames (append window, a GOP
// before appendWindowStart), so the buffered range lies within them.
//
// The page and the player libraries are served from node_modules through
// page.route on a fake origin, as tests/players/play.mjs does; only the media
// URLs reach the network. The origin must send Access-Control-Allow-Origin.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MODULES = path.join(HERE, '..', 'players', 'node_modules');
const { chromium } = createRequire(path.join(HERE, '..', 'players', 'package.json'))('playwright-core');
const FAKE_ORIGIN = 'http://players.invalid';
const T0 = Date.now();
const log = (...a) => process.stderr.write(`[mse ${((Date.now() - T0) / 1000).toFixed(1)}s] ${a.join(' ')}\n`);

// ---------------------------------------------------------------- arguments

function usage(msg) {
  if (msg) process.stderr.write(`mse_offsets.mjs: ${msg}\n`);
  process.stderr.write('usage: node mse_offsets.mjs [--wait 10] [--timeout 30] [--chromium PATH] [--verbose]\n' +
    '         [--level N] --player hls|dash --url URL [[--level N] --player hls|dash --url URL]...\n');
}

function parseArgs(argv) {
  const o = { runs: [], wait: 10, timeout: 30, verbose: false, chromium: process.env.HEADWATER_CHROMIUM || '/usr/bin/chromium' };
  let player = null;
  let level = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
    const num = () => { const v = Number(val()); if (!Number.isFinite(v) || v < 0) throw new Error(`${a} must be a non-negative number`); return v; };
    switch (a) {
      case '--player': player = val(); if (!['hls', 'dash'].includes(player)) throw new Error('--player must be hls or dash'); break;
      case '--level': level = Math.floor(num()); break;
      case '--url': {
        const url = val();
        if (!player) throw new Error('--url needs a --player before it');
        try { new URL(url); } catch { throw new Error(`not an absolute URL: ${url}`); }
        o.runs.push({ player, url, level });
        level = null;
        break;
      }
      case '--wait': o.wait = num(); break;
      case '--timeout': o.timeout = num(); break;
      case '--chromium': o.chromium = val(); break;
      case '--verbose': o.verbose = true; break;
      case '--help': case '-h': usage(); process.exit(0); break;
      default: throw new Error(`unknown argument: ${a}`);
    }
  }
  if (!o.runs.length) throw new Error('no --url given');
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  usage(e.message);
  process.exit(2);
}

// ---------------------------------------------------------------- libraries

function libraryFile(player) {
  const cands = player === 'hls'
    ? ['hls.js/dist/hls.min.js', 'hls.js/dist/hls.js']
    : ['dashjs/dist/modern/umd/dash.all.min.js', 'dashjs/dist/dash.all.min.js'];
  for (const c of cands) {
    const p = path.join(MODULES, c);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`no ${player} library under ${MODULES} (run npm ci in tests/players)`);
}

// ---------------------------------------------------------------- in-page code
// Serialised with toString(); runs before the player library is loaded, so
// the wrappers see every SourceBuffer and every isTypeSupported() question.

function pageSetup() {
  'use strict';
  const ranges = (tr) => { const o = []; for (let i = 0; i < tr.length; i++) o.push([tr.start(i), tr.end(i)]); return o; };
  window.__sbs = [];
  window.__unsupported = [];
  const add = MediaSource.prototype.addSourceBuffer;
  MediaSource.prototype.addSourceBuffer = function (mime) {
    const sb = add.call(this, mime);
    window.__sbs.push({ mime, sb, ms: this, appends: [] });
    return sb;
  };
  // Every byte appended, with the timestampOffset it was appended under.
  const append = SourceBuffer.prototype.appendBuffer;
  SourceBuffer.prototype.appendBuffer = function (data) {
    const e = window.__sbs.find(x => x.sb === this);
    if (e) {
      const view = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      e.appends.push({ bytes: view.slice(), tso: this.timestampOffset });
    }
    return append.call(this, data);
  };
  // The ranges as appended, just before the player calls endOfStream():
  // after it, Chromium reports every track's last range as ending at the
  // highest end of all tracks (the MSE "ended" rule), hiding the real ends.
  window.__atEos = null;
  const eos = MediaSource.prototype.endOfStream;
  MediaSource.prototype.endOfStream = function (...args) {
    if (!window.__atEos) {
      window.__atEos = { duration: this.duration, ranges: window.__sbs.map(x => { try { return ranges(x.sb.buffered); } catch { return null; } }) };
    }
    return eos.apply(this, args);
  };
  const its = MediaSource.isTypeSupported.bind(MediaSource);
  MediaSource.isTypeSupported = function (type) {
    const ok = its(type);
    if (!ok && !window.__unsupported.includes(type)) window.__unsupported.push(type);
    return ok;
  };

  const sleep = (ms) => new Promise(r => setTimeout(r, ms));

  // ---- the coded frames of the appended fMP4, as MSE timestamps them:
  // pts = (tfdt + durations before + composition offset) / timescale
  //       - edit list shift + timestampOffset.
  // Chromium applies a one-entry edit list (media_time) to fMP4 in MSE
  // (REPORT of research15); the tool reports the model's start and end
  // beside the buffered range, which checks it on every URL.
  function fnv64(bytes) {
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end--;
    let h = 0xcbf29ce484222325n;
    for (let i = Math.max(0, end - 64); i < end; i++) h = BigInt.asUintN(64, (h ^ BigInt(bytes[i])) * 0x100000001b3n);
    return h.toString(16).padStart(16, '0');
  }
  function* boxes(dv, start, end) {
    let p = start;
    while (p + 8 <= end) {
      let size = dv.getUint32(p);
      const type = String.fromCharCode(dv.getUint8(p + 4), dv.getUint8(p + 5), dv.getUint8(p + 6), dv.getUint8(p + 7));
      let hdr = 8;
      if (size === 1) { size = Number(dv.getBigUint64(p + 8)); hdr = 16; } else if (size === 0) size = end - p;
      if (size < hdr || p + size > end) return;
      yield { type, start: p, body: p + hdr, end: p + size };
      p += size;
    }
  }
  const child = (dv, box, type) => { for (const b of boxes(dv, box.body, box.end)) if (b.type === type) return b; return null; };
  const path = (dv, box, ...types) => { let b = box; for (const t of types) { b = b && child(dv, b, t); } return b; };

  function codedFrames(appends) {
    const st = { timescale: 0, movieTimescale: 1000, shift: 0, trex: {}, edit: null };
    const frames = [];
    for (const { bytes, tso } of appends) {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (const top of boxes(dv, 0, bytes.length)) {
        if (top.type === 'moov') {
          const mvhd = child(dv, top, 'mvhd');
          if (mvhd) st.movieTimescale = dv.getUint32(mvhd.body + (dv.getUint8(mvhd.body) === 1 ? 20 : 12));
          const trak = child(dv, top, 'trak');
          const mdhd = trak && path(dv, trak, 'mdia', 'mdhd');
          if (mdhd) st.timescale = dv.getUint32(mdhd.body + (dv.getUint8(mdhd.body) === 1 ? 20 : 12));
          const elst = trak && path(dv, trak, 'edts', 'elst');
          st.shift = 0;
          st.edit = null;
          if (elst) {
            const v1 = dv.getUint8(elst.body) === 1;
            const n = dv.getUint32(elst.body + 4);
            let empty = 0;
            for (let i = 0, q = elst.body + 8; i < n; i++, q += v1 ? 20 : 12) {
              const dur = v1 ? Number(dv.getBigUint64(q)) : dv.getUint32(q);
              const mt = v1 ? Number(dv.getBigInt64(q + 8)) : dv.getInt32(q + 4);
              if (mt === -1) { empty += dur; continue; }
              st.shift = mt / st.timescale - empty / st.movieTimescale;
              st.edit = { entries: n, mediaTime: mt, empty };
              break;
            }
          }
          const trex = path(dv, top, 'mvex', 'trex');
          if (trex) st.trex = { duration: dv.getUint32(trex.body + 12), size: dv.getUint32(trex.body + 16), flags: dv.getUint32(trex.body + 20) };
        } else if (top.type === 'moof') {
          for (const traf of boxes(dv, top.body, top.end)) {
            if (traf.type !== 'traf') continue;
            const tfhd = child(dv, traf, 'tfhd');
            const tfdt = child(dv, traf, 'tfdt');
            if (!tfhd) continue;
            const tf = dv.getUint32(tfhd.body) & 0xffffff;
            let q = tfhd.body + 8;
            let base = top.start;
            if (tf & 0x1) { base = Number(dv.getBigUint64(q)); q += 8; }
            if (tf & 0x2) q += 4;
            let defDur = st.trex.duration || 0; if (tf & 0x8) { defDur = dv.getUint32(q); q += 4; }
            let defSize = st.trex.size || 0; if (tf & 0x10) { defSize = dv.getUint32(q); q += 4; }
            let defFlags = st.trex.flags || 0; if (tf & 0x20) { defFlags = dv.getUint32(q); q += 4; }
            let dts = tfdt ? (dv.getUint8(tfdt.body) === 1 ? Number(dv.getBigUint64(tfdt.body + 4)) : dv.getUint32(tfdt.body + 4)) : 0;
            let data = base;
            for (const trun of boxes(dv, traf.body, traf.end)) {
              if (trun.type !== 'trun') continue;
              const v = dv.getUint8(trun.body);
              const f = dv.getUint32(trun.body) & 0xffffff;
              const n = dv.getUint32(trun.body + 4);
              let r = trun.body + 8;
              if (f & 0x1) { data = base + dv.getInt32(r); r += 4; }
              let firstFlags = null; if (f & 0x4) { firstFlags = dv.getUint32(r); r += 4; }
              for (let i = 0; i < n; i++) {
                let dur = defDur, size = defSize, flags = i === 0 && firstFlags !== null ? firstFlags : defFlags, cto = 0;
                if (f & 0x100) { dur = dv.getUint32(r); r += 4; }
                if (f & 0x200) { size = dv.getUint32(r); r += 4; }
                if (f & 0x400) { flags = dv.getUint32(r); r += 4; }
                if (f & 0x800) { cto = v === 1 ? dv.getInt32(r) : dv.getUint32(r); r += 4; }
                const pts = (dts + cto) / st.timescale - st.shift + tso;
                const sample = data + size <= bytes.length ? bytes.subarray(data, data + size) : null;
                frames.push([pts, size, dur / st.timescale, !(flags & 0x10000), sample ? fnv64(sample) : null]);
                dts += dur;
                data += size;
              }
            }
          }
        }
      }
    }
    return { frames, timescale: st.timescale, edit: st.edit, shift: st.shift };
  }

  async function mpdVideoBandwidths(url) {
    // Ascending bandwidths of the video representations (trick-mode sets excluded).
    const text = await (await fetch(url)).text();
    const doc = new DOMParser().parseFromString(text, 'application/xml');
    const out = [];
    for (const as of doc.getElementsByTagName('AdaptationSet')) {
      const trick = [...as.getElementsByTagName('EssentialProperty')].some(e => (e.getAttribute('schemeIdUri') || '').includes('trickmode'));
      const type = as.getAttribute('contentType') || as.getAttribute('mimeType') || '';
      if (trick || !type.startsWith('video')) continue;
      for (const r of as.getElementsByTagName('Representation')) out.push(Number(r.getAttribute('bandwidth')));
    }
    return out.sort((a, b) => a - b);
  }

  window.__measure = async function (cfg) {
    const R = {
      player: cfg.player, url: cfg.url, level: cfg.level, lib: null,
      firstFrame: null, startPosition: null, video: null, audio: null, ended: false, settled: false,
      unsupported: window.__unsupported, errors: [], warnings: [], seeks: [],
    };
    const t0 = performance.now();
    const video = document.getElementById('video');
    video.muted = true;
    video.addEventListener('error', () => R.errors.push(`video element error ${video.error && video.error.code}: ${video.error && video.error.message}`));
    // The playback start position: currentTime when play() is called, or
    // where the player seeks before playback begins (hls.js jumps a gap at
    // the start). Read at 'playing' it would already have moved on.
    let playing = false;
    video.addEventListener('playing', () => { playing = true; });
    video.addEventListener('seeking', () => {
      if (R.seeks.length < 10) R.seeks.push(video.currentTime);
      if (!playing && R.startPosition !== null) R.startPosition = video.currentTime;
    });
    video.requestVideoFrameCallback((now, md) => {
      R.firstFrame = { mediaTime: md.mediaTime, currentTime: video.currentTime, width: md.width, height: md.height };
    });

    let player = null;
    if (cfg.player === 'hls') {
      const Hls = window.Hls;
      const conf = { enableWorker: true, capLevelToPlayerSize: false, maxBufferLength: 120, maxMaxBufferLength: 240, lowLatencyMode: false };
      if (cfg.level !== null) conf.startLevel = cfg.level;
      const hls = new Hls(conf);
      player = hls;
      R.lib = `hls.js ${Hls.version}`;
      hls.on(Hls.Events.ERROR, (e, d) => {
        const m = `hls.js ${d.type}/${d.details}${d.reason ? ': ' + d.reason : ''}`;
        (d.fatal ? R.errors : R.warnings).push(m);
      });
      hls.on(Hls.Events.MANIFEST_PARSED, () => { if (cfg.level !== null) hls.loadLevel = cfg.level; });
      hls.attachMedia(video);
      hls.loadSource(cfg.url);
    } else {
      const p = dashjs.MediaPlayer().create();
      player = p;
      R.lib = `dash.js ${p.getVersion()}`;
      const settings = {
        debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING },
        streaming: { buffer: { bufferTimeAtTopQuality: 120, bufferTimeAtTopQualityLongForm: 120, bufferTimeDefault: 120 } },
      };
      if (cfg.level !== null) {
        const bws = await mpdVideoBandwidths(cfg.url);
        if (cfg.level >= bws.length) R.errors.push(`no video representation ${cfg.level} (have ${bws.length})`);
        else settings.streaming.abr = { autoSwitchBitrate: { video: false }, initialBitrate: { video: bws[cfg.level] / 1000 } };
      }
      p.updateSettings(settings);
      p.on(dashjs.MediaPlayer.events.ERROR, (e) => R.errors.push(`dash.js error ${e.error && e.error.code}: ${e.error && e.error.message}`));
      p.initialize(video, cfg.url, false);
    }

    const deadline = t0 + cfg.waitMs;
    const sb = (kind) => window.__sbs.find(x => x.mime.startsWith(kind));
    // Everything buffered: the player called endOfStream(), or (hls.js does
    // not always, with MPEG-TS) no track's buffered ranges have changed for
    // 0.6 s with nothing appending; else the deadline.
    let lastEnds = null;
    let stableSince = performance.now();
    while (performance.now() < deadline && !R.errors.length) {
      const any = window.__sbs[0];
      const busy = window.__sbs.some(x => x.sb.updating);
      if (any && any.ms.readyState === 'ended' && !busy) { R.ended = true; break; }
      const ends = JSON.stringify(window.__sbs.map(x => { try { return ranges(x.sb.buffered); } catch { return null; } }));
      if (ends !== lastEnds || busy || !sb('video') || !sb('audio')) { lastEnds = ends; stableSince = performance.now(); }
      else if (performance.now() - stableSince > 600) { R.settled = true; break; }
      await sleep(50);
    }
    R.startPosition = video.currentTime;
    try { await Promise.race([video.play(), sleep(3000)]); } catch (e) { R.errors.push(`play(): ${e.message}`); }
    const firstBy = performance.now() + 5000;
    while (!R.firstFrame && performance.now() < firstBy && !R.errors.length) await sleep(20);
    for (const kind of ['video', 'audio']) {
      const e = sb(kind);
      if (!e) continue;
      try {
        // The ranges as they were when the player called endOfStream(), if it did.
        const i = window.__sbs.indexOf(e);
        const rs = (window.__atEos && window.__atEos.ranges[i]) || ranges(e.sb.buffered);
        const coded = codedFrames(e.appends);
        const ends = coded.frames.map(f => f[0] + f[2]);
        R[kind] = {
          start: rs.length ? rs[0][0] : null, end: rs.length ? rs[rs.length - 1][1] : null, ranges: rs,
          mime: e.mime, timestampOffset: e.sb.timestampOffset, appendWindowStart: e.sb.appendWindowStart,
          appendWindowEnd: e.sb.appendWindowEnd === Infinity ? null : e.sb.appendWindowEnd,
          timescale: coded.timescale, edit: coded.edit,
          codedStart: coded.frames.length ? Math.min(...coded.frames.map(f => f[0])) : null,
          codedEnd: ends.length ? Math.max(...ends) : null,
          frames: coded.frames,
        };
      } catch (err) { R.errors.push(`${kind} SourceBuffer: ${err.message}`); }
    }
    try { if (cfg.player === 'hls') player.destroy(); else player.reset(); } catch { /* ignore */ }
    R.elapsedMs = Math.round(performance.now() - t0);
    return R;
  };
}

function pageHtml() {
  return `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>headwater A/V offsets</title></head>
<body style="margin:0;background:#000">
<video id="video" muted playsinline width="640" height="360"></video>
<script src="${FAKE_ORIGIN}/setup.js"></script>
<script src="${FAKE_ORIGIN}/lib/player.js"></script>
</body></html>`;
}

// ---------------------------------------------------------------- main

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  // The page is on a fake public origin, the media on 127.0.0.1 (see play.mjs).
  '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults',
];

async function main() {
  const libs = { hls: fs.readFileSync(libraryFile('hls')), dash: fs.readFileSync(libraryFile('dash')) };
  const setupBody = `(${pageSetup.toString()})();\n`;
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'headwater-mse-'));
  let context = null;
  const cleanup = async () => {
    if (context) { try { await Promise.race([context.close(), new Promise(r => setTimeout(r, 10000))]); } catch { /* ignore */ } }
    context = null;
    try { fs.rmSync(userDataDir, { recursive: true, force: true }); } catch { /* ignore */ }
  };
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, async () => { await cleanup(); process.exit(1); });

  let exit = 0;
  try {
    if (!fs.existsSync(opts.chromium)) throw new Error(`chromium not found at ${opts.chromium}`);
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: opts.chromium, headless: true, args: CHROMIUM_ARGS, timeout: 60000, viewport: { width: 800, height: 500 },
    });
    const version = context.browser() ? context.browser().version() : null;
    const page = context.pages()[0] || await context.newPage();
    page.on('console', (m) => {
      if (opts.verbose || m.type() === 'error') process.stderr.write(`  [browser ${m.type()}] ${m.text().slice(0, 400)}\n`);
    });
    let current = null;
    for (const run of opts.runs) {
      const started = Date.now();
      let out;
      try {
        current = run.player;
        await page.route(`${FAKE_ORIGIN}/**`, (route) => {
          const u = new URL(route.request().url());
          if (u.pathname === '/') return route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: pageHtml() });
          if (u.pathname === '/setup.js') return route.fulfill({ status: 200, contentType: 'application/javascript', body: setupBody });
          if (u.pathname === '/lib/player.js') return route.fulfill({ status: 200, contentType: 'application/javascript', body: libs[current] });
          return route.fulfill({ status: 404, body: '' });
        });
        await page.goto(`${FAKE_ORIGIN}/`, { waitUntil: 'load', timeout: 30000 });
        // Media requests go straight to the origin from here on.
        await page.unrouteAll({ behavior: 'ignoreErrors' });
        const cfg = { ...run, waitMs: opts.wait * 1000 };
        let timer;
        out = await Promise.race([
          page.evaluate((c) => window.__measure(c), cfg),
          new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no result within ${opts.timeout} s`)), opts.timeout * 1000); }),
        ]).finally(() => clearTimeout(timer));
      } catch (e) {
        out = { player: run.player, url: run.url, level: run.level, errors: [`harness: ${e.message.split('\n')[0]}`] };
        // A page stuck in a bad state must not poison the next URL.
        try { await page.goto('about:blank', { timeout: 10000 }); } catch { /* ignore */ }
      }
      out.chromium = version;
      if (out.errors && out.errors.length) exit = 1;
      log(`${run.player} ${run.url}${run.level !== null ? ` level ${run.level}` : ''}: ${((Date.now() - started) / 1000).toFixed(1)} s${out.errors && out.errors.length ? ' ERRORS ' + out.errors.join('; ') : ''}`);
      process.stdout.write(JSON.stringify(out) + '\n');
    }
  } catch (e) {
    log(`fatal: ${e.message}`);
    exit = 2;
  } finally {
    await cleanup();
  }
  process.exit(exit);
}

main();

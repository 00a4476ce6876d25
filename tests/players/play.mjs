#!/usr/bin/env node
// Headless browser-player harness for headwater.
//
// Plays an HLS or DASH URL in Debian's Chromium (driven by playwright-core)
// with hls.js, dash.js or shaka-player, and prints ONE JSON object on stdout.
// Exit code 0 iff the JSON has "ok": true. Diagnostics go to stderr.
//
// The player libraries and the test page are served from a fake origin
// (http://players.invalid) through page.route, straight out of node_modules:
// nothing but the media URL itself touches the network.
//
// See README.md for flags.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FAKE_ORIGIN = 'http://players.invalid';
const T0 = Date.now();

// ---------------------------------------------------------------- arguments

function usage(msg) {
  if (msg) process.stderr.write(`play.mjs: ${msg}\n`);
  process.stderr.write(
    'usage: node play.mjs --player hls|dash|shaka --url URL [--seconds 12]\n' +
    '         [--expect-video-renditions N] [--expect-audio-languages en,fr]\n' +
    '         [--expect-text-cues] [--low-latency | --standard-latency] [--timeout SECS] [--dwell SECS]\n' +
    '         [--chromium PATH] [--verbose]\n');
}

function parseArgs(argv) {
  const o = {
    player: null, url: null, seconds: 12, expectVideoRenditions: 0,
    lowLatency: false, standardLatency: false, expectAudioLanguages: [], expectTextCues: false,
    timeout: null, dwell: 1.0, verbose: !!process.env.PLAYER_VERBOSE,
    chromium: process.env.HEADWATER_CHROMIUM || '/usr/bin/chromium',
  };
  const takeVal = (i, name) => {
    if (i + 1 >= argv.length) throw new Error(`${name} needs a value`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let inlineVal;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { inlineVal = a.slice(eq + 1); a = a.slice(0, eq); }
    const val = () => {
      if (inlineVal !== undefined) return inlineVal;
      const v = takeVal(i, a); i++; return v;
    };
    const num = (name) => {
      const v = Number(val());
      if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a non-negative number`);
      return v;
    };
    switch (a) {
      case '--player': o.player = val(); break;
      case '--url': o.url = val(); break;
      case '--seconds': o.seconds = num(a); break;
      case '--expect-video-renditions': o.expectVideoRenditions = Math.floor(num(a)); break;
      case '--expect-audio-languages':
        o.expectAudioLanguages = val().split(',').map(s => s.trim()).filter(Boolean); break;
      case '--expect-text-cues': o.expectTextCues = true; break;
      case '--low-latency': o.lowLatency = true; break;
      case '--standard-latency': o.standardLatency = true; break;
      case '--timeout': o.timeout = num(a); break;
      case '--dwell': o.dwell = num(a); break;
      case '--chromium': o.chromium = val(); break;
      case '--verbose': case '-v': o.verbose = true; break;
      case '--help': case '-h': usage(); process.exit(0); break;
      default: throw new Error(`unknown argument: ${argv[i]}`);
    }
  }
  if (!['hls', 'dash', 'shaka'].includes(o.player)) throw new Error('--player must be hls, dash or shaka');
  if (!o.url) throw new Error('--url is required');
  try { new URL(o.url); } catch { throw new Error(`--url is not a valid absolute URL: ${o.url}`); }
  if (o.timeout === null) o.timeout = o.seconds * 3 + 30;
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  usage(e.message);
  // Still honour the "one JSON object on stdout" contract.
  process.stdout.write(JSON.stringify({ ok: false, error: `bad arguments: ${e.message}` }) + '\n');
  process.exit(2);
}

const log = (...a) => process.stderr.write(`[play ${((Date.now() - T0) / 1000).toFixed(1)}s] ${a.join(' ')}\n`);

// ---------------------------------------------------------------- libraries

function firstExisting(cands) {
  for (const c of cands) if (fs.existsSync(c)) return c;
  return null;
}

function pkgDir(name) {
  // Not require.resolve(`${name}/package.json`): dashjs 5's "exports" map hides it.
  return path.join(HERE, 'node_modules', name);
}

function libraryFile(player) {
  if (player === 'hls') {
    const d = pkgDir('hls.js');
    return firstExisting([path.join(d, 'dist/hls.min.js'), path.join(d, 'dist/hls.js')]);
  }
  if (player === 'dash') {
    // dash.js 5 ships UMD builds under dist/modern/umd (and dist/legacy/umd);
    // dash.js 4 had dist/dash.all.min.js.
    const d = pkgDir('dashjs');
    return firstExisting([
      path.join(d, 'dist/modern/umd/dash.all.min.js'),
      path.join(d, 'dist/dash.all.min.js'),
      path.join(d, 'dist/legacy/umd/dash.all.min.js'),
    ]);
  }
  const d = pkgDir('shaka-player');
  return firstExisting([path.join(d, 'dist/shaka-player.compiled.js')]);
}

function libraryVersion(player) {
  const name = { hls: 'hls.js', dash: 'dashjs', shaka: 'shaka-player' }[player];
  try { return JSON.parse(fs.readFileSync(path.join(pkgDir(name), 'package.json'), 'utf8')).version; }
  catch { return null; }
}

// ---------------------------------------------------------------- in-page code
// This function is serialised with toString() and served as /harness.js.
// It must be self-contained (no closures over Node values).

function pageHarness() {
  'use strict';
  const video = document.getElementById('video');
  video.muted = true;
  video.defaultMuted = true;
  video.volume = 0;

  let ISO639_2 = {};
  const normLang = (l) => {
    if (!l) return '';
    const p = String(l).toLowerCase().split(/[-_]/)[0];
    return ISO639_2[p] || p;
  };

  const H = {
    cfg: null,
    startWall: performance.now(),
    fatalErrors: [],
    warnings: [],
    warningCounts: {},
    failures: [],
    played: 0,
    lastCt: null,
    lastProgressWall: performance.now(),
    firstFrameWall: null,
    ended: false,
    renditions: [],            // {key,width,height,bandwidth,codecs,switched,fragments,mediaSeconds,heightSeen}
    current: null,             // key of rendition the player reports as current
    heightsSeen: new Set(),
    audio: {},                 // lang -> {lang, label, switched, fragments, mediaSeconds}
    currentAudio: null,        // normalised lang the player reports as current
    audioPlayed: [],
    textTracksSeen: [],
    cues: new Map(),
    latency: [],
    framesAtStart: null,
    steps: [],
    phase: 'init',
    isLive: false,
  };
  window.__H = H;
  // A forced switch arms one in-place seek for a stall with the position
  // buffered everywhere (see waitFor); how many were made is reported.
  const RESEEK_AFTER_MS = 3000;
  H.reseekArmed = false;
  H.reseeks = 0;
  H.sourceBuffers = [];
  for (const MS of [window.MediaSource, window.ManagedMediaSource].filter(Boolean)) {
    const add = MS.prototype.addSourceBuffer;
    MS.prototype.addSourceBuffer = function (mime) {
      const sb = add.call(this, mime);
      H.sourceBuffers.push({ mime, sb });
      return sb;
    };
  }

  const now = () => performance.now();
  const log = (...a) => console.log('[harness] ' + a.join(' '));
  const sleep = (ms) => new Promise(r => setTimeout(r, ms));
  const short = (v) => {
    try { return typeof v === 'string' ? v : JSON.stringify(v, (k, x) => (x instanceof ArrayBuffer || ArrayBuffer.isView(x)) ? `[${x.byteLength} bytes]` : x); }
    catch { return String(v); }
  };
  const clip = (s, n = 400) => (s && s.length > n ? s.slice(0, n) + '…' : s);

  function warn(msg) {
    msg = clip(String(msg));
    H.warningCounts[msg] = (H.warningCounts[msg] || 0) + 1;
    if (H.warningCounts[msg] === 1) {
      if (H.warnings.length < 100) H.warnings.push(msg);
      log('warning:', msg);
    }
  }
  function fatal(obj) {
    H.fatalErrors.push(obj);
    log('FATAL:', short(obj));
  }

  video.addEventListener('error', () => {
    const e = video.error;
    fatal({ source: 'video-element', code: e && e.code, message: e && e.message });
  });
  video.addEventListener('ended', () => { H.ended = true; log('video ended at', video.currentTime.toFixed(2)); });
  video.addEventListener('resize', () => { if (video.videoHeight) H.heightsSeen.add(video.videoHeight); });

  function renditionByKey(k) { return H.renditions.find(r => r.key === k); }
  function addRendition(r) {
    const ex = renditionByKey(r.key);
    if (ex) return ex;
    const rr = Object.assign({ switched: false, fragments: 0, mediaSeconds: 0 }, r);
    H.renditions.push(rr);
    return rr;
  }
  function noteSwitch(key, how) {
    const r = renditionByKey(key);
    if (!r) { warn(`switch to unknown rendition ${key}`); return; }
    if (H.current !== key) log(`video rendition now ${r.width}x${r.height}@${r.bandwidth} (${how})`);
    r.switched = true;
    H.current = key;
  }
  function noteFragment(key) {
    const r = renditionByKey(key);
    if (r) r.fragments++;
  }
  function audioEntry(lang, label) {
    const n = normLang(lang) || 'und';
    if (!H.audio[n]) H.audio[n] = { lang: n, declared: lang, label: label || null, switched: false, fragments: 0, mediaSeconds: 0 };
    return H.audio[n];
  }
  function noteAudioSwitch(lang, how) {
    const a = audioEntry(lang);
    if (H.currentAudio !== a.lang) log(`audio language now ${a.lang} (${how})`);
    a.switched = true;
    H.currentAudio = a.lang;
  }
  function noteAudioFragment(lang) { audioEntry(lang || '').fragments++; }

  // ------------------------------------------------------------ adapters
  // Each adapter: init(url) -> Promise, renditions(), force(rendition),
  // audioTracks() -> [{lang,label,ref}], switchAudio(track), enableText() -> bool,
  // latency() -> number|null, live() -> bool, name, version.

  function hlsAdapter(cfg) {
    const Hls = window.Hls;
    if (!Hls) throw new Error('hls.js did not load');
    if (!Hls.isSupported()) throw new Error('hls.js: MediaSource not supported in this browser');
    const conf = { debug: !!cfg.playerDebug, enableWorker: true, capLevelToPlayerSize: false };
    if (cfg.lowLatency) conf.lowLatencyMode = true;
    // hls.js defaults to low-latency mode (parts); this asks for whole segments.
    if (cfg.standardLatency) conf.lowLatencyMode = false;
    const hls = new Hls(conf);
    window.__player = hls;
    const E = Hls.Events;
    const levelKey = (i) => 'level-' + i;
    hls.on(E.ERROR, (ev, data) => {
      const info = {
        source: 'hls.js', type: data.type, details: data.details, fatal: !!data.fatal,
        reason: data.reason || (data.error && data.error.message) || undefined,
        url: (data.url || (data.frag && data.frag.url) || (data.context && data.context.url)) || undefined,
        httpStatus: (data.response && data.response.code) || (data.networkDetails && data.networkDetails.status) || undefined,
      };
      if (data.fatal) fatal(info);
      else warn(`hls.js non-fatal ${data.type}/${data.details}${info.reason ? ': ' + info.reason : ''}`);
    });
    hls.on(E.MANIFEST_PARSED, (ev, data) => {
      hls.levels.forEach((l, i) => addRendition({
        key: levelKey(i), index: i, width: l.width || null, height: l.height || null,
        bandwidth: l.bitrate || null, codecs: [l.videoCodec, l.audioCodec].filter(Boolean).join(',') || null,
      }));
      log(`manifest parsed: ${hls.levels.length} levels, ${(data.audioTracks || []).length} audio tracks, ${(data.subtitleTracks || []).length} subtitle tracks`);
    });
    hls.on(E.LEVEL_SWITCHED, (ev, data) => noteSwitch(levelKey(data.level), 'LEVEL_SWITCHED'));
    hls.on(E.FRAG_LOADED, (ev, data) => {
      const f = data.frag;
      if (!f || f.sn === 'initSegment') return;
      if (f.type === 'main') {
        noteFragment(levelKey(f.level));
        // Audio muxed into the variant (an EXT-X-MEDIA without a URI, as in
        // TS variants): the main fragment is that language's audio fragment.
        const cur = hls.audioTracks[hls.audioTrack];
        if (cur && !cur.url) noteAudioFragment(cur.lang || cur.name);
      } else if (f.type === 'audio') {
        const t = hls.audioTracks[f.level] || (hls.allAudioTracks || []).find(x => x.id === f.level);
        if (t) noteAudioFragment(t.lang || t.name);
      }
    });
    hls.on(E.AUDIO_TRACK_SWITCHED, (ev, data) => {
      const t = hls.audioTracks[data.id];
      if (t) noteAudioSwitch(t.lang || t.name, 'AUDIO_TRACK_SWITCHED');
    });
    if (E.CUES_PARSED) hls.on(E.CUES_PARSED, (ev, data) => {
      (data.cues || []).forEach(c => noteCue(c.startTime, c.endTime, c.text, 'hls.js CUES_PARSED'));
    });
    return {
      name: 'hls.js', version: Hls.version,
      init(url) {
        return new Promise((resolve, reject) => {
          hls.once(E.MANIFEST_PARSED, () => resolve());
          hls.once(E.ERROR, (ev, d) => { if (d.fatal) reject(new Error(`hls.js ${d.type}/${d.details}`)); });
          hls.attachMedia(video);
          hls.loadSource(url);
        });
      },
      renditions() { return H.renditions; },
      force(r) { hls.currentLevel = r.index; },
      audioTracks() { return hls.audioTracks.map((t, i) => ({ lang: t.lang || t.name, label: t.name, ref: i })); },
      switchAudio(t) { hls.audioTrack = t.ref; },
      enableText() {
        const subs = hls.subtitleTracks;
        if (!subs.length) return false;
        hls.subtitleDisplay = true;
        hls.subtitleTrack = 0;
        return true;
      },
      textTracks() { return hls.subtitleTracks.map(t => ({ lang: t.lang, name: t.name })); },
      latency() { return this.live() ? hls.latency : null; },
      targetLatency() { return this.live() ? hls.targetLatency : null; },
      live() { const d = hls.latestLevelDetails || (hls.levels[hls.currentLevel] && hls.levels[hls.currentLevel].details); return !!(d && d.live); },
      seed() {},
    };
  }

  function dashAdapter(cfg) {
    const dashjs = window.dashjs;
    if (!dashjs) throw new Error('dash.js did not load');
    const player = dashjs.MediaPlayer().create();
    window.__player = player;
    const E = dashjs.MediaPlayer.events;
    const level = cfg.playerDebug ? 'LOG_LEVEL_DEBUG' : 'LOG_LEVEL_WARNING';
    const settings = { debug: { logLevel: dashjs.Debug ? dashjs.Debug[level] : 3 }, streaming: { text: { defaultEnabled: false } } };
    if (cfg.lowLatency) settings.streaming.liveCatchup = { enabled: true };
    player.updateSettings(settings);
    const v5 = typeof player.getRepresentationsByType === 'function';
    const repKey = (r) => 'rep-' + r.id;

    function loadRenditions() {
      if (H.renditions.length) return;
      if (v5) {
        player.getRepresentationsByType('video').forEach((r, i) => addRendition({
          key: repKey(r), id: r.id, index: i, width: r.width || null, height: r.height || null,
          bandwidth: r.bandwidth || null, codecs: r.codecs || null,
        }));
      } else {
        (player.getBitrateInfoListFor('video') || []).forEach((b, i) => addRendition({
          key: 'q-' + b.qualityIndex, index: b.qualityIndex, width: b.width, height: b.height,
          bandwidth: b.bitrate, codecs: null,
        }));
      }
    }
    player.on(E.ERROR, (e) => {
      const err = e.error || {};
      fatal({ source: 'dash.js', event: 'error', code: err.code, message: err.message || short(e.error), data: err.data ? clip(short(err.data), 300) : undefined });
    });
    if (E.PLAYBACK_ERROR) player.on(E.PLAYBACK_ERROR, (e) => warn(`dash.js playbackError: ${short(e.error)}`));
    if (E.PLAYBACK_NOT_ALLOWED) player.on(E.PLAYBACK_NOT_ALLOWED, () => warn('dash.js: playback not allowed (autoplay policy)'));
    player.on(E.STREAM_INITIALIZED, () => {
      loadRenditions();
      log(`stream initialized: ${H.renditions.length} video representations, ${player.getTracksFor('audio').length} audio tracks, ${player.getTracksFor('text').length} text tracks`);
    });
    player.on(E.QUALITY_CHANGE_RENDERED, (e) => {
      if (e.mediaType !== 'video') return;
      loadRenditions();
      if (e.newRepresentation) noteSwitch(repKey(e.newRepresentation), 'QUALITY_CHANGE_RENDERED');
      else if (e.newQuality !== undefined) noteSwitch('q-' + e.newQuality, 'QUALITY_CHANGE_RENDERED');
    });
    if (E.TRACK_CHANGE_RENDERED) player.on(E.TRACK_CHANGE_RENDERED, (e) => {
      if (e.mediaType === 'audio' && e.newMediaInfo) noteAudioSwitch(e.newMediaInfo.lang, 'TRACK_CHANGE_RENDERED');
    });
    player.on(E.FRAGMENT_LOADING_COMPLETED, (e) => {
      const r = e.request || {};
      if (r.type && r.type !== 'MediaSegment') return;
      if (r.mediaType === 'video') {
        if (v5) noteFragment('rep-' + (r.representationId !== undefined ? r.representationId : (r.representation && r.representation.id)));
        else noteFragment('q-' + r.quality);
      } else if (r.mediaType === 'audio') {
        const lang = (r.mediaInfo && r.mediaInfo.lang) || (r.representation && r.representation.mediaInfo && r.representation.mediaInfo.lang);
        noteAudioFragment(lang || '');
      }
    });
    if (E.CUE_ENTER) player.on(E.CUE_ENTER, (e) => noteCue(e.start, e.end, e.text, 'dash.js CUE_ENTER'));
    return {
      name: 'dash.js', version: player.getVersion(), apiGeneration: v5 ? 'v5 (representations)' : 'v4 (quality indices)',
      init(url) {
        return new Promise((resolve, reject) => {
          player.on(E.STREAM_INITIALIZED, () => resolve());
          player.on(E.ERROR, (e) => reject(new Error(`dash.js error ${e.error && e.error.code}: ${e.error && e.error.message}`)));
          player.initialize(video, url, true);
        });
      },
      renditions() { loadRenditions(); return H.renditions; },
      force(r) {
        player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
        if (v5 && typeof player.setRepresentationForTypeById === 'function') player.setRepresentationForTypeById('video', r.id, true);
        else if (v5) player.setRepresentationForTypeByIndex('video', r.index, true);
        else player.setQualityFor('video', r.index, true);
      },
      audioTracks() { return player.getTracksFor('audio').map(t => ({ lang: t.lang, label: (t.labels && t.labels[0] && t.labels[0].text) || null, ref: t })); },
      switchAudio(t) { player.setCurrentTrack(t.ref); },
      // Text is turned on once playback has started, as a viewer would.
      // Not at load (dash.js's streaming.text.defaultEnabled is off): a clip
      // whose audio starts a few ms after its video makes dash.js 5.2.1 seek
      // over that gap while starting, and a side-loaded text file whose
      // request is still in flight then is lost for the period (seen as
      // "no text cues" in about one run in four; the file is fetched once).
      enableTextAfterStart: true,
      enableText() {
        const tt = player.getTracksFor('text');
        if (!tt.length) return false;
        if (typeof player.enableText === 'function') player.enableText(true);
        player.setTextTrack(0);
        return true;
      },
      textTracks() { return player.getTracksFor('text').map(t => ({ lang: t.lang, id: t.id })); },
      latency() { if (!this.live()) return null; const l = player.getCurrentLiveLatency(); return Number.isFinite(l) ? l : null; },
      targetLatency() { return this.live() && player.getTargetLiveDelay ? player.getTargetLiveDelay() : null; },
      live() { try { return !!player.isDynamic(); } catch { return false; } },
      seed() {
        loadRenditions();
        const cur = v5 ? player.getCurrentRepresentationForType('video') : null;
        if (cur && !H.current) noteSwitch(repKey(cur), 'initial (getCurrentRepresentationForType)');
        else if (!v5 && !H.current) noteSwitch('q-' + player.getQualityFor('video'), 'initial (getQualityFor)');
        const a = player.getCurrentTrackFor('audio');
        if (a && !H.currentAudio) noteAudioSwitch(a.lang, 'initial (getCurrentTrackFor)');
      },
    };
  }

  function shakaAdapter(cfg) {
    const shaka = window.shaka;
    if (!shaka) throw new Error('shaka-player did not load');
    shaka.polyfill.installAll();
    if (!shaka.Player.isBrowserSupported()) throw new Error('shaka-player: browser not supported');
    const player = new shaka.Player();
    window.__player = player;
    const conf = { streaming: {} };
    if (cfg.lowLatency) conf.streaming.lowLatencyMode = true;
    player.configure(conf);
    const vKey = (t) => 'video-' + t.videoId;
    const CRITICAL = shaka.util.Error.Severity.CRITICAL;
    const codeName = (c) => Object.keys(shaka.util.Error.Code).find(k => shaka.util.Error.Code[k] === c);
    const errInfo = (e) => ({ source: 'shaka-player', code: e.code, name: codeName(e.code), category: e.category, severity: e.severity, message: e.message || undefined, data: clip(short(e.data), 300) });
    player.addEventListener('error', (ev) => {
      const e = ev.detail;
      if (e && e.severity === CRITICAL) fatal(errInfo(e));
      else warn(`shaka non-critical error ${e && e.code} (category ${e && e.category}): ${clip(short(e && e.data), 200)}`);
    });
    function loadRenditions() {
      player.getVariantTracks().forEach(t => {
        if (t.videoId === null || t.videoId === undefined) return;
        addRendition({ key: vKey(t), videoId: t.videoId, width: t.width, height: t.height, bandwidth: t.videoBandwidth || t.bandwidth, codecs: t.videoCodec || null });
      });
    }
    function syncActive(how) {
      const act = player.getVariantTracks().find(t => t.active);
      if (!act) return;
      loadRenditions();
      if (act.videoId !== null && act.videoId !== undefined) noteSwitch(vKey(act), how);
      if (act.audioId !== null && act.audioId !== undefined) noteAudioSwitch(act.language || act.audioLanguage, how);
    }
    player.addEventListener('adaptation', () => syncActive('adaptation'));
    player.addEventListener('variantchanged', () => syncActive('variantchanged'));
    const RT = shaka.net.NetworkingEngine.RequestType;
    const ART = shaka.net.NetworkingEngine.AdvancedRequestType || {};
    return {
      name: 'shaka-player', version: shaka.Player.version,
      async init(url) {
        await player.attach(video);
        player.getNetworkingEngine().registerResponseFilter((type, response, context) => {
          if (type !== RT.SEGMENT || !context || !context.stream) return;
          if (ART.MEDIA_SEGMENT !== undefined && context.type !== undefined && context.type !== ART.MEDIA_SEGMENT) return;
          const s = context.stream;
          if (s.type === 'video') noteFragment('video-' + s.id);
          else if (s.type === 'audio') noteAudioFragment(s.language);
        });
        try {
          await player.load(url);
        } catch (e) {
          if (!H.fatalErrors.some(f => f.source === 'shaka-player' && f.code === e.code)) fatal(errInfo(e));
          throw new Error(`shaka load failed: code ${e.code}`);
        }
        loadRenditions();
        log(`loaded: ${H.renditions.length} video streams, ${player.getAudioTracks().length} audio tracks, ${player.getTextTracks().length} text tracks`);
        video.play().catch(e => warn('video.play(): ' + e.message));
      },
      renditions() { loadRenditions(); return H.renditions; },
      force(r) {
        player.configure({ abr: { enabled: false } });
        const act = player.getVariantTracks().find(t => t.active);
        const cands = player.getVariantTracks().filter(t => t.videoId === r.videoId);
        const pick = cands.find(t => act && t.audioId === act.audioId) || cands[0];
        if (pick) player.selectVariantTrack(pick, true);
      },
      audioTracks() {
        // getAudioTracks() lists audio tracks compatible with the current video track.
        return player.getAudioTracks().map(t => ({ lang: t.language, label: t.label, ref: t }));
      },
      switchAudio(t) { player.selectAudioTrack(t.ref); },
      enableText() {
        const tt = player.getTextTracks();
        if (!tt.length) return false;
        // shaka 5: selecting a text track shows it (setTextTrackVisibility is gone).
        player.selectTextTrack(tt[0]);
        if (typeof player.setTextTrackVisibility === 'function') player.setTextTrackVisibility(true);
        return true;
      },
      textTracks() { return player.getTextTracks().map(t => ({ lang: t.language, kind: t.kind, mimeType: t.mimeType })); },
      latency() { if (!player.isLive()) return null; const l = player.getStats().liveLatency; return Number.isFinite(l) && l > 0 ? l : null; },
      targetLatency() { return null; },
      live() { return player.isLive(); },
      seed() { syncActive('initial (active variant)'); },
    };
  }

  // ------------------------------------------------------------ text cues
  function noteCue(start, end, text, source) {
    if (text === undefined || text === null) return;
    const t = String(text);
    const key = `${Number(start).toFixed(3)}|${Number(end).toFixed(3)}|${t}`;
    if (!H.cues.has(key)) {
      H.cues.set(key, { start: Math.round(start * 1000) / 1000, end: Math.round(end * 1000) / 1000, text: t, source });
      if (H.cues.size <= 20) log(`cue ${start.toFixed(2)}-${end.toFixed(2)}: ${JSON.stringify(clip(t, 80))}`);
    }
  }
  function scanTextTracks() {
    for (const tt of Array.from(video.textTracks)) {
      if (!H.textTracksSeen.find(x => x.t === tt)) {
        H.textTracksSeen.push({ t: tt, kind: tt.kind, label: tt.label, language: tt.language });
      }
      if (tt.mode === 'disabled' || !tt.cues) continue;
      for (const c of Array.from(tt.cues)) {
        noteCue(c.startTime, c.endTime, c.text !== undefined ? c.text : (c.getCueAsHTML ? c.getCueAsHTML().textContent : ''), `TextTrack(${tt.kind}/${tt.language || tt.label})`);
      }
    }
  }

  // ------------------------------------------------------------ sampler
  let adapter = null;
  let lastLatencyWall = 0;
  let lastProgressLog = 0;
  function sample() {
    const ct = video.currentTime;
    if (H.lastCt !== null && !video.seeking) {
      const d = ct - H.lastCt;
      if (d > 0 && d < 2) {
        H.played += d;
        H.lastProgressWall = now();
        if (H.firstFrameWall === null) H.firstFrameWall = now();
        const r = H.current && renditionByKey(H.current);
        if (r) r.mediaSeconds += d;
        if (H.currentAudio && H.audio[H.currentAudio]) H.audio[H.currentAudio].mediaSeconds += d;
      }
    }
    H.lastCt = ct;
    if (video.videoHeight) H.heightsSeen.add(video.videoHeight);
    if (H.framesAtStart === null && H.played > 0 && video.getVideoPlaybackQuality) {
      H.framesAtStart = video.getVideoPlaybackQuality().totalVideoFrames;
    }
    const t = now();
    if (adapter && t - lastLatencyWall >= 1000) {
      lastLatencyWall = t;
      try {
        H.isLive = H.isLive || adapter.live();
        const l = adapter.latency();
        if (typeof l === 'number' && Number.isFinite(l) && l > 0) H.latency.push(l);
      } catch (e) { /* player not ready */ }
      scanTextTracks();
    }
    if (t - lastProgressLog >= 2000) {
      lastProgressLog = t;
      const r = H.current && renditionByKey(H.current);
      const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : {};
      log(`phase=${H.phase} currentTime=${ct.toFixed(2)} played=${H.played.toFixed(2)}/${H.cfg.seconds} ` +
        `rendition=${r ? r.width + 'x' + r.height : '-'} videoHeight=${video.videoHeight} audio=${H.currentAudio || '-'} ` +
        `readyState=${video.readyState} frames=${q.totalVideoFrames}/${q.droppedVideoFrames} dropped` +
        (H.latency.length ? ` latency=${H.latency[H.latency.length - 1].toFixed(2)}` : ''));
    }
  }

  // Wait for cond(); fails (returns false with a reason) on fatal error, stream end,
  // stall, step timeout or the global deadline.
  async function waitFor(cond, what, stepTimeoutMs) {
    const t0 = now();
    for (;;) {
      let v = false;
      try { v = cond(); } catch (e) { v = false; }
      if (v) return { ok: true };
      if (H.fatalErrors.length) return { ok: false, reason: `fatal player error while waiting for ${what}` };
      if (H.ended) return { ok: false, reason: `stream ended (currentTime ${video.currentTime.toFixed(2)}, played ${H.played.toFixed(2)} s) while waiting for ${what}` };
      const t = now();
      if (t > H.deadline) return { ok: false, reason: `wall timeout (${H.cfg.timeoutSec} s, --timeout) reached while waiting for ${what}` };
      if (stepTimeoutMs && t - t0 > stepTimeoutMs) return { ok: false, reason: `timed out after ${(stepTimeoutMs / 1000).toFixed(0)} s waiting for ${what}` };
      if (H.reseekArmed && H.firstFrameWall !== null && t - H.lastProgressWall > RESEEK_AFTER_MS &&
          positionBufferedEverywhere(0.5)) {
        // A forced (immediate) switch flushed the buffer under the playhead
        // and Chromium did not resume although every source buffer now
        // holds the position and more: hls.js nudges only across holes.
        // Seek to where we are, once per forced switch, as a viewer would.
        H.reseekArmed = false;
        H.reseeks++;
        warn(`re-seeked in place after a forced switch stalled ${((t - H.lastProgressWall) / 1000).toFixed(1)} s ` +
          `with the position buffered in every source buffer (currentTime ${video.currentTime.toFixed(2)}, ` +
          `readyState ${video.readyState}, buffered ${bufferedStr()})`);
        video.currentTime = video.currentTime;
      }
      const stallMs = H.firstFrameWall === null ? H.cfg.startTimeoutMs : H.cfg.stallTimeoutMs;
      if (t - H.lastProgressWall > stallMs) {
        return { ok: false, reason: (H.firstFrameWall === null ? 'playback did not start' : 'playback stalled') +
          ` for ${(stallMs / 1000).toFixed(0)} s at currentTime ${video.currentTime.toFixed(2)} (readyState ${video.readyState}, paused ${video.paused}, buffered ${bufferedStr()}) while waiting for ${what}` };
      }
      await sleep(100);
    }
  }
  // Whether every source buffer holds [currentTime, currentTime + ahead].
  function positionBufferedEverywhere(ahead) {
    const ct = video.currentTime;
    let any = false;
    for (const { sb } of H.sourceBuffers) {
      let b;
      try { b = sb.buffered; } catch (e) { continue; }
      any = true;
      let held = false;
      for (let i = 0; i < b.length; i++) if (b.start(i) <= ct && b.end(i) >= ct + ahead) held = true;
      if (!held) return false;
    }
    return any;
  }
  function rangesStr(b) {
    const out = [];
    for (let i = 0; i < b.length; i++) out.push(`${b.start(i).toFixed(3)}-${b.end(i).toFixed(3)}`);
    return out.join(',') || 'none';
  }
  // The element's buffered ranges (what every source buffer holds), then
  // each source buffer's own: a stall with data "buffered" is told apart
  // by which track lacks it.
  function bufferedStr() {
    let s = rangesStr(video.buffered);
    for (const { mime, sb } of H.sourceBuffers) {
      try { s += `; ${mime}: ${rangesStr(sb.buffered)}`; } catch (e) { s += `; ${mime}: removed`; }
    }
    return s;
  }

  // Wait until media time advanced `secs` after cond first holds continuously.
  async function dwell(secs, stillOk, what, stepTimeoutMs) {
    const start = H.played;
    return waitFor(() => {
      if (!stillOk()) throw new Error('lost');
      return H.played - start >= secs;
    }, what, stepTimeoutMs);
  }

  function renditionLabel(r) { return `${r.width || '?'}x${r.height || '?'}@${r.bandwidth || '?'}`; }

  async function renditionPhase(cfg) {
    H.phase = 'renditions';
    const all = adapter.renditions().slice();
    if (all.length < cfg.expectVideoRenditions) {
      H.failures.push(`stream exposes only ${all.length} video rendition(s) (${all.map(renditionLabel).join(', ')}), expected at least ${cfg.expectVideoRenditions}`);
    }
    const heights = all.map(r => r.height);
    const uniqueHeight = (r) => r.height && heights.filter(h => h === r.height).length === 1;
    // Highest first, with the currently playing one moved to the end so every step is a real switch.
    let order = all.slice().sort((a, b) => (b.bandwidth || 0) - (a.bandwidth || 0));
    const curIdx = order.findIndex(r => r.key === H.current);
    if (curIdx >= 0) order = order.slice(curIdx + 1).concat(order.slice(0, curIdx + 1));
    for (const r of order) {
      const frag0 = r.fragments;
      const label = renditionLabel(r);
      log(`forcing video rendition ${label}`);
      const step = { kind: 'video', rendition: label, ok: false };
      H.steps.push(step);
      try { adapter.force(r); } catch (e) { step.error = e.message; H.failures.push(`forcing rendition ${label} threw: ${e.message}`); continue; }
      H.reseekArmed = true;
      const cond = () => H.current === r.key && r.fragments > frag0 && (!uniqueHeight(r) || video.videoHeight === r.height);
      const w = await waitFor(cond, `switch to rendition ${label} (player-reported switch, fragment loaded${uniqueHeight(r) ? ', videoHeight ' + r.height : ''})`, cfg.stepTimeoutMs);
      if (!w.ok) {
        step.reason = w.reason;
        step.state = { playerCurrent: H.current, fragmentsSinceForce: r.fragments - frag0, videoHeight: video.videoHeight };
        log(`rendition ${label} not confirmed: ${w.reason}`);
        if (H.fatalErrors.length || H.ended || now() > H.deadline) break;
        continue;
      }
      const d = await dwell(cfg.dwell, () => H.current === r.key, `playing ${cfg.dwell} s of media on ${label}`, cfg.stepTimeoutMs);
      if (!d.ok) { step.reason = d.reason; log(`rendition ${label} dwell failed: ${d.reason}`); if (H.fatalErrors.length || H.ended) break; continue; }
      step.ok = true;
      r.forcedAndPlayed = true;
      log(`rendition ${label} confirmed`);
    }
  }

  async function audioPhase(cfg) {
    H.phase = 'audio';
    const tracks = adapter.audioTracks();
    log(`audio tracks exposed: ${tracks.map(t => `${t.lang}${t.label ? '(' + t.label + ')' : ''}`).join(', ') || 'none'}`);
    H.audioTracksAvailable = tracks.map(t => ({ lang: t.lang, label: t.label }));
    const wanted = cfg.expectAudioLanguages.map(normLang);
    // Current language last, so each step is a real switch.
    const order = wanted.filter(l => l !== H.currentAudio).concat(wanted.filter(l => l === H.currentAudio));
    for (const lang of order) {
      const step = { kind: 'audio', lang, ok: false };
      H.steps.push(step);
      const t = adapter.audioTracks().find(x => normLang(x.lang) === lang);
      if (!t) {
        step.reason = 'no such audio track';
        H.failures.push(`audio language '${lang}' not exposed by the player (available: ${tracks.map(x => x.lang).join(', ') || 'none'})`);
        continue;
      }
      const a = audioEntry(t.lang, t.label);
      const frag0 = a.fragments;
      log(`switching audio to ${lang}`);
      try { adapter.switchAudio(t); } catch (e) { step.reason = e.message; H.failures.push(`switching audio to ${lang} threw: ${e.message}`); continue; }
      const w = await waitFor(() => H.currentAudio === lang && a.fragments > frag0,
        `audio switch to '${lang}' (player-reported switch + audio fragment loaded)`, cfg.stepTimeoutMs);
      if (!w.ok) {
        step.reason = w.reason;
        step.state = { playerCurrentAudio: H.currentAudio, fragmentsSinceSwitch: a.fragments - frag0 };
        H.failures.push(`audio language '${lang}': ${w.reason} (player reports '${H.currentAudio}', ${a.fragments - frag0} audio fragments since switch)`);
        if (H.fatalErrors.length || H.ended || now() > H.deadline) break;
        continue;
      }
      const d = await dwell(cfg.dwell, () => H.currentAudio === lang, `playing ${cfg.dwell} s of media with audio '${lang}'`, cfg.stepTimeoutMs);
      if (!d.ok) { step.reason = d.reason; H.failures.push(`audio language '${lang}': ${d.reason}`); if (H.fatalErrors.length || H.ended) break; continue; }
      step.ok = true;
      a.played = true;
      log(`audio ${lang} confirmed`);
    }
  }

  function result() {
    const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : {};
    const played = (r) => r.switched && r.fragments > 0 && r.mediaSeconds > 0 && (!H.cfg.expectVideoRenditions || r.forcedAndPlayed);
    const rend = (r) => ({ width: r.width, height: r.height, bandwidth: r.bandwidth, codecs: r.codecs, fragments: r.fragments, mediaSeconds: Math.round(r.mediaSeconds * 100) / 100, switched: r.switched, forced: !!r.forcedAndPlayed });
    const lat = H.latency.slice().sort((a, b) => a - b);
    const latency = lat.length ? {
      samples: lat.length,
      median: Math.round(lat[Math.floor(lat.length / 2)] * 1000) / 1000,
      max: Math.round(lat[lat.length - 1] * 1000) / 1000,
      min: Math.round(lat[0] * 1000) / 1000,
      target: (() => { try { const t = adapter && adapter.targetLatency(); return Number.isFinite(t) ? t : null; } catch { return null; } })(),
    } : null;
    return {
      playerLib: adapter ? { name: adapter.name, version: adapter.version, api: adapter.apiGeneration } : null,
      playedSeconds: Math.round(H.played * 100) / 100,
      currentTime: video.currentTime,
      live: H.isLive,
      renditionsAvailable: H.renditions.map(r => ({ width: r.width, height: r.height, bandwidth: r.bandwidth })),
      renditionsPlayed: H.renditions.filter(played).map(rend),
      renditionsNotPlayed: H.renditions.filter(r => !played(r)).map(rend),
      videoHeightsSeen: Array.from(H.heightsSeen).sort((a, b) => a - b),
      audioTracksAvailable: H.audioTracksAvailable || (adapter ? (() => { try { return adapter.audioTracks().map(t => ({ lang: t.lang, label: t.label })); } catch { return []; } })() : []),
      audioLanguagesPlayed: Object.values(H.audio).filter(a => H.cfg.expectAudioLanguages.length ? a.played : (a.switched && a.fragments > 0 && a.mediaSeconds > 0))
        .map(a => ({ lang: a.lang, declared: a.declared, fragments: a.fragments, mediaSeconds: Math.round(a.mediaSeconds * 100) / 100 })),
      textTracks: H.textTracksSeen.map(t => ({ kind: t.kind, label: t.label, language: t.language, mode: t.t.mode })),
      textCues: Array.from(H.cues.values()).sort((a, b) => a.start - b.start).slice(0, 200),
      textCueCount: H.cues.size,
      steps: H.steps,
      fatalErrors: H.fatalErrors,
      warnings: H.warnings.map(w => H.warningCounts[w] > 1 ? `${w} (x${H.warningCounts[w]})` : w),
      failures: H.failures,
      droppedFrames: q.droppedVideoFrames,
      totalFrames: q.totalVideoFrames,
      framesAtStart: H.framesAtStart,
      reseeks: H.reseeks,
      latency,
    };
  }

  window.__harnessSnapshot = () => { try { return result(); } catch (e) { return { snapshotError: e.message }; } };

  window.__runHarness = async function (cfg) {
    H.cfg = cfg;
    ISO639_2 = cfg.iso639 || {};
    H.deadline = now() + cfg.budgetMs;
    H.lastProgressWall = now();
    const timer = setInterval(sample, 100);
    try {
      adapter = ({ hls: hlsAdapter, dash: dashAdapter, shaka: shakaAdapter })[cfg.player](cfg);
      log(`${adapter.name} ${adapter.version} loading ${cfg.url}`);
      H.phase = 'loading';
      try { await adapter.init(cfg.url); } catch (e) {
        if (!H.fatalErrors.length) fatal({ source: 'harness', message: `player failed to load the stream: ${e.message}` });
      }
      if (!H.fatalErrors.length) {
        if (cfg.expectTextCues && !adapter.enableTextAfterStart) {
          let en = false;
          try { en = adapter.enableText(); } catch (e) { warn('enabling text track threw: ' + e.message); }
          if (!en) log('no text track yet; will retry after start');
          H.textEnabled = en;
        }
        H.phase = 'starting';
        if (video.paused) video.play().catch(e => warn('video.play(): ' + e.message));
        const w = await waitFor(() => H.played > 0.2, 'first frames to play', null);
        if (!w.ok) H.failures.push(w.reason);
        else {
          log('playback started');
          try { adapter.seed(); } catch (e) { warn('seed: ' + e.message); }
          if (cfg.expectTextCues && !H.textEnabled) {
            try { H.textEnabled = adapter.enableText(); } catch (e) { warn('enabling text track threw: ' + e.message); }
          }
          if (cfg.expectVideoRenditions > 0) await renditionPhase(cfg);
          if (!H.fatalErrors.length && !H.ended && cfg.expectAudioLanguages.length) await audioPhase(cfg);
          if (!H.fatalErrors.length) {
            H.phase = 'playing';
            const w2 = await waitFor(() => H.played >= cfg.seconds, `${cfg.seconds} s of media time`, null);
            if (!w2.ok) H.failures.push(`${w2.reason} (played ${H.played.toFixed(2)} of ${cfg.seconds} s)`);
          }
          if (cfg.expectTextCues) {
            // Give cue parsing a moment.
            for (let i = 0; i < 20 && H.cues.size === 0; i++) { scanTextTracks(); await sleep(100); }
          }
        }
      }
    } catch (e) {
      fatal({ source: 'harness', message: e && e.stack ? e.stack : String(e) });
    } finally {
      sample();
      scanTextTracks();
      clearInterval(timer);
      H.phase = 'done';
    }
    return result();
  };
  log('harness ready');
}

// ---------------------------------------------------------------- page

function pageHtml(player) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>headwater player harness (${player})</title></head>
<body style="margin:0;background:#000">
<video id="video" muted playsinline width="640" height="360"></video>
<script src="${FAKE_ORIGIN}/lib/player.js"></script>
<script src="${FAKE_ORIGIN}/harness.js"></script>
</body></html>`;
}

// ---------------------------------------------------------------- main

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  // The page lives on a fake public origin (http://players.invalid) while the
  // media is on 127.0.0.1: Chromium's Local/Private Network Access checks would
  // block those loopback requests ("more-private address space `loopback`").
  '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults',
];

// ISO 639-2 -> 639-1 for the common languages, so --expect-audio-languages en,fr
// matches manifests that say "eng"/"fra". Shared with the page via cfg.iso639.
const ISO639_2 = {
  eng: 'en', fra: 'fr', fre: 'fr', deu: 'de', ger: 'de', spa: 'es', ita: 'it', por: 'pt',
  jpn: 'ja', zho: 'zh', chi: 'zh', rus: 'ru', kor: 'ko', nld: 'nl', dut: 'nl', swe: 'sv',
  ara: 'ar', hin: 'hi', pol: 'pl', tur: 'tr', nor: 'no', nob: 'no', dan: 'da', fin: 'fi',
  ces: 'cs', cze: 'cs', ell: 'el', gre: 'el', heb: 'he', hun: 'hu', ukr: 'uk', cat: 'ca',
  ron: 'ro', rum: 'ro', vie: 'vi', tha: 'th', ind: 'id', msa: 'ms', may: 'ms',
};
function normLang(l) {
  if (!l) return '';
  const p = String(l).toLowerCase().split(/[-_]/)[0];
  return ISO639_2[p] || p;
}

async function main() {
  const out = {
    ok: false, player: opts.player, url: opts.url, seconds: opts.seconds,
    playedSeconds: 0, renditionsPlayed: [], audioLanguagesPlayed: [], textCues: [],
    fatalErrors: [], warnings: [], failures: [], droppedFrames: null, totalFrames: null,
    latency: null,
  };
  const consoleWarnings = [];
  const pushFailure = (m) => { out.failures.push(m); log('FAIL:', m); };

  const lib = libraryFile(opts.player);
  if (!lib) {
    pushFailure(`player library for ${opts.player} not found under node_modules (run npm ci in ${HERE})`);
    return out;
  }
  const libBody = fs.readFileSync(lib);
  const harnessBody = `(${pageHarness.toString()})();\n`;
  log(`player ${opts.player} (${path.relative(HERE, lib)}, v${libraryVersion(opts.player)}), url ${opts.url}, seconds ${opts.seconds}, wall timeout ${opts.timeout}s`);

  const wallDeadline = T0 + opts.timeout * 1000;
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'headwater-players-'));
  let context;
  let hardTimer;
  const cleanup = async () => {
    clearTimeout(hardTimer);
    if (context) { try { await Promise.race([context.close(), new Promise(r => setTimeout(r, 10000))]); } catch { /* ignore */ } }
    try { fs.rmSync(userDataDir, { recursive: true, force: true }); } catch { /* ignore */ }
  };
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, async () => {
      log(`${sig}: closing browser`);
      await cleanup();
      out.failures.push(`interrupted by ${sig}`);
      process.stdout.write(JSON.stringify(out) + '\n');
      process.exit(1);
    });
  }

  try {
    if (!fs.existsSync(opts.chromium)) throw new Error(`chromium not found at ${opts.chromium}`);
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: opts.chromium,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60000,
      viewport: { width: 800, height: 500 },
    });
    const browserVersion = context.browser() ? context.browser().version() : null;
    const page = context.pages()[0] || await context.newPage();
    out.browser = { executable: opts.chromium, version: browserVersion };

    await page.route(`${FAKE_ORIGIN}/**`, async (route) => {
      const u = new URL(route.request().url());
      if (u.pathname === '/' || u.pathname === '/index.html') {
        return route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: pageHtml(opts.player) });
      }
      if (u.pathname === '/lib/player.js') {
        return route.fulfill({ status: 200, contentType: 'application/javascript; charset=utf-8', body: libBody });
      }
      if (u.pathname === '/harness.js') {
        return route.fulfill({ status: 200, contentType: 'application/javascript; charset=utf-8', body: harnessBody });
      }
      if (u.pathname === '/favicon.ico') return route.fulfill({ status: 204, body: '' });
      return route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' });
    });

    page.on('console', (msg) => {
      const text = msg.text();
      if (text.startsWith('[harness] ')) { process.stderr.write(`  ${text}\n`); return; }
      if (msg.type() === 'error') {
        const m = `console.error: ${text.length > 400 ? text.slice(0, 400) + '…' : text}`;
        if (!consoleWarnings.includes(m) && consoleWarnings.length < 50) consoleWarnings.push(m);
        process.stderr.write(`  [browser] ${m}\n`);
      } else if (opts.verbose) {
        process.stderr.write(`  [browser ${msg.type()}] ${text}\n`);
      }
    });
    page.on('pageerror', (err) => {
      const m = `uncaught page exception: ${err.message}`;
      if (!consoleWarnings.includes(m) && consoleWarnings.length < 50) consoleWarnings.push(m);
      process.stderr.write(`  [browser] ${m}\n`);
    });
    page.on('crash', () => pushFailure('browser page crashed'));
    if (opts.verbose) {
      page.on('requestfailed', (r) => process.stderr.write(`  [net] failed ${r.url()} ${r.failure() && r.failure().errorText}\n`));
      page.on('requestfinished', (r) => process.stderr.write(`  [net ${((Date.now() - T0) / 1000).toFixed(1)}s] ${r.url()}\n`));
    }

    await page.goto(`${FAKE_ORIGIN}/`, { waitUntil: 'load', timeout: 30000 });
    await page.waitForFunction(() => typeof window.__runHarness === 'function', null, { timeout: 15000 });
    // Page and libraries are loaded: drop the interception so that media
    // requests go straight to the origin (no per-request round trip through
    // playwright, which would also disable the HTTP cache).
    await page.unrouteAll({ behavior: 'ignoreErrors' });

    const codec = await page.evaluate(() => ({
      h264aac: MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001f,mp4a.40.2"'),
    }));
    if (!codec.h264aac) log('WARNING: this Chromium reports no H.264/AAC MSE support (avc1.64001f,mp4a.40.2)');
    out.browser.mseH264Aac = codec.h264aac;

    const remaining = wallDeadline - Date.now();
    const cfg = {
      player: opts.player, url: opts.url, seconds: opts.seconds,
      expectVideoRenditions: opts.expectVideoRenditions,
      expectAudioLanguages: opts.expectAudioLanguages,
      expectTextCues: opts.expectTextCues,
      lowLatency: opts.lowLatency,
      standardLatency: opts.standardLatency,
      playerDebug: !!process.env.PLAYER_DEBUG,
      dwell: opts.dwell,
      iso639: ISO639_2,
      timeoutSec: opts.timeout,
      // Leave the page a little time to report before the Node-side hard timeout.
      budgetMs: Math.max(1000, remaining - Math.min(5000, remaining * 0.1)),
      startTimeoutMs: Math.min(30000, Math.max(10000, remaining - 5000)),
      stallTimeoutMs: 25000,
      stepTimeoutMs: Math.max(20000, opts.seconds * 1000),
    };

    let res;
    let timedOut = false;
    const runP = page.evaluate((c) => window.__runHarness(c), cfg);
    runP.catch(() => {});
    res = await Promise.race([
      runP,
      new Promise((resolve) => { hardTimer = setTimeout(() => { timedOut = true; resolve(null); }, Math.max(1000, remaining)); }),
    ]);
    clearTimeout(hardTimer);
    if (timedOut) {
      pushFailure(`wall timeout: no result within ${opts.timeout} s (--timeout); stream did not play ${opts.seconds} s of media in time`);
      try {
        res = await Promise.race([page.evaluate(() => window.__harnessSnapshot()), new Promise(r => setTimeout(() => r(null), 5000))]);
      } catch { res = null; }
    }
    if (res) {
      for (const k of ['playerLib', 'playedSeconds', 'currentTime', 'live', 'renditionsAvailable', 'renditionsPlayed',
        'renditionsNotPlayed', 'videoHeightsSeen', 'audioTracksAvailable', 'audioLanguagesPlayed', 'textTracks',
        'textCues', 'textCueCount', 'steps', 'fatalErrors', 'droppedFrames', 'totalFrames', 'framesAtStart', 'latency', 'reseeks']) {
        if (res[k] !== undefined) out[k] = res[k];
      }
      out.warnings.push(...(res.warnings || []));
      for (const f of res.failures || []) pushFailure(f);
    }
  } catch (e) {
    pushFailure(`harness error: ${e.message.split('\n')[0]}`);
  } finally {
    out.warnings.push(...consoleWarnings);
    await cleanup();
  }

  // ------------------------------------------------------------ verdict
  if (out.fatalErrors.length) {
    const f = out.fatalErrors[0];
    pushFailure(`fatal player error: ${[f.source, f.type, f.details, f.code, f.name, f.message, f.reason, f.httpStatus && `HTTP ${f.httpStatus}`, f.url]
      .filter(x => x !== undefined && x !== null && x !== '').join(' / ')}`);
  }
  if (!out.failures.length && out.playedSeconds < opts.seconds) {
    pushFailure(`played only ${out.playedSeconds} s of media, wanted ${opts.seconds}`);
  }
  if (!(out.totalFrames > 0)) pushFailure(`no decoded video frames (totalVideoFrames=${out.totalFrames})`);
  else if (out.framesAtStart !== null && out.framesAtStart !== undefined && !(out.totalFrames > out.framesAtStart)) {
    pushFailure(`decoded frame count did not increase during playback (${out.framesAtStart} -> ${out.totalFrames})`);
  }
  if (opts.expectVideoRenditions > 0 && out.renditionsPlayed.length < opts.expectVideoRenditions) {
    const notPlayed = (out.renditionsNotPlayed || []).map(r => `${r.width}x${r.height}@${r.bandwidth}`).join(', ');
    pushFailure(`only ${out.renditionsPlayed.length} distinct video rendition(s) played, expected ${opts.expectVideoRenditions}` +
      (notPlayed ? ` (not confirmed: ${notPlayed})` : ''));
  }
  if (opts.expectAudioLanguages.length) {
    const got = new Set((out.audioLanguagesPlayed || []).map(a => a.lang));
    const missing = opts.expectAudioLanguages.filter(l => !got.has(normLang(l)));
    if (missing.length && !out.failures.some(f => f.startsWith('audio language'))) {
      pushFailure(`audio language(s) not played: ${missing.join(', ')}`);
    }
  }
  if (opts.expectTextCues && !(out.textCues && out.textCues.length)) {
    pushFailure(`no text cues seen (text tracks: ${JSON.stringify(out.textTracks || [])})`);
  }
  if (opts.lowLatency && !out.latency) {
    out.warnings.push('--low-latency: the player reported no live latency (is the stream live?)');
  }
  out.ok = out.failures.length === 0;
  out.error = out.ok ? null : out.failures[0];
  out.wallSeconds = Math.round((Date.now() - T0) / 100) / 10;
  return out;
}

const result = await main().catch((e) => ({ ok: false, player: opts.player, url: opts.url, error: `harness crashed: ${e.stack || e}` , failures: [String(e)] }));
log(result.ok ? 'PASS' : `FAIL: ${result.error}`);
process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(result.ok ? 0 : 1));

#!/usr/bin/env node
// Self-test of play.mjs, independent of headwater: makes a small test ladder
// with ffmpeg in a temp dir (3 H.264 renditions, en+fr AAC audio, WebVTT
// subtitles) as HLS fMP4 and DASH, serves it on 127.0.0.1 with CORS, and runs
// play.mjs against it with every player. Also checks that a 404 URL fails,
// and (unless --no-live) plays a live stream with --low-latency.
//
//   node tests/players/selftest.mjs [--no-live] [--keep]
//
// Needs ffmpeg (with libx264) and /usr/bin/chromium. Prints "N passed, N failed".

import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = new Set(process.argv.slice(2));
const log = (m) => process.stderr.write(`[selftest] ${m}\n`);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'headwater-players-selftest-'));

function ffmpeg(argv, what) {
  log(`ffmpeg: ${what}`);
  const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...argv], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'], timeout: 120000 });
  if (r.status !== 0) throw new Error(`ffmpeg failed (${what}): status ${r.status}`);
}

const LADDER_IN = [
  '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=20',
  '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=20',
  '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=48000:duration=20',
  '-filter_complex', '[0:v]split=3[v1][v2][v3];[v2]scale=480:270[v2o];[v3]scale=320:180[v3o]',
  '-map', '[v1]', '-map', '[v2o]', '-map', '[v3o]', '-map', '1:a', '-map', '2:a',
  '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'high', '-pix_fmt', 'yuv420p',
  '-g', '50', '-keyint_min', '50', '-sc_threshold', '0',
  '-b:v:0', '800k', '-b:v:1', '500k', '-b:v:2', '250k',
  '-c:a', 'aac', '-b:a', '96k', '-ac', '2',
];
const VTT = `WEBVTT

00:00:00.500 --> 00:00:03.000
Hello from headwater

00:00:04.000 --> 00:00:07.000
Second cue

00:00:08.000 --> 00:00:11.000
Third cue
`;

function makeVod() {
  fs.mkdirSync(path.join(dir, 'hls'), { recursive: true });
  ffmpeg([...LADDER_IN,
    '-f', 'hls', '-hls_time', '4', '-hls_playlist_type', 'vod', '-hls_segment_type', 'fmp4',
    '-hls_flags', 'independent_segments',
    '-var_stream_map', 'v:0,agroup:aud v:1,agroup:aud v:2,agroup:aud a:0,agroup:aud,language:en,default:yes a:1,agroup:aud,language:fr',
    '-master_pl_name', 'master.m3u8', '-hls_segment_filename', 'hls/stream_%v/seg_%03d.m4s', 'hls/stream_%v/index.m3u8'], 'HLS VOD ladder');
  // ffmpeg cannot put WebVTT next to fMP4 in one run: add the subtitle rendition by hand.
  fs.mkdirSync(path.join(dir, 'hls/subs_en'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'hls/subs_en/subs.vtt'), VTT.replace('WEBVTT\n', 'WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n'));
  fs.writeFileSync(path.join(dir, 'hls/subs_en/index.m3u8'),
    '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:20\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:20.000000,\nsubs.vtt\n#EXT-X-ENDLIST\n');
  let m = fs.readFileSync(path.join(dir, 'hls/master.m3u8'), 'utf8');
  m = m.replace('#EXT-X-STREAM-INF:', '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",DEFAULT=YES,AUTOSELECT=YES,LANGUAGE="en",URI="subs_en/index.m3u8"\n#EXT-X-STREAM-INF:')
    .replaceAll(/AUDIO="([^"]+)"/g, 'AUDIO="$1",SUBTITLES="subs"');
  fs.writeFileSync(path.join(dir, 'hls/master_subs.m3u8'), m);

  fs.mkdirSync(path.join(dir, 'dash'), { recursive: true });
  ffmpeg([...LADDER_IN, '-metadata:s:a:0', 'language=eng', '-metadata:s:a:1', 'language=fra',
    '-f', 'dash', '-seg_duration', '4', '-use_template', '1', '-use_timeline', '1',
    '-adaptation_sets', 'id=0,streams=0,1,2 id=1,streams=3 id=2,streams=4',
    '-init_seg_name', 'init-$RepresentationID$.m4s', '-media_seg_name', 'chunk-$RepresentationID$-$Number%05d$.m4s',
    'dash/manifest.mpd'], 'DASH VOD ladder');
  fs.writeFileSync(path.join(dir, 'dash/subs_en.vtt'), VTT);
  let mpd = fs.readFileSync(path.join(dir, 'dash/manifest.mpd'), 'utf8');
  mpd = mpd.replace('</Period>', '<AdaptationSet id="3" contentType="text" mimeType="text/vtt" lang="en">' +
    '<Role schemeIdUri="urn:mpeg:dash:role:2011" value="subtitle"/><Representation id="subs_en" bandwidth="256">' +
    '<BaseURL>subs_en.vtt</BaseURL></Representation></AdaptationSet>\n</Period>');
  fs.writeFileSync(path.join(dir, 'dash/manifest_subs.mpd'), mpd);
}

function startLive(port) {
  fs.mkdirSync(path.join(dir, 'live/hls'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'live/dash'), { recursive: true });
  const common = ['-re', '-f', 'lavfi', '-i', 'testsrc2=size=480x270:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-filter_complex', '[0:v]split=2[v1][v2];[v2]scale=320:180[v2o]', '-map', '[v1]', '-map', '[v2o]', '-map', '1:a',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-g', '25', '-keyint_min', '25', '-sc_threshold', '0',
    '-b:v:0', '400k', '-b:v:1', '200k', '-c:a', 'aac', '-b:a', '64k', '-t', '120'];
  const procs = [
    ['-hide_banner', '-loglevel', 'error', '-y', ...common, '-f', 'hls', '-hls_time', '1', '-hls_list_size', '8', '-hls_segment_type', 'fmp4',
      '-hls_flags', 'delete_segments+independent_segments+program_date_time',
      '-var_stream_map', 'v:0,agroup:aud v:1,agroup:aud a:0,agroup:aud,language:en,default:yes', '-master_pl_name', 'master.m3u8',
      '-hls_segment_filename', 'live/hls/s_%v/seg_%05d.m4s', 'live/hls/s_%v/index.m3u8'],
    ['-hide_banner', '-loglevel', 'error', '-y', ...common, '-f', 'dash', '-seg_duration', '1', '-window_size', '8', '-extra_window_size', '4',
      '-use_template', '1', '-use_timeline', '1', '-utc_timing_url', `http://127.0.0.1:${port}/time`,
      '-adaptation_sets', 'id=0,streams=v id=1,streams=a', 'live/dash/manifest.mpd'],
  ].map(a => spawn('ffmpeg', a, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] }));
  return procs;
}

function serve() {
  const types = { '.m3u8': 'application/vnd.apple.mpegurl', '.mpd': 'application/dash+xml', '.mp4': 'video/mp4', '.m4s': 'video/iso.segment', '.vtt': 'text/vtt' };
  const srv = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (u.pathname === '/time') { res.writeHead(200, { 'Content-Type': 'text/plain' }); return res.end(new Date().toISOString()); }
    const p = path.join(dir, path.normalize(decodeURIComponent(u.pathname)));
    if (!p.startsWith(dir)) { res.writeHead(403); return res.end(); }
    fs.readFile(p, (err, body) => {
      if (err) { res.writeHead(404, { 'Content-Type': 'text/plain' }); return res.end('not found'); }
      res.writeHead(200, { 'Content-Type': types[path.extname(p)] || 'application/octet-stream', 'Cache-Control': 'no-cache' });
      res.end(body);
    });
  });
  return new Promise(r => srv.listen(0, '127.0.0.1', () => r(srv)));
}

function play(argv) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(HERE, 'play.mjs'), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = ''; let err = '';
    p.stdout.on('data', d => { out += d; });
    p.stderr.on('data', d => { err += d; });
    const killer = setTimeout(() => p.kill('SIGKILL'), 240000);
    p.on('close', (code) => {
      clearTimeout(killer);
      let json = null;
      try { json = JSON.parse(out.trim().split('\n').pop()); } catch { /* keep null */ }
      resolve({ code, json, err });
    });
  });
}

let passed = 0; let failed = 0;
async function check(name, argv, expectOk, extra) {
  const r = await play(argv);
  let ok = expectOk ? (r.code === 0 && r.json && r.json.ok === true) : (r.code !== 0 && r.json && r.json.ok === false && !!r.json.error);
  let why = r.json ? (r.json.error || '') : 'no JSON on stdout';
  if (ok && extra) { const e = extra(r.json); if (e) { ok = false; why = e; } }
  if (ok) passed++; else failed++;
  const j = r.json || {};
  log(`${ok ? 'PASS' : 'FAIL'} ${name}: exit ${r.code}, played ${j.playedSeconds}s, renditions ${(j.renditionsPlayed || []).map(x => x.height).join('/')}, ` +
    `audio ${(j.audioLanguagesPlayed || []).map(x => x.lang).join('/')}, cues ${(j.textCues || []).length}` +
    (j.latency ? `, latency median ${j.latency.median}s` : '') + (why ? ` — ${why}` : ''));
  if (!ok) process.stderr.write(r.err.split('\n').slice(-25).join('\n') + '\n');
}

let srv; let live = [];
try {
  makeVod();
  srv = await serve();
  const base = `http://127.0.0.1:${srv.address().port}`;
  log(`serving ${dir} on ${base}`);
  const full = ['--seconds', '12', '--expect-video-renditions', '3', '--expect-audio-languages', 'en,fr', '--expect-text-cues'];
  await check('hls.js HLS VOD', ['--player', 'hls', '--url', `${base}/hls/master_subs.m3u8`, ...full], true);
  await check('dash.js DASH VOD', ['--player', 'dash', '--url', `${base}/dash/manifest_subs.mpd`, ...full], true);
  await check('shaka HLS VOD', ['--player', 'shaka', '--url', `${base}/hls/master_subs.m3u8`, ...full], true);
  await check('shaka DASH VOD', ['--player', 'shaka', '--url', `${base}/dash/manifest_subs.mpd`, ...full], true);
  for (const p of ['hls', 'dash', 'shaka']) {
    await check(`${p} 404 fails`, ['--player', p, '--url', `${base}/missing/${p === 'dash' ? 'x.mpd' : 'x.m3u8'}`, '--seconds', '5'], false,
      j => (j.fatalErrors || []).length ? null : 'expected a fatal player error');
  }
  await check('hls.js rendition count too high fails', ['--player', 'hls', '--url', `${base}/hls/master.m3u8`, '--seconds', '6', '--expect-video-renditions', '4'], false);
  if (!args.has('--no-live')) {
    log('starting live encoders (ffmpeg -re)');
    live = startLive(srv.address().port);
    const t0 = Date.now();
    while (Date.now() - t0 < 30000 && !(fs.existsSync(path.join(dir, 'live/hls/master.m3u8')) && fs.existsSync(path.join(dir, 'live/dash/manifest.mpd')))) {
      await new Promise(r => setTimeout(r, 500));
    }
    await new Promise(r => setTimeout(r, 6000)); // let a few segments accumulate
    const ll = ['--seconds', '8', '--expect-video-renditions', '2', '--low-latency'];
    const hasLatency = j => (j.live && j.latency && j.latency.samples > 0) ? null : 'no live latency reported';
    await check('hls.js HLS live', ['--player', 'hls', '--url', `${base}/live/hls/master.m3u8`, ...ll], true, hasLatency);
    await check('dash.js DASH live', ['--player', 'dash', '--url', `${base}/live/dash/manifest.mpd`, ...ll], true, hasLatency);
    await check('shaka HLS live', ['--player', 'shaka', '--url', `${base}/live/hls/master.m3u8`, ...ll], true, hasLatency);
  }
} catch (e) {
  failed++;
  log(`ERROR: ${e.message}`);
} finally {
  for (const p of live) p.kill('SIGTERM');
  if (srv) srv.close();
  if (!args.has('--keep')) fs.rmSync(dir, { recursive: true, force: true });
  else log(`kept ${dir}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

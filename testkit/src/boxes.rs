//! An independent ISO BMFF dumper for golden files: box tree with the
//! fields that matter for packaging (written from ISO/IEC 14496-12, not
//! from the packager's code, so the two check each other).

use std::fmt::Write;

const CONTAINERS: &[&[u8; 4]] = &[
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts", b"mvex", b"moof", b"traf",
];

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes(b[i..i + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_be_bytes(b[i..i + 8].try_into().unwrap())
}

/// Dumps the box tree of `data`. Sample tables are summarised: a `trun`
/// shows its flags, count, data offset and the first three samples.
pub fn dump(data: &[u8]) -> String {
    let mut out = String::new();
    walk(data, 0, &mut out);
    out
}

fn walk(data: &[u8], depth: usize, out: &mut String) {
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let mut size = u32_at(data, pos) as u64;
        let kind: [u8; 4] = data[pos + 4..pos + 8].try_into().unwrap();
        let mut header = 8;
        if size == 1 {
            size = u64_at(data, pos + 8);
            header = 16;
        } else if size == 0 {
            size = (data.len() - pos) as u64;
        }
        let end = (pos as u64 + size).min(data.len() as u64) as usize;
        let body = &data[pos + header..end];
        let name = String::from_utf8_lossy(&kind).into_owned();
        let _ = write!(out, "{}{} ({} bytes)", "  ".repeat(depth), name, size);
        describe(&kind, body, out);
        out.push('\n');
        if CONTAINERS.contains(&&kind) {
            walk(body, depth + 1, out);
        } else if &kind == b"stsd" && body.len() > 8 {
            walk(&body[8..], depth + 1, out);
        } else if let Some(fixed) = sample_entry_size(&kind) {
            // The configuration boxes after the entry's fixed fields.
            if body.len() > fixed {
                walk(&body[fixed..], depth + 1, out);
            }
        }
        pos = end;
    }
}

/// The fixed part of a visual (ISO/IEC 14496-12 §12.1.3) or version-0
/// audio (§12.2.3) sample entry, for the entry types the packager writes.
fn sample_entry_size(kind: &[u8; 4]) -> Option<usize> {
    match kind {
        b"avc1" | b"avc3" | b"hvc1" | b"hev1" | b"av01" => Some(78),
        b"mp4a" | b"ac-3" | b"ec-3" | b"Opus" => Some(28),
        _ => None,
    }
}

fn describe(kind: &[u8; 4], b: &[u8], out: &mut String) {
    let vf = || (b[0], u32_at(b, 0) & 0x00ff_ffff);
    match kind {
        b"ftyp" | b"styp" => {
            let brands: Vec<String> = b[8..]
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            let _ = write!(
                out,
                " major={} compatible={}",
                String::from_utf8_lossy(&b[..4]),
                brands.join(",")
            );
        }
        b"mvhd" | b"mdhd" => {
            let (v, _) = vf();
            let ts = if v == 1 { u32_at(b, 20) } else { u32_at(b, 12) };
            let _ = write!(out, " v{v} timescale={ts}");
        }
        b"tkhd" => {
            let (v, f) = vf();
            let id = if v == 1 { u32_at(b, 20) } else { u32_at(b, 12) };
            let wh = if v == 1 { 88 } else { 76 };
            let _ = write!(
                out,
                " v{v} flags={f:#x} id={id} size={}x{}",
                u32_at(b, wh) >> 16,
                u32_at(b, wh + 4) >> 16
            );
        }
        b"elst" => {
            let (v, _) = vf();
            let n = u32_at(b, 4) as usize;
            let _ = write!(out, " v{v} entries=");
            for i in 0..n {
                if v == 1 {
                    let p = 8 + i * 20;
                    let _ = write!(
                        out,
                        "[dur={} media_time={}]",
                        u64_at(b, p),
                        u64_at(b, p + 8) as i64
                    );
                } else {
                    let p = 8 + i * 12;
                    let _ = write!(
                        out,
                        "[dur={} media_time={}]",
                        u32_at(b, p),
                        u32_at(b, p + 4) as i32
                    );
                }
            }
        }
        b"hdlr" => {
            let _ = write!(out, " handler={}", String::from_utf8_lossy(&b[8..12]));
        }
        b"avc1" | b"avc3" | b"hvc1" | b"hev1" | b"av01" | b"mp4a" | b"ac-3" | b"ec-3" | b"Opus" => {
            let _ = write!(out, " entry-bytes={}", b.len() + 8);
        }
        b"trex" => {
            let _ = write!(out, " track={}", u32_at(b, 4));
        }
        b"mehd" => {
            let (v, _) = vf();
            let d = if v == 1 {
                u64_at(b, 4)
            } else {
                u64::from(u32_at(b, 4))
            };
            let _ = write!(out, " fragment_duration={d}");
        }
        b"mfhd" => {
            let _ = write!(out, " sequence={}", u32_at(b, 4));
        }
        b"tfhd" => {
            let (_, f) = vf();
            let _ = write!(out, " flags={f:#x} track={}", u32_at(b, 4));
        }
        b"tfdt" => {
            let (v, _) = vf();
            let t = if v == 1 {
                u64_at(b, 4)
            } else {
                u64::from(u32_at(b, 4))
            };
            let _ = write!(out, " v{v} base_media_decode_time={t}");
        }
        b"trun" => trun(b, out),
        b"mdat" => {}
        _ => {}
    }
}

fn trun(b: &[u8], out: &mut String) {
    let (v, f) = (b[0], u32_at(b, 0) & 0x00ff_ffff);
    let count = u32_at(b, 4) as usize;
    let mut p = 8;
    let _ = write!(out, " v{v} flags={f:#x} samples={count}");
    if f & 0x1 != 0 {
        let _ = write!(out, " data_offset={}", u32_at(b, p) as i32);
        p += 4;
    }
    if f & 0x4 != 0 {
        let _ = write!(out, " first_flags={:#010x}", u32_at(b, p));
        p += 4;
    }
    for i in 0..count.min(3) {
        let _ = write!(out, " [");
        for (bit, name) in [
            (0x100, "dur"),
            (0x200, "size"),
            (0x400, "flags"),
            (0x800, "cto"),
        ] {
            if f & bit != 0 {
                let val = u32_at(b, p);
                p += 4;
                match name {
                    "flags" => {
                        let _ = write!(out, "{name}={val:#010x} ");
                    }
                    "cto" if v == 1 => {
                        let _ = write!(out, "{name}={} ", val as i32);
                    }
                    _ => {
                        let _ = write!(out, "{name}={val} ");
                    }
                }
            }
        }
        let _ = write!(out, "#{i}]");
    }
}

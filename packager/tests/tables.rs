//! The less common sample-table boxes: a real file rewritten with `co64`
//! instead of `stco` and `stz2` instead of `stsz` indexes to exactly the
//! same samples. (The moov sits after mdat, so growing it moves nothing.)

use headwater_packager::{Limits, Source};

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

/// Copies boxes, rewriting `stco` → `co64` and `stsz` → `stz2` (16-bit).
fn rewrite(data: &[u8]) -> Vec<u8> {
    const CONTAINERS: [&[u8; 4]; 5] = [b"moov", b"trak", b"mdia", b"minf", b"stbl"];
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let size = be32(&data[pos..]) as usize;
        let kind: [u8; 4] = data[pos + 4..pos + 8].try_into().unwrap();
        let body = &data[pos + 8..pos + size];
        let new_body = if CONTAINERS.contains(&&kind) {
            rewrite(body)
        } else if &kind == b"stco" {
            let n = be32(&body[4..]) as usize;
            let mut b = body[..8].to_vec();
            for i in 0..n {
                b.extend_from_slice(&u64::from(be32(&body[8 + 4 * i..])).to_be_bytes());
            }
            b
        } else if &kind == b"stsz" && be32(&body[4..]) == 0 {
            let n = be32(&body[8..]) as usize;
            let mut b = vec![0, 0, 0, 0, 0, 0, 0, 16];
            b.extend_from_slice(&(n as u32).to_be_bytes());
            for i in 0..n {
                let s = be32(&body[12 + 4 * i..]);
                b.extend_from_slice(
                    &u16::try_from(s)
                        .expect("test media samples fit 16 bits")
                        .to_be_bytes(),
                );
            }
            b
        } else {
            body.to_vec()
        };
        let new_kind: &[u8; 4] = match &kind {
            b"stco" => b"co64",
            b"stsz" if be32(&body[4..]) == 0 => b"stz2",
            k => k,
        };
        out.extend_from_slice(&((new_body.len() + 8) as u32).to_be_bytes());
        out.extend_from_slice(new_kind);
        out.extend_from_slice(&new_body);
        pos += size;
    }
    out
}

#[test]
fn co64_and_stz2_index_like_stco_and_stsz() {
    let original = std::fs::read(headwater_testkit::media().join("bframes.mp4")).unwrap();
    let moov = original.windows(4).position(|w| w == b"moov").unwrap() - 4;
    let mut rewritten = original[..moov].to_vec();
    rewritten.extend(rewrite(&original[moov..]));
    assert!(
        rewritten.windows(4).any(|w| w == b"co64") && rewritten.windows(4).any(|w| w == b"stz2")
    );

    let limits = Limits::default();
    let a = Source::index(&original, original.len() as u64, &limits).unwrap();
    let b = Source::index(&rewritten, rewritten.len() as u64, &limits).unwrap();
    assert_eq!(a.movie.tracks.len(), b.movie.tracks.len());
    for (x, y) in a.movie.tracks.iter().zip(&b.movie.tracks) {
        assert_eq!(x.samples, y.samples, "track {}", x.id);
        assert!(x.samples.len() > 100);
    }
}

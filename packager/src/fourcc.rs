//! Four-character codes.

use std::fmt;

/// A box or sample-entry type: four bytes, usually printable ASCII.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// Builds a code from its big-endian integer value.
    pub(crate) const fn from_u32(v: u32) -> Self {
        Self(v.to_be_bytes())
    }
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc(\"{self}\")")
    }
}

/// Box and sample-entry types, hex beside ASCII.
#[allow(dead_code)]
pub(crate) mod types {
    use super::FourCc;
    pub(crate) const FTYP: FourCc = FourCc::from_u32(0x6674_7970); // ftyp
    pub(crate) const STYP: FourCc = FourCc::from_u32(0x7374_7970); // styp
    pub(crate) const MOOV: FourCc = FourCc::from_u32(0x6d6f_6f76); // moov
    pub(crate) const MVHD: FourCc = FourCc::from_u32(0x6d76_6864); // mvhd
    pub(crate) const TRAK: FourCc = FourCc::from_u32(0x7472_616b); // trak
    pub(crate) const TKHD: FourCc = FourCc::from_u32(0x746b_6864); // tkhd
    pub(crate) const EDTS: FourCc = FourCc::from_u32(0x6564_7473); // edts
    pub(crate) const ELST: FourCc = FourCc::from_u32(0x656c_7374); // elst
    pub(crate) const MDIA: FourCc = FourCc::from_u32(0x6d64_6961); // mdia
    pub(crate) const MDHD: FourCc = FourCc::from_u32(0x6d64_6864); // mdhd
    pub(crate) const HDLR: FourCc = FourCc::from_u32(0x6864_6c72); // hdlr
    pub(crate) const MINF: FourCc = FourCc::from_u32(0x6d69_6e66); // minf
    pub(crate) const VMHD: FourCc = FourCc::from_u32(0x766d_6864); // vmhd
    pub(crate) const SMHD: FourCc = FourCc::from_u32(0x736d_6864); // smhd
    pub(crate) const DINF: FourCc = FourCc::from_u32(0x6469_6e66); // dinf
    pub(crate) const DREF: FourCc = FourCc::from_u32(0x6472_6566); // dref
    pub(crate) const URL_: FourCc = FourCc::from_u32(0x7572_6c20); // "url "
    pub(crate) const STBL: FourCc = FourCc::from_u32(0x7374_626c); // stbl
    pub(crate) const STSD: FourCc = FourCc::from_u32(0x7374_7364); // stsd
    pub(crate) const STTS: FourCc = FourCc::from_u32(0x7374_7473); // stts
    pub(crate) const CTTS: FourCc = FourCc::from_u32(0x6374_7473); // ctts
    pub(crate) const STSS: FourCc = FourCc::from_u32(0x7374_7373); // stss
    pub(crate) const STSZ: FourCc = FourCc::from_u32(0x7374_737a); // stsz
    pub(crate) const STZ2: FourCc = FourCc::from_u32(0x7374_7a32); // stz2
    pub(crate) const STSC: FourCc = FourCc::from_u32(0x7374_7363); // stsc
    pub(crate) const STCO: FourCc = FourCc::from_u32(0x7374_636f); // stco
    pub(crate) const CO64: FourCc = FourCc::from_u32(0x636f_3634); // co64
    pub(crate) const MVEX: FourCc = FourCc::from_u32(0x6d76_6578); // mvex
    pub(crate) const MEHD: FourCc = FourCc::from_u32(0x6d65_6864); // mehd
    pub(crate) const TREX: FourCc = FourCc::from_u32(0x7472_6578); // trex
    pub(crate) const MOOF: FourCc = FourCc::from_u32(0x6d6f_6f66); // moof
    pub(crate) const MFHD: FourCc = FourCc::from_u32(0x6d66_6864); // mfhd
    pub(crate) const TRAF: FourCc = FourCc::from_u32(0x7472_6166); // traf
    pub(crate) const TFHD: FourCc = FourCc::from_u32(0x7466_6864); // tfhd
    pub(crate) const TFDT: FourCc = FourCc::from_u32(0x7466_6474); // tfdt
    pub(crate) const TRUN: FourCc = FourCc::from_u32(0x7472_756e); // trun
    pub(crate) const MDAT: FourCc = FourCc::from_u32(0x6d64_6174); // mdat
    pub(crate) const SIDX: FourCc = FourCc::from_u32(0x7369_6478); // sidx
    pub(crate) const MFRA: FourCc = FourCc::from_u32(0x6d66_7261); // mfra
    pub(crate) const FREE: FourCc = FourCc::from_u32(0x6672_6565); // free
    pub(crate) const UUID: FourCc = FourCc::from_u32(0x7575_6964); // uuid
    // Sample entries and their configuration boxes.
    pub(crate) const AVC1: FourCc = FourCc::from_u32(0x6176_6331); // avc1
    pub(crate) const AVC3: FourCc = FourCc::from_u32(0x6176_6333); // avc3
    pub(crate) const AVCC: FourCc = FourCc::from_u32(0x6176_6343); // avcC
    pub(crate) const HVC1: FourCc = FourCc::from_u32(0x6876_6331); // hvc1
    pub(crate) const HEV1: FourCc = FourCc::from_u32(0x6865_7631); // hev1
    pub(crate) const HVCC: FourCc = FourCc::from_u32(0x6876_6343); // hvcC
    pub(crate) const AV01: FourCc = FourCc::from_u32(0x6176_3031); // av01
    pub(crate) const AV1C: FourCc = FourCc::from_u32(0x6176_3143); // av1C
    pub(crate) const COLR: FourCc = FourCc::from_u32(0x636f_6c72); // colr
    pub(crate) const NCLX: FourCc = FourCc::from_u32(0x6e63_6c78); // nclx
    pub(crate) const AC_3: FourCc = FourCc::from_u32(0x6163_2d33); // ac-3
    pub(crate) const DAC3: FourCc = FourCc::from_u32(0x6461_6333); // dac3
    pub(crate) const EC_3: FourCc = FourCc::from_u32(0x6563_2d33); // ec-3
    pub(crate) const DEC3: FourCc = FourCc::from_u32(0x6465_6333); // dec3
    pub(crate) const OPUS: FourCc = FourCc::from_u32(0x4f70_7573); // Opus
    pub(crate) const DOPS: FourCc = FourCc::from_u32(0x644f_7073); // dOps
    pub(crate) const MP4A: FourCc = FourCc::from_u32(0x6d70_3461); // mp4a
    pub(crate) const ESDS: FourCc = FourCc::from_u32(0x6573_6473); // esds
    pub(crate) const PASP: FourCc = FourCc::from_u32(0x7061_7370); // pasp
    pub(crate) const BTRT: FourCc = FourCc::from_u32(0x6274_7274); // btrt
    // Handler types.
    pub(crate) const VIDE: FourCc = FourCc::from_u32(0x7669_6465); // vide
    pub(crate) const SOUN: FourCc = FourCc::from_u32(0x736f_756e); // soun
    // Brands.
    pub(crate) const ISO6: FourCc = FourCc::from_u32(0x6973_6f36); // iso6
    pub(crate) const CMFC: FourCc = FourCc::from_u32(0x636d_6663); // cmfc
    pub(crate) const MSDH: FourCc = FourCc::from_u32(0x6d73_6468); // msdh
    pub(crate) const MSIX: FourCc = FourCc::from_u32(0x6d73_6978); // msix
}

//! The signed body of a romlib manifest, generated from `romlib/manifest.proto`.
//!
//! The `.proto` file is the schema; `format-spec/SPEC.md` says how the body sits in the
//! manifest file and which bytes are signed.

#[allow(missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/romlib.manifest.v1.rs"));
}

pub use generated::{Chunker, DatMatch, FileEntry, Headerless, Manifest, SourceArchive};
pub use prost::Message;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown_fields_are_skipped() {
        let m = Manifest {
            format_version: 1,
            title_id: "t".into(),
            files: vec![FileEntry {
                path: "a.bin".into(),
                size: 3,
                ..Default::default()
            }],
            chunk_count: 1,
            ..Default::default()
        };
        let mut bytes = m.encode_to_vec();
        assert_eq!(Manifest::decode(bytes.as_slice()).unwrap(), m);
        // A later revision's field (20, reserved today) must not break this reader.
        bytes.extend_from_slice(&[0xa2, 0x01, 0x01, b'x']);
        assert_eq!(Manifest::decode(bytes.as_slice()).unwrap(), m);
        assert!(Manifest::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    /// A file without a header encodes exactly as before `headerless` existed (older
    /// manifests and golden vectors stay byte-identical), and a reader that predates the
    /// field skips it: `FileEntry` with fields 1 to 9 only, as such a reader knows it.
    #[test]
    fn headerless_is_absent_unless_set_and_skipped_by_older_readers() {
        #[derive(Clone, PartialEq, prost::Message)]
        struct OldFileEntry {
            #[prost(string, tag = "1")]
            path: String,
            #[prost(uint64, tag = "2")]
            size: u64,
            #[prost(optional, fixed32, tag = "6")]
            crc32: Option<u32>,
            #[prost(bytes = "vec", tag = "9")]
            sha256: Vec<u8>,
        }
        let plain = FileEntry {
            path: "a.nes".into(),
            size: 40976,
            crc32: Some(1),
            sha256: vec![2; 32],
            ..Default::default()
        };
        let old = OldFileEntry {
            path: "a.nes".into(),
            size: 40976,
            crc32: Some(1),
            sha256: vec![2; 32],
        };
        assert_eq!(plain.encode_to_vec(), old.encode_to_vec());
        let headered = FileEntry {
            headerless: Some(Headerless {
                detector: "ines".into(),
                header_size: 16,
                size: 40960,
                crc32: 3,
                md5: vec![4; 16],
                sha1: vec![5; 20],
                sha256: vec![6; 32],
            }),
            ..plain.clone()
        };
        let bytes = headered.encode_to_vec();
        assert_eq!(OldFileEntry::decode(bytes.as_slice()).unwrap(), old);
        assert_eq!(FileEntry::decode(bytes.as_slice()).unwrap(), headered);
    }
}

//! The signed body of a romlib manifest, generated from `romlib/manifest.proto`.
//!
//! The `.proto` file is the schema; `format-spec/SPEC.md` says how the body sits in the
//! manifest file and which bytes are signed.

#[allow(missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/romlib.manifest.v1.rs"));
}

pub use generated::{Chunker, DatMatch, FileEntry, Manifest};
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
        // A later revision's field (17, reserved today) must not break this reader.
        bytes.extend_from_slice(&[0x8a, 0x01, 0x01, b'x']);
        assert_eq!(Manifest::decode(bytes.as_slice()).unwrap(), m);
        assert!(Manifest::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}

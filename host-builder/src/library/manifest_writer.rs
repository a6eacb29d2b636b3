//! Encoding and signing manifests (SPEC section 3). Publishing them is
//! [`super::publish`].

use ed25519_dalek::{Signer, SigningKey};
use prost::Message;
use romlib_format::manifest::{
    ManifestHeader, SignatureBlock, CHUNK_RECORD_LEN, SIGNATURE_BLOCK_LEN, SIGNED_PREFIX_LEN,
};
use romlib_proto::Manifest;

/// Fills in the chunk table's hash and count, signs, and returns the whole manifest file.
pub fn encode_signed(mut body: Manifest, table: &[u8], key: &SigningKey) -> Vec<u8> {
    debug_assert_eq!(table.len() % CHUNK_RECORD_LEN, 0);
    body.chunk_count = (table.len() / CHUNK_RECORD_LEN) as u64;
    body.chunk_table_blake3 = blake3::hash(table).as_bytes().to_vec();
    sign_as_is(&body, table, key)
}

/// Signs `body` exactly as given (tests use it to make manifests whose fields disagree
/// with their table) and returns the whole manifest file.
pub fn sign_as_is(body: &Manifest, table: &[u8], key: &SigningKey) -> Vec<u8> {
    let body_bytes = body.encode_to_vec();
    let header = ManifestHeader {
        body_len: body_bytes.len() as u32,
    };
    // The signed message is the format's prefix (domain and header), then the body.
    let mut signed = Vec::with_capacity(SIGNED_PREFIX_LEN + body_bytes.len());
    signed.extend_from_slice(&header.signed_prefix());
    signed.extend_from_slice(&body_bytes);
    let header = header.encode();
    let signature = key.sign(&signed).to_bytes();
    let block = SignatureBlock {
        public_key: key.verifying_key().to_bytes(),
        signature,
    };
    let mut out = Vec::with_capacity(signed.len() + SIGNATURE_BLOCK_LEN + table.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&body_bytes);
    out.extend_from_slice(&block.encode());
    out.extend_from_slice(table);
    out
}

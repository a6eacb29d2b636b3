//! Benchmark reference: decodes every record of the given packs with ruzstd alone (one
//! reused decoder, one buffer; no hashing, no index, no writing) and prints the bytes
//! decoded. `romlib-device install` is measured against this.

use romlib_device::chunks::decoder::{ChunkDecoder, RuzstdDecoder};
use romlib_format::pack::{RecordHeader, FOOTER_LEN, HEADER_LEN, RECORD_HEADER_LEN};
use std::io::Read;

fn main() {
    let mut dec = RuzstdDecoder::default();
    let mut out = Vec::new();
    let mut payload = Vec::new();
    let mut total: u64 = 0;
    for path in std::env::args().skip(1) {
        let f = std::fs::File::open(&path).expect("open pack");
        let len = f.metadata().expect("stat").len();
        let mut r = std::io::BufReader::with_capacity(1 << 20, f);
        let mut hb = [0u8; HEADER_LEN];
        r.read_exact(&mut hb).expect("header");
        let mut pos = HEADER_LEN as u64;
        while pos < len - FOOTER_LEN as u64 {
            let mut rb = [0u8; RECORD_HEADER_LEN];
            r.read_exact(&mut rb).expect("record");
            let rec = RecordHeader::decode(&rb).expect("record header");
            payload.resize(rec.clen as usize, 0);
            r.read_exact(&mut payload).expect("payload");
            out.resize(rec.ulen as usize, 0);
            dec.decode(rec.method, &payload, &mut out).expect("decode");
            total += rec.ulen as u64;
            pos += (RECORD_HEADER_LEN + rec.clen as usize) as u64;
        }
    }
    println!("{total}");
}

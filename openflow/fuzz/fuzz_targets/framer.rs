//! `OfCodec::decode` on an arbitrary byte stream cut into arbitrary chunks (the first byte seeds
//! the cuts; see `weft_openflow_fuzz::check_framer`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_openflow_fuzz::TrackingAlloc;

#[global_allocator]
static ALLOC: TrackingAlloc = TrackingAlloc;

fuzz_target!(|data: &[u8]| {
    weft_openflow_fuzz::check_framer(data);
});

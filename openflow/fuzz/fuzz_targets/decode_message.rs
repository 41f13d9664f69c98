//! `Message::parse` on arbitrary bytes; whatever parses must survive the round trip
//! (see `weft_openflow_fuzz::check_message`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_openflow_fuzz::TrackingAlloc;

#[global_allocator]
static ALLOC: TrackingAlloc = TrackingAlloc;

fuzz_target!(|data: &[u8]| {
    weft_openflow_fuzz::check_message(data);
});

//! Record batches as a producer or a leader hands them to the log: every validation and parsing
//! entry point of `strom_log::batch` on arbitrary bytes. Nothing may panic; decompression is
//! bounded (scripts/fuzz runs this with `-malloc_limit_mb`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_log::batch::{self, Validation};

fuzz_target!(|data: &[u8]| {
    for validation in [Validation::Produce, Validation::Stored] {
        if let Ok(header) = batch::validate(data, validation) {
            assert_eq!(
                header.size(),
                data.len(),
                "a valid batch is the whole input"
            );
            if let Ok(payload) = batch::records_payload(data) {
                for record in batch::records(payload.as_slice(), header.records_count) {
                    if record.is_err() {
                        break;
                    }
                }
            }
        }
        let mut end = 0;
        for item in batch::batches(data, validation) {
            let Ok(batch) = item else { break };
            assert_eq!(batch.position, end, "batches are back to back");
            end = batch.position + batch.bytes.len();
            assert!(end <= data.len());
        }
    }
    let mut end = 0;
    for (position, header) in batch::batch_headers(data) {
        assert_eq!(position, end);
        end = position + header.size();
        assert!(end <= data.len());
    }
});

//! Opening a log whose segment and index files hold arbitrary bytes, as after a crash or a
//! damaged disk. Opening must not panic; after an unclean stop the recovered log must be
//! consistent: every batch from the log start to the log end offset reads back whole and valid,
//! offsets only go up, and recovering again gives the same log end offset.
//!
//! Input: one flag byte, a big-endian u16 length of the `.log` bytes, the `.log` bytes, then
//! the rest split in half between `.index` and `.timeindex`. Flags: bit 0 claims a clean
//! shutdown (recovery is skipped, only the indexes are checked), bit 1 recomputes the CRC of
//! every batch so that mutations reach the checks behind it, bit 2 leaves the index files out,
//! bit 3 splits the batches over two segments.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use strom_log::batch::{self, BatchHeader, Validation};
use strom_log::{Log, LogConfig, OpenOptions, TopicPartition};

const NOW_MS: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let [flags, len_hi, len_lo, rest @ ..] = data else {
        return;
    };
    let clean = flags & 1 != 0;
    let log_len = usize::from(u16::from_be_bytes([*len_hi, *len_lo])).min(rest.len());
    let (log_bytes, index_bytes) = rest.split_at(log_len);
    let mut log_bytes = log_bytes.to_vec();
    if flags & 2 != 0 {
        fix_crcs(&mut log_bytes);
    }
    let (index, time_index) = index_bytes.split_at(index_bytes.len() / 2);

    let tmp = tempfile::Builder::new()
        .tempdir_in(scratch())
        .expect("temporary directory");
    let dir = tmp.path().join("fuzz-0");
    std::fs::create_dir_all(&dir).expect("partition directory");
    let segments = if flags & 8 != 0 {
        split_in_two(&log_bytes)
    } else {
        vec![(0, &log_bytes[..])]
    };
    for (base, bytes) in &segments {
        let name = format!("{base:020}");
        std::fs::write(dir.join(format!("{name}.log")), bytes).expect("write segment");
        if flags & 4 == 0 {
            std::fs::write(dir.join(format!("{name}.index")), index).expect("write index");
            std::fs::write(dir.join(format!("{name}.timeindex")), time_index)
                .expect("write time index");
        }
    }

    let Ok(log) = open(&dir, clean) else {
        // A log that claims a clean shutdown is trusted; one that cannot be trusted may refuse
        // to open. After an unclean stop recovery must cope with anything.
        assert!(clean, "recovery failed to open the log");
        return;
    };
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    assert!(start <= end, "log start {start} above log end {end}");
    if clean {
        // Trusted bytes are served as they are; reading them must still not panic.
        let _ = log.read(start, 1 << 20, end, true);
        return;
    }
    read_everything(&log, start, end);
    drop(log);
    let again = open(&dir, false).expect("a recovered log reopens");
    assert_eq!(
        again.log_end_offset(),
        end,
        "recovering twice changed the log end offset"
    );
});

fn scratch() -> &'static Path {
    // Memory-backed when available: the target writes a few files per input.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { shm } else { Path::new("/tmp") }
}

fn open(dir: &Path, clean: bool) -> strom_log::Result<Log> {
    let config = LogConfig {
        segment_index_bytes: 4096,
        message_timestamp_after_max_ms: i64::MAX,
        ..LogConfig::default()
    };
    Log::open(
        dir.to_path_buf(),
        TopicPartition {
            topic: "fuzz".into(),
            partition: 0,
        },
        config,
        OpenOptions {
            recovery_point: 0,
            log_start_offset: 0,
            high_watermark: i64::MAX,
            had_clean_shutdown: clean,
            now_ms: NOW_MS,
        },
    )
}

/// Reads from `start` to `end` batch by batch: each read must return whole valid batches that
/// hold the offset asked for.
fn read_everything(log: &Log, start: i64, end: i64) {
    let mut offset = start;
    while offset < end {
        let read = log
            .read(offset, 1 << 20, end, true)
            .unwrap_or_else(|e| panic!("read at {offset} below the log end {end}: {e}"));
        assert!(
            !read.records.is_empty(),
            "nothing readable at {offset} below {end}"
        );
        for item in batch::batches(&read.records, Validation::Stored) {
            let batch = item.unwrap_or_else(|e| panic!("recovered batch at {offset}: {e}"));
            batch::validate(batch.bytes, Validation::Stored)
                .unwrap_or_else(|e| panic!("recovered batch at {offset}: {e}"));
            let header = batch.header;
            assert!(
                header.last_offset() >= offset,
                "batch ending at {} returned for offset {offset}",
                header.last_offset()
            );
            assert!(header.next_offset() <= end, "batch past the log end {end}");
            offset = header.next_offset();
        }
    }
}

/// Recomputes the CRC of every whole batch, so that mutated headers and records are judged by
/// the checks after the CRC.
fn fix_crcs(bytes: &mut [u8]) {
    let mut position = 0;
    while let Ok(header) = BatchHeader::parse(&bytes[position..]) {
        let size = header.size();
        if size < batch::RECORD_BATCH_OVERHEAD || position + size > bytes.len() {
            break;
        }
        batch::update_crc(&mut bytes[position..position + size]);
        position += size;
    }
}

/// Splits the bytes after the first batch into a second segment named by that batch's next
/// offset (one segment if there is no whole first batch).
fn split_in_two(bytes: &[u8]) -> Vec<(i64, &[u8])> {
    match BatchHeader::parse(bytes) {
        Ok(header) if header.size() <= bytes.len() && header.next_offset() > 0 => {
            let (first, second) = bytes.split_at(header.size());
            vec![(0, first), (header.next_offset(), second)]
        }
        _ => vec![(0, bytes)],
    }
}

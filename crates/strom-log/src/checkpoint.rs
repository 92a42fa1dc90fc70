//! Kafka's offset checkpoint files in a data directory: `recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `replication-offset-checkpoint` (high watermarks) and
//! `cleaner-offset-checkpoint`. Each maps partitions to one offset.
//!
//! File format (text, `\n` line ends), the same as Kafka's so tools can read it:
//!
//! ```text
//! 0                      <- version
//! 2                      <- number of entries
//! orders 0 1234          <- topic, partition, offset, separated by one space
//! orders 1 987
//! ```
//!
//! Files are replaced atomically: written to `<name>.tmp`, fsynced, renamed over the old
//! file, and the directory fsynced, so a crash leaves the old or the new checkpoint.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use crate::TopicPartition;

pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
pub const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";

const VERSION: &str = "0";

/// Why a checkpoint file does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed checkpoint at line {line}: {reason}")]
pub struct CheckpointError {
    pub line: usize,
    pub reason: &'static str,
}

/// Encodes an offset checkpoint.
pub fn encode(offsets: &BTreeMap<TopicPartition, i64>) -> String {
    let mut out = format!("{VERSION}\n{}\n", offsets.len());
    for (topic_partition, offset) in offsets {
        out.push_str(&format!(
            "{} {} {}\n",
            topic_partition.topic, topic_partition.partition, offset
        ));
    }
    out
}

/// Parses an offset checkpoint.
pub fn parse(text: &str) -> Result<BTreeMap<TopicPartition, i64>, CheckpointError> {
    let mut lines = text.lines();
    let error = |line, reason| CheckpointError { line, reason };
    if lines.next() != Some(VERSION) {
        return Err(error(1, "unsupported version"));
    }
    let count: usize = lines
        .next()
        .and_then(|line| line.trim().parse().ok())
        .ok_or(error(2, "bad entry count"))?;
    let mut offsets = BTreeMap::new();
    for i in 0..count {
        let line = lines.next().ok_or(error(3 + i, "missing entry"))?;
        let mut fields = line.split(' ');
        let (Some(topic), Some(partition), Some(offset), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(error(3 + i, "expected `topic partition offset`"));
        };
        let partition = partition
            .parse()
            .map_err(|_| error(3 + i, "bad partition"))?;
        let offset = offset.parse().map_err(|_| error(3 + i, "bad offset"))?;
        if topic.is_empty() {
            return Err(error(3 + i, "empty topic"));
        }
        offsets.insert(
            TopicPartition {
                topic: topic.to_owned(),
                partition,
            },
            offset,
        );
    }
    if lines.any(|line| !line.trim().is_empty()) {
        return Err(error(3 + count, "more entries than announced"));
    }
    Ok(offsets)
}

/// Reads a checkpoint file; a missing file is an empty checkpoint.
pub fn read(path: &Path) -> io::Result<Result<BTreeMap<TopicPartition, i64>, CheckpointError>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse(&text)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Ok(BTreeMap::new())),
        Err(error) => Err(error),
    }
}

/// Replaces a checkpoint file atomically.
pub fn write(path: &Path, offsets: &BTreeMap<TopicPartition, i64>) -> io::Result<()> {
    crate::io::write_atomically(path, encode(offsets).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.to_owned(),
            partition,
        }
    }

    #[test]
    fn checkpoint_text_is_kafkas_format_and_round_trips() {
        let mut offsets = BTreeMap::new();
        offsets.insert(tp("orders", 0), 1234);
        offsets.insert(tp("my-topic.v2", 11), 0);
        let text = encode(&offsets);
        assert_eq!(text, "0\n2\nmy-topic.v2 11 0\norders 0 1234\n");
        assert_eq!(parse(&text), Ok(offsets));
    }

    #[test]
    fn malformed_checkpoints_are_rejected() {
        assert!(parse("1\n0\n").is_err());
        assert!(parse("0\n2\na 0 1\n").is_err());
        assert!(parse("0\n1\na 0\n").is_err());
        assert!(parse("0\n1\na x 1\n").is_err());
        assert!(parse("0\n1\na 0 1\nb 0 2\n").is_err());
        assert_eq!(parse("0\n0\n").map(|o| o.len()), Ok(0));
    }

    #[test]
    fn write_then_read_survives_and_leaves_no_tmp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT);
        assert_eq!(read(&path).expect("io").expect("parse").len(), 0);
        let mut offsets = BTreeMap::new();
        offsets.insert(tp("t", 3), 77);
        write(&path, &offsets).expect("write");
        assert_eq!(read(&path).expect("io"), Ok(offsets));
        assert!(
            !dir.path()
                .join(format!("{RECOVERY_POINT_CHECKPOINT}.tmp"))
                .exists()
        );
    }
}

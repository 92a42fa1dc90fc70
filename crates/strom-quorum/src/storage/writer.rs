//! The metadata log's writer thread: the only code that writes the log file and the small
//! state files (vote, committed, purged).
//!
//! [`super::LogStore`] updates its in-memory index first (so entries are readable as soon as
//! `append` returns) and then sends the writer a [`WriteCommand`] over a bounded channel. The
//! thread executes commands one at a time in the order they were sent, which is what openraft
//! asks of a log store ("all write IO must be serialized", vote and entries alike), and keeps
//! blocking file IO off tokio's worker threads. An append is acknowledged through openraft's
//! `LogFlushed` callback once it is fdatasynced; the other commands answer on a oneshot.
//!
//! After the first failure every later command fails too: a write that may have been lost must
//! never be followed by writes that assume it happened (openraft stops the node on the error).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use openraft::storage::LogFlushed;
use tokio::sync::{mpsc, oneshot};

use super::frame::replace_file;
use crate::types::TypeConfig;

/// How many commands may wait for the writer before senders wait too.
const QUEUE_DEPTH_MAX: usize = 256;

enum WriteCommand {
    /// Appends already framed entries to the end of the log file, then calls back.
    Append {
        frames: Vec<u8>,
        callback: LogFlushed<TypeConfig>,
    },
    /// Atomically replaces the small state file `name` with `bytes`.
    SaveState {
        name: &'static str,
        bytes: Vec<u8>,
        done: oneshot::Sender<io::Result<()>>,
    },
    /// Cuts the log file at `position`, dropping every frame from there on.
    Truncate {
        position: u64,
        done: oneshot::Sender<io::Result<()>>,
    },
    /// Replaces the log file with `frames` (the entries still kept).
    ReplaceLog {
        frames: Vec<u8>,
        done: oneshot::Sender<io::Result<()>>,
    },
}

/// The sending side of the writer thread. Dropping it lets the thread drain its queue and exit.
pub(crate) struct Writer {
    tx: mpsc::Sender<WriteCommand>,
}

impl Writer {
    /// Starts the writer thread for the log file `dir/log_file`, opened for appending.
    pub(crate) fn spawn(dir: PathBuf, log_file: &'static str) -> io::Result<Writer> {
        let file = open_for_append(&dir.join(log_file))?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH_MAX);
        let thread = WriterThread {
            dir,
            log_file,
            file,
            failed: None,
        };
        std::thread::Builder::new()
            .name("metadata-log-writer".into())
            .spawn(move || thread.run(rx))?;
        Ok(Writer { tx })
    }

    /// Queues framed entries; `callback` reports when they are durable.
    pub(crate) async fn append(
        &self,
        frames: Vec<u8>,
        callback: LogFlushed<TypeConfig>,
    ) -> io::Result<()> {
        self.tx
            .send(WriteCommand::Append { frames, callback })
            .await
            .map_err(|_| stopped())
    }

    /// Replaces the state file `name` and waits until the new content is durable.
    pub(crate) async fn save_state(&self, name: &'static str, bytes: Vec<u8>) -> io::Result<()> {
        self.call(|done| WriteCommand::SaveState { name, bytes, done })
            .await
    }

    /// Cuts the log file at `position` and waits until the cut is durable.
    pub(crate) async fn truncate(&self, position: u64) -> io::Result<()> {
        self.call(|done| WriteCommand::Truncate { position, done })
            .await
    }

    /// Replaces the log file with `frames` and waits until the new file is durable.
    pub(crate) async fn replace_log(&self, frames: Vec<u8>) -> io::Result<()> {
        self.call(|done| WriteCommand::ReplaceLog { frames, done })
            .await
    }

    async fn call(
        &self,
        command: impl FnOnce(oneshot::Sender<io::Result<()>>) -> WriteCommand,
    ) -> io::Result<()> {
        let (done, answer) = oneshot::channel();
        self.tx.send(command(done)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> io::Error {
    io::Error::other("the metadata log writer thread has stopped")
}

fn open_for_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

struct WriterThread {
    dir: PathBuf,
    log_file: &'static str,
    /// Opened in append mode: every write lands at the current end of the file, including
    /// right after a truncation.
    file: File,
    /// Why the first failed command failed; set once, never cleared.
    failed: Option<String>,
}

impl WriterThread {
    fn run(mut self, mut rx: mpsc::Receiver<WriteCommand>) {
        while let Some(command) = rx.blocking_recv() {
            self.execute(command);
        }
    }

    fn execute(&mut self, command: WriteCommand) {
        // A dropped receiver means the caller's future was cancelled; the write still happened
        // in order, so there is nobody left to tell and nothing to undo.
        match command {
            WriteCommand::Append { frames, callback } => {
                callback.log_io_completed(self.guard(|w| w.append(&frames)));
            }
            WriteCommand::SaveState { name, bytes, done } => {
                let _ = done.send(self.guard(|w| replace_file(&w.dir, name, &bytes)));
            }
            WriteCommand::Truncate { position, done } => {
                let _ = done.send(self.guard(|w| w.truncate(position)));
            }
            WriteCommand::ReplaceLog { frames, done } => {
                let _ = done.send(self.guard(|w| w.replace_log(&frames)));
            }
        }
    }

    /// Runs `op` unless an earlier command failed, and remembers the first failure.
    fn guard(&mut self, op: impl FnOnce(&mut Self) -> io::Result<()>) -> io::Result<()> {
        if let Some(why) = &self.failed {
            return Err(io::Error::other(format!(
                "the metadata log stopped writing after an earlier failure: {why}"
            )));
        }
        let result = op(self);
        if let Err(e) = &result {
            tracing::error!(dir = %self.dir.display(), error = %e, "metadata log write failed");
            self.failed = Some(e.to_string());
        }
        result
    }

    fn append(&mut self, frames: &[u8]) -> io::Result<()> {
        self.file.write_all(frames)?;
        self.file.sync_data()
    }

    fn truncate(&mut self, position: u64) -> io::Result<()> {
        self.file.set_len(position)?;
        self.file.sync_all()
    }

    /// Replaces the log file with `frames` (temp file, fsync, rename, fsync the directory),
    /// so frames of purged entries stop taking space. A crash leaves either file whole.
    fn replace_log(&mut self, frames: &[u8]) -> io::Result<()> {
        replace_file(&self.dir, self.log_file, frames)?;
        self.file = open_for_append(&self.dir.join(self.log_file))?;
        Ok(())
    }
}

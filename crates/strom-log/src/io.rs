//! The file-IO seam: every write, sync, resize, rename and delete of the storage engine goes
//! through these functions, so tests can inject faults (ENOSPC, EIO, torn writes) on exact
//! files and operations. The injection points exist only in this crate's tests and with the
//! `fault-injection` feature (for other crates' tests); otherwise the seam compiles to plain
//! `std` calls.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Writes all of `buf` at `position` (one `pwrite` in the common case).
pub(crate) fn write_all_at(file: &File, path: &Path, buf: &[u8], position: u64) -> io::Result<()> {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Some(fault) = faults::check(faults::Op::Write, path) {
        if fault.torn {
            // A torn write: half the bytes reach the file before the device fails.
            file.write_all_at(&buf[..buf.len() / 2], position)?;
        }
        return Err(fault.error());
    }
    let _ = path;
    file.write_all_at(buf, position)
}

/// Reads into `buf` at `position` until it is full or the file ends; returns the bytes read.
pub(crate) fn read_at(
    file: &File,
    path: &Path,
    buf: &mut [u8],
    position: u64,
) -> io::Result<usize> {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Some(fault) = faults::check(faults::Op::Read, path) {
        return Err(fault.error());
    }
    let _ = path;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], position + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// `fdatasync`.
pub(crate) fn sync_data(file: &File, path: &Path) -> io::Result<()> {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Some(fault) = faults::check(faults::Op::Sync, path) {
        return Err(fault.error());
    }
    let _ = path;
    file.sync_data()
}

/// `fsync`, for files whose size changed (metadata matters).
pub(crate) fn sync_all(file: &File, path: &Path) -> io::Result<()> {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Some(fault) = faults::check(faults::Op::Sync, path) {
        return Err(fault.error());
    }
    let _ = path;
    file.sync_all()
}

pub(crate) fn set_len(file: &File, path: &Path, len: u64) -> io::Result<()> {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Some(fault) = faults::check(faults::Op::SetLen, path) {
        return Err(fault.error());
    }
    let _ = path;
    file.set_len(len)
}

/// Opens a file for reading and writing, creating it (empty) when `create` is set.
pub(crate) fn open_rw(path: &Path, create: bool, truncate: bool) -> io::Result<File> {
    #[cfg(any(test, feature = "fault-injection"))]
    if create && let Some(fault) = faults::check(faults::Op::Create, path) {
        return Err(fault.error());
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(truncate)
        .open(path)
}

pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Some(fault) = faults::check(faults::Op::Rename, from) {
        return Err(fault.error());
    }
    std::fs::rename(from, to)
}

pub(crate) fn remove_file(path: &Path) -> io::Result<()> {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Some(fault) = faults::check(faults::Op::Remove, path) {
        return Err(fault.error());
    }
    match std::fs::remove_file(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Fsyncs a directory so that creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Some(fault) = faults::check(faults::Op::Sync, dir) {
        return Err(fault.error());
    }
    File::open(dir)?.sync_all()
}

/// Writes a small file atomically: a temporary file, fsync, rename over the target, fsync
/// of the directory. A crash leaves either the old or the new content, never a mix.
pub(crate) fn write_atomically(path: &Path, content: &[u8]) -> io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let file = open_rw(tmp, true, true)?;
    write_all_at(&file, tmp, content, 0)?;
    sync_all(&file, tmp)?;
    drop(file);
    rename(tmp, path)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => Ok(()),
    }
}

/// Fault injection for tests: a fault matches an operation on any path containing a given
/// string (tests use their unique temporary directory, so parallel tests do not interfere).
#[cfg(any(test, feature = "fault-injection"))]
pub mod faults {
    use std::io;
    use std::path::Path;
    use std::sync::Mutex;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Op {
        Write,
        Read,
        Sync,
        SetLen,
        Create,
        Rename,
        Remove,
    }

    #[derive(Debug, Clone)]
    pub struct Fault {
        id: u64,
        path_contains: String,
        op: Op,
        errno: i32,
        /// Only for writes: write half the buffer before failing.
        pub torn: bool,
        /// How many more times the fault fires; `None` = forever.
        remaining: Option<usize>,
    }

    impl Fault {
        pub fn error(&self) -> io::Error {
            io::Error::from_raw_os_error(self.errno)
        }
    }

    pub const ENOSPC: i32 = 28;
    pub const EIO: i32 = 5;

    static FAULTS: Mutex<Vec<Fault>> = Mutex::new(Vec::new());
    static NEXT_ID: Mutex<u64> = Mutex::new(0);

    /// Removes its fault when dropped.
    pub struct FaultGuard(u64);

    impl Drop for FaultGuard {
        fn drop(&mut self) {
            let mut faults = FAULTS.lock().unwrap_or_else(|e| e.into_inner());
            faults.retain(|fault| fault.id != self.0);
        }
    }

    /// Makes `op` fail with `errno` on paths containing `path_contains`, `times` times
    /// (`None` = until the guard is dropped).
    pub fn inject(
        path_contains: &Path,
        op: Op,
        errno: i32,
        torn: bool,
        times: Option<usize>,
    ) -> FaultGuard {
        let id = {
            let mut next = NEXT_ID.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            *next
        };
        FAULTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Fault {
                id,
                path_contains: path_contains.to_string_lossy().into_owned(),
                op,
                errno,
                torn,
                remaining: times,
            });
        FaultGuard(id)
    }

    pub(super) fn check(op: Op, path: &Path) -> Option<Fault> {
        let mut faults = FAULTS.lock().unwrap_or_else(|e| e.into_inner());
        let path = path.to_string_lossy();
        let fault = faults
            .iter_mut()
            .find(|fault| fault.op == op && path.contains(&fault.path_contains))?;
        match &mut fault.remaining {
            Some(0) => return None,
            Some(remaining) => *remaining -= 1,
            None => {}
        }
        Some(fault.clone())
    }
}

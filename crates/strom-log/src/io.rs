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

/// Writes the concatenation of `pieces` at `position`: one `pwritev` in the common case, so an
/// append can write the request's bytes where they are, with only the patched batch headers
/// coming from elsewhere.
pub(crate) fn write_all_vectored_at(
    file: &File,
    path: &Path,
    pieces: &mut [io::IoSlice<'_>],
    position: u64,
) -> io::Result<()> {
    #[cfg(any(test, feature = "fault-injection"))]
    if faults::armed() {
        let whole: Vec<u8> = pieces
            .iter()
            .flat_map(|piece| piece.iter().copied())
            .collect();
        return write_all_at(file, path, &whole, position);
    }
    let _ = path;
    let mut remaining = pieces;
    let mut at = position;
    while remaining.iter().any(|piece| !piece.is_empty()) {
        // IOV_MAX is 1024 on Linux; longer lists go in several calls.
        let batch = remaining.len().min(1024);
        match rustix::io::pwritev(file, &remaining[..batch], at) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                at += n as u64;
                io::IoSlice::advance_slices(&mut remaining, n);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// Appends up to `len` bytes read at `position` to `buf`, reading into its spare capacity so
/// that the destination is not zeroed first (a fetch reads up to a megabyte per partition, and
/// clearing it cost as much as the read). The kernel may fill more of the spare capacity than
/// `len`; those bytes are cut off again, so the caller sees exactly the range it asked for
/// (past it may be a batch still being written). Stops early only at the end of the file;
/// returns the bytes appended.
pub(crate) fn read_append_at(
    file: &File,
    path: &Path,
    buf: &mut Vec<u8>,
    len: usize,
    position: u64,
) -> io::Result<usize> {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Some(fault) = faults::check(faults::Op::Read, path) {
        return Err(fault.error());
    }
    let _ = path;
    let start = buf.len();
    while buf.len() - start < len {
        buf.reserve(len - (buf.len() - start));
        let at = position + (buf.len() - start) as u64;
        match rustix::io::pread(file, rustix::buffer::spare_capacity(buf), at) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(error) => {
                buf.truncate(start);
                return Err(error.into());
            }
        }
    }
    buf.truncate(start + len);
    Ok(buf.len() - start)
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

    /// Whether any fault is registered (a vectored write then takes the plain path, which
    /// knows how to tear).
    pub(super) fn armed() -> bool {
        !FAULTS.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_writes_land_in_order_past_the_iovec_limit_and_reads_append_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("open");
        // 3,000 pieces (more than IOV_MAX), some empty, at a non-zero position.
        let owned: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| vec![(i % 251) as u8; (i % 7) as usize])
            .collect();
        let mut pieces: Vec<io::IoSlice<'_>> = owned.iter().map(|o| io::IoSlice::new(o)).collect();
        write_all_at(&file, &path, b"head", 0).expect("write");
        write_all_vectored_at(&file, &path, &mut pieces, 4).expect("write");
        let expected: Vec<u8> = b"head".iter().copied().chain(owned.concat()).collect();
        assert_eq!(std::fs::read(&path).expect("read"), expected);

        // Reads append to what the buffer holds and never return more than asked for.
        let mut buf = b"xy".to_vec();
        let n = read_append_at(&file, &path, &mut buf, 10, 2).expect("read");
        assert_eq!(n, 10);
        assert_eq!(&buf[..2], b"xy");
        assert_eq!(&buf[2..], &expected[2..12]);
        // Past the end of the file: short.
        let mut buf = Vec::with_capacity(1 << 20);
        let n = read_append_at(&file, &path, &mut buf, 1 << 20, 0).expect("read");
        assert_eq!(n, expected.len());
        assert_eq!(buf, expected);
    }
}

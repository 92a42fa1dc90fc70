//! The process's own resource use, from /proc.

/// Resident memory in bytes and CPU time in seconds (user + system), when /proc is readable.
pub fn usage() -> Option<(u64, f64)> {
    let me = procfs::process::Process::myself().ok()?;
    let stat = me.stat().ok()?;
    let ticks = procfs::ticks_per_second() as f64;
    let page = procfs::page_size();
    Some((stat.rss * page, (stat.utime + stat.stime) as f64 / ticks))
}

//! Shared by the benchmark binaries: process statistics read from /proc, printed as the same
//! `STAT` lines the Godot bench server prints, so one script reads both.

use std::time::{SystemTime, UNIX_EPOCH};

/// User + system CPU time in clock ticks from a /proc `stat` file (fields 14 and 15).
pub fn cpu_ticks(path: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    // The command name (field 2) may contain spaces: count fields after its closing parenthesis.
    let Some(rest) = text.rfind(')').map(|i| &text[i + 2..]) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12) // utime, stime (fields 14 and 15; 'rest' starts at field 3)
}

/// Resident memory in KiB.
pub fn rss_kib() -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn unix_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Counters a bench server keeps, printed as one `STAT` line.
#[derive(Default, Clone, Copy)]
pub struct Stats {
    pub msgs: u64,
    pub work_usec: u64,
    pub poll_usec: u64,
    pub frames: u64,
    pub peers: u64,
}

impl Stats {
    pub fn line(&self) -> String {
        let pid = std::process::id();
        format!(
            "STAT {:.6} {} {} {} {} {} {} {} {}",
            unix_time(),
            self.msgs,
            self.work_usec,
            self.poll_usec,
            self.frames,
            cpu_ticks(&format!("/proc/self/task/{pid}/stat")),
            cpu_ticks("/proc/self/stat"),
            rss_kib(),
            self.peers
        )
    }
}

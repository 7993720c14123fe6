//! What the I/O thread asks of the operating system beyond sockets: its scheduling class, handing
//! freed memory back, the open-file limit, and how an `accept` failure is told to the game.

/// What the game is told when `accept` starts failing.
pub(crate) fn accept_error_text(e: &std::io::Error) -> String {
    let limit = open_file_limit().map_or(String::new(), |n| {
        format!(" (this process may have {n} open files: ulimit -n)")
    });
    match e.raw_os_error() {
        #[cfg(unix)]
        Some(code) if code == libc_emfile() => format!(
            "cannot accept new connections: out of file descriptors{limit}. New clients wait in the kernel's queue until connections close; set max_connections below the limit, or raise it"
        ),
        _ => format!("cannot accept new connections: {e}{limit}. Retrying with backoff"),
    }
}

#[cfg(unix)]
fn libc_emfile() -> i32 {
    24 // EMFILE on Linux, macOS and the BSDs
}

fn open_file_limit() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            return Some(limit.rlim_cur);
        }
    }
    None
}

/// Linux: puts the calling thread (the I/O thread) under `SCHED_BATCH`. It still gets its fair
/// share of the CPU, at once whenever a core is free; but when every core is busy, waking it
/// (a reply queued, a packet arrived) no longer preempts the thread running there, typically the
/// game's main thread, which would otherwise lose the rest of its frame to the I/O thread's
/// writes on a machine with one or two cores (measured: the game thread's time to send 100
/// replies fell 3-5× on 2 cores under load). Elsewhere, nothing.
pub(crate) fn defer_to_other_threads() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: plain system call on the calling thread (pid 0) with a valid parameter; a
        // failure (a sandbox forbidding it) leaves the thread as it was.
        unsafe {
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
        }
    }
}

/// Hands memory that is free but still held by the C allocator back to the system. glibc keeps
/// freed memory in its arenas (one per thread that allocated), so after a crowd of clients with
/// large messages has gone, the process would otherwise stay at its peak size for good. Called
/// only when the I/O thread has been idle for a second after connections closed; it takes a few
/// milliseconds, and only on this thread.
pub(crate) fn trim_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

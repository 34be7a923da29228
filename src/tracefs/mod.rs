//! Install, enable and tear down probes through tracefs.
//!
//! A live run works inside its own tracefs instance,
//! `instances/coolkprobe_<PID>_<PIDNS>`: its own ring buffer, filters,
//! triggers, pid filters and buffer size. Several runs (and anyone else
//! using the top-level buffer) then never read each other's events, and
//! removing the instance undoes every per-event setting at once. Only the
//! dynamic event definitions (kprobe_events / uprobe_events) are global;
//! those carry our group name.
//!
//! Who owns a group is decided by a lock the kernel drops when its holder
//! dies: the run holds `flock` on its instance directory. Tracefs is one
//! file system for the whole machine (every mount of it, in any mount or
//! PID namespace, shows the same inodes), so the lock is seen by runs in
//! other containers too, where the PID in the name means nothing.

pub mod commands;
pub mod format;
pub mod hist;
pub mod printfmt;
mod profile;
pub mod script;
mod session;
pub mod synth;

pub use profile::probe_misses;
pub use session::{
    check_plan, cleanup_stale, emergency_teardown, in_initial_pid_ns, own_tids, parse_group,
    run_group, PidFilter, Session, SessionOptions, Tracefs,
};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error("coolkprobe needs root to trace (running as uid {uid})")]
    NotRoot { uid: u32 },
    #[error("no tracefs: {0} (tried /sys/kernel/tracing and /sys/kernel/debug/tracing)")]
    NoTracefs(String),
    #[error(
        "this kernel has no kprobe events ({path} is missing; CONFIG_KPROBE_EVENTS is off): \
         `p`/`r` on kernel functions cannot work here, but uprobes (`p /path/bin:symbol`) \
         and tracepoints (`t SYSTEM:EVENT`) still do"
    )]
    NoKprobes { path: PathBuf },
    #[error("{path}: no uprobe events on this kernel (CONFIG_UPROBE_EVENTS is off)")]
    NoUprobes { path: PathBuf },
    // Not a `source`: the message already holds it, and the kernel's
    // explanation follows it.
    #[error("writing `{text}` to {path}: {error}{}", kernel_says(.log))]
    Write {
        path: PathBuf,
        text: String,
        error: std::io::Error,
        /// What the kernel logged in the `error_log` the write reports to
        /// (the instance's, for files inside it), newer than the write;
        /// None when it logged nothing.
        log: Option<String>,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An event `format` file that does not say what it should.
    #[error("format file: {what}")]
    Format { what: String },
    #[error("tracepoint {system}:{event} does not exist (no {path})")]
    NoTracepoint {
        system: String,
        event: String,
        path: PathBuf,
    },
    #[error("{0}")]
    Unsupported(String),
}

fn kernel_says(log: &Option<String>) -> String {
    match log {
        Some(l) => format!("\nthe kernel says (error_log):\n{l}"),
        None => "\n(the kernel logged no reason in error_log; some errors are only in the \
                 kernel log: see dmesg)"
            .to_string(),
    }
}

/// One line on stderr that can neither panic nor hang the run: a closed
/// stderr (EPIPE), a hung-up terminal (EIO) or a signal (EINTR) drops the
/// line. `eprintln!` panics on a failed write, and a panic during
/// teardown would abort it.
pub fn say(args: std::fmt::Arguments<'_>) {
    let mut line = args.to_string();
    line.push('\n');
    let mut b = line.as_bytes();
    while !b.is_empty() {
        let n = unsafe { libc::write(2, b.as_ptr().cast(), b.len()) };
        if n <= 0 {
            return;
        }
        b = &b[n as usize..];
    }
}

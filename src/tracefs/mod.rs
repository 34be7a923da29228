//! Install, enable and tear down probes through tracefs.
//!
//! A live run works inside its own tracefs instance,
//! `instances/coolkprobe_<PID>`: its own ring buffer, filters, triggers
//! and buffer size. Several runs (and anyone else using the top-level
//! buffer) then never read each other's events, and removing the
//! instance undoes every per-event setting at once. Only the dynamic
//! event definitions (kprobe_events / uprobe_events) are global; those
//! carry our group name.

pub mod commands;
pub mod format;
pub mod hist;
pub mod printfmt;
pub mod script;
mod session;
pub mod synth;

pub use session::{cleanup_stale, Session, SessionOptions, Tracefs};

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
    #[error("writing `{text}` to {path}: {source}{}", kernel_says(.log))]
    Write {
        path: PathBuf,
        text: String,
        source: std::io::Error,
        /// The kernel's explanation from `error_log`, when it left one.
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
}

fn kernel_says(log: &Option<String>) -> String {
    match log {
        Some(l) => format!("\nthe kernel says (error_log):\n{l}"),
        None => String::new(),
    }
}

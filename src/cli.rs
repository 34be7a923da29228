//! Command-line options. The short flags are the old tool's and stay.

use std::path::PathBuf;

use clap::Parser;

use crate::arch::Arch;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "coolkprobe",
    version,
    about = "Trace kernel and user functions with C-typed probe specs",
    long_about = "Compiles probe specs written in C terms (`p wake_up_new_task comm=%0~(struct task_struct)->comm`) \
                  into ftrace kprobe/uprobe definitions using the kernel's BTF, installs them through tracefs, \
                  and streams the events as text or JSON."
)]
pub struct Args {
    /// Probe specs: `TYPE PLACE [NAME=EXPR]... [f:FILTER]`, one quoted argument each.
    #[arg(value_name = "PROBE")]
    pub probes: Vec<String>,

    /// Type source: an ELF vmlinux (its .BTF, else its DWARF) or a raw BTF file.
    /// Default: /sys/kernel/btf/vmlinux (+ module BTF beside it).
    #[arg(short = 'v', long = "vmlinux", value_name = "PATH")]
    pub vmlinux: Option<PathBuf>,

    /// Read probes from a file, one per line (`#` starts a comment).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Target architecture: x86_64 (x86), aarch64 (arm64), arm, riscv64. Default: the host's.
    #[arg(short = 'a', long = "arch", value_name = "ARCH")]
    pub arch: Option<Arch>,

    /// Kernel stack trace with every event.
    #[arg(short = 's', long = "stack")]
    pub stack: bool,

    /// Print the tracefs commands as a shell script and apply nothing.
    #[arg(short = 'S', long = "show")]
    pub show: bool,

    /// One JSON object per event (NDJSON).
    #[arg(long)]
    pub json: bool,

    /// Stop after this long (e.g. `10`, `500ms`, `2m`).
    #[arg(short = 'd', long = "duration", value_name = "TIME")]
    pub duration: Option<String>,

    /// Stop after this many events.
    #[arg(short = 'c', long = "count", value_name = "N")]
    pub count: Option<u64>,

    /// Write trace data to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Per-CPU ring-buffer size in KiB (the kernel's buffer_size_kb), restored on exit.
    #[arg(long = "buffer-kb", value_name = "KB")]
    pub buffer_kb: Option<u64>,

    /// Only events from these CPUs (comma-separated list).
    #[arg(long = "cpu", value_name = "LIST", value_delimiter = ',')]
    pub cpus: Vec<u32>,

    /// Print a struct's (or union's) layout with member offsets, like `pahole -C`.
    #[arg(long = "layout", value_name = "STRUCT", help_heading = "Discovery")]
    pub layout: Option<String>,

    /// List a function's arguments with their types and registers, like `perf probe -V`.
    #[arg(long = "args", value_name = "FUNC", help_heading = "Discovery")]
    pub args: Option<String>,

    /// Search functions by name: a glob (`tcp_*_rcv`) or a plain substring.
    #[arg(long = "funcs", value_name = "PATTERN", help_heading = "Discovery")]
    pub funcs: Option<String>,

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[arg(long = "completions", value_name = "SHELL", help_heading = "Discovery")]
    pub completions: Option<clap_complete::Shell>,

    /// How `%N` is read at a kprobe's entry: the kernel's `$argN`, the arch's registers,
    /// or `auto` ($argN when the running kernel lists it and no -v/-a names another target).
    #[arg(long = "arg-fetch", value_name = "HOW", default_value = "auto")]
    pub arg_fetch: ArgFetch,

    /// Only this process: its threads, and the tasks it starts from then on
    /// (the kernel's set_event_pid with event-fork, in the run's instance).
    #[arg(short = 'p', long = "pid", value_name = "PID", conflicts_with = "tid")]
    pub pid: Option<u32>,

    /// Only this thread (the kernel's set_event_pid, without event-fork).
    #[arg(long = "tid", value_name = "TID")]
    pub tid: Option<u32>,

    /// Record coolkprobe's own threads too (left out by default).
    #[arg(long = "trace-self")]
    pub trace_self: bool,

    /// Most KiB of events each CPU holds in memory between the kernel and the
    /// output (default 4096); past it the kernel's ring buffer takes the load.
    #[arg(long = "queue-kb", value_name = "KB")]
    pub queue_kb: Option<u64>,

    /// Where aggregations (`count()`, `hist(v)`...) are computed: in the kernel
    /// (hist triggers), in user space (every event streamed), or `auto`
    /// (the kernel when it has hist triggers).
    #[arg(long = "agg", value_name = "WHERE", default_value = "auto")]
    pub agg: AggWhere,

    /// Entries of each aggregation's table (the kernel's hist `size=`:
    /// a power of two, 128 to 131072; default 2048). Keys past it are dropped, and counted.
    #[arg(long = "agg-size", value_name = "N")]
    pub agg_size: Option<usize>,

    /// Print the aggregations (totals so far) this often, e.g. `1s`.
    #[arg(short = 'i', long = "interval", value_name = "TIME")]
    pub interval: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggWhere {
    Auto,
    Kernel,
    User,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgFetch {
    Auto,
    Regs,
    Argn,
}

//! Command-line options, parsed once; the short flags are the old tool's
//! and stay. What the library needs of them it gets as its own,
//! clap-free, option structs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

use coolkprobe::arch::Arch;
use coolkprobe::live::{AggRun, LatencyRun, LiveOptions};
use coolkprobe::pipeline::{self, BuildError, Built, Source};
use coolkprobe::tracefs::PidFilter;

use crate::diagnostics::{render, render_probes};
use crate::exit::Failure;

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

    /// Type source: an ELF vmlinux (its .BTF, else its DWARF) or a raw BTF file,
    /// either also as `.xz` or `.tar.xz`. Default: /sys/kernel/btf/vmlinux (+ module
    /// BTF beside it). Several -v, or a directory of such files, name a fleet of
    /// kernels: `-S` prints one script for all of them, `--check` a report.
    #[arg(short = 'v', long = "vmlinux", value_name = "PATH")]
    pub vmlinux: Vec<PathBuf>,

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

    /// Compile every probe for every kernel (-v) and print a table, probes by
    /// kernels: ok, how it differs from the first kernel, or why it fails there
    /// (--json: one JSON object). Exit 1 when a probe fails on some kernel.
    #[arg(long = "check", conflicts_with = "show")]
    pub check: bool,

    /// One JSON object per event (NDJSON).
    #[arg(long)]
    pub json: bool,

    /// Stop after this long (e.g. `10`, `500ms`, `2m`).
    #[arg(short = 'd', long = "duration", value_name = "TIME", value_parser = duration)]
    pub duration: Option<Duration>,

    /// Stop after this many events.
    #[arg(short = 'c', long = "count", value_name = "N", value_parser = count)]
    pub count: Option<u64>,

    /// Write trace data (with -S, the script) to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Per-CPU ring-buffer size in KiB of the run's instance (default: the kernel's, raised to
    /// 4096 where that is at most 1/2048 of memory over all CPUs).
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

    /// Where latencies (`l FUNC`, `since(fN)`) are paired: in the kernel (a
    /// synthetic event fed by hist triggers), in user space (both events
    /// streamed), or `auto` (the kernel when it has synthetic events).
    #[arg(long = "latency", value_name = "WHERE", default_value = "auto")]
    pub latency: AggWhere,

    /// Numbers only: no enum, errno, bool, symbol or flag names, uprobe
    /// places as addresses (the output of versions before names).
    #[arg(long = "raw")]
    pub raw: bool,

    /// Print the aggregations (totals so far) this often, e.g. `1s`.
    #[arg(short = 'i', long = "interval", value_name = "TIME", value_parser = duration)]
    pub interval: Option<Duration>,
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

/// What the options ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `--layout`, `--args`, `--funcs`, `--completions`.
    Discover,
    /// `-S`: the tracefs commands as a script.
    Show,
    /// `--check`: every probe compiled for every kernel, in a table.
    Check,
    /// A live run.
    Trace,
}

/// The longest `-d`/`-i`: a run meant to last longer is one without `-d`,
/// which lasts until it is stopped.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// `10` (seconds), `1.5s`, `500ms`, `2m`: a bad one, zero, or one longer
/// than [`MAX_DURATION`] is a usage error.
fn duration(s: &str) -> Result<Duration, String> {
    let too_long = "at most 365 days (without -d a run lasts until it is stopped)";
    let d = coolkprobe::live::parse_duration(s).map_err(|e| {
        // A number with a unit, too large for any duration.
        let t = s.trim();
        let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &t[digits.len()..];
        match digits.parse::<f64>() {
            Ok(n) if n > 0.0 && matches!(unit, "" | "ms" | "s" | "m" | "min" | "h") => {
                too_long.to_string()
            }
            _ => e.to_string(),
        }
    })?;
    if d.is_zero() {
        return Err("it must be longer than 0".into());
    }
    if d > MAX_DURATION {
        return Err(too_long.into());
    }
    Ok(d)
}

/// `-c N`: at least one event.
fn count(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("at least 1 (without -c a run prints every event)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

impl Args {
    /// What the options name, checked before anything else is done: the
    /// files they name can be read (or written), the sizes are in range.
    /// Options a `-S` run does not use are said to be ignored.
    pub fn check(&self) -> Result<(), Failure> {
        let mut bad = Vec::new();
        let readable = |flag: &str, path: &Path| -> Option<String> {
            let why = match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => "it is a directory".to_string(),
                Ok(_) => match std::fs::File::open(path) {
                    Ok(_) => return None,
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            Some(format!("{flag} {}: cannot read it: {why}", path.display()))
        };
        for v in &self.vmlinux {
            // A directory of several kernels' types is a fleet.
            if !v.is_dir() {
                bad.extend(readable("-v", v));
            } else {
                use coolkprobe::types::{target, TypeError};
                match target::files(std::slice::from_ref(v)) {
                    Ok(_) => {}
                    Err(TypeError::NoKernels { .. }) => bad.push(format!(
                        "-v {}: no kernel's types in it (BTF files, vmlinux files, .btf.tar.xz or .btf.xz archives)",
                        v.display()
                    )),
                    Err(e) => bad.push(format!("-v {}: {e}", v.display())),
                }
            }
        }
        if let Some(f) = &self.file {
            bad.extend(readable("-f", f));
        }
        if let Some(o) = &self.output {
            let dir = o.parent().filter(|d| !d.as_os_str().is_empty());
            if o.is_dir() {
                bad.push(format!("-o {}: it is a directory", o.display()));
            } else if dir.is_some_and(|d| !d.is_dir()) {
                bad.push(format!(
                    "-o {}: no directory {}",
                    o.display(),
                    dir.map_or(String::new(), |d| d.display().to_string())
                ));
            }
        }
        if let Err(e) = coolkprobe::agg::table_size(self.agg_size) {
            bad.push(format!("--agg-size: {e}"));
        }
        if !bad.is_empty() {
            return Err(Failure::Input(
                bad.iter().map(|b| format!("error: {b}\n")).collect(),
            ));
        }
        if self.show && self.mode() == Mode::Show {
            let ignored: Vec<&str> = [
                ("-d", self.duration.is_some()),
                ("-c", self.count.is_some()),
                ("--json", self.json),
                ("--cpu", !self.cpus.is_empty()),
                ("--buffer-kb", self.buffer_kb.is_some()),
                ("-i", self.interval.is_some()),
            ]
            .into_iter()
            .filter_map(|(f, given)| given.then_some(f))
            .collect();
            if !ignored.is_empty() {
                eprintln!(
                    "warning: {} {} for a live run: -S prints the script and ignores {}",
                    ignored.join(", "),
                    if ignored.len() == 1 { "is" } else { "are" },
                    if ignored.len() == 1 { "it" } else { "them" }
                );
            }
        }
        Ok(())
    }

    pub fn mode(&self) -> Mode {
        if self.layout.is_some()
            || self.args.is_some()
            || self.funcs.is_some()
            || self.completions.is_some()
        {
            Mode::Discover
        } else if self.check {
            Mode::Check
        } else if self.show {
            Mode::Show
        } else {
            Mode::Trace
        }
    }

    pub fn arch(&self) -> Arch {
        self.arch.unwrap_or_else(Arch::host)
    }

    /// The stages before tracefs; `check_running_kernel` for a live run.
    pub fn pipeline(&self, check_running_kernel: bool) -> pipeline::Options {
        pipeline::Options {
            vmlinux: self.vmlinux.first().cloned(),
            arch: self.arch(),
            arch_given: self.arch.is_some(),
            arg_fetch: match self.arg_fetch {
                ArgFetch::Auto => pipeline::ArgFetch::Auto,
                ArgFetch::Regs => pipeline::ArgFetch::Regs,
                ArgFetch::Argn => pipeline::ArgFetch::Argn,
            },
            check_running_kernel,
            group_pid: std::process::id(),
            raw: self.raw,
        }
    }

    /// Where aggregations are computed and how they are shown.
    pub fn aggregation(&self) -> pipeline::AggOptions {
        pipeline::AggOptions {
            place: match self.agg {
                AggWhere::Auto => pipeline::AggWhere::Auto,
                AggWhere::Kernel => pipeline::AggWhere::Kernel,
                AggWhere::User => pipeline::AggWhere::User,
            },
            size: self.agg_size,
            interval: self.interval,
            count: self.count,
            show: self.show,
            latency_user: false,
        }
    }

    pub fn live(&self) -> LiveOptions {
        LiveOptions {
            json: self.json,
            stack: self.stack,
            duration: self.duration,
            count: self.count,
            output: self.output.clone(),
            buffer_kb: self.buffer_kb,
            cpus: self.cpus.clone(),
            pid: self.pid_filter(),
            trace_self: self.trace_self,
            queue_kb: self.queue_kb,
            no_name_events: false,
            echo: true,
            tracefs: None,
            agg: None,
            latency: None,
            raw: self.raw,
        }
    }

    /// `-p` (the process, followed) or `--tid` (the one thread).
    pub fn pid_filter(&self) -> Option<PidFilter> {
        match (self.pid, self.tid) {
            (Some(pid), _) => Some(PidFilter { pid, follow: true }),
            (None, Some(pid)) => Some(PidFilter { pid, follow: false }),
            (None, None) => None,
        }
    }
}

/// A compiled run: the plan, where its aggregations are computed and
/// where its latencies are paired.
pub struct Planned {
    pub built: Built,
    pub agg: Option<AggRun>,
    pub latency: Option<LatencyRun>,
}

/// Whether `-v` names several kernels (several files, or a directory):
/// then `-S` prints one script for all of them.
pub fn fleet(args: &Args) -> bool {
    match args.vmlinux.as_slice() {
        [] => false,
        [one] => one.is_dir(),
        _ => true,
    }
}

/// A command that works on one kernel's types (a live run, discovery)
/// refuses several.
pub fn one_kernel(args: &Args, what: &str) -> Result<(), Failure> {
    if fleet(args) {
        return Err(Failure::Input(format!(
            "error: {what} works on one kernel's types, and -v names several\n\
             help: -S prints one script for several kernels, --check a report on them\n"
        )));
    }
    Ok(())
}

/// The probes of the command line, then those of `-f FILE`, compiled; the
/// warnings and notes are printed on the way.
/// `-S` and a live run start from it, with where its aggregations are
/// computed.
pub fn plan(args: &Args, live: bool) -> Result<Planned, Failure> {
    let sources = sources(args)?;
    let opts = args.pipeline(live);
    match pipeline::build(&sources, &opts) {
        Ok(built) => {
            eprint!("{}", render_probes(&built.diagnostics, &sources));
            let place = match args.latency {
                AggWhere::Auto => pipeline::LatencyWhere::Auto,
                AggWhere::Kernel => pipeline::LatencyWhere::Kernel,
                AggWhere::User => pipeline::LatencyWhere::User,
            };
            let latency = pipeline::latency(&built.plan, &opts, place, args.show)
                .map_err(|d| Failure::Input(render(&d, None, None)))?;
            let mut aggs = args.aggregation();
            aggs.latency_user = latency
                .as_ref()
                .is_some_and(|l| l.path == coolkprobe::latency::Path::User);
            let agg = pipeline::aggregation(&built.plan, &opts, &aggs)
                .map_err(|d| Failure::Input(render(&d, None, None)))?;
            Ok(Planned {
                built,
                agg,
                latency,
            })
        }
        Err(BuildError::Probes(diags)) => Err(Failure::Input(render_probes(&diags, &sources))),
        Err(e @ BuildError::Types { .. }) => Err(Failure::Runtime(e.into())),
    }
}

pub fn sources(args: &Args) -> Result<Vec<Source>, Failure> {
    let mut v: Vec<Source> = args
        .probes
        .iter()
        .map(|p| Source {
            text: p.clone(),
            origin: None,
        })
        .collect();
    if let Some(path) = &args.file {
        let text = read_probe_file(path)
            .with_context(|| format!("cannot read probe file {}", path.display()))?;
        v.extend(pipeline::probes_in_file(&text, path));
    }
    if v.is_empty() {
        return Err(Failure::Input(
            "error: no probe given\n\nusage: coolkprobe [OPTIONS] PROBE...   (e.g. coolkprobe -S 'p do_exit')\n       see coolkprobe --help\n"
                .into(),
        ));
    }
    Ok(v)
}

/// A probe file, up to [`PROBE_FILE_LIMIT`] bytes: `-f /dev/zero` is an
/// error, not a process growing until it is killed.
fn read_probe_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(PROBE_FILE_LIMIT + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > PROBE_FILE_LIMIT {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            PROBE_FILE_LIMIT >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

const PROBE_FILE_LIMIT: u64 = 16 << 20;

//! A live run: session + per-CPU readers + merge + render, until a
//! duration, a count, a signal, a closed output or an error ends it.
//! Whatever ends it, the session's teardown runs (it is an RAII value;
//! the readers are stopped before it, since the kernel will not remove an
//! instance whose files are open).

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::compile::plan::Plan;
use crate::render::{Comms, Counts, Renderer};
use crate::ring::merge::{Flow, Merger};
use crate::ring::page::PageLayout;
use crate::ring::reader::{self, Msg, ReaderConfig, ABORT, DRAIN};
use crate::ring::RingError;
use crate::tracefs::format::EventFormat;
use crate::tracefs::{cleanup_stale, Session, SessionOptions, Tracefs, TracefsError};

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error(transparent)]
    Ring(#[from] RingError),
    #[error("bad duration `{0}` (examples: 10, 1.5s, 500ms, 2m)")]
    Duration(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("writing output: {0}")]
    Output(io::Error),
}

/// What a live run is asked to do besides the plan (the options of the
/// README's "Live tracing").
#[derive(Clone, Debug, Default)]
pub struct LiveOptions {
    pub json: bool,
    pub stack: bool,
    pub duration: Option<Duration>,
    pub count: Option<u64>,
    pub output: Option<PathBuf>,
    pub buffer_kb: Option<u64>,
    pub cpus: Vec<u32>,
    pub pid: Option<u32>,
    /// Echo tracefs writes on stderr.
    pub echo: bool,
    /// Tracefs root; found (or mounted) when None.
    pub tracefs: Option<PathBuf>,
}

/// `10` (seconds), `1.5s`, `500ms`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, LiveError> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: f64 = num.parse().map_err(|_| LiveError::Duration(s.into()))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(LiveError::Duration(s.into())),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(LiveError::Duration(s.into()));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Why the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Duration,
    Count,
    Signal(i32),
    /// The reader of the output went away (EPIPE).
    ClosedOutput,
    /// All readers ended on their own (e.g. a reader error).
    Readers,
}

#[derive(Clone, Debug)]
pub struct Summary {
    pub ended: Ended,
    pub counts: Counts,
    /// Per CPU, from `per_cpu/cpuN/stats`: overrun + commit overrun + dropped.
    pub kernel_lost: Vec<(u32, u64)>,
}

impl Summary {
    pub fn lost_total(&self) -> u64 {
        let flagged: u64 = self.counts.lost.values().sum();
        let stats: u64 = self.kernel_lost.iter().map(|l| l.1).sum();
        flagged.max(stats)
    }
}

static STOP: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::Relaxed);
    STOP.store(true, Ordering::Release);
}

/// Ctrl-C, SIGTERM and SIGHUP end the run in order; SIGPIPE is ignored
/// so that a closed output shows up as EPIPE on write.
fn install_signals() {
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// The reader threads; dropping them stops them (before the session goes).
struct Readers {
    state: Arc<AtomicU8>,
    handles: Vec<JoinHandle<()>>,
}

impl Drop for Readers {
    fn drop(&mut self) {
        if self.state.load(Ordering::Relaxed) != DRAIN {
            self.state.store(ABORT, Ordering::Release);
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Stdout as a plain file: our own buffer does the batching.
fn stdout_file() -> Result<File, LiveError> {
    use std::os::fd::FromRawFd;
    let fd = unsafe { libc::dup(1) };
    if fd < 0 {
        return Err(LiveError::Output(io::Error::last_os_error()));
    }
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn read_format(fs: &Tracefs, rel: &str) -> Result<EventFormat, LiveError> {
    let text = fs.read(rel)?;
    Ok(EventFormat::parse(&text)?)
}

pub fn run(opts: &LiveOptions, plan: &Plan) -> Result<Summary, LiveError> {
    let fs = match &opts.tracefs {
        Some(p) => Tracefs::at(p),
        None => Tracefs::find_or_mount()?,
    };
    for g in cleanup_stale(&fs)? {
        eprintln!("coolkprobe: removed {g}, left by a run that no longer exists");
    }
    STOP.store(false, Ordering::Relaxed);
    install_signals();
    let out = match &opts.output {
        Some(p) => File::create(p).map_err(|source| LiveError::Io {
            path: p.clone(),
            source,
        })?,
        None => stdout_file()?,
    };
    let sess_opts = SessionOptions {
        stack: opts.stack,
        buffer_kb: opts.buffer_kb,
        cpus: opts.cpus.clone(),
        pid: opts.pid,
        echo: opts.echo,
    };
    let mut session = Session::start(fs.clone(), plan, &sess_opts)?;
    let inst = session.instance().to_string();

    let mut formats = Vec::new();
    for p in &plan.probes {
        let (sys, ev) = p.event_path(&plan.group);
        formats.push(read_format(
            &fs,
            &format!("{inst}/events/{sys}/{ev}/format"),
        )?);
    }
    let stack = if opts.stack {
        Some(read_format(
            &fs,
            &format!("{inst}/events/ftrace/kernel_stack/format"),
        )?)
    } else {
        None
    };
    let subbuf = match fs.read(&format!("{inst}/buffer_subbuf_size_kb")) {
        Ok(t) => t
            .trim()
            .parse::<usize>()
            .map_or(page_size(), |kb| kb * 1024),
        Err(_) => page_size(),
    };
    let layout = PageLayout::parse(&fs.read("events/header_page")?, subbuf)?;

    let mut r = Renderer::new(plan, formats, stack, opts.json, out);
    r.comms = Comms::with_saved_cmdlines(fs.path("saved_cmdlines"));
    r.limit = opts.count;
    let stack_id = r.stack_id();
    let cpus = cpus_of(&fs, &inst, &opts.cpus)?;
    let (tx, rx) = crossbeam_channel::bounded::<Msg>(256);
    let mut readers = Readers {
        state: Arc::new(AtomicU8::new(reader::RUN)),
        handles: Vec::new(),
    };
    for (slot, &cpu) in cpus.iter().enumerate() {
        let path = fs.path(&format!("{inst}/per_cpu/cpu{cpu}/trace_pipe_raw"));
        let file = reader::open(&path).map_err(|source| LiveError::Io {
            path: path.clone(),
            source,
        })?;
        let cfg = ReaderConfig {
            layout,
            stats: Some(fs.path(&format!("{inst}/per_cpu/cpu{cpu}/stats"))),
            stack_id,
            ..ReaderConfig::default()
        };
        let h = reader::spawn(
            slot,
            cpu,
            path.clone(),
            file,
            cfg,
            readers.state.clone(),
            tx.clone(),
        )
        .map_err(|source| LiveError::Io { path, source })?;
        readers.handles.push(h);
    }
    drop(tx);

    let mut merger = Merger::new(cpus.len(), Duration::from_millis(40));
    let deadline = opts.duration.map(|d| Instant::now() + d);
    let mut ended = None;
    let mut emitting = true;
    let mut wait = Duration::from_millis(50);
    loop {
        match rx.recv_timeout(wait) {
            Ok(m) => merger.feed(m, &mut r),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {}
        }
        for _ in 0..64 {
            match rx.try_recv() {
                Ok(m) => merger.feed(m, &mut r),
                Err(_) => break,
            }
        }
        wait = Duration::from_millis(50);
        if emitting {
            let (flow, hold) = merger.emit(&mut r);
            if flow == Flow::Stop {
                emitting = false;
                ended.get_or_insert(if r.write_error.is_some() {
                    Ended::ClosedOutput
                } else {
                    Ended::Count
                });
            }
            if let Some(h) = hold {
                wait = wait.min(h.max(Duration::from_millis(1)));
            }
            if r.flush() == Flow::Stop {
                emitting = false;
                ended.get_or_insert(Ended::ClosedOutput);
            }
        } else {
            // Ended by count or a closed output: readers drain, nobody reads.
            merger.discard();
        }
        if merger.finished() {
            ended.get_or_insert(Ended::Readers);
            break;
        }
        if ended.is_none() {
            if STOP.load(Ordering::Acquire) {
                ended = Some(Ended::Signal(SIGNAL.load(Ordering::Relaxed)));
            } else if deadline.is_some_and(|d| Instant::now() >= d) {
                ended = Some(Ended::Duration);
            }
        }
        if ended.is_some() && readers.state.load(Ordering::Relaxed) == reader::RUN {
            session.stop_recording()?;
            readers.state.store(DRAIN, Ordering::Release);
        }
        if !emitting && merger.finished() {
            break;
        }
    }
    if emitting {
        r.flush();
    }
    drop(readers);
    let kernel_lost = cpus
        .iter()
        .map(|&c| (c, stats_lost(&fs, &inst, c)))
        .collect::<Vec<_>>();
    let write_error = r.write_error.take();
    let summary = Summary {
        ended: ended.unwrap_or(Ended::Readers),
        counts: r.counts.clone(),
        kernel_lost,
    };
    session.teardown()?;
    if let Some(e) = write_error {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(LiveError::Output(e));
        }
    }
    Ok(summary)
}

/// The CPUs to read: those asked for, else every per_cpu directory.
fn cpus_of(fs: &Tracefs, inst: &str, want: &[u32]) -> Result<Vec<u32>, LiveError> {
    let dir = fs.path(&format!("{inst}/per_cpu"));
    let rd = std::fs::read_dir(&dir).map_err(|source| LiveError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut cpus: Vec<u32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok())
        .filter(|c| want.is_empty() || want.contains(c))
        .collect();
    cpus.sort_unstable();
    Ok(cpus)
}

/// Records the kernel counted as lost on a CPU of our instance.
fn stats_lost(fs: &Tracefs, inst: &str, cpu: u32) -> u64 {
    reader::stats_lost(&fs.path(&format!("{inst}/per_cpu/cpu{cpu}/stats"))).unwrap_or(0)
}

fn page_size() -> usize {
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// The exit summary on stderr: events, and losses per CPU when any.
pub fn print_summary(s: &Summary) {
    let c = &s.counts;
    let mut line = format!("coolkprobe: {} events", c.events);
    let lost = s.lost_total();
    if lost > 0 || c.lost_unknown > 0 {
        line.push_str(&format!(", LOST {lost} (ring buffer overruns;"));
        for (cpu, n) in &s.kernel_lost {
            let flagged = c.lost.get(cpu).copied().unwrap_or(0);
            let n = (*n).max(flagged);
            if n > 0 {
                line.push_str(&format!(" cpu{cpu}: {n}"));
            }
        }
        line.push_str("; try --buffer-kb)");
    }
    if c.corrupt > 0 {
        line.push_str(&format!(", {} corrupt pages skipped", c.corrupt));
    }
    eprintln!("{line}");
}

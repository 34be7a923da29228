//! A live run: session + per-CPU readers + merge + render + output, until
//! a duration, a count, a signal, a closed output or an error ends it.
//!
//! Whatever ends it, the session's teardown runs: it is an RAII value
//! (readers are stopped before it, since the kernel will not remove an
//! instance whose files are open), and a panic hook tears down too, for
//! panics that do not unwind. Nothing the run does can block it for long:
//! output is written by a thread of its own, diagnostics never wait on
//! stderr, and a signal ends the run within a second even when the output
//! does not move (what it could not take is counted and reported).

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::compile::plan::Plan;
use crate::render::output::{Output, Target};
use crate::render::{Comms, Counts, Renderer};
use crate::ring::merge::{Flow, Merger};
use crate::ring::page::PageLayout;
use crate::ring::reader::{self, Cpu, Msg, ReaderConfig, ABORT, DRAIN};
use crate::ring::RingError;
use crate::tracefs::format::EventFormat;
use crate::tracefs::{
    check_plan, cleanup_stale, in_initial_pid_ns, run_group, say, PidFilter, Session,
    SessionOptions, Tracefs, TracefsError,
};

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
    /// An option out of range for this machine.
    #[error("{0}")]
    Option(String),
    #[error("{0}")]
    Agg(String),
    /// A thread of the run panicked (its message is on stderr); the run
    /// was torn down.
    #[error("stopped by a panic (a bug: please report it with the message above)")]
    Panicked,
    /// What the run installed was disabled or removed under it.
    #[error(
        "{what}: someone else disabled or removed this run's events; stopped after {events} events"
    )]
    Vanished { what: String, events: u64 },
}

/// Aggregations: where they are computed and how often they are shown.
#[derive(Clone, Debug)]
pub struct AggRun {
    pub path: crate::agg::Path,
    pub features: crate::tracefs::hist::Features,
    /// `--agg-size`, as asked (the kernel rounds it; so does the user path).
    pub size: Option<usize>,
    /// `--interval`: show the tables (totals so far) this often.
    pub interval: Option<Duration>,
    /// Why this path (for the one line that says which).
    pub why: String,
}

/// Latencies: where they are paired, and why.
#[derive(Clone, Debug)]
pub struct LatencyRun {
    pub path: crate::latency::Path,
    pub features: crate::tracefs::hist::Features,
    pub why: String,
}

/// Bytes of events a CPU may hold in memory between the kernel and the
/// output (`--queue-kb`); past it the kernel's buffer takes the load, and
/// what it cannot keep is counted as lost.
pub const DEFAULT_QUEUE_KB: u64 = 4096;

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
    pub pid: Option<PidFilter>,
    /// Record the run's own threads too (left out by default).
    pub trace_self: bool,
    /// Per-CPU bytes held in memory (KiB); [`DEFAULT_QUEUE_KB`] when None.
    pub queue_kb: Option<u64>,
    /// Keep task names current from task events in the stream.
    pub no_name_events: bool,
    /// Echo tracefs writes on stderr.
    pub echo: bool,
    /// Tracefs root; found (or mounted) when None.
    pub tracefs: Option<PathBuf>,
    /// Set when some probe aggregates.
    pub agg: Option<AggRun>,
    /// Set when some probe ends a latency.
    pub latency: Option<LatencyRun>,
    /// `--raw`: uprobe places as addresses (values are named, or not, by
    /// the plan).
    pub raw: bool,
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
    Duration::try_from_secs_f64(secs).map_err(|_| LiveError::Duration(s.into()))
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
    /// Our events were disabled or removed by someone else.
    Vanished,
}

#[derive(Clone, Debug)]
pub struct Summary {
    pub ended: Ended,
    pub counts: Counts,
    /// Per CPU, from `per_cpu/cpuN/stats`: overrun + commit overrun + dropped.
    pub kernel_lost: Vec<(u32, u64)>,
    /// Hits the kernel skipped, from kprobe_profile: (event, count).
    pub missed: Vec<(String, u64)>,
    /// Events recorded but not written because the run was stopped while
    /// the output did not take them.
    pub not_written: u64,
    /// Whether any event went through the ring buffer.
    pub streamed: bool,
    /// Latencies paired in user space: what could not be paired.
    pub latency: Vec<String>,
}

impl Summary {
    pub fn lost_total(&self) -> u64 {
        let flagged: u64 = self.counts.lost.values().sum();
        let stats: u64 = self.kernel_lost.iter().map(|l| l.1).sum();
        flagged.max(stats)
    }
}

static STOP: AtomicBool = AtomicBool::new(false);
/// Set by the panic hook: the run is torn down and must not look normal.
static PANICKED: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// CLOCK_MONOTONIC nanoseconds of the first signal (0: none yet).
static SIGNAL_AT: AtomicU64 = AtomicU64::new(0);

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // clock_gettime is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::Relaxed);
    let _ = SIGNAL_AT.compare_exchange(
        0,
        monotonic_ns().max(1),
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
    STOP.store(true, Ordering::Release);
}

/// How long ago the first signal came, if one did.
fn since_signal() -> Option<Duration> {
    match SIGNAL_AT.load(Ordering::Acquire) {
        0 => None,
        at => Some(Duration::from_nanos(monotonic_ns().saturating_sub(at))),
    }
}

/// Ctrl-C, SIGTERM and SIGHUP (a closed terminal) end the run in order;
/// SIGPIPE is ignored so that a closed output shows up as EPIPE on write.
/// No SA_RESTART: a signal interrupts whatever blocking call got it.
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

/// A panic anywhere tears the run down before anything else (printing
/// the message may block on a stderr nobody reads): the readers' files
/// are swapped for /dev/null so that the instance can go, then every
/// session's undo runs. Unwinding would do the same through the Drops,
/// but a panic may not unwind (panic=abort, across `extern "C"`, inside
/// a Drop while unwinding).
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            reader::neutralise_all();
            crate::tracefs::emergency_teardown();
            prev(info);
        }));
    });
}

/// After a signal, how long the run may go on draining what was recorded,
/// and writing what was rendered, before it drops (and counts) the rest:
/// the whole exit, teardown included, stays under a second. Most of it
/// for the drain: on a loaded machine the run may see the signal late.
const DRAIN_AFTER_SIGNAL: Duration = Duration::from_millis(500);
const WRITE_AFTER_SIGNAL: Duration = Duration::from_millis(750);

/// For the output: a signal came, so a blocked output is given up on.
fn output_give_up() -> bool {
    STOP.load(Ordering::Acquire)
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

fn read_format(fs: &Tracefs, rel: &str) -> Result<EventFormat, LiveError> {
    let text = fs.read(rel)?;
    Ok(EventFormat::parse(&text)?)
}

/// Task events that keep names current, where the kernel has them.
const NAME_EVENTS: [(&str, &str); 2] = [("sched", "sched_process_fork"), ("task", "task_rename")];

pub fn run(opts: &LiveOptions, plan: &Plan) -> Result<Summary, LiveError> {
    let fs = match &opts.tracefs {
        Some(p) => Tracefs::at(p),
        None => Tracefs::find_or_mount()?,
    };
    check_options(&fs, opts)?;
    check_plan(&fs, plan)?;
    for g in cleanup_stale(&fs)? {
        say(format_args!(
            "coolkprobe: removed {g}, left by a run that no longer exists"
        ));
    }
    STOP.store(false, Ordering::Relaxed);
    SIGNAL_AT.store(0, Ordering::Relaxed);
    install_signals();
    install_panic_hook();
    let target = match &opts.output {
        Some(p) => Target::path(p.clone()),
        None => Target::stdout(),
    }
    .map_err(|source| LiveError::Io {
        path: opts.output.clone().unwrap_or_else(|| "stdout".into()),
        source,
    })?;
    // The run's own group: every name below is in it.
    let mut plan = plan.clone();
    plan.set_group(&run_group(std::process::id()));
    let plan = &plan;
    let agg_path = opts.agg.as_ref().map(|a| a.path);
    let hist = opts
        .agg
        .as_ref()
        .filter(|a| a.path == crate::agg::Path::Kernel)
        .map(|a| a.features);
    let agg_size = opts.agg.as_ref().and_then(|a| a.size);
    let latency = opts
        .latency
        .as_ref()
        .filter(|l| l.path == crate::latency::Path::Kernel)
        .map(|l| l.features);
    let install = crate::tracefs::commands::InstallOptions {
        stack: opts.stack,
        hist,
        agg_size,
        pid: None,
        latency,
    };
    let streamed = plan
        .probes
        .iter()
        .any(|p| crate::tracefs::commands::streamed(p, install));
    let extra_events: Vec<(String, String)> = if opts.no_name_events || !streamed {
        vec![]
    } else {
        NAME_EVENTS
            .iter()
            .filter(|(s, e)| fs.path(&format!("events/{s}/{e}/format")).exists())
            .map(|(s, e)| (s.to_string(), e.to_string()))
            .collect()
    };
    let sess_opts = SessionOptions {
        stack: opts.stack,
        buffer_kb: opts.buffer_kb,
        buffer_kb_min: if streamed {
            default_buffer_kb(&fs)
        } else {
            None
        },
        cpus: opts.cpus.clone(),
        pid: opts.pid,
        notrace_self: !opts.trace_self,
        extra_events,
        echo: opts.echo,
        hist,
        agg_size,
        latency,
    };
    let mut session = Session::create(fs.clone(), &plan.group, &sess_opts)?;
    let inst = session.instance().to_string();
    let started = Instant::now();

    if !streamed {
        // Everything is counted in the kernel: nothing to read until the end.
        let mut output = Output::start(target, output_give_up).map_err(LiveError::Output)?;
        session.install(plan, &sess_opts)?;
        let (_, formats) = formats_of(&fs, &inst, plan, install)?;
        let aggs = aggs_of(plan, &formats, agg_size)?;
        let deadline = opts.duration.and_then(|d| started.checked_add(d));
        let interval = opts.agg.as_ref().and_then(|a| a.interval);
        let mut next = interval.map(|i| started + i);
        let mut last_check = Instant::now();
        let mut vanished = None;
        let ended = loop {
            if STOP.load(Ordering::Acquire) {
                break Ended::Signal(SIGNAL.load(Ordering::Relaxed));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Ended::Duration;
            }
            if last_check.elapsed() >= Duration::from_millis(250) {
                last_check = Instant::now();
                if let Err(what) = session.check_intact() {
                    vanished = Some(what);
                    break Ended::Vanished;
                }
            }
            if let Some(n) = next.filter(|n| Instant::now() >= *n) {
                let tables = kernel_tables(&fs, &inst, plan, install, &aggs)?;
                let path = crate::agg::Path::Kernel;
                let elapsed = Some(started.elapsed());
                write_tables(&mut output, &aggs, &tables, path, opts.json, elapsed)?;
                next = interval.map(|i| n + i);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The hist files go with the instance: read them if they are there.
        if vanished.is_none() {
            let tables = kernel_tables(&fs, &inst, plan, install, &aggs)?;
            let path = crate::agg::Path::Kernel;
            write_tables(&mut output, &aggs, &tables, path, opts.json, None)?;
            report_drops(&aggs, &tables);
        }
        let torn_down = session.teardown();
        output.finish(|| since_signal().is_some_and(|t| t >= WRITE_AFTER_SIGNAL));
        torn_down?;
        if let Some(what) = vanished {
            return Err(LiveError::Vanished { what, events: 0 });
        }
        if let Some(e) = output.take_error() {
            if e.kind() != io::ErrorKind::BrokenPipe {
                return Err(LiveError::Output(e));
            }
        }
        return Ok(Summary {
            ended,
            counts: Counts::default(),
            kernel_lost: Vec::new(),
            missed: Vec::new(),
            not_written: output.dropped_events,
            streamed: false,
            latency: Vec::new(),
        });
    }

    let any_stacks = plan
        .probes
        .iter()
        .any(|p| crate::tracefs::commands::stacks(p, install));
    let stack = if opts.stack || any_stacks {
        Some(read_format(
            &fs,
            &format!("{inst}/events/ftrace/kernel_stack/format"),
        )?)
    } else {
        None
    };
    // Kernel addresses are shown as symbols: /proc/kallsyms is read and
    // sorted now, beside the setup, not at the first event (on a loaded
    // machine that took long enough to hold up the stop after a signal).
    let kernel_addrs = stack.is_some()
        || plan
            .probes
            .iter()
            .any(|p| matches!(p.target, crate::compile::plan::Target::Kprobe { .. }));
    let kallsyms =
        kernel_addrs.then(|| std::thread::spawn(|| crate::render::Kallsyms::default().loaded()));
    let subbuf = match fs.read(&format!("{inst}/buffer_subbuf_size_kb")) {
        Ok(t) => t
            .trim()
            .parse::<usize>()
            .map_or(page_size(), |kb| kb * 1024),
        Err(_) => page_size(),
    };
    let layout = PageLayout::parse(&fs.read("events/header_page")?, subbuf)?;
    let cfg = ReaderConfig {
        layout,
        stack_id: stack.as_ref().map(|f| f.id),
        ..ReaderConfig::default()
    };
    let batch_bytes = cfg.batch_pages * subbuf;
    let queue = opts.queue_kb.unwrap_or(DEFAULT_QUEUE_KB) as usize * 1024;
    let buffers = (queue / batch_bytes).max(2);

    // Readers and the writer start before anything is enabled: when the
    // run lists its threads for the kernel to leave out, they are there.
    let mut cpus = Vec::new();
    for (slot, cpu) in cpus_of(&fs, &inst, &opts.cpus)?.into_iter().enumerate() {
        let path = fs.path(&format!("{inst}/per_cpu/cpu{cpu}/trace_pipe_raw"));
        cpus.push(
            Cpu::open(slot, cpu, path.clone(), buffers)
                .map_err(|source| LiveError::Io { path, source })?,
        );
    }
    let cpus = Arc::new(cpus);
    let (tx, rx) = crossbeam_channel::bounded::<Msg>(1024);
    let mut readers = Readers {
        state: Arc::new(AtomicU8::new(reader::RUN)),
        handles: Vec::new(),
    };
    for (i, c) in cpus.iter().enumerate() {
        let cfg = ReaderConfig {
            stats: Some(fs.path(&format!("{inst}/per_cpu/cpu{}/stats", c.cpu))),
            ..cfg.clone()
        };
        let h = reader::spawn(cpus.clone(), i, cfg, readers.state.clone(), tx.clone()).map_err(
            |source| LiveError::Io {
                path: c.path.clone(),
                source,
            },
        )?;
        readers.handles.push(h);
    }
    drop(tx);
    let output = Output::start(target, output_give_up).map_err(LiveError::Output)?;
    let kallsyms = kallsyms.and_then(|h| h.join().ok());

    session.install(plan, &sess_opts)?;
    let (own, formats) = formats_of(&fs, &inst, plan, install)?;
    let aggs = aggs_of(plan, &formats, agg_size)?;
    let mut aggregator = crate::agg::user::Aggregator::new(aggs.clone(), plan.probes.len());
    aggregator.comms = Comms::with_saved_cmdlines(fs.path("saved_cmdlines"));
    let user_formats = formats.clone();
    let stack_format = stack.clone();
    let mut r = Renderer::new(plan, formats, stack, opts.json, output);
    if let Some(k) = kallsyms {
        r.kallsyms = k;
    }
    r.raw = opts.raw;
    let mut names = Vec::new();
    for (s, e) in &sess_opts.extra_events {
        names.push(read_format(&fs, &format!("{inst}/events/{s}/{e}/format"))?);
    }
    r.track_names(names);
    r.comms = Comms::with_saved_cmdlines(fs.path("saved_cmdlines"));
    r.limit = opts.count;
    // Events of aggregated probes (user path) go to the aggregator; with
    // latencies paired in user space, starts and ends to the pairer, which
    // passes completed calls on as the end's events.
    let r = crate::agg::user::Tap::new(r, aggregator, &user_formats, stack_format.as_ref());
    let pairs = if latency.is_none() {
        plan
    } else {
        &Plan {
            group: String::new(),
            probes: Vec::new(),
        }
    };
    let mut r =
        crate::latency::Pairer::new(r, pairs, &own, &user_formats).map_err(LiveError::Agg)?;
    let user_aggs = agg_path == Some(crate::agg::Path::User);
    let interval = opts.agg.as_ref().and_then(|a| a.interval);
    let mut next_interval = interval.map(|i| started + i);

    let mut merger = Merger::with_cpus(cpus.clone(), Duration::from_millis(40));
    let deadline = opts.duration.and_then(|d| Instant::now().checked_add(d));
    let mut ended = None;
    let mut vanished = None;
    let mut emitting = true;
    let mut last_check = Instant::now();
    let mut aborted = false;
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
            let (mut flow, mut hold) = merger.emit(&mut r, None);
            if flow == Flow::Continue && hold.is_some_and(|h| !h.is_zero()) {
                // Held back for CPUs that sent nothing: if they are found
                // drained, nothing older can come from them.
                let at = Instant::now();
                if merger.idle_slots().all(|i| cpus[i].drained()) {
                    while let Ok(m) = rx.try_recv() {
                        merger.feed(m, &mut r);
                    }
                    (flow, hold) = merger.emit(&mut r, Some(at));
                }
            }
            if flow == Flow::Stop {
                emitting = false;
                ended.get_or_insert(if r.inner.inner.write_error.is_some() {
                    Ended::ClosedOutput
                } else {
                    Ended::Count
                });
            }
            match hold {
                // More to emit right away.
                Some(Duration::ZERO) => wait = Duration::ZERO,
                // A busy reader delivers within a few milliseconds.
                Some(h) => wait = h.clamp(Duration::from_millis(1), Duration::from_millis(2)),
                None => {}
            }
            if r.inner.inner.flush() == Flow::Stop {
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
        if let Some(n) = next_interval.filter(|n| Instant::now() >= *n) {
            let elapsed = Some(started.elapsed());
            let (tables, path) = if user_aggs {
                (r.inner.agg.tables(), crate::agg::Path::User)
            } else {
                (
                    kernel_tables(&fs, &inst, plan, install, &aggs)?,
                    crate::agg::Path::Kernel,
                )
            };
            r.inner.inner.flush();
            r.inner
                .inner
                .with_out(|o| write_tables(o, &aggs, &tables, path, opts.json, elapsed))?;
            next_interval = interval.map(|i| n + i);
        }
        let now = Instant::now();
        if ended.is_none() {
            if STOP.load(Ordering::Acquire) {
                ended = Some(Ended::Signal(SIGNAL.load(Ordering::Relaxed)));
            } else if deadline.is_some_and(|d| now >= d) {
                ended = Some(Ended::Duration);
            } else if now.duration_since(last_check) >= Duration::from_millis(250) {
                last_check = now;
                if let Err(what) = session.check_intact() {
                    vanished = Some(what);
                    ended = Some(Ended::Vanished);
                }
            }
        }
        if ended.is_some() && readers.state.load(Ordering::Relaxed) == reader::RUN {
            let _ = session.stop_recording();
            readers.state.store(DRAIN, Ordering::Release);
        }
        // A signal ends the run soon, whatever is left to read.
        if since_signal().is_some_and(|t| t >= DRAIN_AFTER_SIGNAL) {
            readers.state.store(ABORT, Ordering::Release);
            merger.discard();
            aborted = true;
            break;
        }
        if !emitting && merger.finished() {
            break;
        }
    }
    if emitting {
        r.inner.inner.flush();
    }
    drop(readers);
    if aborted {
        // What the readers sent and the merge never took, and what they
        // read and could not send, is not written either: counted.
        while let Ok(m) = rx.try_recv() {
            merger.feed(m, &mut r);
        }
        merger.discard();
    }
    let mut not_written = merger.discarded;
    if aborted {
        not_written += cpus.iter().map(|c| c.unsent()).sum::<u64>();
        not_written += cpus
            .iter()
            .map(|c| stats_field(&fs, &inst, c.cpu, "entries"))
            .sum::<u64>();
    } else if ended == Some(Ended::Count) || ended == Some(Ended::ClosedOutput) {
        not_written = 0;
    }
    drop(merger);
    drop(cpus);
    if !aggs.is_empty() {
        let (tables, path) = if user_aggs {
            (r.inner.agg.tables(), crate::agg::Path::User)
        } else {
            (
                kernel_tables(&fs, &inst, plan, install, &aggs)?,
                crate::agg::Path::Kernel,
            )
        };
        r.inner.inner.flush();
        r.inner
            .inner
            .with_out(|o| write_tables(o, &aggs, &tables, path, opts.json, None))?;
        report_drops(&aggs, &tables);
    }
    let latency_report = r.report();
    let mut r = r.inner.inner;
    let kernel_lost = cpus_of(&fs, &inst, &opts.cpus)?
        .into_iter()
        .map(|c| (c, stats_lost(&fs, &inst, c)))
        .collect::<Vec<_>>();
    // The kernel's skipped hits, read before the definitions go.
    let mut missed = Vec::new();
    for (label, n) in crate::tracefs::probe_misses(&fs, session.group()) {
        if n > 0 {
            if let Some(p) = plan.probes.iter().find(|p| p.event_name() == label) {
                r.missed(&label, &p.spec, n);
            }
            missed.push((label, n));
        }
    }
    if emitting {
        r.flush();
    }
    let mut counts = r.counts.clone();
    let write_error = r.write_error.take();
    let mut output = r.into_out();
    // The kernel's state first; then what the output still has to take.
    let torn_down = session.teardown();
    output.finish(|| since_signal().is_some_and(|t| t >= WRITE_AFTER_SIGNAL));
    // Events are those written; the rest is said to be not written.
    counts.events = counts.events.saturating_sub(output.dropped_events);
    not_written += output.dropped_events;
    let write_error = write_error.or_else(|| output.take_error());
    let summary = Summary {
        ended: ended.unwrap_or(Ended::Readers),
        counts,
        kernel_lost,
        missed,
        not_written,
        streamed: plan.probes.iter().any(|p| p.aggs.is_empty()),
        latency: latency_report,
    };
    torn_down?;
    if PANICKED.load(Ordering::SeqCst) {
        return Err(LiveError::Panicked);
    }
    if let Some(what) = vanished {
        print_summary(&summary);
        return Err(LiveError::Vanished {
            what,
            events: summary.counts.events,
        });
    }
    if let Some(e) = write_error {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(LiveError::Output(e));
        }
    }
    Ok(summary)
}

/// Each probe's own event's format, as the run's instance has it, and
/// the format of the events its output is read from: for the end of a
/// latency, its completed calls (the kernel's synthetic event, or the
/// records the user-space pairing makes).
#[allow(clippy::type_complexity)]
fn formats_of(
    fs: &Tracefs,
    inst: &str,
    plan: &Plan,
    install: crate::tracefs::commands::InstallOptions,
) -> Result<(Vec<EventFormat>, Vec<EventFormat>), LiveError> {
    let mut own = Vec::new();
    let mut shown = Vec::new();
    for p in &plan.probes {
        let (sys, ev) = p.event_path(&plan.group);
        let f = read_format(fs, &format!("{inst}/events/{sys}/{ev}/format"))?;
        shown.push(match (p.latency_end(), install.latency) {
            (Some(_), Some(_)) => {
                let (sys, ev) = crate::tracefs::commands::shown_event(p, &plan.group, install);
                read_format(fs, &format!("{inst}/events/{sys}/{ev}/format"))?
            }
            (Some(l), None) => crate::latency::completed_format(l, f.id),
            (None, _) => f.clone(),
        });
        own.push(f);
    }
    Ok((own, shown))
}

/// The aggregations of every probe, in plan order (`formats[i]` is
/// probe i's).
fn aggs_of(
    plan: &Plan,
    formats: &[EventFormat],
    agg_size: Option<usize>,
) -> Result<Vec<crate::agg::Agg>, LiveError> {
    let size = crate::agg::table_size(agg_size).map_err(LiveError::Agg)?;
    let mut aggs = Vec::new();
    for (p, f) in plan.probes.iter().zip(formats) {
        for i in 0..p.aggs.len() {
            aggs.push(crate::agg::Agg::new(p, i, f, size).map_err(LiveError::Agg)?);
        }
    }
    Ok(aggs)
}

/// Option values checked against this machine before anything is done.
fn check_options(fs: &Tracefs, opts: &LiveOptions) -> Result<(), LiveError> {
    let ncpu = cpus_of(fs, "", &[])?.len() as u64;
    if let Some(&c) = opts.cpus.iter().find(|&&c| c as u64 >= ncpu) {
        return Err(LiveError::Option(format!(
            "--cpu {c}: this machine has CPUs 0-{} (tracefs per_cpu/)",
            ncpu.saturating_sub(1)
        )));
    }
    let mem_kb = mem_total_kb().unwrap_or(u64::MAX);
    if let Some(kb) = opts.buffer_kb {
        // The kernel allocates it on every CPU, unswappable.
        if kb == 0 || kb.saturating_mul(ncpu) > mem_kb / 2 {
            return Err(LiveError::Option(format!(
                "--buffer-kb {kb}: must be at least 1 and, times {ncpu} CPUs, at most half of \
                 this machine's {mem_kb} KiB of memory"
            )));
        }
    }
    if let Some(kb) = opts.queue_kb {
        if kb < 64 || kb.saturating_mul(ncpu) > mem_kb / 4 {
            return Err(LiveError::Option(format!(
                "--queue-kb {kb}: must be at least 64 and, times {ncpu} CPUs, at most a quarter \
                 of this machine's {mem_kb} KiB of memory"
            )));
        }
    }
    if let Some(p) = opts.pid {
        let flag = if p.follow { "-p" } else { "--tid" };
        if !in_initial_pid_ns() {
            return Err(LiveError::Option(format!(
                "{flag} {}: this run is inside a PID namespace, and the kernel's pid filter \
                 takes the PIDs of the initial namespace: run it from there",
                p.pid
            )));
        }
        // A thread id has its /proc entry too (not listed, but there).
        if p.pid == 0 || !std::path::Path::new(&format!("/proc/{}", p.pid)).exists() {
            return Err(LiveError::Option(format!(
                "{flag} {}: no such {}",
                p.pid,
                if p.follow { "process" } else { "thread" }
            )));
        }
    }
    Ok(())
}

/// The per-CPU ring buffer a streamed run wants without `--buffer-kb`:
/// 4 MiB (at 4M events/s of 20 bytes, 45 ms of events, where the
/// kernel's usual 1.4 MiB hold 16 ms: a reader or writer held up that long
/// loses none), where that is at most 1/2048 of the memory over all CPUs.
fn default_buffer_kb(fs: &Tracefs) -> Option<u64> {
    let ncpu = cpus_of(fs, "", &[]).ok()?.len().max(1) as u64;
    Some((mem_total_kb()? / 2048 / ncpu).min(DEFAULT_BUFFER_KB))
}

/// See [`default_buffer_kb`].
const DEFAULT_BUFFER_KB: u64 = 4096;

fn mem_total_kb() -> Option<u64> {
    let t = std::fs::read_to_string("/proc/meminfo").ok()?;
    t.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The CPUs to read: those asked for, else every per_cpu directory (of
/// the instance `inst`, or of the root when empty).
fn cpus_of(fs: &Tracefs, inst: &str, want: &[u32]) -> Result<Vec<u32>, LiveError> {
    let rel = if inst.is_empty() {
        "per_cpu".to_string()
    } else {
        format!("{inst}/per_cpu")
    };
    let dir = fs.path(&rel);
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

/// One counter of `per_cpu/cpuN/stats` (e.g. `entries`: records unread).
fn stats_field(fs: &Tracefs, inst: &str, cpu: u32, name: &str) -> u64 {
    std::fs::read_to_string(fs.path(&format!("{inst}/per_cpu/cpu{cpu}/stats")))
        .ok()
        .and_then(|t| {
            t.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == name)
                .and_then(|(_, v)| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn page_size() -> usize {
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// Every aggregation's current table, read from its event's `hist` file
/// (the kernel path). Each event's sections come in the order its
/// triggers were added, which is the plan's.
fn kernel_tables(
    fs: &Tracefs,
    inst: &str,
    plan: &Plan,
    install: crate::tracefs::commands::InstallOptions,
    aggs: &[crate::agg::Agg],
) -> Result<Vec<crate::agg::Table>, LiveError> {
    let shown = |p: &crate::compile::plan::CompiledProbe| {
        crate::tracefs::commands::shown_event(p, &plan.group, install)
    };
    use crate::agg::histfile;
    let mut sections: std::collections::HashMap<
        (String, String),
        std::collections::VecDeque<histfile::Section>,
    > = Default::default();
    let mut out = Vec::with_capacity(aggs.len());
    for a in aggs {
        let p = &plan.probes[a.probe];
        let ev = shown(p);
        if !sections.contains_key(&ev) {
            let rel = format!("{inst}/events/{}/{}/hist", ev.0, ev.1);
            let path = fs.path(&rel);
            let bytes = std::fs::read(&path).map_err(|source| LiveError::Io {
                path: path.clone(),
                source,
            })?;
            let strings: Vec<String> = a
                .key_fields
                .iter()
                .flatten()
                .chain(a.value_field.iter())
                .filter(|f| crate::agg::is_string_field(f))
                .map(|f| f.name.clone())
                .collect();
            // Every aggregation of this event: its string fields.
            let mut strings = strings;
            for b in aggs.iter().filter(|b| shown(&plan.probes[b.probe]) == ev) {
                strings.extend(
                    b.key_fields
                        .iter()
                        .flatten()
                        .filter(|f| crate::agg::is_string_field(f))
                        .map(|f| f.name.clone()),
                );
            }
            let secs = histfile::parse(&bytes, &|n| strings.iter().any(|s| s == n))
                .map_err(|e| LiveError::Agg(format!("{}: {e}", path.display())))?;
            sections.insert(ev.clone(), secs.into());
        }
        let sec = sections.get_mut(&ev).and_then(|q| q.pop_front());
        out.push(match sec {
            Some(sec) => crate::agg::table_from_section(a, &sec),
            None => crate::agg::Table::default(),
        });
    }
    Ok(out)
}

/// The tables, as text or JSON lines, handed to the output in stream
/// order (after what was rendered before them).
fn write_tables<W: crate::render::Out>(
    out: &mut W,
    aggs: &[crate::agg::Agg],
    tables: &[crate::agg::Table],
    path: crate::agg::Path,
    json: bool,
    elapsed: Option<Duration>,
) -> Result<(), LiveError> {
    let mut s = String::new();
    if let (Some(e), false) = (elapsed, json) {
        s.push_str(&format!("@ {:.1}s\n", e.as_secs_f64()));
    }
    for (a, t) in aggs.iter().zip(tables) {
        if json {
            s.push_str(&crate::agg::draw::json(
                a,
                t,
                path,
                elapsed.map(|e| e.as_secs_f64()),
            ));
            s.push('\n');
        } else {
            s.push_str(&crate::agg::draw::text(a, t, crate::agg::draw::Unit::Count));
            s.push('\n');
        }
    }
    let mut bytes = s.into_bytes();
    match out.hand_over(&mut bytes, 0) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(LiveError::Output(e)),
        _ => Ok(()),
    }
}

/// Events an aggregation could not count are never silent.
fn report_drops(aggs: &[crate::agg::Agg], tables: &[crate::agg::Table]) {
    for (a, t) in aggs.iter().zip(tables) {
        if t.dropped > 0 {
            say(format_args!(
                "coolkprobe: {} {}: DROPPED {} events: its table of {} entries was full (raise --agg-size)",
                a.event, a.plan.text, t.dropped, a.size
            ));
        }
        if t.lost > 0 {
            say(format_args!(
                "coolkprobe: {} {}: LOST {} events before they were counted (ring buffer overruns; try --buffer-kb)",
                a.event, a.plan.text, t.lost
            ));
        }
    }
}

/// The exit summary on stderr: events, and losses per CPU when any.
pub fn print_summary(s: &Summary) {
    for l in &s.latency {
        say(format_args!("coolkprobe: {l}"));
    }
    if !s.streamed {
        return;
    }
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
    if !s.missed.is_empty() {
        let total: u64 = s.missed.iter().map(|m| m.1).sum();
        line.push_str(&format!(", MISSED {total} hits (kprobe_profile:"));
        for (ev, n) in &s.missed {
            line.push_str(&format!(" {ev}: {n}"));
        }
        line.push(')');
    }
    if s.not_written > 0 {
        line.push_str(&format!(
            ", {} events not written (the output did not take them before the run was stopped)",
            s.not_written
        ));
    }
    if c.corrupt > 0 {
        line.push_str(&format!(", {} corrupt pages skipped", c.corrupt));
    }
    say(format_args!("{line}"));
}

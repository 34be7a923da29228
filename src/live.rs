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
    #[error("{0}")]
    Agg(String),
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
    /// Set when some probe aggregates.
    pub agg: Option<AggRun>,
    /// Set when some probe ends a latency.
    pub latency: Option<LatencyRun>,
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
}

#[derive(Clone, Debug)]
pub struct Summary {
    pub ended: Ended,
    pub counts: Counts,
    /// Per CPU, from `per_cpu/cpuN/stats`: overrun + commit overrun + dropped.
    pub kernel_lost: Vec<(u32, u64)>,
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
        latency,
    };
    let sess_opts = SessionOptions {
        stack: opts.stack,
        buffer_kb: opts.buffer_kb,
        cpus: opts.cpus.clone(),
        pid: opts.pid,
        echo: opts.echo,
        hist,
        agg_size,
        latency,
    };
    let mut out_tables = out.try_clone().map_err(LiveError::Output)?;
    let mut session = Session::start(fs.clone(), plan, &sess_opts)?;
    let inst = session.instance().to_string();

    // Each probe's own event, and the event its output is read from: for
    // the end of a latency, its completed calls (the kernel's synthetic
    // event, or the records the user-space pairing makes).
    let mut own = Vec::new();
    let mut formats = Vec::new();
    for p in &plan.probes {
        let (sys, ev) = p.event_path(&plan.group);
        let f = read_format(&fs, &format!("{inst}/events/{sys}/{ev}/format"))?;
        formats.push(match (p.latency_end(), latency) {
            (Some(_), Some(_)) => {
                let (sys, ev) = crate::tracefs::commands::shown_event(p, &plan.group, install);
                read_format(&fs, &format!("{inst}/events/{sys}/{ev}/format"))?
            }
            (Some(l), None) => crate::latency::completed_format(l, f.id),
            (None, _) => f.clone(),
        });
        own.push(f);
    }
    let size = crate::agg::table_size(agg_size).map_err(LiveError::Agg)?;
    let mut aggs = Vec::new();
    for (p, f) in plan.probes.iter().zip(&formats) {
        for i in 0..p.aggs.len() {
            aggs.push(crate::agg::Agg::new(p, i, f, size).map_err(LiveError::Agg)?);
        }
    }
    let any_stacks = plan
        .probes
        .iter()
        .any(|p| crate::tracefs::commands::stacks(p, install));
    let streamed = plan
        .probes
        .iter()
        .any(|p| crate::tracefs::commands::streamed(p, install));
    let started = Instant::now();
    if !streamed {
        // Everything is counted in the kernel: nothing to read until the end.
        let deadline = opts.duration.map(|d| started + d);
        let mut next = opts
            .agg
            .as_ref()
            .and_then(|a| a.interval)
            .map(|i| started + i);
        let ended = loop {
            if STOP.load(Ordering::Acquire) {
                break Ended::Signal(SIGNAL.load(Ordering::Relaxed));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Ended::Duration;
            }
            if let Some(n) = next.filter(|n| Instant::now() >= *n) {
                let tables = kernel_tables(&fs, &inst, plan, install, &aggs)?;
                write_tables(
                    &mut out_tables,
                    &aggs,
                    &tables,
                    crate::agg::Path::Kernel,
                    opts.json,
                    Some(started.elapsed()),
                )?;
                next = opts.agg.as_ref().and_then(|a| a.interval).map(|i| n + i);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let tables = kernel_tables(&fs, &inst, plan, install, &aggs)?;
        write_tables(
            &mut out_tables,
            &aggs,
            &tables,
            crate::agg::Path::Kernel,
            opts.json,
            None,
        )?;
        report_drops(&aggs, &tables);
        session.teardown()?;
        return Ok(Summary {
            ended,
            counts: Counts::default(),
            kernel_lost: Vec::new(),
            streamed: false,
            latency: Vec::new(),
        });
    }
    let stack = if opts.stack || any_stacks {
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

    let mut aggregator = crate::agg::user::Aggregator::new(aggs.clone(), plan.probes.len());
    aggregator.comms = Comms::with_saved_cmdlines(fs.path("saved_cmdlines"));
    let user_formats = formats.clone();
    let stack_format = stack.clone();
    let mut r = Renderer::new(plan, formats, stack, opts.json, out);
    r.comms = Comms::with_saved_cmdlines(fs.path("saved_cmdlines"));
    r.limit = opts.count;
    let stack_id = r.stack_id();
    let r = crate::agg::user::Tap::new(r, aggregator, &user_formats, stack_format.as_ref());
    let mut r = if latency.is_none() {
        crate::latency::Pairer::new(r, plan, &own, &user_formats).map_err(LiveError::Agg)?
    } else {
        crate::latency::Pairer::new(
            r,
            &Plan {
                group: String::new(),
                probes: Vec::new(),
            },
            &[],
            &[],
        )
        .map_err(LiveError::Agg)?
    };
    let user_aggs = agg_path == Some(crate::agg::Path::User);
    let mut next_interval = opts
        .agg
        .as_ref()
        .and_then(|a| a.interval)
        .map(|i| started + i);
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
                ended.get_or_insert(if r.inner.inner.write_error.is_some() {
                    Ended::ClosedOutput
                } else {
                    Ended::Count
                });
            }
            if let Some(h) = hold {
                wait = wait.min(h.max(Duration::from_millis(1)));
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
            write_tables(&mut out_tables, &aggs, &tables, path, opts.json, elapsed)?;
            next_interval = opts.agg.as_ref().and_then(|a| a.interval).map(|i| n + i);
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
        r.inner.inner.flush();
    }
    drop(readers);
    if !aggs.is_empty() {
        let (tables, path) = if user_aggs {
            (r.inner.agg.tables(), crate::agg::Path::User)
        } else {
            (
                kernel_tables(&fs, &inst, plan, install, &aggs)?,
                crate::agg::Path::Kernel,
            )
        };
        write_tables(&mut out_tables, &aggs, &tables, path, opts.json, None)?;
        report_drops(&aggs, &tables);
    }
    let latency_report = r.report();
    let mut r = r.inner.inner;
    let kernel_lost = cpus
        .iter()
        .map(|&c| (c, stats_lost(&fs, &inst, c)))
        .collect::<Vec<_>>();
    let write_error = r.write_error.take();
    let summary = Summary {
        ended: ended.unwrap_or(Ended::Readers),
        counts: r.counts.clone(),
        kernel_lost,
        streamed: plan.probes.iter().any(|p| p.aggs.is_empty()),
        latency: latency_report,
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

fn write_tables(
    out: &mut File,
    aggs: &[crate::agg::Agg],
    tables: &[crate::agg::Table],
    path: crate::agg::Path,
    json: bool,
    elapsed: Option<Duration>,
) -> Result<(), LiveError> {
    use std::io::Write as _;
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
    match out.write_all(s.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(LiveError::Output(e)),
        _ => Ok(()),
    }
}

/// Events an aggregation could not count are never silent.
fn report_drops(aggs: &[crate::agg::Agg], tables: &[crate::agg::Table]) {
    for (a, t) in aggs.iter().zip(tables) {
        if t.dropped > 0 {
            eprintln!(
                "coolkprobe: {} {}: DROPPED {} events: its table of {} entries was full (raise --agg-size)",
                a.event, a.plan.text, t.dropped, a.size
            );
        }
        if t.lost > 0 {
            eprintln!(
                "coolkprobe: {} {}: LOST {} events before they were counted (ring buffer overruns; try --buffer-kb)",
                a.event, a.plan.text, t.lost
            );
        }
    }
}

/// The exit summary on stderr: events, and losses per CPU when any.
pub fn print_summary(s: &Summary) {
    for l in &s.latency {
        eprintln!("coolkprobe: {l}");
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
    if c.corrupt > 0 {
        line.push_str(&format!(", {} corrupt pages skipped", c.corrupt));
    }
    eprintln!("{line}");
}

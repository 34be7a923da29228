//! The RAII session: everything a live run changes in tracefs, and its undo.

use std::fs;
use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::commands::{self, InstallOptions, Scope};
use super::{say, TracefsError};
use crate::compile::plan::{Plan, Target};

/// The group prefix shared by every run.
pub const GROUP_PREFIX: &str = "coolkprobe_";

/// The inode of the initial PID namespace (the kernel's PROC_PID_INIT_INO).
const INIT_PID_NS: u64 = 0xEFFF_FFFC;

/// A tracefs mount.
#[derive(Clone, Debug)]
pub struct Tracefs {
    root: PathBuf,
}

impl Tracefs {
    /// Tracefs at a given directory (tests use a temp dir for session logic).
    pub fn at(root: impl Into<PathBuf>) -> Tracefs {
        Tracefs { root: root.into() }
    }

    /// Tracefs where it is already mounted and readable, without mounting
    /// anything (show mode asks it what the running kernel supports).
    pub fn find() -> Option<Tracefs> {
        ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
            .into_iter()
            .find(|d| Path::new(d).join("README").is_file())
            .map(Tracefs::at)
    }

    /// Find tracefs; mount it at /sys/kernel/tracing if it is not mounted.
    pub fn find_or_mount() -> Result<Tracefs, TracefsError> {
        let uid = unsafe { libc::geteuid() };
        if uid != 0 {
            return Err(TracefsError::NotRoot { uid });
        }
        for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
            if Path::new(dir).join("events/header_page").exists() {
                return Ok(Tracefs::at(dir));
            }
        }
        let dir = "/sys/kernel/tracing";
        let r = unsafe {
            libc::mount(
                c"nodev".as_ptr(),
                c"/sys/kernel/tracing".as_ptr(),
                c"tracefs".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if r != 0 || !Path::new(dir).join("events/header_page").exists() {
            return Err(TracefsError::NoTracefs(format!(
                "mounting tracefs on {dir} failed: {}",
                io::Error::last_os_error()
            )));
        }
        Ok(Tracefs::at(dir))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Read a whole file. The first read(2) is large: some tracefs files
    /// (events/header_page) answer only the read at offset 0.
    pub fn read(&self, rel: &str) -> Result<String, TracefsError> {
        let path = self.path(rel);
        read_whole(&path).map_err(|source| TracefsError::Io { path, source })
    }

    /// One write, as the kernel wants it: a single write(2) call. On
    /// failure, the kernel's reason is what it added to the `error_log`
    /// the write reports to (the instance's own for a file inside an
    /// instance) since just before the write: never an older entry, nor
    /// one of another writer's made before ours.
    pub fn write(&self, rel: &str, text: &str, append: bool) -> Result<(), TracefsError> {
        let log = error_log_of(rel);
        let before = self.read(&log).ok();
        let path = self.path(rel);
        self.write_quiet(rel, text, append)
            .map_err(|error| TracefsError::Write {
                log: before.and_then(|b| {
                    let after = self.read(&log).ok()?;
                    new_log_entries(&b, &after)
                }),
                path,
                text: text.to_string(),
                error,
            })
    }

    /// A write without the error_log lookup (teardown, probes of state).
    fn write_quiet(&self, rel: &str, text: &str, append: bool) -> io::Result<()> {
        fs::OpenOptions::new()
            .write(true)
            .append(append)
            .truncate(!append)
            .open(self.path(rel))
            .and_then(|mut f| f.write_all(text.as_bytes()))
    }
}

/// The `error_log` a write to `rel` reports to: an instance's own for its
/// files (filters and triggers log there), the top-level one otherwise
/// (kprobe_events and uprobe_events log there).
fn error_log_of(rel: &str) -> String {
    let mut parts = rel.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("instances"), Some(name), Some(_)) => format!("instances/{name}/error_log"),
        _ => "error_log".to_string(),
    }
}

/// The entries of `after` that `before` did not hold. An entry starts at
/// a `[timestamp]` line and holds the lines up to the next one.
fn new_log_entries(before: &str, after: &str) -> Option<String> {
    let entries = |t: &str| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for l in t.lines() {
            match v.last_mut() {
                Some(e) if !l.starts_with('[') => {
                    e.push('\n');
                    e.push_str(l);
                }
                _ => v.push(l.to_string()),
            }
        }
        v
    };
    let old = entries(before);
    let new: Vec<String> = entries(after)
        .into_iter()
        .filter(|e| e.starts_with('[') && !old.contains(e))
        .collect();
    (!new.is_empty()).then(|| new.join("\n"))
}

fn read_whole(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut f = fs::File::open(path)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// `-p PID` / `--tid TID`: whose events the instance records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PidFilter {
    pub pid: u32,
    /// The whole process: its threads, and (the kernel's `event-fork`)
    /// every task it starts from then on. False: this one thread.
    pub follow: bool,
}

/// What a session is asked to do beyond the plan.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// `-s`: a stacktrace trigger on each event (under the event's filter).
    pub stack: bool,
    /// Per-CPU buffer size in KiB for our instance.
    pub buffer_kb: Option<u64>,
    /// Without `buffer_kb`: the instance's per-CPU buffer is raised to at
    /// least this many KiB (the kernel's default is never lowered).
    pub buffer_kb_min: Option<u64>,
    /// Record only on these CPUs (the instance's tracing_cpumask).
    pub cpus: Vec<u32>,
    /// Record only this process or thread (the instance's set_event_pid).
    pub pid: Option<PidFilter>,
    /// Leave this process's own threads out of every event.
    pub notrace_self: bool,
    /// Existing events enabled beside the plan's (for the renderer: task
    /// names), `(system, event)`.
    pub extra_events: Vec<(String, String)>,
    /// Echo every write to stderr (`echo '...' >> file`), as the README says a live run does.
    pub echo: bool,
    /// Aggregations as hist triggers (the kernel path), see InstallOptions.
    pub hist: Option<super::hist::Features>,
    pub agg_size: Option<usize>,
    /// Latencies paired in the kernel, see InstallOptions.
    pub latency: Option<super::hist::Features>,
}

/// What must be undone, kept where a panic hook can reach it.
#[derive(Default)]
struct Undo {
    fs: Option<Tracefs>,
    /// `instances/<group>`, while it exists.
    instance: Option<String>,
    /// The flock on the instance directory: held while the run lives.
    lock: Option<fs::File>,
    /// `(trigger file, removal text)`, inside the instance, oldest
    /// first; removed newest first (a hist trigger another refers to must
    /// go after it).
    triggers: Vec<(String, String)>,
    /// `(events file, "-:group/event")` for every definition written.
    defined: Vec<(String, String)>,
    echo: bool,
}

static ACTIVE: Mutex<Vec<Arc<Mutex<Undo>>>> = Mutex::new(Vec::new());

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Undo {
    /// Undo what is left, each step forgotten once done: tracing off and
    /// events disabled in the instance, triggers removed (an event with a
    /// trigger stays registered), definitions withdrawn (the instance
    /// still stands, so no other run takes them for a dead run's), and
    /// the instance removed, which drops the lock. Never panics.
    fn run(&mut self, rmdir_for: Duration) -> Result<(), TracefsError> {
        let Some(fs) = self.fs.clone() else {
            return Ok(());
        };
        let echo = self.echo;
        let mut first = None;
        if let Some(inst) = &self.instance {
            let _ = fs.write_quiet(&format!("{inst}/tracing_on"), "0", false);
            let _ = fs.write_quiet(&format!("{inst}/events/enable"), "0", false);
        }
        let mut kept = Vec::new();
        for (file, text) in std::mem::take(&mut self.triggers).into_iter().rev() {
            if echo {
                say(format_args!(
                    "echo {} >> {}",
                    commands::sh_quote(&text),
                    fs.path(&file).display()
                ));
            }
            match fs.write_quiet(&file, &text, true) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(_) => kept.push((file, text)),
            }
        }
        kept.reverse();
        self.triggers = kept;
        let mut left = Vec::new();
        for (file, text) in std::mem::take(&mut self.defined).into_iter().rev() {
            if echo {
                say(format_args!(
                    "echo {} >> {}",
                    commands::sh_quote(&text),
                    fs.path(&file).display()
                ));
            }
            match fs.write(&file, &text, true) {
                Ok(()) => {}
                // Withdrawn already (by a cleaner that saw us gone).
                Err(TracefsError::Write { error, .. })
                    if error.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    first.get_or_insert(e);
                    left.push((file, text));
                }
            }
        }
        left.reverse();
        self.defined = left;
        if let Some(inst) = self.instance.clone() {
            let dir = fs.path(&inst);
            if echo {
                say(format_args!("rmdir {}", dir.display()));
            }
            match remove_instance(&dir, rmdir_for) {
                Ok(()) => {
                    self.instance = None;
                    self.lock = None;
                }
                Err(source) => {
                    first.get_or_insert(TracefsError::Io { path: dir, source });
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Tear down every live session of this process, from a panic hook: what
/// unwinding would have done in each session's Drop, for a panic that
/// does not unwind (panic=abort, a panic across `extern "C"`, a panic in
/// a Drop during unwinding). The caller closes the files of the
/// instances first (the kernel keeps an instance whose files are open);
/// an instance still busy is left, disabled and empty, without its lock,
/// for the next run to remove.
pub fn emergency_teardown() {
    let list: Vec<Arc<Mutex<Undo>>> = match ACTIVE.try_lock() {
        Ok(l) => l.clone(),
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().clone(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    for u in list {
        // The panicking thread may hold it (a panic inside a session
        // call): then that session's state is not trusted; skip it.
        let t0 = Instant::now();
        loop {
            match u.try_lock() {
                Ok(mut g) => {
                    let _ = g.run(Duration::from_millis(500));
                    break;
                }
                Err(std::sync::TryLockError::Poisoned(p)) => {
                    let _ = p.into_inner().run(Duration::from_millis(500));
                    break;
                }
                Err(std::sync::TryLockError::WouldBlock) => {
                    if t0.elapsed() > Duration::from_millis(200) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
}

/// A live run's tracefs state. Dropping it undoes everything it did.
pub struct Session {
    fs: Tracefs,
    group: String,
    instance: String,
    undo: Arc<Mutex<Undo>>,
    /// Enable files that must keep reading `1` while the run lives.
    enabled: Vec<String>,
    echo: bool,
    recording: bool,
}

impl Session {
    /// Create the run's instance (locked: it marks the run alive) and set
    /// it up: buffer size, CPUs, pid filters. Nothing is recorded yet.
    pub fn create(
        fs: Tracefs,
        group: &str,
        opts: &SessionOptions,
    ) -> Result<Session, TracefsError> {
        let inst = format!("instances/{group}");
        let undo = Arc::new(Mutex::new(Undo {
            fs: Some(fs.clone()),
            echo: opts.echo,
            ..Undo::default()
        }));
        lock_ignoring_poison(&ACTIVE).push(undo.clone());
        let mut s = Session {
            fs,
            group: group.to_string(),
            instance: inst.clone(),
            undo,
            enabled: Vec::new(),
            echo: opts.echo,
            recording: true,
        };
        let lock = s.create_instance()?;
        {
            let mut u = lock_ignoring_poison(&s.undo);
            u.instance = Some(inst.clone());
            u.lock = Some(lock);
        }
        if let Some(kb) = opts.buffer_kb {
            s.put(&format!("{inst}/buffer_size_kb"), &kb.to_string(), false)?;
        } else if let Some(min) = opts.buffer_kb_min {
            let now =
                s.fs.read(&format!("{inst}/buffer_size_kb"))
                    .ok()
                    .and_then(|t| t.split_whitespace().next()?.parse::<u64>().ok());
            // Not asked for: where the kernel refuses (no memory for it),
            // its default stays.
            if now.is_some_and(|kb| kb < min) {
                if let Err(e) = s.put(&format!("{inst}/buffer_size_kb"), &min.to_string(), false) {
                    say(format_args!(
                        "coolkprobe: the ring buffer stays at the kernel's size: {e}"
                    ));
                }
            }
        }
        // Wake the reader on any data: it batches by itself.
        if s.fs.path(&format!("{inst}/buffer_percent")).exists() {
            s.put(&format!("{inst}/buffer_percent"), "0", false)?;
        }
        if !opts.cpus.is_empty() {
            s.put(
                &format!("{inst}/tracing_cpumask"),
                &cpumask(&opts.cpus),
                false,
            )?;
        }
        let fork = s.fs.path(&format!("{inst}/options/event-fork")).exists();
        if let Some(p) = opts.pid {
            if !s.fs.path(&format!("{inst}/set_event_pid")).exists() {
                return Err(TracefsError::Unsupported(
                    "this kernel has no set_event_pid (Linux 4.4 and later have it): \
                     -p/--tid cannot be applied"
                        .into(),
                ));
            }
            if p.follow && !fork {
                say(format_args!(
                    "coolkprobe: warning: this kernel has no event-fork option: -p {} covers \
                     the threads that exist now, not those started later",
                    p.pid
                ));
            }
            s.pid_filter(p, fork)?;
        }
        Ok(s)
    }

    /// mkdir the instance and lock it, holding the `instances` lock so
    /// that no cleaner sees the instance unlocked in between (it would
    /// take it for a dead run's). Should a cleaner that does not take that
    /// lock remove it anyway, we make it again.
    fn create_instance(&mut self) -> Result<fs::File, TracefsError> {
        let dir = self.fs.path(&self.instance);
        let mut last = None;
        for _ in 0..20 {
            if self.echo {
                say(format_args!("mkdir {}", dir.display()));
            }
            let creating = lock_instances(&self.fs);
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    drop(creating);
                    // A dead run of the same name (same PID in the same
                    // namespace); remove it if it is dead indeed.
                    cleanup_stale(&self.fs)?;
                    if dir.exists() {
                        last = Some(e);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    continue;
                }
                Err(source) => {
                    return Err(TracefsError::Io { path: dir, source });
                }
            }
            let locked = lock_dir(&dir);
            drop(creating);
            match locked {
                Ok(Some(f)) => {
                    let same = fs::metadata(&dir)
                        .ok()
                        .zip(f.metadata().ok())
                        .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
                    if same {
                        return Ok(f);
                    }
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(TracefsError::Io { path: dir, source }),
            }
        }
        Err(TracefsError::Io {
            path: dir,
            source: last.unwrap_or_else(|| io::Error::other("could not create and lock it")),
        })
    }

    /// `set_event_pid`: the thread, or every thread of the process (listed
    /// until no new one shows up: a thread started while we list is
    /// followed by event-fork once its creator is in the list).
    fn pid_filter(&mut self, p: PidFilter, fork: bool) -> Result<(), TracefsError> {
        let inst = self.instance.clone();
        if p.follow && fork {
            self.put(&format!("{inst}/options/event-fork"), "1", false)?;
        }
        let mut written: Vec<u32> = vec![p.pid];
        self.put(&format!("{inst}/set_event_pid"), &p.pid.to_string(), false)?;
        if !p.follow {
            return Ok(());
        }
        loop {
            let more: Vec<u32> = tids_of(p.pid)
                .into_iter()
                .filter(|t| !written.contains(t))
                .collect();
            if more.is_empty() {
                return Ok(());
            }
            let text = more
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            self.put(&format!("{inst}/set_event_pid"), &text, true)?;
            written.extend(more);
        }
    }

    /// `set_event_notrace_pid`: this process's threads record nothing.
    /// Called once they all exist (not with event-fork, which would also
    /// widen a `--tid` to the thread's children). The kernel compares
    /// initial-namespace PIDs; inside another PID namespace ours are not
    /// those, so nothing is written there.
    fn notrace_self(&mut self) -> Result<(), TracefsError> {
        let inst = self.instance.clone();
        let file = format!("{inst}/set_event_notrace_pid");
        if !self.fs.path(&file).exists() || !in_initial_pid_ns() {
            return Ok(());
        }
        let tids = own_tids()
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        self.put(&file, &tids, false)
    }

    /// Whether this run's threads are left out by the kernel's pid list
    /// (else a `common_pid` term in each filter does it).
    fn has_notrace_list(&self) -> bool {
        self.fs
            .path(&format!("{}/set_event_notrace_pid", self.instance))
            .exists()
    }

    /// Define, filter and enable every probe of the plan, and the extra
    /// events; with `notrace_self`, first leave out the process's threads
    /// (all of them must exist by now). On failure what was done so far
    /// is undone by teardown.
    pub fn install(&mut self, plan: &Plan, opts: &SessionOptions) -> Result<(), TracefsError> {
        check_plan(&self.fs, plan)?;
        let mut plan = plan.clone();
        plan.set_group(&self.group);
        if opts.notrace_self {
            self.notrace_self()?;
        }
        // Kernels without set_event_notrace_pid (before 5.8): the run's
        // own threads are filtered out event by event.
        if opts.notrace_self && !self.has_notrace_list() && in_initial_pid_ns() {
            let terms = own_tids()
                .iter()
                .map(|t| format!("common_pid!={t}"))
                .collect::<Vec<_>>()
                .join(" && ");
            for p in &mut plan.probes {
                p.filter = Some(match p.filter.take() {
                    Some(f) => format!("({f}) && {terms}"),
                    None => terms.clone(),
                });
            }
        }
        let install = InstallOptions {
            stack: opts.stack,
            pid: None,
            hist: opts.hist,
            agg_size: opts.agg_size,
            latency: opts.latency,
        };
        let inst = self.instance.clone();
        // A latency subtracts the timestamps of two events, often taken on
        // two CPUs: the default `local` clock is not kept in step across
        // CPUs (Documentation/trace/ftrace.rst, trace_clock), `mono` is the
        // clock a sleep is measured by. Set before anything is recorded
        // (the kernel path's triggers ask for it too, `clock=mono`).
        if plan.probes.iter().any(|p| p.latency.is_some()) {
            let file = format!("{inst}/trace_clock");
            if let Ok(clocks) = self.fs.read(&file) {
                if clocks
                    .split_whitespace()
                    .any(|c| c.trim_matches(['[', ']']) == "mono")
                {
                    self.put(&file, "mono", false)?;
                }
            }
        }
        for w in commands::install(&plan, install) {
            let rel = match w.scope {
                Scope::Instance => format!("{inst}/{}", w.file),
                Scope::Global => w.file.clone(),
            };
            // Record the undo before the write: a write that fails midway
            // may still have done its part.
            if w.file.ends_with("/trigger") {
                let mut u = lock_ignoring_poison(&self.undo);
                u.triggers
                    .push((rel.clone(), commands::trigger_removal(&w.text)));
            }
            self.put(&rel, &w.text, w.append)?;
            if w.append && w.scope == Scope::Global {
                // A definition: `-:group/event`, `!synthetic`.
                if let Some(undo) = commands::undo(&w) {
                    let mut u = lock_ignoring_poison(&self.undo);
                    u.defined.push((w.file.clone(), undo.text));
                }
            }
            if w.file.ends_with("/enable") && w.text == "1" {
                self.enabled.push(rel);
            }
        }
        for (sys, ev) in &opts.extra_events {
            let rel = format!("{inst}/events/{sys}/{ev}/enable");
            self.put(&rel, "1", false)?;
            self.enabled.push(rel);
        }
        Ok(())
    }

    fn put(&mut self, rel: &str, text: &str, append: bool) -> Result<(), TracefsError> {
        if self.echo {
            say(format_args!(
                "echo {} {} {}",
                commands::sh_quote(text),
                if append { ">>" } else { ">" },
                self.fs.path(rel).display()
            ));
        }
        self.fs.write(rel, text, append)
    }

    pub fn tracefs(&self) -> &Tracefs {
        &self.fs
    }

    /// This run's group (and instance) name.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// `instances/<group>` relative to the tracefs root.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Stop recording (so readers can drain what is left).
    pub fn stop_recording(&mut self) -> Result<(), TracefsError> {
        self.recording = false;
        let rel = format!("{}/tracing_on", self.instance);
        self.fs.write(&rel, "0", false)
    }

    /// Whether what the run installed is still in place: someone may
    /// disable our events or withdraw our probes under us (a careless
    /// cleanup, `echo 0 > .../enable`). Returns what is gone.
    pub fn check_intact(&self) -> Result<(), String> {
        if self.recording {
            let on = format!("{}/tracing_on", self.instance);
            match fs::read_to_string(self.fs.path(&on)) {
                Ok(t) if t.starts_with('1') => {}
                Ok(_) => return Err(format!("{} was turned off", self.fs.path(&on).display())),
                Err(e) => return Err(format!("{}: {e}", self.fs.path(&on).display())),
            }
        }
        for rel in &self.enabled {
            let path = self.fs.path(rel);
            match fs::read_to_string(&path) {
                // `1`, or `1*` with a trigger attached.
                Ok(t) if t.starts_with('1') => {}
                Ok(_) => return Err(format!("{} was disabled", path.display())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(format!("{} was removed", path.display()))
                }
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        Ok(())
    }

    /// Undo everything. Readers of the instance's files must be closed
    /// first (the kernel refuses to remove an instance in use). Every step
    /// is tried; the first error is returned.
    pub fn teardown(&mut self) -> Result<(), TracefsError> {
        let r = lock_ignoring_poison(&self.undo).run(Duration::from_secs(1));
        let mut list = lock_ignoring_poison(&ACTIVE);
        list.retain(|u| !Arc::ptr_eq(u, &self.undo));
        r
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            say(format_args!("coolkprobe: teardown: {e}"));
        }
    }
}

/// Remove every hist trigger of a dead run's instance: the kernel keeps
/// an instance whose triggers hold variables (a latency's), and a
/// trigger whose variables another uses must go after it, so removal
/// repeats while it makes progress.
fn remove_hist_triggers(fs: &Tracefs, inst: &str) {
    let mut files = Vec::new();
    if let Ok(systems) = fs::read_dir(fs.path(&format!("{inst}/events"))) {
        for sys in systems.flatten().filter(|e| e.path().is_dir()) {
            for ev in fs::read_dir(sys.path()).into_iter().flatten().flatten() {
                let t = ev.path().join("trigger");
                if t.is_file() {
                    files.push(t);
                }
            }
        }
    }
    let root = fs.root().to_path_buf();
    for _ in 0..8 {
        let mut left = false;
        let mut progress = false;
        for f in &files {
            let Ok(text) = fs::read_to_string(f) else {
                continue;
            };
            for line in text.lines().filter(|l| l.starts_with("hist:")) {
                let t = line
                    .trim_end()
                    .trim_end_matches("[active]")
                    .trim_end_matches("[paused]")
                    .trim_end();
                let rel = f.strip_prefix(&root).unwrap_or(f).to_string_lossy();
                if fs.write(&rel, &format!("!{t}"), true).is_ok() {
                    progress = true;
                } else {
                    left = true;
                }
            }
        }
        if !left || !progress {
            break;
        }
    }
}

/// Open a directory and take its flock without waiting. Ok(None): held
/// by someone else.
fn lock_dir(dir: &Path) -> io::Result<Option<fs::File>> {
    let f = fs::File::open(dir)?;
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(Some(f));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(e)
    }
}

/// The flock of the tracefs `instances` directory, which every run's
/// instance is in (whatever the PID namespace or container): held by a
/// run from its instance's mkdir to its instance's lock, and by a cleaner
/// while it looks for unlocked instances. Waits a while for it; without
/// it (a holder stuck, flock refused) the run goes on: a cleaner that
/// removes an instance being made is then seen by its maker, who makes it
/// again.
fn lock_instances(fs: &Tracefs) -> Option<fs::File> {
    let f = fs::File::open(fs.path("instances")).ok()?;
    let t0 = Instant::now();
    loop {
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Some(f);
        }
        let e = io::Error::last_os_error();
        let busy = matches!(e.raw_os_error(), Some(libc::EWOULDBLOCK | libc::EINTR));
        if !busy || t0.elapsed() >= Duration::from_secs(3) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// rmdir, retried for a while: a reader's file may still be closing.
fn remove_instance(dir: &Path, for_at_most: Duration) -> io::Result<()> {
    let t0 = Instant::now();
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if t0.elapsed() >= for_at_most => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Whether this kernel can take the plan at all: its kinds of probes,
/// its tracepoints. Checked before anything is created.
pub fn check_plan(fs: &Tracefs, plan: &Plan) -> Result<(), TracefsError> {
    for p in &plan.probes {
        if let Target::Tracepoint { system, event } = &p.target {
            let rel = format!("events/{system}/{event}/format");
            if !fs.path(&rel).exists() {
                return Err(TracefsError::NoTracepoint {
                    system: system.clone(),
                    event: event.clone(),
                    path: fs.path(&rel),
                });
            }
        }
    }
    for p in &plan.probes {
        match p.target {
            Target::Kprobe { .. } if !fs.path("kprobe_events").exists() => {
                return Err(TracefsError::NoKprobes {
                    path: fs.path("kprobe_events"),
                })
            }
            Target::Uprobe { .. } if !fs.path("uprobe_events").exists() => {
                return Err(TracefsError::NoUprobes {
                    path: fs.path("uprobe_events"),
                })
            }
            _ => {}
        }
    }
    Ok(())
}

/// `tracing_cpumask` text: comma-separated 32-bit hex words, highest first.
/// CPU numbers are checked against the machine before they get here.
fn cpumask(cpus: &[u32]) -> String {
    let max = cpus.iter().copied().max().unwrap_or(0) as usize;
    let mut words = vec![0u32; max / 32 + 1];
    for &c in cpus {
        words[c as usize / 32] |= 1 << (c % 32);
    }
    words
        .iter()
        .rev()
        .map(|w| format!("{w:08x}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The inode of this process's PID namespace, when /proc says.
fn pid_ns() -> Option<u64> {
    let l = fs::read_link("/proc/self/ns/pid").ok()?;
    let l = l.to_str()?;
    l.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// Whether PIDs seen here are the kernel's own (the ones tracing records
/// in `common_pid` and compares in set_event_pid).
pub fn in_initial_pid_ns() -> bool {
    pid_ns() == Some(INIT_PID_NS)
}

/// A live run's group: `coolkprobe_<PID>_<PIDNS>`, the PID and the inode
/// of the PID namespace it is counted in (`readlink /proc/PID/ns/pid`),
/// unique among the runs alive on the machine, containers included.
pub fn run_group(pid: u32) -> String {
    let ns = pid_ns().unwrap_or_else(|| {
        // No /proc: a random number instead, unique enough with the PID.
        let mut r = 0u64;
        unsafe { libc::getrandom((&raw mut r).cast(), 8, 0) };
        r % 10_000_000_000
    });
    format!("{GROUP_PREFIX}{pid}_{ns}")
}

/// `(pid, pidns)` of a live run's group name; None for anything else
/// (other tools' groups, `-S` scripts' `coolkprobe_<PID>`).
pub fn parse_group(group: &str) -> Option<(u32, u64)> {
    let (pid, ns) = group.strip_prefix(GROUP_PREFIX)?.split_once('_')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(pid) || !digits(ns) {
        return None;
    }
    Some((pid.parse().ok()?, ns.parse().ok()?))
}

/// Thread ids of a process (`/proc/PID/task`), sorted.
fn tids_of(pid: u32) -> Vec<u32> {
    let mut v: Vec<u32> = fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// This process's thread ids.
pub fn own_tids() -> Vec<u32> {
    tids_of(std::process::id())
}

/// Remove what runs that died left behind: an instance whose lock nobody
/// holds (the kernel dropped it with its holder), and definitions of a
/// run's group that has no instance (a run defines probes only while its
/// instance stands, and withdraws them before removing it). Groups of
/// live runs, in this PID namespace or any other, and anything not named
/// like a live run's group (other tools', `-S` scripts') are left alone.
/// Returns the groups removed.
pub fn cleanup_stale(fs: &Tracefs) -> Result<Vec<String>, TracefsError> {
    let mut removed = Vec::new();
    let _no_run_creating = lock_instances(fs);
    if let Ok(rd) = fs::read_dir(fs.path("instances")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if parse_group(&name).is_none() {
                continue;
            }
            let inst = format!("instances/{name}");
            let Ok(Some(_held)) = lock_dir(&fs.path(&inst)) else {
                continue;
            };
            // Ours now: its owner is dead. Removing the instance drops its
            // triggers, so the definitions below can go; but the kernel
            // keeps an instance whose triggers hold variables (a
            // latency's), so those go first.
            let _ = fs.write_quiet(&format!("{inst}/tracing_on"), "0", false);
            let _ = fs.write_quiet(&format!("{inst}/events/enable"), "0", false);
            remove_hist_triggers(fs, &inst);
            remove_instance(&fs.path(&inst), Duration::from_secs(1)).map_err(|source| {
                TracefsError::Io {
                    path: fs.path(&inst),
                    source,
                }
            })?;
            removed.push(name);
        }
    }
    // Synthetic events (`<group>_f<N>`) of a dead run's group (the same
    // rule as its probes below), once no trigger uses them, and before
    // the probes their triggers were on.
    if let Ok(text) = fs.read(super::commands::SYNTHETIC_EVENTS) {
        for line in text.lines() {
            let Some(name) = line.split_whitespace().next() else {
                continue;
            };
            let Some((group, _)) = name.rsplit_once("_f") else {
                continue;
            };
            if parse_group(group).is_none() || fs.path(&format!("instances/{group}")).exists() {
                continue;
            }
            match fs.write(super::commands::SYNTHETIC_EVENTS, &format!("!{name}"), true) {
                Ok(()) => {}
                // Its owner withdrew it meanwhile.
                Err(TracefsError::Write { error, .. })
                    if error.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if !removed.iter().any(|g| g == group) {
                removed.push(group.to_string());
            }
        }
    }
    // Definitions: dynamic_events lists kprobes and uprobes alike; older
    // kernels only have the two per-kind files.
    let files: &[&str] = if fs.path("dynamic_events").exists() {
        &["dynamic_events"]
    } else {
        &["kprobe_events", "uprobe_events"]
    };
    for file in files {
        let Ok(text) = fs.read(file) else { continue };
        for line in text.lines() {
            // `p:group/event target args...`
            let Some(name) = line
                .split_whitespace()
                .next()
                .and_then(|h| h.split_once(':'))
            else {
                continue;
            };
            let Some((group, event)) = name.1.split_once('/') else {
                continue;
            };
            if parse_group(group).is_none() || fs.path(&format!("instances/{group}")).exists() {
                continue;
            }
            // Disabled everywhere already unless someone enabled it at the
            // top level; make sure, since a still-enabled event cannot go.
            let _ = fs.write_quiet(&format!("events/{group}/{event}/enable"), "0", false);
            match fs.write(file, &format!("-:{group}/{event}"), true) {
                Ok(()) => {}
                // Its owner withdrew it meanwhile.
                Err(TracefsError::Write { error, .. })
                    if error.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if !removed.iter().any(|g| g == group) {
                removed.push(group.to_string());
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::plan::{CompiledProbe, FetchArg};

    #[test]
    fn cpumask_words() {
        assert_eq!(cpumask(&[0]), "00000001");
        assert_eq!(cpumask(&[1, 3]), "0000000a");
        assert_eq!(cpumask(&[0, 33]), "00000002,00000001");
    }

    #[test]
    fn group_names() {
        assert_eq!(
            parse_group("coolkprobe_123_4026531836"),
            Some((123, 4026531836))
        );
        assert_eq!(parse_group("coolkprobe_123"), None, "-S scripts' groups");
        assert_eq!(parse_group("coolkprobe_x_1"), None);
        assert_eq!(parse_group("coolkprobe_1_"), None);
        assert_eq!(parse_group("other_123_1"), None);
        let g = run_group(77);
        assert_eq!(parse_group(&g).map(|p| p.0), Some(77), "{g}");
    }

    /// A run between its instance's mkdir and its lock: a cleaner of
    /// another run (another PID namespace) waits for the lock instead of
    /// taking the unlocked instance for a dead run's (seen under load: two
    /// runs starting together, one removed the other's instance).
    #[test]
    fn a_cleaner_waits_for_a_run_being_created() {
        let tmp = std::env::temp_dir().join(format!("ckp-sess-new-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(tmp.join("instances")).unwrap();
        let fsys = Tracefs::at(&tmp);
        let inst = tmp.join("instances/coolkprobe_1_4026532180");
        let creating = lock_instances(&fsys).unwrap();
        fs::create_dir(&inst).unwrap();
        let f2 = fsys.clone();
        let cleaner = std::thread::spawn(move || cleanup_stale(&f2).unwrap());
        std::thread::sleep(Duration::from_millis(100));
        let held = lock_dir(&inst).unwrap().expect("the run's lock");
        drop(creating);
        assert_eq!(cleaner.join().unwrap(), Vec::<String>::new());
        assert!(inst.exists());
        // Once its holder is gone, it is a dead run's.
        drop(held);
        assert_eq!(
            cleanup_stale(&fsys).unwrap(),
            vec!["coolkprobe_1_4026532180"]
        );
        fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn error_log_entries() {
        assert_eq!(error_log_of("kprobe_events"), "error_log");
        assert_eq!(
            error_log_of("instances/g/events/s/e/filter"),
            "instances/g/error_log"
        );
        let old = "[   1.000001] trace_kprobe: error: old\n  Command: x\n            ^\n";
        let new =
            format!("{old}[   2.000002] event filter parse error: error: new\n  Command: ((\n");
        assert_eq!(new_log_entries(old, old), None);
        assert_eq!(
            new_log_entries(old, &new).as_deref(),
            Some("[   2.000002] event filter parse error: error: new\n  Command: ((")
        );
    }

    /// Session logic against a plain directory standing in for tracefs:
    /// which files are written, and what teardown leaves.
    #[test]
    fn session_on_a_directory() {
        let tmp = std::env::temp_dir().join(format!("ckp-sess-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(tmp.join("events/syscalls/sys_enter_getppid")).unwrap();
        fs::write(tmp.join("events/syscalls/sys_enter_getppid/format"), "").unwrap();
        fs::write(tmp.join("uprobe_events"), "p:other/keep /bin/true:0x10\n").unwrap();
        let group = "coolkprobe_1_2";
        let plan = Plan {
            group: "coolkprobe_1".into(),
            probes: vec![
                CompiledProbe {
                    index: 0,
                    spec: "t syscalls:sys_enter_getppid".into(),
                    target: Target::Tracepoint {
                        system: "syscalls".into(),
                        event: "sys_enter_getppid".into(),
                    },
                    fetchargs: vec![],
                    filter: Some("__syscall_nr==110".into()),
                    fields: vec![],
                    aggs: vec![],
                    latency: None,
                },
                CompiledProbe {
                    index: 1,
                    spec: "p /bin/true:0x20 a=%di".into(),
                    target: Target::Uprobe {
                        ret: false,
                        path: "/bin/true".into(),
                        offset: 0x20,
                        symbol: None,
                    },
                    fetchargs: vec![FetchArg::raw("a", "%di")],
                    filter: None,
                    fields: vec![],
                    aggs: vec![],
                    latency: None,
                },
            ],
        };
        let fsys = Tracefs::at(&tmp);
        let opts = SessionOptions::default();
        let inst = tmp.join(format!("instances/{group}"));
        fs::create_dir_all(tmp.join("instances")).unwrap();
        let mut s = Session::create(fsys.clone(), group, &opts).unwrap();
        assert!(inst.is_dir());
        // Locked: a cleaner leaves it alone.
        assert_eq!(cleanup_stale(&fsys).unwrap(), Vec::<String>::new());
        // A plain directory has no event dirs for the new probe, so the
        // install fails midway and teardown must undo what it did.
        let err = s.install(&plan, &opts).err().unwrap();
        assert!(matches!(err, TracefsError::Write { .. }), "{err}");
        drop(s);
        assert!(!inst.exists(), "instance removed after the failure");
        let ue = fs::read_to_string(tmp.join("uprobe_events")).unwrap();
        assert!(ue.starts_with("p:other/keep /bin/true:0x10\n"));
        assert!(
            ue.contains(&format!("p:{group}/f1 /bin/true:0x20 a=%di")),
            "{ue}"
        );
        assert!(
            ue.ends_with(&format!("-:{group}/f1")),
            "definition withdrawn: {ue}"
        );
        // An unlocked instance of a run's name is a dead run's.
        fs::write(tmp.join("uprobe_events"), "p:other/keep /bin/true:0x10\n").unwrap();
        fs::create_dir_all(tmp.join("instances/coolkprobe_5_6")).unwrap();
        fs::create_dir_all(tmp.join("instances/coolkprobe_5")).unwrap();
        assert_eq!(cleanup_stale(&fsys).unwrap(), vec!["coolkprobe_5_6"]);
        assert!(
            tmp.join("instances/coolkprobe_5").exists(),
            "not a run's name"
        );
        fs::remove_dir_all(&tmp).unwrap();
    }
}

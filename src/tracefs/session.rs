//! The RAII session: everything a live run changes in tracefs, and its undo.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::commands::{self, InstallOptions};
use super::TracefsError;
use crate::compile::plan::{Plan, Target};

/// The group prefix shared by every run; the suffix is the run's PID.
pub const GROUP_PREFIX: &str = "coolkprobe_";

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
    /// failure the kernel's reason is fetched from `error_log`.
    pub fn write(&self, rel: &str, text: &str, append: bool) -> Result<(), TracefsError> {
        let path = self.path(rel);
        let r = fs::OpenOptions::new()
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        r.map_err(|source| TracefsError::Write {
            log: self.last_error_log(),
            path,
            text: text.to_string(),
            source,
        })
    }

    /// The last entry of `error_log` (which starts at a `[timestamp]` line).
    fn last_error_log(&self) -> Option<String> {
        let log = fs::read_to_string(self.path("error_log")).ok()?;
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.iter().rposition(|l| l.starts_with('['))?;
        Some(lines[start..].join("\n"))
    }
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

/// What a session is asked to do beyond the plan.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// `-s`: a stacktrace trigger on each event.
    pub stack: bool,
    /// Per-CPU buffer size in KiB for our instance.
    pub buffer_kb: Option<u64>,
    /// Record only on these CPUs (the instance's tracing_cpumask).
    pub cpus: Vec<u32>,
    /// Only this process: `common_pid==PID` joins every filter.
    pub pid: Option<u32>,
    /// Echo every write to stderr (`echo '...' >> file`), as the README says a live run does.
    pub echo: bool,
    /// Aggregations as hist triggers (the kernel path), see InstallOptions.
    pub hist: Option<super::hist::Features>,
    pub agg_size: Option<usize>,
    /// Latencies paired in the kernel, see InstallOptions.
    pub latency: Option<super::hist::Features>,
}

/// A live run's tracefs state. Dropping it undoes everything it did.
pub struct Session {
    fs: Tracefs,
    group: String,
    /// `instances/<group>`, once created.
    instance: Option<String>,
    /// `(file, "-:group/event")` for every definition written.
    defined: Vec<(String, String)>,
    /// `(trigger file, "!hist:...")` for every hist trigger added: removed
    /// first at teardown, newest first (a trigger that another refers to
    /// must go after it).
    triggers: Vec<(String, String)>,
    echo: bool,
    done: bool,
}

impl Session {
    /// Create the instance, define, filter and enable every probe. On
    /// any failure what was done so far is undone before returning.
    pub fn start(fs: Tracefs, plan: &Plan, opts: &SessionOptions) -> Result<Session, TracefsError> {
        check_support(&fs, plan)?;
        let mut s = Session {
            fs,
            group: plan.group.clone(),
            instance: None,
            defined: Vec::new(),
            triggers: Vec::new(),
            echo: opts.echo,
            done: false,
        };
        // Tracepoints must exist before anything is created.
        for p in &plan.probes {
            if let Target::Tracepoint { system, event } = &p.target {
                let rel = format!("events/{system}/{event}/format");
                if !s.fs.path(&rel).exists() {
                    return Err(TracefsError::NoTracepoint {
                        system: system.clone(),
                        event: event.clone(),
                        path: s.fs.path(&rel),
                    });
                }
            }
        }
        let inst = format!("instances/{}", plan.group);
        let dir = s.fs.path(&inst);
        if s.echo {
            eprintln!("mkdir {}", dir.display());
        }
        fs::create_dir(&dir).map_err(|source| TracefsError::Io {
            path: dir.clone(),
            source,
        })?;
        s.instance = Some(inst.clone());
        if let Some(kb) = opts.buffer_kb {
            s.put(&format!("{inst}/buffer_size_kb"), &kb.to_string(), false)?;
        }
        // Wake the reader on any data: it batches by itself.
        if s.fs.path(&format!("{inst}/buffer_percent")).exists() {
            s.put(&format!("{inst}/buffer_percent"), "0", false)?;
        }
        // A latency subtracts the timestamps of two events, often taken on
        // two CPUs: the default `local` clock is not kept in step across
        // CPUs (Documentation/trace/ftrace.rst, trace_clock), `mono` is the
        // clock a sleep is measured by. Set before any event is recorded.
        if plan.probes.iter().any(|p| p.latency.is_some()) {
            let file = format!("{inst}/trace_clock");
            if let Ok(clocks) = s.fs.read(&file) {
                if clocks
                    .split_whitespace()
                    .any(|c| c.trim_matches(['[', ']']) == "mono")
                {
                    s.put(&file, "mono", false)?;
                }
            }
        }
        if !opts.cpus.is_empty() {
            s.put(
                &format!("{inst}/tracing_cpumask"),
                &cpumask(&opts.cpus),
                false,
            )?;
        }
        let mut plan = plan.clone();
        if let Some(pid) = opts.pid {
            for p in &mut plan.probes {
                p.filter = Some(match p.filter.take() {
                    Some(f) => format!("({f}) && common_pid=={pid}"),
                    None => format!("common_pid=={pid}"),
                });
            }
        }
        let writes = commands::install(
            &plan,
            InstallOptions {
                stack: opts.stack,
                hist: opts.hist,
                agg_size: opts.agg_size,
                latency: opts.latency,
            },
        );
        for w in writes {
            let rel = if w.file.starts_with("events/") {
                format!("{inst}/{}", w.file)
            } else {
                w.file.clone()
            };
            s.put(&rel, &w.text, w.append)?;
            if w.append && rel.ends_with("/trigger") {
                s.triggers.push((rel, format!("!{}", w.text)));
            } else if let Some(undo) = commands::undo(&w).filter(|_| w.append) {
                // A definition: `-:group/event`, `!synthetic`.
                s.defined.push((w.file.clone(), undo.text));
            }
        }
        Ok(s)
    }

    fn put(&mut self, rel: &str, text: &str, append: bool) -> Result<(), TracefsError> {
        if self.echo {
            eprintln!(
                "echo {} {} {}",
                commands::sh_quote(text),
                if append { ">>" } else { ">" },
                self.fs.path(rel).display()
            );
        }
        self.fs.write(rel, text, append)
    }

    pub fn tracefs(&self) -> &Tracefs {
        &self.fs
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// `instances/<group>` relative to the tracefs root.
    pub fn instance(&self) -> &str {
        self.instance.as_deref().unwrap_or("")
    }

    /// Stop recording (so readers can drain what is left).
    pub fn stop_recording(&mut self) -> Result<(), TracefsError> {
        let rel = format!("{}/tracing_on", self.instance());
        self.fs.write(&rel, "0", false)
    }

    /// Undo everything. Readers of the instance's files must be closed
    /// first (the kernel refuses to remove an instance in use). Every step
    /// is tried; the first error is returned.
    pub fn teardown(&mut self) -> Result<(), TracefsError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let mut first = None;
        for (file, text) in std::mem::take(&mut self.triggers).into_iter().rev() {
            if self.echo {
                eprintln!(
                    "echo {} >> {}",
                    commands::sh_quote(&text),
                    self.fs.path(&file).display()
                );
            }
            if let Err(e) = self.fs.write(&file, &text, true) {
                first.get_or_insert(e);
            }
        }
        if let Some(inst) = self.instance.take() {
            // Removing the instance disables its events and drops their
            // filters and triggers with it.
            let _ = self.fs.write(&format!("{inst}/tracing_on"), "0", false);
            let _ = self.fs.write(&format!("{inst}/events/enable"), "0", false);
            let dir = self.fs.path(&inst);
            if self.echo {
                eprintln!("rmdir {}", dir.display());
            }
            if let Err(source) = remove_instance(&dir) {
                first.get_or_insert(TracefsError::Io { path: dir, source });
            }
        }
        for (file, text) in std::mem::take(&mut self.defined).into_iter().rev() {
            if self.echo {
                eprintln!(
                    "echo {} >> {}",
                    commands::sh_quote(&text),
                    self.fs.path(&file).display()
                );
            }
            if let Err(e) = self.fs.write(&file, &text, true) {
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("coolkprobe: teardown: {e}");
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

/// rmdir, retried briefly: a reader's file may still be closing.
fn remove_instance(dir: &Path) -> io::Result<()> {
    let mut last = None;
    for _ in 0..50 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(last.unwrap_or_else(|| io::Error::other("instance busy")))
}

fn check_support(fs: &Tracefs, plan: &Plan) -> Result<(), TracefsError> {
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

/// The PID in a group name `coolkprobe_<PID>`.
fn group_pid(group: &str) -> Option<i32> {
    group.strip_prefix(GROUP_PREFIX)?.parse().ok()
}

fn pid_alive(pid: i32) -> bool {
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Remove what runs that died left behind: their instances and their
/// probe groups, if the PID in the name no longer exists. Groups of live
/// runs and anything not named `coolkprobe_<PID>` are left alone.
/// Returns the groups removed.
pub fn cleanup_stale(fs: &Tracefs) -> Result<Vec<String>, TracefsError> {
    let mut removed = Vec::new();
    if let Ok(rd) = fs::read_dir(fs.path("instances")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if group_pid(&name).is_some_and(|p| !pid_alive(p)) {
                let inst = format!("instances/{name}");
                let _ = fs.write(&format!("{inst}/tracing_on"), "0", false);
                let _ = fs.write(&format!("{inst}/events/enable"), "0", false);
                remove_hist_triggers(fs, &inst);
                remove_instance(&fs.path(&inst)).map_err(|source| TracefsError::Io {
                    path: fs.path(&inst),
                    source,
                })?;
                removed.push(name);
            }
        }
    }
    // Synthetic events (`<group>_f<N>`), once no trigger uses them, and
    // before the probes their triggers were on.
    if let Ok(text) = fs.read(super::commands::SYNTHETIC_EVENTS) {
        for line in text.lines() {
            let Some(name) = line.split_whitespace().next() else {
                continue;
            };
            let Some((group, _)) = name.rsplit_once("_f") else {
                continue;
            };
            if group_pid(group).is_none_or(pid_alive) {
                continue;
            }
            fs.write(super::commands::SYNTHETIC_EVENTS, &format!("!{name}"), true)?;
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
            if group_pid(group).is_none_or(pid_alive) {
                continue;
            }
            // Disabled everywhere already unless someone enabled it at the
            // top level; make sure, since a still-enabled event cannot go.
            let _ = fs.write(&format!("events/{group}/{event}/enable"), "0", false);
            fs.write(file, &format!("-:{group}/{event}"), true)?;
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
        assert_eq!(group_pid("coolkprobe_123"), Some(123));
        assert_eq!(group_pid("coolkprobe_x"), None);
        assert_eq!(group_pid("other_123"), None);
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
        let opts = SessionOptions {
            pid: Some(42),
            ..Default::default()
        };
        // A plain directory has no event dirs for the new probe, so the
        // session fails midway and must undo what it did.
        let inst = tmp.join("instances/coolkprobe_1");
        fs::create_dir_all(tmp.join("instances")).unwrap();
        let err = Session::start(fsys.clone(), &plan, &opts).err().unwrap();
        assert!(matches!(err, TracefsError::Write { .. }), "{err}");
        let filt = inst.join("events/syscalls/sys_enter_getppid/filter");
        assert!(
            !filt.exists() && !inst.exists(),
            "instance removed after the failure"
        );
        let ue = fs::read_to_string(tmp.join("uprobe_events")).unwrap();
        assert!(ue.starts_with("p:other/keep /bin/true:0x10\n"));
        assert!(
            ue.contains("p:coolkprobe_1/f1 /bin/true:0x20 a=%di"),
            "{ue}"
        );
        assert!(
            ue.ends_with("-:coolkprobe_1/f1"),
            "definition withdrawn: {ue}"
        );
        fs::remove_dir_all(&tmp).unwrap();
    }
}

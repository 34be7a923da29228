//! The CLI edge: turn options into a plan, then show it or run it.
//! anyhow lives here and nowhere deeper.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};

use crate::arch::Arch;
use crate::cli::Args;
use crate::compile::plan::Plan;
use crate::compile::{self, Context};
use crate::spec::{self, Probe, Span};
use crate::tracefs::commands::{self, InstallOptions};
use crate::types;

/// How a run failed: usage and spec errors exit 2, runtime errors 1.
#[derive(Debug)]
pub enum Failure {
    /// Already rendered for the terminal.
    Usage(String),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Runtime(e)
    }
}

pub fn main(args: Args) -> ExitCode {
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprint!("{msg}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// One probe spec and where it came from.
pub struct Source {
    pub text: String,
    /// `FILE:LINE` for probes read with `-f`.
    pub origin: Option<String>,
}

fn run(args: &Args) -> Result<(), Failure> {
    if crate::discover::requested(args) {
        return crate::discover::run(args);
    }
    let sources = gather(args)?;
    let (plan, access) = build_plan_noted(args, &sources, std::process::id())?;
    let agg = agg_run(args, &plan)?;
    if args.show {
        let mut opts = install_options(args);
        if let Some(a) = &agg {
            opts.hist = (a.path == crate::agg::Path::Kernel).then_some(a.features);
            opts.agg_size = a.size;
        }
        let mut script = show_script(&plan, opts);
        if let Some(a) = &agg {
            let at = script.find("set -e\n").unwrap_or(0);
            script.insert_str(at, &format!("# {}\n", agg_why(a)));
        }
        if let Some(why) = access.filter(|_| uses_kernel_args(&plan)) {
            // With the header comments, before `set -e`.
            let at = script.find("set -e\n").unwrap_or(0);
            script.insert_str(at, &format!("# %N is read from {why}\n"));
        }
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error worth a message.
        let _ = out.write_all(script.as_bytes()).and_then(|_| out.flush());
        return Ok(());
    }
    if let Some(a) = &agg {
        eprintln!("coolkprobe: {}", agg_why(a));
    }
    live(args, &plan, agg)?;
    Ok(())
}

/// Where a run's aggregations are computed, and why, from `--agg` and
/// what the target kernel has. None when no probe aggregates.
fn agg_run(args: &Args, plan: &Plan) -> Result<Option<crate::live::AggRun>, Failure> {
    use crate::agg::{Features, Path};
    use crate::cli::AggWhere;
    let wants_buckets = plan.probes.iter().any(|p| {
        p.aggs
            .iter()
            .any(|a| matches!(a.func, compile::plan::AggFunc::Linear { .. }))
    });
    if !plan.probes.iter().any(|p| !p.aggs.is_empty()) {
        for (flag, given) in [
            ("--agg-size", args.agg_size.is_some()),
            ("--interval", args.interval.is_some()),
            ("--agg", args.agg != AggWhere::Auto),
        ] {
            if given {
                return Err(Failure::Usage(format!(
                    "error: {flag} is for aggregations, and no probe has one\nhelp: add one to a probe, e.g. `p vfs_read n=count hist(n)[comm]`\n"
                )));
            }
        }
        return Ok(None);
    }
    crate::agg::table_size(args.agg_size).map_err(|e| Failure::Usage(format!("error: {e}\n")))?;
    let interval = args
        .interval
        .as_deref()
        .map(crate::live::parse_duration)
        .transpose()
        .map_err(|e| Failure::Usage(format!("error: --interval: {e}\n")))?;
    let local = args.vmlinux.is_none() && args.arch.is_none_or(|a| a == Arch::host());
    let readme = if local {
        crate::tracefs::Tracefs::find().and_then(|t| t.read("README").ok())
    } else {
        None
    };
    let features = match &readme {
        Some(r) => Features::from_readme(r),
        None => Features::assumed(),
    };
    let lacks = if !features.hist {
        Some("it has no hist triggers (CONFIG_HIST_TRIGGERS is off)")
    } else if wants_buckets && !features.buckets {
        Some("its hist triggers have no linear buckets (`.buckets=`, Linux 5.19)")
    } else {
        None
    };
    let (path, why) = match (args.agg, lacks) {
        (AggWhere::User, _) => (Path::User, "--agg user".to_string()),
        (AggWhere::Kernel, Some(l)) if readme.is_some() && !args.show => {
            return Err(Failure::Usage(format!(
                "error: --agg kernel, but the running kernel cannot: {l}\nhelp: --agg user counts the events in coolkprobe\n"
            )))
        }
        (AggWhere::Kernel, _) => (Path::Kernel, "--agg kernel".to_string()),
        (AggWhere::Auto, Some(l)) => (Path::User, format!("the running kernel cannot: {l}")),
        (AggWhere::Auto, None) => (
            Path::Kernel,
            match readme {
                Some(_) => "the running kernel has hist triggers".to_string(),
                None => "the target kernel cannot be asked here: hist triggers assumed".to_string(),
            },
        ),
    };
    let only_aggs = plan.probes.iter().all(|p| !p.aggs.is_empty());
    if args.count.is_some() && only_aggs {
        return Err(Failure::Usage(
            "error: -c counts printed events, and every probe aggregates\nhelp: end the run with -d TIME or Ctrl-C\n"
                .into(),
        ));
    }
    Ok(Some(crate::live::AggRun {
        path,
        features,
        size: args.agg_size,
        interval,
        why,
    }))
}

/// The one line saying where aggregations are computed, and why.
fn agg_why(a: &crate::live::AggRun) -> String {
    match a.path {
        crate::agg::Path::Kernel => {
            format!("aggregating in the kernel with hist triggers ({})", a.why)
        }
        crate::agg::Path::User => format!(
            "aggregating in user space, every event streamed to coolkprobe ({})",
            a.why
        ),
    }
}

fn install_options(args: &Args) -> InstallOptions {
    use crate::tracefs::PidFilter;
    InstallOptions {
        stack: args.stack,
        pid: match (args.pid, args.tid) {
            (Some(pid), _) => Some(PidFilter { pid, follow: true }),
            (None, Some(pid)) => Some(PidFilter { pid, follow: false }),
            (None, None) => None,
        },
        ..InstallOptions::default()
    }
}

/// The probes of the command line, then those of `-f FILE`.
pub fn gather(args: &Args) -> Result<Vec<Source>, Failure> {
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
        v.extend(probes_in_file(&text, path));
    }
    if v.is_empty() {
        return Err(Failure::Usage(
            "error: no probe given\n\nusage: coolkprobe [OPTIONS] PROBE...   (e.g. coolkprobe -S 'p do_exit')\n       see coolkprobe --help\n"
                .into(),
        ));
    }
    Ok(v)
}

/// A probe file, up to [`PROBE_FILE_LIMIT`] bytes: `-f /dev/zero` is an
/// error, not a process growing until it is killed.
fn read_probe_file(path: &Path) -> std::io::Result<String> {
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

/// One probe per line; blank lines and lines starting with `#` skipped.
pub fn probes_in_file(text: &str, path: &Path) -> Vec<Source> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .map(|(i, l)| Source {
            text: l.trim().to_string(),
            origin: Some(format!("{}:{}", path.display(), i + 1)),
        })
        .collect()
}

/// Parse and compile everything before anything is done: one bad probe
/// stops the run with nothing installed.
pub fn build_plan(args: &Args, sources: &[Source], pid: u32) -> Result<Plan, Failure> {
    build_plan_noted(args, sources, pid).map(|(plan, _)| plan)
}

/// Whether some kprobe reads an argument (so how it reads them matters).
fn uses_kernel_args(plan: &Plan) -> bool {
    plan.probes.iter().any(|p| {
        matches!(p.target, compile::plan::Target::Kprobe { .. })
            && p.fetchargs
                .iter()
                .any(|f| f.fetch.contains('%') || f.fetch.contains("$arg"))
    })
}

/// How `%N` is read, and why, from `--arg-fetch`. `auto` asks the running
/// kernel's tracefs README, but only when it is the target: with `-v` or
/// a foreign `-a` the target kernel is elsewhere, and registers work on
/// every kernel.
fn arg_access(args: &Args, arch: Arch) -> (compile::ArgAccess, String) {
    use crate::cli::ArgFetch;
    use compile::ArgAccess::*;
    let regs = |why: &str| (Registers, format!("{arch} registers{why}"));
    let argn = |why: &str| (KernelArgs, format!("the kernel's $argN{why}"));
    match args.arg_fetch {
        ArgFetch::Regs => regs(" (--arg-fetch regs)"),
        ArgFetch::Argn => argn(" (--arg-fetch argn)"),
        ArgFetch::Auto if args.vmlinux.is_some() || arch != Arch::host() => {
            regs(": the target is another kernel (--arg-fetch argn for $argN)")
        }
        ArgFetch::Auto => {
            let readme = crate::tracefs::Tracefs::find().and_then(|t| t.read("README").ok());
            match readme {
                Some(r) if r.contains("$arg<N>") => {
                    argn(": the running kernel has it (--arg-fetch regs for registers)")
                }
                Some(_) => regs(": the running kernel has no $argN"),
                None => regs(": tracefs is not readable, so $argN support is unknown"),
            }
        }
    }
}

/// The arguments of syscall `name` on the running kernel, from its
/// `syscalls:sys_enter_NAME` tracepoint format.
pub(crate) fn running_syscall_params(name: &str) -> Option<Vec<compile::syscall::SysParam>> {
    let t = crate::tracefs::Tracefs::find()?;
    let text = t
        .read(&format!("events/syscalls/sys_enter_{name}/format"))
        .ok()?;
    Some(compile::syscall::parse_format(&text))
}

/// [`build_plan`], and (for show mode) how arguments are read and why.
pub fn build_plan_noted(
    args: &Args,
    sources: &[Source],
    pid: u32,
) -> Result<(Plan, Option<String>), Failure> {
    let mut probes: Vec<Probe> = Vec::with_capacity(sources.len());
    for s in sources {
        let p = spec::parse_probe(&s.text)
            .map_err(|e| spec_failure(s, &e.msg, e.span, e.help.as_deref()))?;
        probes.push(p);
    }
    let arch = args.arch.unwrap_or_else(Arch::host);
    // The running kernel's symbols say whether each kprobe can be placed:
    // checked before anything else in a live run. Not in -S: its script
    // may be for another machine, and reading /proc/kallsyms alone costs
    // the kernel ~70 ms, ten times a whole -S run.
    let mut notes = Vec::new();
    if !args.show
        && probes
            .iter()
            .any(|p| matches!(p.place.node, spec::Place::Kernel { .. }))
    {
        if let Ok(syms) = crate::validate::KernelSymbols::load() {
            notes = crate::validate::check(&probes, &syms).map_err(|(i, e)| {
                spec_failure(&sources[i], &e.to_string(), e.span, e.help.as_deref())
            })?;
        }
    }
    // Kernel types: for kernel probes, and for uprobes when -v names a
    // file (a binary without DWARF borrows layouts from it).
    let kernel_needs_types = probes.iter().any(|p| {
        compile::needs_types(p)
            && (compile::user_binary_for_types(p).is_none() || args.vmlinux.is_some())
    });
    let source = if kernel_needs_types {
        Some(types::load::open(args.vmlinux.as_deref()).map_err(|e| {
            let what = match &args.vmlinux {
                Some(p) => p.display().to_string(),
                None => types::load::SYSFS_VMLINUX_BTF.to_string(),
            };
            anyhow!(e).context(format!("cannot load C types from {what}"))
        })?)
    } else if probes
        .iter()
        .any(|p| compile::wants_types(p) && compile::user_binary_for_types(p).is_none())
    {
        // Only checks and niceties depend on them: without types the
        // probes compile as the old tool compiled them.
        types::load::open(args.vmlinux.as_deref()).ok()
    } else {
        None
    };
    // Uprobes walk their binary's own DWARF.
    let mut user_types: Vec<(String, Box<dyn types::TypeSource>)> = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        let Some(path) = compile::user_binary_for_types(p) else {
            continue;
        };
        if user_types.iter().any(|(q, _)| q == path) {
            continue;
        }
        match types::load::open_file(std::path::Path::new(path)) {
            Ok(src) => user_types.push((path.to_string(), src)),
            // No DWARF, but -v gave types to use instead.
            Err(_) if source.is_some() => {}
            Err(e) => {
                return Err(spec_failure(
                    &sources[i],
                    &format!("cannot load C types from {path}: {e}"),
                    p.place.span,
                    Some("typed uprobe expressions read the binary's DWARF: build it with -g"),
                ));
            }
        }
    }
    let (access, why) = arg_access(args, arch);
    let local = args.vmlinux.is_none() && arch == Arch::host();
    let syscalls: &compile::syscall::Lookup = &running_syscall_params;
    let cx = Context {
        arch,
        types: source.as_deref(),
        user_types: &user_types,
        arg_access: access,
        syscall_params: local.then_some(syscalls),
    };
    let (mut plan, compile_notes) = compile::compile_noted(&probes, &cx, compile::group_name(pid))
        .map_err(|(i, e)| spec_failure(&sources[i], &e.to_string(), e.span, e.help.as_deref()))?;
    notes.extend(compile_notes);
    check_tracepoint_aggs(&probes, &mut plan, sources)?;
    for n in &notes {
        let s = &sources[n.probe];
        eprint!(
            "{}",
            render_diagnostic(
                &n.level.to_string(),
                &n.msg,
                &s.text,
                s.origin.as_deref(),
                n.span,
                n.help.as_deref(),
            )
        );
    }
    Ok((plan, Some(why)))
}

/// A tracepoint's aggregations name its fields: checked against its
/// format on the running kernel, where it can be read (as root; `-S` for
/// another machine leaves the check to that kernel).
fn check_tracepoint_aggs(
    probes: &[Probe],
    plan: &mut Plan,
    sources: &[Source],
) -> Result<(), Failure> {
    use crate::ring::format::FieldKind;
    use compile::aggs::{Named, ValueKind};
    for (i, p) in probes.iter().enumerate() {
        let spec::Place::Tracepoint { system, event } = &p.place.node else {
            continue;
        };
        if p.aggs.is_empty() {
            continue;
        }
        let Some(fs) = crate::tracefs::Tracefs::find() else {
            continue;
        };
        let Ok(text) = fs.read(&format!("events/{system}/{event}/format")) else {
            continue;
        };
        let Ok(format) = crate::ring::format::EventFormat::parse(&text) else {
            continue;
        };
        let named: Vec<Named> = format
            .fields
            .iter()
            .map(|f| Named {
                name: f.name.clone(),
                kind: match f.kind {
                    FieldKind::Int => ValueKind::Int,
                    FieldKind::CharArray | FieldKind::DataLocString | FieldKind::RelLocString => {
                        ValueKind::Str
                    }
                    _ => ValueKind::Array,
                },
                display: compile::plan::Display::Default,
            })
            .collect();
        plan.probes[i].aggs = compile::aggs::lower(p, Some(&named))
            .map_err(|e| spec_failure(&sources[i], &e.to_string(), e.span, e.help.as_deref()))?;
    }
    Ok(())
}

/// A spec error of one source, rendered for the terminal: exit 2.
fn spec_failure(s: &Source, msg: &str, span: Span, help: Option<&str>) -> Failure {
    Failure::Usage(render_error(msg, &s.text, s.origin.as_deref(), span, help))
}

/// rustc-style: the message, the probe with carets under the span, a hint.
pub fn render_error(
    msg: &str,
    text: &str,
    origin: Option<&str>,
    span: Span,
    help: Option<&str>,
) -> String {
    render_diagnostic("error", msg, text, origin, span, help)
}

/// [`render_error`] for any level: `error`, `warning`, `note`.
pub fn render_diagnostic(
    level: &str,
    msg: &str,
    text: &str,
    origin: Option<&str>,
    span: Span,
    help: Option<&str>,
) -> String {
    let mut out = format!("{level}: {msg}\n");
    if let Some(o) = origin {
        let _ = writeln!(out, "  --> {o}");
    }
    // Spans are byte offsets; columns are characters. Clamp so a bad span
    // can never make the renderer panic.
    let clamp = |i: usize| {
        let mut i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let (start, end) = (clamp(span.start), clamp(span.end.max(span.start)));
    let col = text[..start].chars().count();
    let width = text[start..end].chars().count().max(1);
    let shown: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .collect();
    let _ = writeln!(out, "  {shown}");
    let _ = writeln!(out, "  {}{}", " ".repeat(col), "^".repeat(width));
    if let Some(h) = help {
        let _ = writeln!(out, "help: {h}");
    }
    out
}

/// The `-S` output: a POSIX sh script that installs the plan on the
/// target as root, with reading and teardown shown as comments.
pub fn show_script(plan: &Plan, opts: InstallOptions) -> String {
    commands::script(plan, opts)
}

/// Live tracing: install, stream, tear down (src/live.rs).
pub fn live(args: &Args, plan: &Plan, agg: Option<crate::live::AggRun>) -> anyhow::Result<()> {
    let mut opts = crate::live::LiveOptions::from_args(args)?;
    opts.agg = agg;
    let summary = crate::live::run(&opts, plan)?;
    crate::live::print_summary(&summary);
    Ok(())
}

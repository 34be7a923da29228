//! Probe specs in, a plan out: the stages before tracefs, in order, for
//! the probes of one run: parse every spec, check kernel probes against
//! the running kernel (a live run), load the types, compile. Every stage
//! reports into one list of diagnostics; within a stage probes are
//! independent, so every bad probe of a run is reported at once, and a
//! run stops after the first stage that found an error, before anything
//! is installed.

use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::compile::plan::{CompiledProbe, Plan};
use crate::compile::{self, ArgAccess, Context, ReturnArgs};
use crate::diag::{Diagnostic, ProbeDiagnostics};
use crate::spec::{self, Place, Probe};
use crate::types::target::Kernel;
use crate::types::{self, TypeError, TypeSource};

/// One probe spec and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub text: String,
    /// `FILE:LINE` for probes read from a file.
    pub origin: Option<String>,
}

/// The probes of a probe file: one per line; blank lines and lines
/// starting with `#` skipped.
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

/// How `%N` is read at a kprobe's entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ArgFetch {
    /// `$argN` when the running kernel is the target and has it, else
    /// registers.
    #[default]
    Auto,
    Regs,
    Argn,
}

/// What a run asks of the stages besides the probes.
#[derive(Clone, Debug)]
pub struct Options {
    /// The type source; None: the running kernel's BTF.
    pub vmlinux: Option<PathBuf>,
    pub arch: Arch,
    /// `-a` was given: `arch` wins over what a type file says of itself.
    pub arch_given: bool,
    pub arg_fetch: ArgFetch,
    /// Check kernel probe places against the running kernel. Only for a
    /// live run: a `-S` script may be meant for another machine, and
    /// reading /proc/kallsyms alone costs the kernel ~70 ms, ten times a
    /// whole `-S` run.
    pub check_running_kernel: bool,
    /// The PID in the group name, `coolkprobe_<PID>` (a live run names
    /// its own group, see tracefs::run_group).
    pub group_pid: u32,
    /// `--raw`: numbers only, no names for them.
    pub raw: bool,
}

/// A plan, with what was said on the way.
#[derive(Debug)]
pub struct Built {
    pub plan: Plan,
    /// Warnings and notes, with the index of their probe.
    pub diagnostics: ProbeDiagnostics,
    /// How kprobes read `%N`, and why, when some kprobe reads an
    /// argument register (`-S` says it in a comment).
    pub arg_access: Option<String>,
    /// The same of return probes, when one reads the arguments kept from
    /// the entry.
    pub return_arg_access: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The probes cannot be used as written: every error found, with the
    /// index of its probe. (Warnings are about a run, and there is none.)
    #[error("bad probes")]
    Probes(ProbeDiagnostics),
    /// The type source cannot be read (the reason is the source error).
    #[error("cannot load C types from {what}")]
    Types { what: String, source: TypeError },
}

/// Run the stages on `sources`, for the kernel `opts` name (the running
/// one, or `opts.vmlinux`).
pub fn build(sources: &[Source], opts: &Options) -> Result<Built, BuildError> {
    let (probes, mut diags) = parse(sources)?;
    if opts.check_running_kernel
        && probes
            .iter()
            .any(|p| matches!(p.place.node, Place::Kernel { .. }))
    {
        if let Ok(syms) = crate::kernel::KernelSymbols::load() {
            crate::kernel::check(&probes, &syms, &mut diags);
        }
        stop_on_errors(&diags)?;
    }
    let vmlinux = opts.vmlinux.as_deref();
    let kernel_types = kernel_types(&probes, vmlinux)?;
    // A file's own arch, unless -a says otherwise.
    let arch = match vmlinux {
        Some(path) if !opts.arch_given => {
            let own = types::target::identify(path).ok().and_then(|mut k| {
                if let Some(t) = &kernel_types {
                    k.learn_arch(t.as_ref());
                }
                k.arch
            });
            own.unwrap_or(opts.arch)
        }
        _ => opts.arch,
    };
    compile_all(&probes, kernel_types, arch, opts, vmlinux, diags)
}

/// What each probe became on one kernel of several.
#[derive(Debug)]
pub struct TargetBuild {
    /// The arch it was compiled for.
    pub arch: Arch,
    /// One per probe, in order.
    pub probes: Vec<ProbeBuild>,
    /// How kprobes read `%N` there, and why, when some kprobe reads an
    /// argument; the same of return probes.
    pub arg_access: Option<String>,
    pub return_arg_access: Option<String>,
    pub group: String,
}

/// One probe on one kernel.
#[derive(Debug)]
pub struct ProbeBuild {
    /// None when it has an error there.
    pub compiled: Option<CompiledProbe>,
    pub diagnostics: Vec<Diagnostic>,
    /// The probed kernel function's parameters there, as C
    /// (`struct sock * sk`), when the kernel's types have its prototype.
    pub params: Option<Vec<String>>,
}

impl TargetBuild {
    /// The plan, when every probe compiled; else every error.
    pub fn into_built(self) -> Result<Built, BuildError> {
        let mut diagnostics = ProbeDiagnostics::new();
        let mut probes = Vec::with_capacity(self.probes.len());
        for (i, p) in self.probes.into_iter().enumerate() {
            diagnostics.extend(p.diagnostics.into_iter().map(|d| (i, d)));
            probes.extend(p.compiled);
        }
        stop_on_errors(&diagnostics)?;
        Ok(Built {
            plan: Plan {
                group: self.group,
                probes,
            },
            diagnostics,
            arg_access: self.arg_access,
            return_arg_access: self.return_arg_access,
        })
    }
}

/// Run the stages on `sources` for one `kernel` of several: its types
/// (opened here, and dropped when done), its own arch unless `-a` says
/// otherwise (what the types say fills in what its file did not), each
/// kernel probe's function checked against its symbol table, else its
/// BTF; then every probe compiled on its own. An error only when the
/// specs do not parse (on any kernel) or the kernel's types cannot be
/// read.
pub fn build_for(
    sources: &[Source],
    opts: &Options,
    kernel: &mut Kernel,
) -> Result<TargetBuild, BuildError> {
    let (probes, mut diags) = parse(sources)?;
    let vmlinux = kernel.path.clone();
    let kernel_types = kernel_types(&probes, vmlinux.as_deref())?;
    let types = kernel_types.as_deref();
    if let Some(t) = types {
        prefetch(&probes, t);
        kernel.learn_arch(t);
    }
    let arch = match kernel.arch {
        Some(a) if !opts.arch_given => a,
        _ => opts.arch,
    };
    check_functions(&probes, kernel, types, arch, &mut diags);
    let params: Vec<Option<Vec<String>>> = probes
        .iter()
        .map(|p| match (&p.place.node, types) {
            (Place::Kernel { symbol, .. }, Some(t)) => {
                let sig = types::proto::Signature::of(t, symbol).ok().flatten()?;
                Some(sig.params.iter().map(|p| param_text(t, p)).collect())
            }
            _ => None,
        })
        .collect();
    let c = compile_target(&probes, types, arch, opts, vmlinux.as_deref(), diags, false);
    let mut out: Vec<ProbeBuild> = c
        .probes
        .into_iter()
        .zip(params)
        .map(|(compiled, params)| ProbeBuild {
            compiled,
            diagnostics: Vec::new(),
            params,
        })
        .collect();
    for (i, d) in c.diags {
        if let Some(p) = out.get_mut(i) {
            p.diagnostics.push(d);
        }
    }
    Ok(TargetBuild {
        arch,
        arg_access: c.arg_access,
        return_arg_access: c.return_arg_access,
        probes: out,
        group: compile::group_name(opts.group_pid),
    })
}

/// Tell the types every name the stages will look up by name: the probed
/// functions (checked, typed), the casts' structs, `struct pt_regs` (the
/// arch's registers, syscall wrappers), `struct sk_buff` (packets).
fn prefetch(probes: &[Probe], types: &dyn TypeSource) {
    use crate::spec::{Expr, ProbeKind};
    let mut funcs: Vec<&str> = Vec::new();
    let mut composites: Vec<(types::CompositeKind, &str)> = vec![
        (types::CompositeKind::Struct, "pt_regs"),
        (types::CompositeKind::Struct, "sk_buff"),
    ];
    for p in probes {
        if let Place::Kernel { symbol, .. } = &p.place.node {
            if p.kind.node != ProbeKind::Tracepoint && !symbol.contains([':', '.']) {
                funcs.push(symbol);
            }
        }
        for a in &p.args {
            if let Expr::Typed(t) = &a.expr {
                if let Some(c) = &t.cast {
                    composites.push((c.node.kind, &c.node.name.node));
                }
            }
        }
    }
    funcs.sort_unstable();
    funcs.dedup();
    composites.sort_unstable_by_key(|(k, n)| (*k as u8, *n));
    composites.dedup();
    types.prefetch(&funcs, &composites);
}

/// `struct sock * sk`: a parameter as C writes it.
fn param_text(src: &dyn TypeSource, p: &types::Param) -> String {
    let ty = types::type_name(src, p.ty);
    match &p.name {
        Some(n) => format!("{ty} {n}"),
        None => ty,
    }
}

/// Every spec parsed, or every parse error.
fn parse(sources: &[Source]) -> Result<(Vec<Probe>, ProbeDiagnostics), BuildError> {
    let mut diags = ProbeDiagnostics::new();
    let mut probes = Vec::with_capacity(sources.len());
    for (i, s) in sources.iter().enumerate() {
        match spec::parse_probe(&s.text) {
            Ok(p) => probes.push(p),
            Err(d) => diags.push((i, d)),
        }
    }
    stop_on_errors(&diags)?;
    Ok((probes, diags))
}

/// The functions of a target's kernel probes: against the running
/// kernel's kallsyms, a vmlinux's symbol table, else the types' BTF
/// (what each can tell: kernel/checks.rs).
fn check_functions(
    probes: &[Probe],
    kernel: &Kernel,
    kernel_types: Option<&dyn TypeSource>,
    arch: Arch,
    diags: &mut ProbeDiagnostics,
) {
    if !probes
        .iter()
        .any(|p| matches!(p.place.node, Place::Kernel { .. }))
    {
        return;
    }
    let symbols = match &kernel.path {
        None => crate::kernel::KernelSymbols::load().ok(),
        Some(path) => types::btf::map_or_read(path).ok().and_then(|b| {
            crate::kernel::KernelSymbols::from_elf(b.bytes(), "this kernel's symbol table".into())
        }),
    };
    match (symbols, kernel_types) {
        (Some(syms), _) => crate::kernel::check(probes, &syms, diags),
        (None, Some(t)) => crate::kernel::checks::check_in_types(probes, t, arch, diags),
        (None, None) => {}
    }
}

/// The stages after the types: compile for `arch`, then what the plan
/// needs besides (tracepoint aggregations, `-p`).
fn compile_all(
    probes: &[Probe],
    kernel_types: Option<Box<dyn TypeSource>>,
    arch: Arch,
    opts: &Options,
    vmlinux: Option<&Path>,
    diags: ProbeDiagnostics,
) -> Result<Built, BuildError> {
    let c = compile_target(
        probes,
        kernel_types.as_deref(),
        arch,
        opts,
        vmlinux,
        diags,
        true,
    );
    let mut diags = c.diags;
    stop_on_errors(&diags)?;
    let mut plan = Plan {
        group: String::new(),
        probes: c.probes.into_iter().flatten().collect(),
    };
    plan.set_group(&compile::group_name(opts.group_pid));
    check_tracepoint_aggs(probes, &mut plan, &mut diags);
    stop_on_errors(&diags)?;
    if !opts.raw {
        name_tracepoint_fields(&mut plan);
    }
    Ok(Built {
        plan,
        diagnostics: diags,
        arg_access: c.arg_access,
        return_arg_access: c.return_arg_access,
    })
}

/// Every probe compiled for `arch` (on its own, or with its latencies
/// linked: then the entries of `l` probes follow), but those the stages
/// before found an error in (their diagnostics in `diags`).
struct Compiled {
    probes: Vec<Option<CompiledProbe>>,
    diags: ProbeDiagnostics,
    arg_access: Option<String>,
    return_arg_access: Option<String>,
}

fn compile_target(
    probes: &[Probe],
    kernel_types: Option<&dyn TypeSource>,
    arch: Arch,
    opts: &Options,
    vmlinux: Option<&Path>,
    mut diags: ProbeDiagnostics,
    link: bool,
) -> Compiled {
    let user_types = user_types(probes, kernel_types.is_some(), &mut diags);
    let failed: Vec<usize> = diags
        .iter()
        .filter(|(_, d)| d.is_error())
        .map(|(i, _)| *i)
        .collect();
    let target_elsewhere = vmlinux.is_some() || arch != Arch::host();
    let local = !target_elsewhere;
    let ((access, why), (return_args, ret_why)) =
        arg_access(opts.arg_fetch, arch, target_elsewhere);
    let syscalls: &compile::syscall::Lookup = &crate::kernel::syscalls::params;
    let events: &compile::EventFields = &tracepoint_fields;
    let cx = Context {
        user_types: &user_types,
        arg_access: access,
        syscall_params: local.then_some(syscalls),
        event_fields: local.then_some(events),
        tracepoint_values: local.then_some(&tracepoint_values),
        raw: opts.raw,
        known: crate::compile::known::Known::new(arch, local.then(running_gfp).flatten()),
        return_args,
        ..Context::new(arch, kernel_types)
    };
    let mut compile_diags = ProbeDiagnostics::new();
    // With latencies linked (one kernel), the entries of `l` probes come
    // after the probes written; a fleet compiles each probe on its own.
    let mut out = if link {
        match compile::compile(probes, &cx, String::new(), &mut compile_diags) {
            Some(plan) => plan.probes.into_iter().map(Some).collect(),
            None => vec![None; probes.len()],
        }
    } else {
        compile::compile_each(probes, &cx, &mut compile_diags)
    };
    // A probe already refused (its function missing, its binary without
    // types) says only that: what compiling it says follows from it.
    diags.extend(
        compile_diags
            .into_iter()
            .filter(|(i, _)| !failed.contains(i)),
    );
    for &i in &failed {
        out[i] = None;
    }
    let (entry, ret) = uses_kernel_args(out.iter().flatten());
    Compiled {
        probes: out,
        diags,
        arg_access: entry.then_some(why),
        return_arg_access: ret.then(|| {
            format!(
                "%N in return probes is read from the kernel's $argN, kept from the entry ({ret_why})"
            )
        }),
    }
}

/// `gfp_t`'s names as the running kernel prints them (its `kmem:kmalloc`
/// format), where tracefs can be read.
fn running_gfp() -> Option<std::sync::Arc<compile::plan::NameTable>> {
    let fs = crate::tracefs::Tracefs::find()?;
    let text = fs.read("events/kmem/kmalloc/format").ok()?;
    compile::known::gfp_from_format(&text).map(std::sync::Arc::new)
}

fn stop_on_errors(diags: &ProbeDiagnostics) -> Result<(), BuildError> {
    if diags.iter().any(|(_, d)| d.is_error()) {
        let errors = diags.iter().filter(|(_, d)| d.is_error()).cloned();
        return Err(BuildError::Probes(errors.collect()));
    }
    Ok(())
}

/// The kernel's types: for kernel probes, and for uprobes when `-v` names
/// a file (a binary without DWARF borrows layouts from it).
fn kernel_types(
    probes: &[Probe],
    vmlinux: Option<&Path>,
) -> Result<Option<Box<dyn TypeSource>>, BuildError> {
    let needs = probes.iter().any(|p| {
        compile::needs_types(p)
            && (compile::user_binary_for_types(p).is_none() || vmlinux.is_some())
    });
    if needs {
        return types::load::open(vmlinux)
            .map(Some)
            .map_err(|source| BuildError::Types {
                what: match vmlinux {
                    Some(p) => p.display().to_string(),
                    None => types::load::SYSFS_VMLINUX_BTF.to_string(),
                },
                source,
            });
    }
    // Only checks and niceties depend on them: without types the probes
    // compile as the old tool compiled them.
    let wants = probes
        .iter()
        .any(|p| compile::wants_types(p) && compile::user_binary_for_types(p).is_none());
    Ok(wants.then(|| types::load::open(vmlinux).ok()).flatten())
}

/// Each uprobe binary's own types (its DWARF), by path.
fn user_types(
    probes: &[Probe],
    have_kernel_types: bool,
    diags: &mut ProbeDiagnostics,
) -> Vec<(String, Box<dyn TypeSource>)> {
    let mut out: Vec<(String, Box<dyn TypeSource>)> = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        let Some(path) = compile::user_binary_for_types(p) else {
            continue;
        };
        if out.iter().any(|(q, _)| q == path) {
            continue;
        }
        match types::load::open_file(Path::new(path)) {
            Ok(src) => out.push((path.to_string(), src)),
            // No DWARF, but -v gave types to use instead.
            Err(_) if have_kernel_types => {}
            Err(e) => diags.push((
                i,
                Diagnostic::error(
                    p.place.span,
                    format!("cannot load C types from {path}: {e}"),
                )
                .with_help("typed uprobe expressions read the binary's DWARF: build it with -g"),
            )),
        }
    }
    out
}

/// How `%N` is read at a kprobe's entry, and why; whether return probes
/// read the arguments the kernel kept from the entry, and why. `auto`
/// asks the running kernel's tracefs, but only when it is the target: with
/// `-v` or a foreign `-a` the target kernel is elsewhere, and registers
/// work at every kernel's entry.
fn arg_access(
    how: ArgFetch,
    arch: Arch,
    target_elsewhere: bool,
) -> ((ArgAccess, String), (ReturnArgs, String)) {
    let local = !target_elsewhere;
    let running = match how {
        ArgFetch::Auto if local => crate::kernel::argn(),
        _ => None,
    };
    let regs = |why: &str| (ArgAccess::Registers, format!("{arch} registers{why}"));
    let argn = |why: &str| (ArgAccess::KernelArgs, format!("the kernel's $argN{why}"));
    let entry = match (how, running) {
        (ArgFetch::Regs, _) => regs(" (--arg-fetch regs)"),
        (ArgFetch::Argn, _) => argn(" (--arg-fetch argn)"),
        (ArgFetch::Auto, _) if !local => {
            regs(": the target is another kernel (--arg-fetch argn for $argN)")
        }
        (ArgFetch::Auto, Some(a)) if a.entry => {
            argn(": the running kernel has it (--arg-fetch regs for registers)")
        }
        (ArgFetch::Auto, Some(_)) => regs(": the running kernel has no $argN"),
        (ArgFetch::Auto, None) => regs(": tracefs is not readable, so $argN support is unknown"),
    };
    let kept = |why: &str| (ReturnArgs::Kept, why.to_string());
    let lost = |why: &str| (ReturnArgs::NotKept(why.to_string()), String::new());
    let ret = match (how, running) {
        (ArgFetch::Argn, _) => kept("--arg-fetch argn"),
        (ArgFetch::Regs, _) => lost(
            "--arg-fetch regs reads registers, and at a return they no longer hold the arguments",
        ),
        (ArgFetch::Auto, _) if !local => lost(
            "the target kernel cannot be asked whether it keeps them for return probes \
             (-v or -a names another kernel; Linux 6.10 and later do: then add --arg-fetch argn)",
        ),
        (ArgFetch::Auto, Some(a)) if a.ret => kept("the running kernel keeps them"),
        (ArgFetch::Auto, Some(_)) => lost(
            "the running kernel does not keep them for return probes \
             (`$argN` in return probes came with Linux 6.10)",
        ),
        (ArgFetch::Auto, None) => lost(
            "tracefs is not readable here, so whether the kernel keeps them for return probes is unknown \
             (run as root, or add --arg-fetch argn: Linux 6.10 and later keep them)",
        ),
    };
    (entry, ret)
}

/// Whether some kprobe reads an argument at its entry (so how it reads
/// them matters), and some return probe the arguments kept for it
/// (`$argN`: a register there is a raw fetcharg, read as written).
fn uses_kernel_args<'a>(probes: impl Iterator<Item = &'a CompiledProbe> + Clone) -> (bool, bool) {
    use crate::fetch::Fetch;
    let kprobes = |ret: bool| {
        probes
            .clone()
            .filter(move |p| matches!(p.target, compile::plan::Target::Kprobe { ret: r, .. } if r == ret))
            .flat_map(|p| &p.fetchargs)
    };
    let entry = kprobes(false).any(|f| f.value.reads_arguments());
    let ret = kprobes(true).any(|f| matches!(f.value.root(), Fetch::ArgN(_)));
    (entry, ret)
}

/// Where aggregations are computed, as asked (`--agg`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AggWhere {
    /// In the kernel when it has hist triggers, else in user space.
    #[default]
    Auto,
    Kernel,
    User,
}

/// What is asked of a run's aggregations besides the plan.
#[derive(Clone, Debug, Default)]
pub struct AggOptions {
    pub place: AggWhere,
    /// `--agg-size`.
    pub size: Option<usize>,
    /// `--interval`.
    pub interval: Option<std::time::Duration>,
    /// `-c`: events to print.
    pub count: Option<u64>,
    /// `-S`: the script may be for another machine.
    pub show: bool,
    /// Latencies are paired in user space: their aggregations are
    /// computed there too (no kernel event holds their completed calls).
    pub latency_user: bool,
}

/// Where a run's aggregations are computed, and why, from `opts` and what
/// the target kernel has (asked only when it is the running kernel). None
/// when no probe aggregates; a diagnostic for options that make no sense.
pub fn aggregation(
    plan: &Plan,
    opts: &Options,
    agg: &AggOptions,
) -> Result<Option<crate::live::AggRun>, Diagnostic> {
    use crate::agg::{Features, Path};
    let wants_buckets = plan.probes.iter().any(|p| {
        p.aggs
            .iter()
            .any(|a| matches!(a.func, compile::plan::AggFunc::Linear { .. }))
    });
    if !plan.probes.iter().any(|p| !p.aggs.is_empty()) {
        for (flag, given) in [
            ("--agg-size", agg.size.is_some()),
            ("--interval", agg.interval.is_some()),
            ("--agg", agg.place != AggWhere::Auto),
        ] {
            if given {
                return Err(Diagnostic::error(
                    None,
                    format!("{flag} is for aggregations, and no probe has one"),
                )
                .with_help("add one to a probe, e.g. `p vfs_read n=count hist(n)[comm]`"));
            }
        }
        return Ok(None);
    }
    crate::agg::table_size(agg.size).map_err(|e| Diagnostic::error(None, e))?;
    let local = opts.vmlinux.is_none() && opts.arch == Arch::host();
    let readme = if local {
        crate::tracefs::Tracefs::find().and_then(|t| t.read("README").ok())
    } else {
        None
    };
    let features = match &readme {
        Some(r) => Features::from_readme(r),
        None => Features::assumed(),
    };
    let wants_max = plan
        .probes
        .iter()
        .any(|p| p.aggs.iter().any(|a| a.func == compile::plan::AggFunc::Max));
    let latency_aggs = plan
        .probes
        .iter()
        .any(|p| p.latency_end().is_some() && !p.aggs.is_empty());
    let lacks = if !features.hist {
        Some("it has no hist triggers (CONFIG_HIST_TRIGGERS is off)")
    } else if wants_buckets && !features.buckets {
        Some("its hist triggers have no linear buckets (`.buckets=`, Linux 5.19)")
    } else if wants_max && !features.onmax {
        Some("its hist triggers cannot keep a maximum with its values (`onmax().save()`)")
    } else {
        None
    };
    // Completed calls paired in user space exist only there.
    let paired_in_user = agg.latency_user && latency_aggs;
    let (path, why) = match (agg.place, lacks) {
        (AggWhere::User, _) => (Path::User, "--agg user".to_string()),
        (AggWhere::Kernel, _) if paired_in_user => {
            return Err(Diagnostic::error(
                None,
                "--agg kernel, but the latencies are paired in user space, and so their completed calls are aggregated there",
            )
            .with_help("leave out --agg kernel, or pair them in the kernel (--latency kernel)"))
        }
        (AggWhere::Auto, _) if paired_in_user => (
            Path::User,
            "the latencies are paired in user space, so their completed calls are too".to_string(),
        ),
        (AggWhere::Kernel, Some(l)) if readme.is_some() && !agg.show => {
            return Err(Diagnostic::error(
                None,
                format!("--agg kernel, but the running kernel cannot: {l}"),
            )
            .with_help("--agg user counts the events in coolkprobe"))
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
    if agg.count.is_some() && only_aggs {
        return Err(Diagnostic::error(
            None,
            "-c counts printed events, and every probe aggregates",
        )
        .with_help("end the run with -d TIME or Ctrl-C"));
    }
    Ok(Some(crate::live::AggRun {
        path,
        features,
        size: agg.size,
        interval: agg.interval,
        why,
    }))
}

/// Where latencies are paired, as asked (`--latency`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LatencyWhere {
    /// In the kernel when it has synthetic events, else in user space.
    #[default]
    Auto,
    Kernel,
    User,
}

/// The most variables a hist trigger holds (TRACING_MAP_VARS_MAX in the
/// kernel's kernel/trace/tracing_map.h): a start's time and its values.
const MAX_HIST_VARS: usize = 16;

/// Where a run's latencies are paired, and why, from `place` and what the
/// target kernel has (asked only when it is the running kernel). None
/// when no probe ends a latency.
pub fn latency(
    plan: &Plan,
    opts: &Options,
    place: LatencyWhere,
    show: bool,
) -> Result<Option<crate::live::LatencyRun>, Diagnostic> {
    use crate::latency::Path;
    let ends: Vec<_> = plan.probes.iter().filter_map(|p| p.latency_end()).collect();
    if ends.is_empty() {
        if place != LatencyWhere::Auto {
            return Err(Diagnostic::error(
                None,
                "--latency is for latencies, and no probe has one",
            )
            .with_help("add one, e.g. `l do_sys_openat2 fn=filename` or `t syscalls:sys_exit_read lat=since(f0)`"));
        }
        return Ok(None);
    }
    let local = opts.vmlinux.is_none() && opts.arch == Arch::host();
    let readme = if local {
        crate::tracefs::Tracefs::find().and_then(|t| t.read("README").ok())
    } else {
        None
    };
    let features = match &readme {
        Some(r) => crate::tracefs::hist::Features::from_readme(r),
        None => crate::tracefs::hist::Features::assumed(),
    };
    let carried = ends
        .iter()
        .map(|l| {
            l.fields
                .iter()
                .filter(|f| f.from == compile::plan::FieldFrom::Start)
                .count()
        })
        .max()
        .unwrap_or(0);
    let lacks = if !features.hist {
        Some("it has no hist triggers (CONFIG_HIST_TRIGGERS is off)".to_string())
    } else if !features.synth {
        Some("it has no synthetic events fed by hist triggers (CONFIG_SYNTH_EVENTS, the `trace()` action)".to_string())
    } else if carried + 1 > MAX_HIST_VARS {
        Some(format!(
            "a hist trigger holds {MAX_HIST_VARS} variables, and a start carries {carried} values and its time"
        ))
    } else {
        None
    };
    let (path, why) = match (place, lacks) {
        (LatencyWhere::User, _) => (Path::User, "--latency user".to_string()),
        (LatencyWhere::Kernel, Some(l)) if readme.is_some() && !show => {
            return Err(Diagnostic::error(
                None,
                format!("--latency kernel, but the running kernel cannot: {l}"),
            )
            .with_help("--latency user pairs the events in coolkprobe"))
        }
        (LatencyWhere::Kernel, _) => (Path::Kernel, "--latency kernel".to_string()),
        (LatencyWhere::Auto, Some(l)) => (Path::User, format!("the running kernel cannot: {l}")),
        (LatencyWhere::Auto, None) => (
            Path::Kernel,
            match readme {
                Some(_) => "the running kernel has synthetic events".to_string(),
                None => {
                    "the target kernel cannot be asked here: synthetic events assumed".to_string()
                }
            },
        ),
    };
    Ok(Some(crate::live::LatencyRun {
        path,
        features,
        why,
    }))
}

/// The one line saying where latencies are paired, and why.
pub fn latency_why(l: &crate::live::LatencyRun) -> String {
    match l.path {
        crate::latency::Path::Kernel => format!(
            "pairing latencies in the kernel with a synthetic event and hist triggers ({})",
            l.why
        ),
        crate::latency::Path::User => format!(
            "pairing latencies in user space, every start and end streamed to coolkprobe ({})",
            l.why
        ),
    }
}

/// The one line saying where aggregations are computed, and why.
pub fn aggregation_why(a: &crate::live::AggRun) -> String {
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

/// A tracepoint's format on the running kernel, where it can be read.
fn tracepoint_format(system: &str, event: &str) -> Option<crate::tracefs::format::EventFormat> {
    let fs = crate::tracefs::Tracefs::find()?;
    let text = fs.read(&format!("events/{system}/{event}/format")).ok()?;
    crate::tracefs::format::EventFormat::parse(&text).ok()
}

/// A tracepoint's fields that the kernel's own print format names
/// (`__print_symbolic`, `__print_flags`, `%pI4`) are shown that way
/// (README, "Values by name"), from its format on the running kernel.
fn name_tracepoint_fields(plan: &mut Plan) {
    for p in &mut plan.probes {
        let compile::plan::Target::Tracepoint { system, event } = &p.target else {
            continue;
        };
        let Some(format) = tracepoint_format(system, event) else {
            continue;
        };
        let Some(pf) = &format.print_fmt else {
            continue;
        };
        for print in crate::tracefs::printfmt::parse(pf) {
            if format.field(&print.field).is_none()
                || p.fields.iter().any(|f| f.name == print.field)
            {
                continue;
            }
            p.fields.push(compile::plan::FieldPlan {
                name: print.field.clone(),
                names: Some(compile::plan::Names::Print(std::sync::Arc::new(print))),
                ..Default::default()
            });
        }
    }
}

/// A tracepoint's own fields, as its filter compares them: the kernel's
/// filter reads `char` arrays, `__data_loc char[]` and `char *` as
/// strings (trace_events_filter.c, filter_assign_type).
fn tracepoint_fields(system: &str, event: &str) -> Option<Vec<compile::filter::FilterField>> {
    use crate::tracefs::format::FieldKind;
    use compile::filter::{FieldType, FilterField};
    let format = tracepoint_format(system, event)?;
    // Names its print format gives a field's numbers (`newstate`'s
    // `TCP_ESTABLISHED`): a filter may compare with them.
    let prints = format
        .print_fmt
        .as_deref()
        .map(crate::tracefs::printfmt::parse)
        .unwrap_or_default();
    let fields = format.own_fields().map(|f| FilterField {
        path: None,
        names: prints
            .iter()
            .find(|p| p.field == f.name && !p.names().is_empty())
            .map(|p| compile::plan::Names::Print(std::sync::Arc::new(p.clone()))),
        name: f.name.clone(),
        display: compile::plan::Display::Default,
        size: None,
        ty: match f.kind {
            FieldKind::CharArray | FieldKind::DataLocString | FieldKind::RelLocString => {
                FieldType::String
            }
            _ if matches!(f.type_text.as_str(), "char *" | "const char *") => FieldType::String,
            FieldKind::Int => FieldType::Int {
                bytes: f.size as u32,
                signed: f.signed,
            },
            _ => FieldType::Array,
        },
    });
    Some(fields.collect())
}

/// A tracepoint's fields from its format on the running kernel, as a
/// latency carries them (None where the format cannot be read).
fn tracepoint_values(system: &str, event: &str) -> Option<Vec<compile::latency::TpField>> {
    use crate::tracefs::format::{FieldKind, Natural};
    use compile::plan::{Display, SynthType};
    let format = tracepoint_format(system, event)?;
    Some(
        format
            .own_fields()
            .map(|f| compile::latency::TpField {
                name: f.name.clone(),
                ty: match f.kind {
                    FieldKind::Int if (1..=8).contains(&f.size) => Some(SynthType::Int {
                        bytes: f.size as u32,
                        signed: f.signed,
                    }),
                    FieldKind::CharArray | FieldKind::DataLocString | FieldKind::RelLocString => {
                        Some(SynthType::Str)
                    }
                    _ => None,
                },
                display: if f.natural == Natural::Hex {
                    Display::Hex
                } else {
                    Display::Default
                },
            })
            .collect(),
    )
}

/// A tracepoint's aggregations name its fields: checked against its
/// format on the running kernel, where it can be read (`-S` for another
/// machine leaves the check to that kernel).
fn check_tracepoint_aggs(probes: &[Probe], plan: &mut Plan, diags: &mut ProbeDiagnostics) {
    use crate::tracefs::format::FieldKind;
    use compile::aggs::{Named, ValueKind};
    for (i, p) in probes.iter().enumerate() {
        let Place::Tracepoint { system, event } = &p.place.node else {
            continue;
        };
        // A latency's aggregations are of its completed calls: checked
        // when it was linked.
        if p.aggs.is_empty() || plan.probes[i].latency.is_some() {
            continue;
        }
        let Some(format) = tracepoint_format(system, event) else {
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
        match compile::aggs::lower(p, Some(&named)) {
            Ok(aggs) => plan.probes[i].aggs = aggs,
            Err(d) => diags.push((i, d)),
        }
    }
}

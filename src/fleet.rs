//! One probe file, a fleet of kernels (README, "Fleets"): the probes
//! compiled for each kernel's types, one kernel at a time per CPU (its
//! file is opened, its probes compiled, its types dropped), and what that tells:
//! per probe and kernel, whether it compiles there, how its fetchargs
//! differ from the first kernel's, and why it does not.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::arch::Arch;
use crate::diag::{Code, Diagnostic};
use crate::fetch::{Fetch, FetchArg};
use crate::pipeline::{self, BuildError, Options, Source, TargetBuild};
use crate::spec::{Base, Expr, Place, Probe};
use crate::types::target::{self, Kernel};
use crate::types::TypeError;

/// Every kernel of a fleet, and what the probes became on it.
pub struct Fleet {
    pub kernels: Vec<Kernel>,
    /// One per kernel: its build, or why its types could not be read.
    pub builds: Vec<Result<TargetBuild, BuildError>>,
}

/// The kernels `paths` name (files, and the type files under
/// directories), each compiled for. An error when a path cannot be read,
/// or the probes do not parse (that holds on every kernel).
pub fn build(sources: &[Source], opts: &Options, paths: &[PathBuf]) -> Result<Fleet, BuildError> {
    let files = match paths {
        [] => Vec::new(),
        _ => target::files(paths).map_err(|source| BuildError::Types {
            what: paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            source,
        })?,
    };
    if files.is_empty() {
        let mut kernel = Kernel::running();
        let built = pipeline::build_for(sources, opts, &mut kernel);
        if let Err(e @ BuildError::Probes(_)) = built {
            return Err(e);
        }
        return Ok(Fleet {
            kernels: vec![kernel],
            builds: vec![built],
        });
    }
    // The kernels are independent (each opens, compiles and drops its
    // own types): they are shared out among the CPUs, a kernel at a time,
    // and kept in the order of their files.
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len());
    let mut done: Vec<(usize, Kernel, Result<TargetBuild, BuildError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break out };
                        let (kernel, built) = build_one(sources, opts, f);
                        out.push((i, kernel, built));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    done.sort_by_key(|(i, _, _)| *i);
    let mut kernels = Vec::with_capacity(done.len());
    let mut builds = Vec::with_capacity(done.len());
    for (_, kernel, built) in done {
        // The probes do not parse: that holds on every kernel.
        if let Err(e @ BuildError::Probes(_)) = built {
            return Err(e);
        }
        kernels.push(kernel);
        builds.push(built);
    }
    Ok(Fleet { kernels, builds })
}

/// One kernel file: named, and compiled for (or why its types could not
/// be read).
fn build_one(
    sources: &[Source],
    opts: &Options,
    f: &Path,
) -> (Kernel, Result<TargetBuild, BuildError>) {
    match target::identify(f) {
        Ok(mut kernel) => {
            let built = pipeline::build_for(sources, opts, &mut kernel);
            (kernel, built)
        }
        Err(source) => (
            Kernel {
                path: Some(f.to_path_buf()),
                release: target::release_from_name(f),
                release_from: "its file name",
                arch: None,
                arch_from: "",
                build_id: None,
            },
            Err(BuildError::Types {
                what: f.display().to_string(),
                source,
            }),
        ),
    }
}

/// What one probe is on one kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// It compiles, to what it compiles to on the first kernel.
    Ok,
    /// It compiles, to other fetchargs than on the first kernel (offsets,
    /// types): each kernel gets its own.
    Differs,
    /// A struct or union it names is not there.
    NoType,
    /// A member it names is not there.
    NoMember,
    /// Its function is not there.
    NoFunction,
    /// Its function is there only as compiler copies (`.isra.0`).
    Copies,
    /// The function's prototype changed where the probe reads an argument
    /// by position, or has no such parameter.
    Prototype,
    /// What it asks of the arch, this kernel's arch does not have.
    Arch,
    /// Another error.
    Error,
    /// The kernel's types cannot be read.
    Types,
}

impl Status {
    /// Its name in the table and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Differs => "differs",
            Status::NoType => "no-type",
            Status::NoMember => "no-member",
            Status::NoFunction => "no-func",
            Status::Copies => "copies",
            Status::Prototype => "proto",
            Status::Arch => "arch",
            Status::Error => "error",
            Status::Types => "types",
        }
    }

    /// Whether the probe cannot be used on that kernel as written.
    pub fn fails(self) -> bool {
        !matches!(self, Status::Ok | Status::Differs)
    }

    fn of(code: Option<Code>) -> Status {
        match code {
            Some(Code::UnknownType) => Status::NoType,
            Some(Code::UnknownMember) => Status::NoMember,
            Some(Code::NoFunction) => Status::NoFunction,
            Some(Code::OnlyCopies) => Status::Copies,
            Some(Code::Prototype) => Status::Prototype,
            Some(Code::Arch) => Status::Arch,
            None => Status::Error,
        }
    }
}

/// A named value whose fetcharg differs from the first kernel's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub name: String,
    /// The fetcharg on the kernel compared against, and here.
    pub was: String,
    pub here: String,
}

/// One probe on one kernel.
#[derive(Clone, Debug)]
pub struct Cell {
    pub status: Status,
    /// The kernel it is compared against (an index into the kernels): the
    /// first where the probe compiles.
    pub reference: Option<usize>,
    pub differences: Vec<Difference>,
    /// What was said about the probe on this kernel (the errors of a
    /// failure first; warnings).
    pub diagnostics: Vec<Diagnostic>,
    /// The fetchargs it compiles to there, as the kernel spells them.
    pub fetchargs: Vec<String>,
}

/// The check: one row per kernel, one cell per probe.
pub struct Report {
    pub kernels: Vec<Kernel>,
    /// The arch each kernel was compiled for (None: its types could not
    /// be read).
    pub arches: Vec<Option<Arch>>,
    pub rows: Vec<Vec<Cell>>,
}

impl Report {
    /// Compare every kernel's probes with the first kernel where each
    /// compiles.
    pub fn new(fleet: Fleet, sources: &[Source]) -> Report {
        let probes: Vec<Option<Probe>> = sources
            .iter()
            .map(|s| crate::spec::parse_probe(&s.text).ok())
            .collect();
        let n = sources.len();
        let mut reference: Vec<Option<usize>> = vec![None; n];
        for (k, b) in fleet.builds.iter().enumerate() {
            if let Ok(b) = b {
                for (j, p) in b.probes.iter().enumerate() {
                    if p.compiled.is_some() && reference[j].is_none() {
                        reference[j] = Some(k);
                    }
                }
            }
        }
        let arches: Vec<Option<Arch>> = fleet
            .builds
            .iter()
            .map(|b| b.as_ref().ok().map(|b| b.arch))
            .collect();
        let mut rows = Vec::new();
        for b in &fleet.builds {
            let row = match b {
                Err(e) => {
                    let d = Diagnostic::error(None, types_error(e));
                    (0..n)
                        .map(|_| Cell {
                            status: Status::Types,
                            reference: None,
                            differences: Vec::new(),
                            diagnostics: vec![d.clone()],
                            fetchargs: Vec::new(),
                        })
                        .collect()
                }
                Ok(b) => (0..n)
                    .map(|j| cell(&fleet, b, j, reference[j], probes[j].as_ref()))
                    .collect(),
            };
            rows.push(row);
        }
        Report {
            kernels: fleet.kernels,
            arches,
            rows,
        }
    }

    /// Whether some probe fails on some kernel.
    pub fn failed(&self) -> bool {
        self.rows.iter().flatten().any(|c| c.status.fails())
    }
}

fn types_error(e: &BuildError) -> String {
    match e {
        BuildError::Types { what, source } => {
            format!("cannot load C types from {what}: {}", error_chain(source))
        }
        other => other.to_string(),
    }
}

fn error_chain(e: &TypeError) -> String {
    let mut s = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

fn cell(
    fleet: &Fleet,
    here: &TargetBuild,
    j: usize,
    reference: Option<usize>,
    probe: Option<&Probe>,
) -> Cell {
    let p = &here.probes[j];
    let mut diagnostics: Vec<Diagnostic> = p
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect();
    diagnostics.extend(p.diagnostics.iter().filter(|d| !d.is_error()).cloned());
    let Some(compiled) = &p.compiled else {
        let status = Status::of(diagnostics.first().and_then(|d| d.code));
        return Cell {
            status,
            reference,
            differences: Vec::new(),
            diagnostics,
            fetchargs: Vec::new(),
        };
    };
    let fetchargs: Vec<String> = compiled.fetchargs.iter().map(|f| f.to_string()).collect();
    let mut cell = Cell {
        status: Status::Ok,
        reference,
        differences: Vec::new(),
        diagnostics,
        fetchargs,
    };
    let Some(r) = reference else { return cell };
    let Some(Ok(rb)) = fleet.builds.get(r) else {
        return cell;
    };
    let Some(rp) = &rb.probes[j].compiled else {
        return cell;
    };
    for (a, b) in rp.fetchargs.iter().zip(&compiled.fetchargs) {
        if normalised(a, rb.arch) != normalised(b, here.arch) {
            cell.differences.push(Difference {
                name: b.name.clone(),
                was: a.fetch_text(),
                here: b.fetch_text(),
            });
        }
    }
    if !cell.differences.is_empty() {
        cell.status = Status::Differs;
    }
    // An argument read by position means something else where the
    // prototype changed there.
    if let (Some(probe), Some(was), Some(now)) = (probe, &rb.probes[j].params, &p.params) {
        let kernel = fleet.kernels[r].name();
        for n in positional_args(probe, here.arch) {
            let (a, b) = (was.get(n), now.get(n));
            if a != b {
                cell.status = Status::Prototype;
                let show = |x: Option<&String>| match x {
                    Some(t) => format!("`{t}`"),
                    None => "not there".to_string(),
                };
                cell.diagnostics.insert(
                    0,
                    Diagnostic::error(
                        None,
                        format!(
                            "the prototype changed: argument %{n} is {} here, {} on {kernel}",
                            show(b),
                            show(a)
                        ),
                    )
                    .with_code(Code::Prototype)
                    .with_help("name the parameter (`sk->...`): each kernel reads its own"),
                );
            }
        }
    }
    cell
}

/// The argument positions a probe reads by number: `%N` in a typed
/// expression, and the argument registers or `$argN` of a raw fetcharg.
/// (A parameter named is found by its name on every kernel.)
pub fn positional_args(probe: &Probe, arch: Arch) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    if !matches!(probe.place.node, Place::Kernel { .. }) {
        return out;
    }
    for a in &probe.args {
        match &a.expr {
            Expr::Typed(t) => {
                if let Base::Arg(n) = t.base.node {
                    out.insert(n as usize);
                }
            }
            Expr::Raw(r) => {
                let f = FetchArg::raw("", &r.node);
                match f.value.root() {
                    Fetch::ArgN(n) => {
                        out.insert(*n as usize);
                    }
                    Fetch::Reg(r) => {
                        if let Some(n) = arg_index(r, arch) {
                            out.insert(n);
                        }
                    }
                    _ => {}
                }
            }
            // Reads nothing itself (and a fleet refuses latencies).
            Expr::Since(_) => {}
        }
    }
    out
}

/// Which argument register `reg` (without `%`) is on `arch`.
fn arg_index(reg: &str, arch: Arch) -> Option<usize> {
    arch.arg_regs()
        .iter()
        .position(|r| r.trim_start_matches('%') == reg)
}

/// A fetcharg with each argument register written as the argument it
/// holds, so that `%di` on x86_64 and `%x0` on arm64 compare equal.
fn normalised(f: &FetchArg, arch: Arch) -> FetchArg {
    fn go(v: &Fetch, arch: Arch) -> Fetch {
        match v {
            Fetch::Reg(r) => match arg_index(r, arch) {
                Some(n) => Fetch::ArgN(n as u32),
                None => v.clone(),
            },
            Fetch::Deref {
                base,
                off,
                user,
                radix,
            } => Fetch::Deref {
                base: Box::new(go(base, arch)),
                off: *off,
                user: *user,
                radix: *radix,
            },
            other => other.clone(),
        }
    }
    FetchArg {
        name: f.name.clone(),
        value: go(&f.value, arch),
        ty: f.ty.clone(),
    }
}

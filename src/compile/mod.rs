//! AST + types + arch → fetchargs, filter and display plan.
//!
//! A semantic pass walks each typed expression through the type source
//! (one member at a time, as C would) and emits the ftrace fetcharg for
//! the leaf it reaches. Nothing here touches tracefs: the output is a
//! [`plan::Plan`].

pub mod aggs;
mod args;
pub mod filter;
pub mod plan;
pub mod suggest;
pub mod syscall;
#[cfg(test)]
mod tests;
mod uprobe;
mod walk;

use std::path::PathBuf;

use crate::arch::Arch;
use crate::spec::{Base, Expr, Place, Probe, ProbeKind, Span, UserLoc};
use crate::types::{CompositeKind, TypeError, TypeSource};
use plan::{CompiledProbe, Display, FetchArg, FieldPlan, Plan, Target};

pub use args::ArgAccess;
pub use walk::Leaf;

/// A probe that cannot be compiled: what is wrong, where in the spec, and
/// (for misspelt names) what was probably meant.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct CompileError {
    pub span: Span,
    pub kind: Box<ErrorKind>,
    pub help: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("unknown {kind} `{name}`")]
    UnknownComposite { kind: &'static str, name: String },
    #[error("`{ty}` has no member `{member}`")]
    UnknownMember { ty: String, member: String },
    #[error("`->{member}` needs a pointer, but `{path}` is `{ty}`")]
    ArrowOnNonPointer {
        member: String,
        path: String,
        ty: String,
    },
    #[error("`{path}` is a pointer (`{ty}`): `.{member}` needs a struct or union")]
    DotOnPointer {
        member: String,
        path: String,
        ty: String,
    },
    #[error("`.{member}` needs a struct or union, but `{path}` is `{ty}`")]
    DotOnNonComposite {
        member: String,
        path: String,
        ty: String,
    },
    #[error("`{path}` is `{ty}`, not an array: it cannot be indexed")]
    IndexOnNonArray { path: String, ty: String },
    #[error("index {index} is out of bounds: `{path}` is `{ty}` ({len} elements)")]
    IndexOutOfBounds {
        index: u64,
        path: String,
        ty: String,
        len: u64,
    },
    #[error("argument %{n} is beyond the {arch} argument registers (%0..%{last}: {regs})")]
    ArgBeyondRegisters {
        n: u32,
        arch: Arch,
        last: usize,
        regs: String,
    },
    #[error("cannot fetch `{path}`: it is {what}")]
    Unfetchable { path: String, what: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Packet(String),
    #[error("cannot use {path}: {msg}")]
    Binary { path: String, msg: String },
    #[error("symbol `{symbol}` not found in {path}")]
    NoSymbol { symbol: String, path: String },
    #[error("no function `{name}` in the running kernel")]
    NoSuchFunction { name: String },
    #[error("no function `{name}` in module `{module}`")]
    NoSuchFunctionInModule { name: String, module: String },
    #[error("`{name}` names {count} functions in the running kernel")]
    AmbiguousFunction { name: String, count: usize },
    #[error("`{name}` cannot be probed: {why}")]
    NotProbeable { name: String, why: String },
    #[error("`+{offset:#x}` is outside `{name}` ({size:#x} bytes long)")]
    OffsetOutsideFunction {
        offset: u64,
        name: String,
        size: u64,
    },
    #[error("bad filter: {0}")]
    Filter(String),
    #[error("this probe needs C types, but no type source is open")]
    NoTypes,
    #[error("type information: {0}")]
    Types(#[from] TypeError),
}

impl CompileError {
    pub fn new(span: Span, kind: ErrorKind) -> CompileError {
        CompileError {
            span,
            kind: Box::new(kind),
            help: None,
        }
    }
    pub fn with_help(mut self, help: impl Into<String>) -> CompileError {
        self.help = Some(help.into());
        self
    }
}

/// A type-source failure mid-walk; [`typed`] gives it the expression's span.
impl From<TypeError> for CompileError {
    fn from(e: TypeError) -> CompileError {
        CompileError::new(Span::default(), ErrorKind::Types(e))
    }
}

pub type Result<T, E = CompileError> = std::result::Result<T, E>;

/// Something worth telling the user that does not stop the run: a cast
/// that disagrees with the prototype, which form of argument access was
/// chosen, a steadier alternative. Rendered like an error, with carets.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// Which probe of the run (index into the probe list).
    pub probe: usize,
    pub level: Level,
    pub span: Span,
    pub msg: String,
    pub help: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Warning,
    Note,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Warning => "warning",
            Level::Note => "note",
        })
    }
}

/// What the compiler needs besides the probes.
pub struct Context<'a> {
    pub arch: Arch,
    /// The kernel's types. Only needed when some kernel probe has a typed
    /// expression.
    pub types: Option<&'a dyn TypeSource>,
    /// Each user binary's own types (its DWARF), by the path the probe
    /// names: a uprobe's typed expressions walk these. Only when the
    /// binary has no types, or defines none of the probe's casts while
    /// `types` defines them all (`-v` given for a uprobe: layouts borrowed
    /// from a kernel), does a uprobe use `types`.
    pub user_types: &'a [(String, Box<dyn TypeSource>)],
    /// `%N` at a kprobe's entry: registers, or the kernel's `$argN`.
    pub arg_access: ArgAccess,
    /// A wrapped syscall's arguments (from the running kernel's
    /// `syscalls:sys_enter_*` format), by syscall name.
    pub syscall_params: Option<&'a syscall::Lookup>,
}

impl<'a> Context<'a> {
    /// The context one probe compiles in: for a uprobe, its binary's types.
    fn for_probe(&self, p: &Probe) -> Context<'a> {
        let types = match &p.place.node {
            Place::User { path, .. } => {
                let own = self
                    .user_types
                    .iter()
                    .find(|(q, _)| q == path)
                    .map(|(_, t)| t.as_ref());
                match (own, self.types) {
                    (Some(own), Some(other))
                        if casts(p).next().is_some()
                            && !defines_any_cast(own, p)
                            && defines_all_casts(other, p) =>
                    {
                        Some(other)
                    }
                    (Some(own), _) => Some(own),
                    (None, other) => other,
                }
            }
            _ => self.types,
        };
        Context {
            arch: self.arch,
            types,
            user_types: self.user_types,
            arg_access: self.arg_access,
            syscall_params: self.syscall_params,
        }
    }
}

/// The probe's casts (`(struct T)`, `$(struct H)`), as (kind, name).
fn casts(p: &Probe) -> impl Iterator<Item = (CompositeKind, &str)> {
    p.args.iter().filter_map(|a| match &a.expr {
        Expr::Typed(t) => t.cast.as_ref().map(|c| {
            let kind = match c.node.kind {
                crate::spec::Aggregate::Struct => CompositeKind::Struct,
                crate::spec::Aggregate::Union => CompositeKind::Union,
            };
            (kind, c.node.name.node.as_str())
        }),
        _ => None,
    })
}

fn defines_any_cast(src: &dyn TypeSource, p: &Probe) -> bool {
    casts(p).any(|(k, n)| matches!(src.find_composite(k, n), Ok(Some(_))))
}

fn defines_all_casts(src: &dyn TypeSource, p: &Probe) -> bool {
    casts(p).all(|(k, n)| matches!(src.find_composite(k, n), Ok(Some(_))))
}

/// Whether any expression of the probe walks C types (`%N` alone, a
/// register, does not).
pub fn needs_types(p: &Probe) -> bool {
    p.args.iter().any(|a| match &a.expr {
        Expr::Typed(t) => {
            t.cast.is_some() || !t.steps.is_empty() || matches!(t.base.node, Base::Param(_))
        }
        Expr::Raw(_) => false,
    })
}

/// Whether the probe is better with types, though it compiles without:
/// a kernel function's prototype checks `%N` and recognises syscall
/// wrappers; a return type types a bare `$retval`.
pub fn wants_types(p: &Probe) -> bool {
    needs_types(p)
        || matches!(p.place.node, Place::Kernel { .. })
        || p.args
            .iter()
            .any(|a| matches!(&a.expr, Expr::Typed(t) if matches!(t.base.node, Base::Retval)))
}

/// The user binary whose types a probe needs (a uprobe with a typed
/// expression), if any; other probes that need types need the kernel's.
pub fn user_binary_for_types(p: &Probe) -> Option<&str> {
    match &p.place.node {
        Place::User { path, .. } if needs_types(p) => Some(path),
        _ => None,
    }
}

/// The group of this run: `coolkprobe_<PID>`.
pub fn group_name(pid: u32) -> String {
    format!("coolkprobe_{pid}")
}

/// Compile every probe; the first error stops (and names the probe index).
pub fn compile(
    probes: &[Probe],
    cx: &Context<'_>,
    group: String,
) -> std::result::Result<Plan, (usize, CompileError)> {
    compile_noted(probes, cx, group).map(|(plan, _)| plan)
}

/// [`compile`], with the warnings and notes the probes earned.
pub fn compile_noted(
    probes: &[Probe],
    cx: &Context<'_>,
    group: String,
) -> std::result::Result<(Plan, Vec<Note>), (usize, CompileError)> {
    let mut out = Vec::with_capacity(probes.len());
    let mut notes = Vec::new();
    let mut sigs = std::collections::HashMap::new();
    for (i, p) in probes.iter().enumerate() {
        out.push(compile_probe_noted(i, p, cx, &mut notes, &mut sigs).map_err(|e| (i, e))?);
    }
    Ok((Plan { group, probes: out }, notes))
}

/// Compile one probe; `index` makes its event name `f<index>`.
pub fn compile_probe(index: usize, p: &Probe, cx: &Context<'_>) -> Result<CompiledProbe> {
    compile_probe_noted(index, p, cx, &mut Vec::new(), &mut Default::default())
}

fn compile_probe_noted(
    index: usize,
    p: &Probe,
    cx: &Context<'_>,
    notes: &mut Vec<Note>,
    sigs: &mut std::collections::HashMap<String, Option<crate::types::proto::Signature>>,
) -> Result<CompiledProbe> {
    let cx = &cx.for_probe(p);
    let func = args::Func::of(p, cx, sigs);
    let target = target(p)?;
    if matches!(target, Target::Tracepoint { .. }) {
        if let Some(a) = p.args.first() {
            return Err(CompileError::new(
                a.span,
                ErrorKind::Unsupported(
                    "a tracepoint records its own fields: NAME=EXPR is only for p/r probes".into(),
                ),
            )
            .with_help("filter on the tracepoint's fields with `f:FIELD==VALUE`"));
        }
    }
    let mut fetchargs = Vec::new();
    let mut fields = Vec::new();
    let mut filter_fields = Vec::new();
    let mut values: Vec<aggs::Named> = Vec::new();
    for a in &p.args {
        let named = display_for_name(&a.name.node);
        let mut width = None;
        let (fetch, display, size) = match &a.expr {
            Expr::Raw(r) => {
                values.push(aggs::Named {
                    name: a.name.node.clone(),
                    kind: aggs::raw_kind(&r.node),
                    display: named.unwrap_or(Display::Default),
                });
                (r.node.clone(), Display::Default, None)
            }
            Expr::Typed(t) => {
                let Some(leaf) =
                    args::typed(t, cx, &func, named == Some(Display::Ip), notes, index)?
                else {
                    // A bare `$retval` with nothing to type it by.
                    values.push(aggs::Named {
                        name: a.name.node.clone(),
                        kind: aggs::ValueKind::Int,
                        display: named.unwrap_or(Display::Default),
                    });
                    fields.push(FieldPlan {
                        name: a.name.node.clone(),
                        display: named.unwrap_or(Display::Default),
                        width: None,
                    });
                    fetchargs.push(FetchArg {
                        name: a.name.node.clone(),
                        fetch: "$retval".into(),
                    });
                    filter_fields.push(filter::FilterField {
                        name: a.name.node.clone(),
                        display: named.unwrap_or(Display::Default),
                        size: None,
                    });
                    continue;
                };
                let d = leaf.display();
                values.push(aggs::Named {
                    name: a.name.node.clone(),
                    kind: match leaf.kind {
                        walk::LeafKind::Scalar { .. } => aggs::ValueKind::Int,
                        walk::LeafKind::String => aggs::ValueKind::Str,
                        walk::LeafKind::Bytes { .. } => aggs::ValueKind::Array,
                        walk::LeafKind::Bitfield { .. } => aggs::ValueKind::Bitfield,
                    },
                    display: named.unwrap_or(d),
                });
                if let Some(n) = named {
                    check_named_width(&a.name.node, n, &leaf, t.span)?;
                }
                let size = match leaf.kind {
                    walk::LeafKind::Scalar { size } => Some(size),
                    walk::LeafKind::Bytes { len } => Some(len),
                    _ => None,
                };
                // A bare `$retval` stays the raw fetcharg (SPEC 2.1), typed
                // for display only; unless a filter compares it, which the
                // kernel does on the fetched type: then `$retval:s32`.
                let bare_retval = matches!(t.base.node, Base::Retval)
                    && t.cast.is_none()
                    && t.steps.is_empty()
                    && matches!(leaf.kind, walk::LeafKind::Scalar { .. })
                    && !p
                        .filter
                        .as_ref()
                        .is_some_and(|f| filter::mentions(&f.node, &a.name.node))
                    && !aggs::aggregates(p, &a.name.node);
                if bare_retval {
                    let psize = cx.arch.pointer_size();
                    width = size.filter(|&s| s < psize);
                    ("$retval".to_string(), d, size)
                } else {
                    (leaf.fetch, d, size)
                }
            }
        };
        let display = named.unwrap_or(display);
        fetchargs.push(FetchArg {
            name: a.name.node.clone(),
            fetch,
        });
        fields.push(FieldPlan {
            name: a.name.node.clone(),
            display,
            width,
        });
        filter_fields.push(filter::FilterField {
            name: a.name.node.clone(),
            display,
            size,
        });
    }
    let filter = match &p.filter {
        Some(f) => Some(filter::translate(&f.node, &filter_fields).map_err(|e| {
            CompileError::new(
                Span::new(f.span.start + e.start, f.span.start + e.end),
                ErrorKind::Filter(e.msg),
            )
        })?),
        None => None,
    };
    // A tracepoint's values are its format's fields, checked where the
    // format can be read (see app); a probe's are its named values.
    let is_tp = matches!(target, Target::Tracepoint { .. });
    let agg_plans = aggs::lower(p, (!is_tp).then_some(values.as_slice()))?;
    if !is_tp
        && agg_plans
            .iter()
            .any(|a| a.keys.contains(&plan::AggKey::Comm))
    {
        // The current task's name, exact per event (the kernel's `$comm`).
        fetchargs.push(FetchArg {
            name: plan::COMM_FIELD.into(),
            fetch: "$comm".into(),
        });
    }
    Ok(CompiledProbe {
        index,
        spec: p.text.clone(),
        target,
        fetchargs,
        filter,
        fields,
        aggs: agg_plans,
    })
}

/// `ip_` needs an IPv4 word or IPv6 bytes; `B16_`... a value of that width.
fn check_named_width(name: &str, d: Display, leaf: &Leaf, span: Span) -> Result<()> {
    let what = match leaf.kind {
        walk::LeafKind::Scalar { size } => format!("{} bits wide", size * 8),
        walk::LeafKind::Bytes { len } => format!("{len} bytes"),
        walk::LeafKind::String => "a string".into(),
        walk::LeafKind::Bitfield { width } => format!("a {width}-bit bitfield"),
    };
    let ok = match (d, leaf.kind) {
        (Display::Ip, walk::LeafKind::Scalar { size: 4 }) => true,
        (Display::Ip, walk::LeafKind::Bytes { len: 16 }) => true,
        (Display::Swapped { bits, .. }, walk::LeafKind::Scalar { size }) => bits as u32 == size * 8,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let want = match d {
        Display::Ip => "an IPv4 (32-bit) or IPv6 (128-bit) address".to_string(),
        Display::Swapped { bits, .. } => format!("a {bits}-bit value"),
        _ => return Ok(()),
    };
    Err(CompileError::new(
        span,
        ErrorKind::Unsupported(format!(
            "the name `{name}` asks for {want}, but the value is {what}"
        )),
    )
    .with_help("rename it, or point it at a member of that width"))
}

/// A name that says how its value is shown (SPEC 2.3): `ip_*`,
/// `B16_*`/`B32_*`/`B64_*` (swapped, hex), `b16_*`... (swapped, decimal).
pub fn display_for_name(name: &str) -> Option<Display> {
    if name.starts_with("ip_") {
        return Some(Display::Ip);
    }
    for (prefix, bits, hex) in [
        ("B16_", 16, true),
        ("B32_", 32, true),
        ("B64_", 64, true),
        ("b16_", 16, false),
        ("b32_", 32, false),
        ("b64_", 64, false),
    ] {
        if name.starts_with(prefix) {
            return Some(Display::Swapped { bits, hex });
        }
    }
    None
}

fn target(p: &Probe) -> Result<Target> {
    let ret = p.kind.node == ProbeKind::Return;
    Ok(match &p.place.node {
        Place::Kernel { symbol, offset } => Target::Kprobe {
            ret,
            symbol: symbol.clone(),
            offset: *offset,
        },
        Place::Tracepoint { system, event } => Target::Tracepoint {
            system: system.clone(),
            event: event.clone(),
        },
        Place::User { path, loc } => {
            let (offset, symbol) = match loc {
                UserLoc::Offset(o) => (*o, None),
                UserLoc::Symbol { name, offset } => {
                    let at = uprobe::symbol_file_offset(path, name)
                        .map_err(|k| CompileError::new(p.place.span, k))?;
                    (at + offset, Some(name.clone()))
                }
            };
            Target::Uprobe {
                ret,
                path: PathBuf::from(path),
                offset,
                symbol,
            }
        }
    })
}

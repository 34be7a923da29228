//! AST + types + arch → fetchargs, filter and display plan.
//!
//! A semantic pass walks each typed expression through the type source
//! (one member at a time, as C would) and emits the ftrace fetcharg for
//! the leaf it reaches. Nothing here touches tracefs: the output is a
//! [`plan::Plan`].

pub mod aggs;
mod args;
mod checks;
pub mod expand;
pub mod filter;
pub mod known;
pub mod latency;
mod names;
pub mod plan;
pub mod syscall;
#[cfg(test)]
mod tests;
mod uprobe;
mod walk;

use crate::arch::Arch;
use crate::diag::{Code, Diagnostic, ProbeDiagnostics};
use crate::fetch::{Fetch, FetchType};
use crate::spec::{self, Base, Expr, Place, Probe, ProbeKind, Span, UserLoc};
use crate::types::{CompositeKind, TypeError, TypeSource};
use plan::{CompiledProbe, Display, FetchArg, FieldPlan, Plan, Target};

pub use args::ArgAccess;
pub use walk::{Leaf, Walked};

/// What can be wrong with a probe the compiler is given. Each becomes a
/// [`Diagnostic`] with the span of the offending part.
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
    #[error("this probe needs C types, but no type source is open")]
    NoTypes,
    #[error("type information: {0}")]
    Types(#[from] TypeError),
}

/// The diagnostic for `kind` at `span`.
pub(crate) fn error(span: Span, kind: ErrorKind) -> Diagnostic {
    let code = match kind {
        ErrorKind::UnknownComposite { .. } => Some(Code::UnknownType),
        ErrorKind::UnknownMember { .. } => Some(Code::UnknownMember),
        ErrorKind::ArgBeyondRegisters { .. } => Some(Code::Arch),
        _ => None,
    };
    let d = Diagnostic::error(span, kind.to_string());
    match code {
        Some(c) => d.with_code(c),
        None => d,
    }
}

/// A type-source failure mid-walk; the expression's span is added where
/// the argument is compiled.
impl From<TypeError> for Diagnostic {
    fn from(e: TypeError) -> Diagnostic {
        Diagnostic::error(None, ErrorKind::Types(e).to_string())
    }
}

pub type Result<T, E = Diagnostic> = std::result::Result<T, E>;

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
    /// `--raw`: numbers only, no names for them (README, "Values by name").
    pub raw: bool,
    /// Names the kernel's headers give and the types do not.
    pub known: known::Known,
    /// A tracepoint's fields (from the target kernel's `format` file), by
    /// system and event: the names its filter may compare.
    pub event_fields: Option<&'a EventFields>,
    /// Whether return probes can read the function's arguments.
    pub return_args: ReturnArgs,
    /// A tracepoint's fields as a latency carries them (from its format
    /// on the running kernel).
    pub tracepoint_values: Option<&'a latency::TracepointFields>,
}

/// A tracepoint's fields by `(system, event)`; None where unknown.
pub type EventFields = dyn Fn(&str, &str) -> Option<Vec<filter::FilterField>>;

/// Whether a return probe can read the probed function's arguments: the
/// kernel keeps them for `$argN` in return probes from Linux 6.10 (its
/// tracefs README then lists `kernel return probes support: $retval,
/// $arg<N>, $comm`). At return the argument registers hold whatever the
/// function left there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReturnArgs {
    /// `%N` and parameter names in a return probe read `$argN`.
    Kept,
    /// They are refused; why (it completes "... because ...").
    NotKept(String),
}

impl<'a> Context<'a> {
    /// A context with `types` for `arch` and nothing else known: registers
    /// for `%N`, no syscall or tracepoint formats, no arguments at return.
    pub fn new(arch: Arch, types: Option<&'a dyn TypeSource>) -> Context<'a> {
        Context {
            arch,
            types,
            user_types: &[],
            arg_access: ArgAccess::Registers,
            syscall_params: None,
            event_fields: None,
            return_args: ReturnArgs::NotKept("the target kernel is not known".into()),
            tracepoint_values: None,
            raw: false,
            known: known::Known::default(),
        }
    }
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
            raw: self.raw,
            known: self.known.clone(),
            event_fields: self.event_fields,
            return_args: self.return_args.clone(),
            tracepoint_values: self.tracepoint_values,
        }
    }
}

/// The probe's casts (`(struct T)`, `$(struct H)`), as (kind, name).
fn casts(p: &Probe) -> impl Iterator<Item = (CompositeKind, &str)> {
    p.args.iter().filter_map(|a| match &a.expr {
        Expr::Typed(t) => t
            .cast
            .as_ref()
            .map(|c| (c.node.kind, c.node.name.node.as_str())),
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
        Expr::Raw(_) | Expr::Since(_) => false,
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

/// Compile every probe. Every diagnostic goes to `diags`, with the index
/// of its probe; probes are independent, so one bad probe does not hide
/// another's errors. The plan, when no probe had an error.
///
/// A latency is linked once every probe is compiled: `since(fN)` needs
/// probe N's values. The entry of an `l` probe comes after the probes the
/// user wrote (`f<N>_entry`).
pub fn compile(
    probes: &[Probe],
    cx: &Context<'_>,
    group: String,
    diags: &mut ProbeDiagnostics,
) -> Option<Plan> {
    use latency::Shape;
    let mut out = Vec::with_capacity(probes.len());
    let mut sigs = Signatures::new();
    let mut failed = false;
    let mut entries = Vec::new();
    let mut ends = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        let mut notes = Vec::new();
        let mut one =
            |p: &Probe, linked: bool| compile_probe_noted(i, p, cx, &mut notes, &mut sigs, linked);
        let r = match latency::shape(p) {
            Err(e) => Err(vec![e]),
            Ok(Shape::Plain) => one(p, false),
            Ok(Shape::Function { entry, ret }) => match (one(&entry, true), one(&ret, true)) {
                (Ok(e), Ok(r)) => {
                    entries.push((i, e));
                    Ok(r)
                }
                (Err(mut a), Err(b)) => {
                    a.extend(b);
                    Err(a)
                }
                (Err(a), _) | (_, Err(a)) => Err(a),
            },
            Ok(Shape::Since { probe, name, since }) => one(&probe, true).inspect(|_| {
                ends.push((i, (name, since)));
            }),
        };
        match r {
            Ok(c) => out.push(c),
            Err(errors) => {
                failed = true;
                notes.extend(errors);
            }
        }
        diags.extend(notes.into_iter().map(|d| (i, d)));
    }
    if failed {
        return None;
    }
    let ptr = cx.arch.pointer_size();
    let values_of = |c: &CompiledProbe| match &c.target {
        Target::Tracepoint { system, event } => {
            latency::Values::of_tracepoint(cx.tracepoint_values.and_then(|f| f(system, event)))
        }
        _ => latency::Values::of_probe(c, ptr),
    };
    for (owner, mut e) in entries {
        e.index = out.len();
        e.latency = Some(plan::Latency::Start {
            end: owner,
            name: Some(format!("f{owner}_entry")),
        });
        let start = e.index;
        out.push(e);
        let end_values = values_of(&out[owner]);
        let start_values = values_of(&out[start]);
        let r = latency::link(
            &probes[owner],
            &mut out[owner],
            &end_values,
            start,
            &start_values,
            spec::LATENCY_NAME,
            None,
            &group,
        );
        if let Err(ds) = r {
            failed = true;
            diags.extend(ds.into_iter().map(|d| (owner, d)));
        }
    }
    for (i, (name, since)) in ends {
        let r = latency::check_start(&since, i, &out)
            .map_err(|d| vec![d])
            .and_then(|start| {
                let end_values = values_of(&out[i]);
                let start_values = values_of(&out[start]);
                latency::link(
                    &probes[i],
                    &mut out[i],
                    &end_values,
                    start,
                    &start_values,
                    &name.node,
                    since.key.as_ref(),
                    &group,
                )?;
                out[start].latency = Some(plan::Latency::Start { end: i, name: None });
                Ok(())
            });
        if let Err(ds) = r {
            failed = true;
            diags.extend(ds.into_iter().map(|d| (i, d)));
        }
    }
    (!failed).then_some(Plan { group, probes: out })
}

/// Compile every probe on its own: each one's result (None when it has an
/// error), every diagnostic to `diags` with its probe's index. Latencies
/// are not linked here (see [`compile`]).
pub fn compile_each(
    probes: &[Probe],
    cx: &Context<'_>,
    diags: &mut ProbeDiagnostics,
) -> Vec<Option<CompiledProbe>> {
    let mut sigs = Signatures::new();
    let mut out = Vec::with_capacity(probes.len());
    for (i, p) in probes.iter().enumerate() {
        let mut notes = Vec::new();
        let r = match latency::shape(p) {
            Ok(latency::Shape::Plain) => compile_probe_noted(i, p, cx, &mut notes, &mut sigs, false),
            Ok(_) => Err(vec![error(
                p.kind.span,
                ErrorKind::Unsupported(
                    "a latency (`l`, `since`) pairs probes of one kernel: it is not compiled for several"
                        .into(),
                ),
            )
            .with_help("make the script for each kernel with its own -v")]),
            Err(e) => Err(vec![e]),
        };
        match r {
            Ok(c) => out.push(Some(c)),
            Err(errors) => {
                out.push(None);
                notes.extend(errors);
            }
        }
        diags.extend(notes.into_iter().map(|d| (i, d)));
    }
    out
}

/// Compile one probe; `index` makes its event name `f<index>`. Its first
/// error, if it has any.
pub fn compile_probe(index: usize, p: &Probe, cx: &Context<'_>) -> Result<CompiledProbe> {
    compile_probe_noted(index, p, cx, &mut Vec::new(), &mut Signatures::new(), false).map_err(
        |errors| {
            errors
                .into_iter()
                .next()
                .unwrap_or_else(|| Diagnostic::error(None, ""))
        },
    )
}

/// The prototypes looked up so far in a run, by type source and function.
type Signatures = std::collections::HashMap<String, Option<crate::types::proto::Signature>>;

/// One probe: its target, then each `NAME=EXPR` (independently: every
/// argument's error is reported), then the filter, which needs them all.
/// `linked`: a part of a latency, whose filter and aggregations are the
/// completed call's, checked when the latency is linked.
fn compile_probe_noted(
    index: usize,
    p: &Probe,
    cx: &Context<'_>,
    notes: &mut Vec<Diagnostic>,
    sigs: &mut Signatures,
    linked: bool,
) -> std::result::Result<CompiledProbe, Vec<Diagnostic>> {
    let cx = &cx.for_probe(p);
    let func = args::Func::of(p, cx, sigs);
    let target = target(p, cx.arch).map_err(|e| vec![e])?;
    if let Some(a) = p.args.get(checks::MAX_ARGS) {
        return Err(vec![error(
            a.span,
            ErrorKind::Unsupported(format!(
                "a probe takes at most {} named values (the kernel's limit)",
                checks::MAX_ARGS
            )),
        )]);
    }
    if matches!(target, Target::Tracepoint { .. }) {
        if let Some(a) = p.args.first() {
            return Err(vec![error(
                a.span,
                ErrorKind::Unsupported(
                    "a tracepoint records its own fields: NAME=EXPR is only for p/r probes".into(),
                ),
            )
            .with_help("filter on the tracepoint's fields with `f:FIELD==VALUE`")]);
        }
    }
    let mut errors = Vec::new();
    let mut outs = Vec::new();
    for a in &p.args {
        match compile_arg(a, p, cx, &func, notes, linked) {
            Ok(o) => outs.push(o),
            Err(e) => errors.push(e.or_span(a.expr.span())),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut fetchargs = Vec::new();
    let mut fields = Vec::new();
    let mut filter_fields = Vec::new();
    for (fetch, field, filter_field) in fit_whole_structs(outs, p, notes).map_err(|e| vec![e])? {
        fetchargs.push(fetch);
        fields.push(field);
        filter_fields.push(filter_field);
    }
    let values: Vec<aggs::Named> = fetchargs
        .iter()
        .zip(&fields)
        .map(|(fetch, field)| aggs::Named {
            name: field.name.clone(),
            kind: aggs::value_kind(fetch),
            display: field.display,
        })
        .collect();
    if linked {
        // A synthetic event's field must have the type of the value it is
        // given, and the kernel's default type of a fetch varies (a 6.12
        // kernel types `$retval` from BTF): say it.
        let word = FetchType::int(crate::fetch::IntKind::Hex, cx.arch.pointer_size());
        for f in &mut fetchargs {
            if f.ty.is_none() && f.value != Fetch::Comm {
                f.ty = Some(word.clone());
            }
        }
        return Ok(CompiledProbe {
            index,
            spec: p.text.clone(),
            target,
            fetchargs,
            filter: None,
            fields,
            aggs: Vec::new(),
            latency: None,
        });
    }
    let filter = match &p.filter {
        Some(f) => {
            let (fields, complete) = event_fields(&target, filter_fields, cx);
            Some(filter::check(f, &fields, complete)?)
        }
        None => None,
    };
    // A tracepoint's values are its format's fields, checked where the
    // format can be read (see the pipeline); a probe's are its named values.
    let is_tp = matches!(target, Target::Tracepoint { .. });
    let agg_plans = aggs::lower(p, (!is_tp).then_some(values.as_slice())).map_err(|e| vec![e])?;
    if !is_tp
        && agg_plans
            .iter()
            .any(|a| a.keys.contains(&plan::AggKey::Comm))
    {
        // The current task's name, exact per event (the kernel's `$comm`).
        fetchargs.push(FetchArg::new(plan::COMM_FIELD, Fetch::Comm, None));
    }
    Ok(CompiledProbe {
        index,
        spec: p.text.clone(),
        target,
        fetchargs,
        filter,
        fields,
        aggs: agg_plans,
        latency: None,
    })
}

/// The probe's values in order, whole structs cut to what the kernel
/// takes of one probe (README, "Whole structs"): 128 values with the
/// probe's other values (`__comm` among them when a key needs it), and a
/// definition line of at most 4094 bytes (kernel/trace/trace.c,
/// `WRITE_BUFSIZE`); what is left out is said in a warning, and shown as
/// `...` at the struct's end. Each leaf gets its field name.
fn fit_whole_structs(
    outs: Vec<ArgOut>,
    p: &Probe,
    notes: &mut Vec<Diagnostic>,
) -> Result<Vec<(FetchArg, FieldPlan, filter::FilterField)>> {
    /// The kernel's longest line of `kprobe_events` (WRITE_BUFSIZE - 2).
    const MAX_LINE: usize = 4094;
    let comm = p
        .aggs
        .iter()
        .any(|g| g.keys.iter().any(|k| k.node == "comm"))
        && !p.args.iter().any(|a| a.name.node == "comm");
    let mut taken: std::collections::HashSet<String> =
        p.args.iter().map(|a| a.name.node.clone()).collect();
    let mut count = usize::from(comm);
    // `p:coolkprobe_<pid>_<ns>/f<n> PLACE`, generously, and ` __comm=$comm`.
    let mut line = 64 + (p.place.span.end - p.place.span.start) + if comm { 14 } else { 0 };
    for o in &outs {
        if let ArgOut::One(f, ..) = o {
            count += 1;
            line += 1 + f.to_string().len();
        }
    }
    let mut out = Vec::new();
    for o in outs {
        match o {
            ArgOut::One(f, fp, ff) => out.push((f, fp, ff)),
            ArgOut::Whole(w) => {
                let total = w.leaves.len();
                let mut kept = 0;
                let mut cut_paths = Vec::new();
                for (i, mut l) in w.leaves.into_iter().enumerate() {
                    let name = expand::name_leaf(&w.name, &l.field.path[1..], i, &mut taken);
                    let len = 1 + name.len() + 1 + l.fetch.fetch_text().len();
                    if count >= checks::MAX_ARGS || line + len > MAX_LINE {
                        cut_paths.push(l.path);
                        continue;
                    }
                    count += 1;
                    line += len;
                    kept += 1;
                    l.fetch.name = name.clone();
                    l.field.name = name.clone();
                    l.filter.name = name;
                    out.push((l.fetch, l.field, l.filter));
                }
                if kept == 0 {
                    return Err(error(
                        w.span,
                        ErrorKind::Unsupported(format!(
                            "no room for `{}` (`{}`): the probe's other values take the kernel's {} values per probe",
                            w.name, w.what, checks::MAX_ARGS
                        )),
                    ));
                }
                let cut = total - kept;
                if let Some(last) = out.last_mut() {
                    last.1.cut = cut + usize::from(w.more);
                }
                let mut why = Vec::new();
                if cut > 0 || w.more {
                    let more = if w.more { " and more" } else { "" };
                    why.push(format!(
                        "{cut}{more} of its values past what the kernel takes of one probe ({} values, a definition of {MAX_LINE} bytes): {}",
                        checks::MAX_ARGS,
                        listed(&cut_paths)
                    ));
                }
                if !w.unread.is_empty() {
                    let items: Vec<String> = w
                        .unread
                        .iter()
                        .map(|(p, why)| format!("{p} ({why})"))
                        .collect();
                    why.push(format!("what cannot be read: {}", listed(&items)));
                }
                if !why.is_empty() {
                    notes.push(
                        Diagnostic::warning(
                            w.span,
                            format!(
                                "`{}` shows {kept} values of `{}`; left out: {}",
                                w.name,
                                w.what,
                                why.join("; ")
                            ),
                        )
                        .with_help("name the members you need (`NAME=EXPR->member`), or read the rest in another probe"),
                    );
                }
            }
        }
    }
    Ok(out)
}

/// `a, b, c and 7 more`.
fn listed(items: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}

/// What one `NAME=EXPR` becomes: one value, or a whole struct's.
enum ArgOut {
    One(FetchArg, FieldPlan, filter::FilterField),
    Whole(expand::Lowered),
}

/// One `NAME=EXPR`: what to fetch, how to show it, what a filter on it
/// compares.
fn compile_arg(
    a: &crate::spec::Arg,
    p: &Probe,
    cx: &Context<'_>,
    func: &args::Func,
    notes: &mut Vec<Diagnostic>,
    linked: bool,
) -> Result<ArgOut> {
    let name = &a.name.node;
    let named = display_for_name(name);
    let mut width = None;
    let mut names = None;
    let kernel_return = matches!(p.place.node, Place::Kernel { .. }) && func.ret;
    let mut signed_bits = None;
    let (fetch, display, size) = match &a.expr {
        Expr::Raw(r) => {
            checks::raw_registers(&r.node, r.span, cx.arch)?;
            let f = FetchArg::raw(name, &r.node);
            // `$retval:s32` in a kernel return probe: an `int` return.
            if kernel_return
                && named.is_none()
                && f.value == Fetch::Retval
                && matches!(
                    f.ty,
                    Some(crate::fetch::FetchType::Int {
                        kind: crate::fetch::IntKind::Signed,
                        bytes: 4 | 8
                    })
                )
            {
                names = Some(plan::Names::Errno);
            }
            (f, Display::Default, None)
        }
        // Taken out of the probe before its values are compiled.
        Expr::Since(s) => {
            return Err(error(
                s.span,
                ErrorKind::Unsupported("`since(...)` is not a fetched value".into()),
            ))
        }
        Expr::Typed(t) => match args::typed(t, cx, func, named == Some(Display::Ip), notes)? {
            // A bare `$retval` with nothing to type it by.
            None => (
                FetchArg::new(name, Fetch::Retval, None),
                Display::Default,
                None,
            ),
            Some(Walked::Struct(e)) => {
                if named.is_some() {
                    return Err(error(
                        t.span,
                        ErrorKind::Unsupported(format!(
                            "`{name}` asks for one value shown a special way, but the expression is a whole `{}`",
                            e.what
                        )),
                    )
                    .with_help("rename it, or point it at one member"));
                }
                let lowered = expand::lower(a, t, e, p, cx)?;
                for l in &lowered.leaves {
                    check_return_arg(a, t, &l.fetch, p, cx, func, notes)?;
                }
                return Ok(ArgOut::Whole(lowered));
            }
            Some(Walked::Leaf(mut leaf)) => {
                if named.is_none() && t.format.is_none() {
                    names = leaf_names(&leaf, t, p, cx, kernel_return)?;
                    // A kernel code pointer: the kernel's `symbol` type
                    // (its own text output names it too, for `-S`).
                    if names == Some(plan::Names::Symbol)
                        && !cx.raw
                        && matches!(p.place.node, Place::Kernel { .. })
                    {
                        leaf.ty = crate::fetch::FetchType::Symbol;
                    }
                }
                let d = match (&names, cx.types, leaf.ctype, cx.raw) {
                    (Some(n), Some(types), Some(ty), false) => names::raw_display(types, ty, n)?,
                    _ => leaf.display(),
                };
                signed_bits = leaf.signed_bits();
                if let Some(n) = named {
                    check_named_width(name, n, &leaf, t.span)?;
                }
                let size = match leaf.kind {
                    walk::LeafKind::Scalar { size } => Some(size),
                    walk::LeafKind::Array { elem, len } => Some(elem * len),
                    _ => None,
                };
                // A bare `$retval` stays the raw fetcharg (README: raw
                // fetchargs pass unchanged), typed for display only;
                // unless a filter compares it, which the kernel does on
                // the fetched type: then `$retval:s32`.
                // Nor in a latency: the synthetic event's field takes the
                // fetched type, which must be known.
                let bare_retval = !linked
                    && matches!(t.base.node, Base::Retval)
                    && t.cast.is_none()
                    && t.steps.is_empty()
                    && matches!(leaf.kind, walk::LeafKind::Scalar { .. })
                    && !p.filter.as_ref().is_some_and(|f| f.expr.mentions(name))
                    && !aggs::aggregates(p, name);
                if bare_retval {
                    let psize = cx.arch.pointer_size();
                    width = size.filter(|&s| s < psize);
                    (FetchArg::new(name, Fetch::Retval, None), d, size)
                } else {
                    (leaf.fetcharg(name), d, size)
                }
            }
        },
    };
    if let Expr::Typed(t) = &a.expr {
        check_return_arg(a, t, &fetch, p, cx, func, notes)?;
    }
    checks::arg_limits(&a.name, &fetch, a.expr.span())?;
    let display = named.unwrap_or(display);
    let ty = filter::FieldType::of(&fetch, cx.arch.pointer_size());
    Ok(ArgOut::One(
        fetch,
        FieldPlan {
            name: name.clone(),
            display,
            width,
            // `--raw`: numbers only; a filter still takes the names.
            names: names.clone().filter(|_| !cx.raw),
            signed_bits,
            ..Default::default()
        },
        filter::FilterField {
            name: name.clone(),
            display,
            size,
            ty,
            path: None,
            names,
        },
    ))
}

/// The names a typed value's numbers get (README, "Values by name"):
/// from its C type, and `-ENOENT` for a kernel function's `int`/`long`
/// return value. Also with `--raw`, which shows the numbers: a filter
/// still compares with the names.
fn leaf_names(
    leaf: &Leaf,
    t: &crate::spec::TypedExpr,
    p: &Probe,
    cx: &Context<'_>,
    kernel_return: bool,
) -> Result<Option<plan::Names>> {
    let (Some(types), Some(ctype)) = (cx.types, leaf.ctype) else {
        return Ok(None);
    };
    if !matches!(
        leaf.kind,
        walk::LeafKind::Scalar { .. } | walk::LeafKind::Bitfield { .. }
    ) {
        return Ok(None);
    }
    let whole_retval =
        matches!(t.base.node, Base::Retval) && t.cast.is_none() && t.steps.is_empty();
    if kernel_return && whole_retval && names::returns_errno(types, ctype)? {
        return Ok(Some(plan::Names::Errno));
    }
    let kernel = !matches!(p.place.node, Place::User { .. });
    let member = leaf.member.as_ref().map(|(s, m)| (s.as_str(), m.as_str()));
    names::of_type(types, ctype, member, kernel, &cx.known)
}

/// In a return probe, `%N` and parameter names mean the entry's
/// arguments: read through what the kernel kept from the entry (`$argN`),
/// never from the argument registers, which at the return hold whatever
/// the function left there. Raw fetchargs (`%di` written by hand) are not
/// typed expressions and stay as written.
fn check_return_arg(
    a: &crate::spec::Arg,
    t: &crate::spec::TypedExpr,
    fetch: &FetchArg,
    p: &Probe,
    cx: &Context<'_>,
    func: &args::Func,
    notes: &mut Vec<Diagnostic>,
) -> Result<()> {
    if p.kind.node != ProbeKind::Return || !fetch.value.reads_arguments() {
        return Ok(());
    }
    let what = &p.text[t.base.span.start..t.base.span.end];
    let user = matches!(p.place.node, Place::User { .. });
    if let Fetch::ArgN(n) = fetch.value.root() {
        if fetch.value.depth() > 0
            && !notes
                .iter()
                .any(|d| d.message.contains("the entry's value"))
        {
            notes.push(Diagnostic::note(
                t.base.span,
                format!(
                    "in a return probe, `{what}` is the entry's value (the kernel's {}); what it points to is read at the return",
                    Fetch::ArgN(*n)
                ),
            ));
        }
        return Ok(());
    }
    let why = match (&cx.return_args, user) {
        (_, true) => "the kernel keeps a function's arguments for return probes of kernel functions only (uprobes have no `$argN`)",
        (ReturnArgs::NotKept(why), _) => why.as_str(),
        (ReturnArgs::Kept, _) => "it is not read at a function's entry",
    };
    let func_name = func.name();
    let text = |s: Span| &p.text[s.start..s.end];
    let entry = format!("p {} {}", text(p.place.span), text(a.span));
    // The same spec as a latency reads each value where it can be.
    let latency = format!("l{}", p.text[p.kind.span.end..].trim_end());
    Err(error(
        t.base.span,
        ErrorKind::Unsupported(format!(
            "a return probe cannot read `{what}`, an argument of `{func_name}`: {why}"
        )),
    )
    .with_help(format!(
        "read it at the entry (`{entry}`), or with the return as `{latency}`: a latency reads arguments at the entry and `$retval` at the return"
    )))
}

/// Every field a filter on this probe's event can compare, its own first
/// (as the kernel looks them up); whether that is all of them (a
/// tracepoint's own fields are known only where its format can be read).
fn event_fields(
    target: &Target,
    own: Vec<filter::FilterField>,
    cx: &Context<'_>,
) -> (Vec<filter::FilterField>, bool) {
    let word = filter::FieldType::Int {
        bytes: cx.arch.pointer_size(),
        signed: false,
    };
    let probe_field = |name: &str| filter::FilterField {
        name: name.into(),
        display: Display::Hex,
        size: None,
        ty: word,
        path: None,
        names: None,
    };
    let (mut fields, complete) = match target {
        Target::Tracepoint { system, event } => {
            match cx.event_fields.and_then(|f| f(system, event)) {
                Some(fields) => (fields, true),
                None => (Vec::new(), false),
            }
        }
        // The probe's own fields beside its values (trace_probe.h).
        Target::Kprobe { ret: false, .. } | Target::Uprobe { ret: false, .. } => {
            let mut v = own;
            v.push(probe_field("__probe_ip"));
            (v, true)
        }
        _ => {
            let mut v = own;
            v.push(probe_field("__probe_func"));
            v.push(probe_field("__probe_ret_ip"));
            (v, true)
        }
    };
    fields.extend(filter::common_fields());
    (fields, complete)
}

/// `ip_` needs an IPv4 word or IPv6 bytes; `B16_`... a value of that width.
fn check_named_width(name: &str, d: Display, leaf: &Leaf, span: Span) -> Result<()> {
    let what = match leaf.kind {
        walk::LeafKind::Scalar { size } => format!("{} bits wide", size * 8),
        walk::LeafKind::Array { elem, len } => format!("{len} values of {elem} bytes"),
        walk::LeafKind::String => "a string".into(),
        walk::LeafKind::Bitfield { width } => format!("a {width}-bit bitfield"),
    };
    let ok = match (d, leaf.kind) {
        (Display::Ip, walk::LeafKind::Scalar { size: 4 }) => true,
        (
            Display::Ip,
            walk::LeafKind::Array {
                elem: 1,
                len: 4 | 16,
            },
        ) => true,
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
    Err(error(
        span,
        ErrorKind::Unsupported(format!(
            "the name `{name}` asks for {want}, but the value is {what}"
        )),
    )
    .with_help("rename it, or point it at a member of that width"))
}

/// A name that says how its value is shown (README, "Packet tracing"): `ip_*`,
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

/// Where the probe goes. A kernel place inside a function, and a uprobe's,
/// must be on an instruction (fixed-size instructions), a uprobe's within
/// its symbol; a relative binary path is made absolute (uprobe_events
/// wants the file itself).
fn target(p: &Probe, arch: Arch) -> Result<Target> {
    let ret = matches!(p.kind.node, ProbeKind::Return | ProbeKind::Latency);
    Ok(match &p.place.node {
        Place::Kernel {
            symbol,
            offset,
            spans,
        } => {
            if *offset > 0 {
                checks::alignment(*offset, arch, false, spans.offset.unwrap_or(p.place.span))?;
            }
            Target::Kprobe {
                ret,
                symbol: symbol.clone(),
                offset: *offset,
            }
        }
        Place::Tracepoint { system, event } => Target::Tracepoint {
            system: system.clone(),
            event: event.clone(),
        },
        Place::User { path, loc } => {
            // A relative path is the file it names here, as the shell
            // would resolve it (an absolute one stays as written).
            let rel = std::path::Path::new(path).is_relative();
            let path = match std::fs::canonicalize(path) {
                Ok(c) if rel => Ok(c),
                _ => std::path::absolute(path),
            }
            .map_err(|e| {
                error(
                    p.place.span,
                    ErrorKind::Binary {
                        path: path.clone(),
                        msg: e.to_string(),
                    },
                )
            })?;
            let shown = path.display().to_string();
            let (offset, symbol) = match loc {
                UserLoc::Offset(o) => (*o, None),
                UserLoc::Symbol { name, offset } => {
                    let (at, size) = uprobe::symbol_file_offset(&shown, name)
                        .map_err(|k| error(p.place.span, k))?;
                    if size > 0 && *offset >= size {
                        return Err(error(
                            p.place.span,
                            ErrorKind::Unsupported(format!(
                                "`+{offset:#x}` is outside `{name}` ({size:#x} bytes long)"
                            )),
                        )
                        .with_help(format!(
                            "offsets count from the function's first byte: the last one is +{:#x}",
                            size - 1
                        )));
                    }
                    (at + offset, Some(name.clone()))
                }
            };
            checks::alignment(offset, arch, true, p.place.span)?;
            Target::Uprobe {
                ret,
                path,
                offset,
                symbol,
            }
        }
    })
}

//! Latencies: `l FUNC` (a function's entry to its return) and
//! `NAME=since(fN[, KEY])` (from probe N's event to this one's), lowered
//! to a start probe, an end probe and the fields of a completed call.
//!
//! `l FUNC` becomes two probes: the entry (`f<N>_entry`, with the values
//! that read arguments) and the return (`f<N>`, with those that read
//! `$retval`). A completed call holds the start's values, the end's own,
//! then the latency; its filter and aggregations are checked against all
//! of them (README, "Latency").

use super::aggs::{self, Named, ValueKind};
use super::filter::{self, FieldType, FilterField};
use super::plan::{
    CompiledProbe, Display, FieldFrom, FieldPlan, Latency, LatencyPlan, SynthField, SynthType,
    COMM_FIELD,
};
use super::{error, ErrorKind};
use crate::diag::Diagnostic;
use crate::fetch::{FetchArg, FetchType, IntKind};
use crate::spec::{Expr, Probe, ProbeKind, Since, Span, Spanned, LATENCY_NAME};

/// A tracepoint's fields, by (system, event), from its format on the
/// running kernel (None where it cannot be read).
pub type TracepointFields = dyn Fn(&str, &str) -> Option<Vec<TpField>>;

/// One field of a tracepoint, as a completed call carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpField {
    pub name: String,
    /// None: an array or a struct, which is not carried.
    pub ty: Option<SynthType>,
    pub display: Display,
}

/// How a spec takes part in latencies. The probes of a shape keep the
/// spec's filter and aggregations (what they compare or aggregate is
/// fetched as its C type); those are the completed call's, checked when
/// the latency is linked.
pub(super) enum Shape {
    Plain,
    /// `l FUNC`: the entry half and the return half.
    Function {
        entry: Box<Probe>,
        ret: Box<Probe>,
    },
    /// A probe with `NAME=since(fN)`: the probe without it.
    Since {
        probe: Box<Probe>,
        name: Spanned<String>,
        since: Since,
    },
}

/// Whether a raw or typed expression reads `$retval`.
fn reads_retval(e: &Expr) -> bool {
    match e {
        Expr::Raw(r) => FetchArg::raw("", &r.node).value.reads_retval(),
        Expr::Typed(t) => matches!(t.base.node, crate::spec::Base::Retval),
        Expr::Since(_) => false,
    }
}

pub(super) fn shape(p: &Probe) -> Result<Shape, Diagnostic> {
    let since: Vec<_> = p
        .args
        .iter()
        .filter_map(|a| match &a.expr {
            Expr::Since(s) => Some((a, s)),
            _ => None,
        })
        .collect();
    if p.kind.node == ProbeKind::Latency {
        if let Some((a, _)) = since.first() {
            return Err(unsupported(
                a.span,
                "an `l` probe times its own function: `since(...)` is for the end of another probe's interval",
            ));
        }
        if let Some(a) = p.args.iter().find(|a| a.name.node == LATENCY_NAME) {
            return Err(unsupported(
                a.name.span,
                format!(
                    "`{LATENCY_NAME}` is the latency of an `l` probe: name this value otherwise"
                ),
            ));
        }
        let (ret_args, entry_args): (Vec<_>, Vec<_>) =
            p.args.iter().cloned().partition(|a| reads_retval(&a.expr));
        let half = |kind, args| Probe {
            kind: Spanned {
                node: kind,
                span: p.kind.span,
            },
            args,
            ..p.clone()
        };
        return Ok(Shape::Function {
            entry: Box::new(half(ProbeKind::Entry, entry_args)),
            ret: Box::new(half(ProbeKind::Return, ret_args)),
        });
    }
    match since.as_slice() {
        [] => Ok(Shape::Plain),
        [(a, s)] => Ok(Shape::Since {
            probe: Box::new(Probe {
                args: p
                    .args
                    .iter()
                    .filter(|b| !matches!(b.expr, Expr::Since(_)))
                    .cloned()
                    .collect(),
                ..(*p).clone()
            }),
            name: a.name.clone(),
            since: (*s).clone(),
        }),
        [_, (b, _), ..] => Err(unsupported(
            b.span,
            "one `since(...)` per probe: a probe ends one interval",
        )),
    }
}

fn unsupported(span: Span, msg: impl Into<String>) -> Diagnostic {
    error(span, ErrorKind::Unsupported(msg.into()))
}

/// What a compiled probe offers a completed call: its values, with their
/// types and displays.
pub(super) struct Values {
    pub named: Vec<Value>,
    /// A tracepoint's fields (its arrays are left out; when its format
    /// cannot be read here, `named` is empty and names are not checked).
    pub tracepoint: bool,
}

/// One value a probe offers a completed call.
pub(super) struct Value {
    pub name: String,
    /// None: an array, which a synthetic event cannot hold.
    pub ty: Option<SynthType>,
    pub display: Display,
    /// The rest of how the probe's own field shows it (the C value's
    /// bytes inside the fetched word, names for its numbers, its place
    /// in a whole struct).
    pub shown: FieldPlan,
}

impl Values {
    /// A kprobe's or uprobe's named values (its hidden `__comm` aside).
    pub fn of_probe(c: &CompiledProbe, ptr_bytes: u32) -> Values {
        let named = c
            .fetchargs
            .iter()
            .filter(|a| a.name != COMM_FIELD)
            .map(|a| {
                let own = c.fields.iter().find(|f| f.name == a.name);
                let shown = own.map_or(Display::Default, |f| f.display);
                // The kernel passes a value to a synthetic field of the
                // same size and sign only: the fetched type's.
                let (ty, hex) = synth_type(a, ptr_bytes);
                // The synthetic event's format prints integers in
                // decimal: a value the probe's format shows in hex says so.
                let display = match shown {
                    Display::Default if hex => Display::Hex,
                    d => d,
                };
                Value {
                    name: a.name.clone(),
                    ty,
                    display,
                    shown: own.cloned().unwrap_or_default(),
                }
            })
            .collect();
        Values {
            named,
            tracepoint: false,
        }
    }

    pub fn of_tracepoint(fields: Option<Vec<TpField>>) -> Values {
        Values {
            named: fields
                .unwrap_or_default()
                .into_iter()
                .map(|f| Value {
                    name: f.name,
                    ty: f.ty,
                    display: f.display,
                    shown: FieldPlan::default(),
                })
                .collect(),
            tracepoint: true,
        }
    }
}

/// The synthetic field type of a fetched value, and whether the kernel
/// shows it in hex. None for arrays, which a synthetic event cannot hold.
fn synth_type(a: &FetchArg, ptr_bytes: u32) -> (Option<SynthType>, bool) {
    let int = |bytes, signed| Some(SynthType::Int { bytes, signed });
    match &a.ty {
        Some(FetchType::Int { kind, bytes }) => {
            (int(*bytes, *kind == IntKind::Signed), *kind == IntKind::Hex)
        }
        Some(FetchType::String | FetchType::UString) => (Some(SynthType::Str), false),
        Some(FetchType::Symbol) => (int(ptr_bytes, false), true),
        Some(FetchType::Bitfield { container, .. }) => (int(container / 8, false), false),
        Some(FetchType::Array { .. }) => (None, false),
        None if a.value == crate::fetch::Fetch::Comm => (Some(SynthType::Str), false),
        // The kernel's default type: the word, in hex (`x64`).
        None => (int(ptr_bytes, false), true),
    }
}

/// The latency end `end` (a compiled probe without its latency), started
/// by `start`: its plan, display fields, filter and aggregations.
#[allow(clippy::too_many_arguments)]
pub(super) fn link(
    p: &Probe,
    end: &mut CompiledProbe,
    end_values: &Values,
    start_index: usize,
    start_values: &Values,
    lat_name: &str,
    key: Option<&Spanned<String>>,
    group: &str,
) -> Result<(), Vec<Diagnostic>> {
    let lat_span = p
        .args
        .iter()
        .find(|a| a.name.node == lat_name)
        .map_or(p.kind.span, |a| a.name.span);
    if end_values.named.iter().any(|v| v.name == lat_name) {
        return Err(vec![unsupported(
            lat_span,
            format!("`{lat_name}` is named twice in this probe"),
        )]);
    }
    if let Some(k) = key {
        for (vals, which) in [(start_values, "start"), (end_values, "end")] {
            let unknown = vals.tracepoint && vals.named.is_empty();
            if !unknown && !vals.named.iter().any(|v| v.name == k.node) {
                return Err(vec![unsupported(
                    k.span,
                    format!("the key `{}` is not a value of the {which} probe", k.node),
                )
                .with_help("pair by a value both probes name, e.g. `p A rq=%0` and `p B rq=%0 lat=since(f0, rq)`")]);
            }
        }
    }
    let mut fields = Vec::new();
    let mut plans = Vec::new();
    let span_of = |n: &str| {
        p.args
            .iter()
            .find(|a| a.name.node == n)
            .map_or(p.place.span, |a| a.span)
    };
    let mut push = |v: &Value, from, tracepoint: bool| {
        let name = v.name.as_str();
        let Some(ty) = v.ty else {
            // A tracepoint's array fields are left out; a named value
            // that is one was asked for, and is refused.
            if tracepoint {
                return Ok(());
            }
            return Err(vec![unsupported(
                span_of(name),
                format!("`{name}` is an array: a completed call cannot carry it"),
            )]);
        };
        fields.push(SynthField {
            name: name.to_string(),
            from,
            ty,
        });
        plans.push(FieldPlan {
            name: name.to_string(),
            display: v.display,
            ..v.shown.clone()
        });
        Ok(())
    };
    // The end's own values win over the start's of the same name (the
    // pairing key, a tracepoint's `__syscall_nr`).
    for v in &start_values.named {
        if end_values.named.iter().any(|m| m.name == v.name) || v.name == lat_name {
            continue;
        }
        push(v, FieldFrom::Start, start_values.tracepoint)?;
    }
    for v in &end_values.named {
        push(v, FieldFrom::End, end_values.tracepoint)?;
    }
    let lat = Value {
        name: lat_name.to_string(),
        ty: Some(SynthType::Int {
            bytes: 8,
            signed: false,
        }),
        display: Display::Duration,
        shown: FieldPlan::default(),
    };
    push(&lat, FieldFrom::Latency, false)?;
    let named: Vec<Named> = fields
        .iter()
        .zip(&plans)
        .map(|(f, fp)| Named {
            name: f.name.clone(),
            kind: match f.ty {
                SynthType::Str => ValueKind::Str,
                SynthType::Int { .. } => ValueKind::Int,
            },
            display: fp.display,
        })
        .collect();
    let mut filter_fields: Vec<FilterField> = fields
        .iter()
        .zip(&plans)
        .map(|(f, fp)| FilterField {
            name: f.name.clone(),
            display: fp.display,
            size: match f.ty {
                SynthType::Int { bytes, .. } => Some(bytes),
                SynthType::Str => None,
            },
            ty: match f.ty {
                SynthType::Int { bytes, signed } => FieldType::Int { bytes, signed },
                SynthType::Str => FieldType::String,
            },
            path: None,
            names: fp.names.clone(),
        })
        .collect();
    filter_fields.extend(filter::common_fields());
    // Every field of a completed call is known, unless a tracepoint's
    // could not be read here (then the kernel checks the names).
    let unknown = |v: &Values| v.tracepoint && v.named.is_empty();
    let complete = !unknown(end_values) && !unknown(start_values);
    end.filter = match &p.filter {
        Some(f) => Some(filter::check(f, &filter_fields, complete)?),
        None => None,
    };
    // A tracepoint end whose fields are unknown here: names are taken as
    // written, and the kernel checks them.
    let known = !(end_values.tracepoint && end_values.named.is_empty());
    end.aggs = aggs::lower(p, known.then_some(named.as_slice())).map_err(|e| vec![e])?;
    end.fields = plans;
    end.latency = Some(Latency::End(LatencyPlan {
        start: start_index,
        key: key.map(|k| k.node.clone()),
        fields,
        synth: super::plan::synth_name(group, &end.event_name()),
    }));
    Ok(())
}

/// The start probe of `since(fN)`: it must be another probe of the run,
/// starting no other interval and ending none.
pub(super) fn check_start(
    since: &Since,
    end: usize,
    probes: &[CompiledProbe],
) -> Result<usize, Diagnostic> {
    let n = since.start.node;
    let Some(start) = probes.get(n) else {
        return Err(unsupported(
            since.start.span,
            format!(
                "there is no probe f{n}: this run's probes are f0..f{}",
                probes.len().saturating_sub(1)
            ),
        ));
    };
    if n == end {
        return Err(unsupported(
            since.start.span,
            "a probe cannot start its own interval: `since(...)` names another probe",
        ));
    }
    match &start.latency {
        Some(Latency::Start { end: e, .. }) => Err(unsupported(
            since.start.span,
            format!("f{n} already starts the interval of f{e}"),
        )),
        Some(Latency::End(_)) => Err(unsupported(
            since.start.span,
            format!("f{n} ends an interval itself: it cannot start one"),
        )),
        None if !start.aggs.is_empty() => Err(unsupported(
            since.start.span,
            format!("f{n} aggregates its events: a probe that starts an interval is not shown"),
        )),
        None => Ok(n),
    }
}

//! Aggregations (`count()[comm]`, `hist(n)`) checked against the probe's
//! named values and lowered to the plan's [`AggPlan`]s.

use super::plan::{AggFunc, AggKey, AggPlan, Display};
use super::{ErrorKind, Result};
use crate::diag::Diagnostic;
use crate::fetch::{Fetch, FetchArg, FetchType};
use crate::spec::{self, Probe, Span};

/// What a named value holds, as far as aggregating it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    Int,
    Str,
    /// An array or a run of bytes (an IPv6 address): not a hist key.
    Array,
    /// The kernel's hist triggers read a bitfield's whole container.
    Bitfield,
}

/// A value the probe defines: its name, kind and display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub kind: ValueKind,
    pub display: Display,
}

/// The kind of what a fetcharg reads, from its fetch type.
pub fn value_kind(arg: &FetchArg) -> ValueKind {
    match (&arg.value, &arg.ty) {
        (Fetch::Comm, _) => ValueKind::Str,
        (Fetch::Verbatim(text), _) => raw_kind(text),
        (_, Some(FetchType::Array { .. })) => ValueKind::Array,
        (_, Some(FetchType::Bitfield { .. })) => ValueKind::Bitfield,
        (_, Some(t)) if t.is_string() => ValueKind::Str,
        _ => ValueKind::Int,
    }
}

/// The kind of fetcharg text the IR does not know, from its type suffix
/// (`:symstr`), `x<width>` (an integer) when it has none.
fn raw_kind(fetch: &str) -> ValueKind {
    if fetch.eq_ignore_ascii_case("$comm") {
        return ValueKind::Str;
    }
    let ty = match fetch.rsplit_once(':') {
        Some((_, t)) if !t.contains(')') => t,
        _ => "",
    };
    if ty.contains('[') {
        ValueKind::Array
    } else if ty.starts_with('b') && ty.contains('@') {
        ValueKind::Bitfield
    } else if ty.contains("string") || ty == "symstr" {
        ValueKind::Str
    } else {
        ValueKind::Int
    }
}

/// The most keys a hist trigger takes (TRACING_MAP_KEYS_MAX in the
/// kernel's kernel/trace/tracing_map.h, 3 since hist triggers exist); a
/// histogram's bucket is one of them. The user-space path keeps the same
/// limit so that a spec means the same on every kernel.
pub const MAX_KEYS: usize = 3;

fn error(span: Span, msg: String, help: impl Into<String>) -> Diagnostic {
    super::error(span, ErrorKind::Unsupported(msg)).with_help(help)
}

fn names_help(named: &[Named]) -> String {
    if named.is_empty() {
        "this probe names no values: add `NAME=EXPR`".into()
    } else {
        let list: Vec<&str> = named.iter().map(|n| n.name.as_str()).collect();
        format!("this probe's values are: {}", list.join(", "))
    }
}

/// Check and lower a probe's aggregations. `named` is None when the names
/// cannot be known here (a tracepoint whose format is not readable): then
/// names are taken as written and the kernel checks them.
pub fn lower(p: &Probe, named: Option<&[Named]>) -> Result<Vec<AggPlan>> {
    let mut out = Vec::with_capacity(p.aggs.len());
    for a in &p.aggs {
        let find = |n: &str| named.and_then(|v| v.iter().find(|x| x.name == n));
        let value = match &a.value {
            Some(v) => {
                if let Some(named) = named {
                    let Some(nv) = find(&v.node) else {
                        let mut e = error(
                            v.span,
                            format!("`{}` is not a value of this probe", v.node),
                            names_help(named),
                        );
                        if let Some(near) = crate::diag::did_you_mean(
                            &v.node,
                            named.iter().map(|n| n.name.as_str()),
                            "",
                        ) {
                            e.help = Some(near);
                        }
                        return Err(e);
                    };
                    let what = match nv.kind {
                        ValueKind::Str => Some("a string"),
                        ValueKind::Array => Some("an array"),
                        ValueKind::Bitfield => {
                            Some("a bitfield (hist triggers read its whole container)")
                        }
                        ValueKind::Int => None,
                    };
                    if let Some(what) = what {
                        return Err(error(
                            v.span,
                            format!(
                                "`{}` is {what}: `{}` needs a number",
                                v.node,
                                a.func.node.name()
                            ),
                            "use it as a key instead: `count()[NAME]`",
                        ));
                    }
                    if matches!(nv.display, Display::Ip | Display::Swapped { .. }) {
                        return Err(error(
                            v.span,
                            format!(
                                "`{}` is shown as {}: the kernel would add up its raw bytes",
                                v.node,
                                if nv.display == Display::Ip {
                                    "an address"
                                } else {
                                    "a byte-swapped number"
                                }
                            ),
                            "use it as a key instead: `count()[NAME]`",
                        ));
                    }
                }
                Some(v.node.clone())
            }
            None => None,
        };
        let mut keys = Vec::with_capacity(a.keys.len());
        for k in &a.keys {
            let own = find(&k.node);
            let key = match (own, k.node.as_str()) {
                (Some(nv), _) => {
                    if matches!(nv.kind, ValueKind::Array | ValueKind::Bitfield) {
                        return Err(error(
                            k.span,
                            format!(
                                "`{}` is {}: hist triggers cannot key by it",
                                k.node,
                                if nv.kind == ValueKind::Array {
                                    "an array"
                                } else {
                                    "a bitfield"
                                }
                            ),
                            "key by a number or a string",
                        ));
                    }
                    AggKey::Field(k.node.clone())
                }
                (None, "comm") => AggKey::Comm,
                (None, "pid") => AggKey::Pid,
                (None, "cpu") => AggKey::Cpu,
                (None, "stack" | "kstack") => AggKey::Stack,
                (None, name) if named.is_none() => AggKey::Field(name.to_string()),
                (None, name) => {
                    return Err(error(
                        k.span,
                        format!("unknown key `{name}`"),
                        format!(
                            "keys are the probe's values, `comm`, `pid`, `cpu` or `stack`; {}",
                            names_help(named.unwrap_or(&[]))
                        ),
                    ))
                }
            };
            keys.push(key);
        }
        let bucket = matches!(a.func.node, spec::AggFunc::Hist | spec::AggFunc::Lhist);
        let limit = MAX_KEYS - usize::from(bucket);
        if keys.len() > limit {
            return Err(error(
                a.keys[limit].span.to(a.keys[keys.len() - 1].span),
                format!(
                    "too many keys: {} can have at most {limit}",
                    a.func.node.name()
                ),
                format!(
                    "the kernel's hist triggers take {MAX_KEYS} keys{}",
                    if bucket {
                        ", and a histogram's bucket is one of them"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let func = match a.func.node {
            spec::AggFunc::Count => AggFunc::Count,
            spec::AggFunc::Sum => AggFunc::Sum,
            spec::AggFunc::Hist => AggFunc::Log2,
            spec::AggFunc::Lhist => AggFunc::Linear {
                step: a.step.map_or(1, |s| s.node),
            },
            spec::AggFunc::Max => AggFunc::Max,
        };
        out.push(AggPlan {
            text: p.text[a.span.start..a.span.end].to_string(),
            func,
            value,
            keys,
        });
    }
    Ok(out)
}

/// Whether the probe aggregates `name` (as a value or a key): such a
/// value must be fetched as its C type, since the kernel aggregates what
/// it fetched.
pub fn aggregates(p: &Probe, name: &str) -> bool {
    p.aggs.iter().any(|a| {
        a.value.as_ref().is_some_and(|v| v.node == name) || a.keys.iter().any(|k| k.node == name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named() -> Vec<Named> {
        vec![
            Named {
                name: "n".into(),
                kind: ValueKind::Int,
                display: Display::Unsigned,
            },
            Named {
                name: "s".into(),
                kind: ValueKind::Str,
                display: Display::Default,
            },
            Named {
                name: "ip_src".into(),
                kind: ValueKind::Int,
                display: Display::Ip,
            },
            Named {
                name: "b".into(),
                kind: ValueKind::Array,
                display: Display::Default,
            },
        ]
    }

    #[test]
    fn raw_kinds() {
        assert_eq!(raw_kind("%dx:u64"), ValueKind::Int);
        assert_eq!(raw_kind("+0(%si):string"), ValueKind::Str);
        assert_eq!(raw_kind("+0(%si):ustring"), ValueKind::Str);
        assert_eq!(raw_kind("$comm"), ValueKind::Str);
        assert_eq!(raw_kind("%di"), ValueKind::Int);
        assert_eq!(raw_kind("+0(%si)"), ValueKind::Int);
        assert_eq!(raw_kind("+4(%di):x8[6]"), ValueKind::Array);
        assert_eq!(raw_kind("+4(%di):b4@3/32"), ValueKind::Bitfield);
    }

    #[test]
    fn checks() {
        let ok =
            spec::parse_probe("p f hist(n)[s,ip_src] count()[comm,pid,cpu] sum(n)[stack]").unwrap();
        let plans = lower(&ok, Some(&named())).unwrap();
        assert_eq!(plans[0].func, AggFunc::Log2);
        assert_eq!(
            plans[0].keys,
            [AggKey::Field("s".into()), AggKey::Field("ip_src".into())]
        );
        assert_eq!(plans[1].keys, [AggKey::Comm, AggKey::Pid, AggKey::Cpu]);
        assert_eq!(plans[2].keys, [AggKey::Stack]);
        assert_eq!(plans[0].text, "hist(n)[s,ip_src]");
        for (spec, under, msg) in [
            ("p f hist(m)", "m", "`m` is not a value of this probe"),
            ("p f hist(s)", "s", "`s` is a string"),
            ("p f sum(ip_src)", "ip_src", "shown as an address"),
            ("p f count()[bogus]", "bogus", "unknown key `bogus`"),
            ("p f count()[b]", "b", "is an array"),
            (
                "p f hist(n)[comm,pid,cpu]",
                "cpu",
                "too many keys: hist can have at most 2",
            ),
            (
                "p f count()[comm,pid,cpu,n]",
                "n",
                "too many keys: count can have at most 3",
            ),
        ] {
            let p = spec::parse_probe(spec).unwrap();
            let e = lower(&p, Some(&named())).unwrap_err();
            assert!(e.to_string().contains(msg), "{spec}: {e}");
            let sp = e.span.unwrap();
            assert_eq!(&spec[sp.start..sp.end], under, "{spec}");
            assert!(e.help.is_some());
        }
        // Unknown names pass when they cannot be checked (a tracepoint
        // without its format): the kernel checks them.
        let tp = spec::parse_probe("t a:b hist(x)[y]").unwrap();
        assert_eq!(
            lower(&tp, None).unwrap()[0].keys,
            [AggKey::Field("y".into())]
        );
    }
}

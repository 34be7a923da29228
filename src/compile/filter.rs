//! Filters: the text after `f:`, checked against the event's fields and
//! written to the event's `filter` file.
//!
//! Every name a filter compares must be a field of the event: the probe's
//! named values (first, as the kernel looks them up), the probe's own
//! `__probe_ip` (or `__probe_func`/`__probe_ret_ip` at a return), the
//! common fields, the kernel's `cpu`/`comm` pseudo-fields, and for a
//! tracepoint the fields of its format, where it can be read. Every
//! literal must be one the kernel compares with that field as meant: a
//! quoted string for a string (with `==`, `!=`, `~`), a number that fits
//! the field for an integer (the kernel would silently truncate
//! `n > 300000000000` on an `s32`).
//!
//! The kernel compares raw field values, so literals written the way a
//! value is shown become what the field holds (README, "Packet
//! tracing"): a dotted IPv4 address compared with an `ip_` field becomes
//! the 32-bit word the packet bytes make when read in the target's
//! (little-endian) order, and a value compared with a byte-swapped
//! `B16_`/`b32_`... field is swapped. Everything else passes through as
//! written.

use super::plan::{Display, Names};
use crate::diag::{did_you_mean, Diagnostic};
use crate::fetch::{Fetch, FetchArg, FetchType, IntKind};
use crate::spec::filter::{CmpOp, Pred, Value};
use crate::spec::{Filter, Span};

/// What the checks and the translation need to know of one field.
#[derive(Clone, Debug)]
pub struct FilterField {
    pub name: String,
    pub display: Display,
    /// Width in bytes, where the compiler knows it (typed expressions).
    pub size: Option<u32>,
    pub ty: FieldType,
    /// A whole struct's leaf: its member path, `c.skc_num` (README,
    /// "Whole structs"). A filter may name it so; the kernel gets the
    /// field's name.
    pub path: Option<String>,
    /// Names for its numbers: a filter may compare with one
    /// (`state==TCP_CLOSE` becomes the number; README, "Values by name").
    pub names: Option<Names>,
}

/// What a field is to the kernel's filter (its format's type and sign).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// An integer of `bytes` bytes.
    Int { bytes: u32, signed: bool },
    /// A bitfield of `width` bits (unsigned).
    Bits { width: u32 },
    /// Text: compared with quoted strings.
    String,
    /// Several values (`x8[6]`, `int args[6]`): the kernel cannot compare it.
    Array,
    /// A raw fetcharg the tool does not read: the kernel judges.
    Unknown,
}

impl FieldType {
    /// The field a fetcharg makes in its event (the kernel's default type
    /// is the word `x64`/`x32`; `$comm` is a string).
    pub fn of(arg: &FetchArg, pointer_size: u32) -> FieldType {
        match (&arg.ty, &arg.value) {
            (_, Fetch::Verbatim(_)) => FieldType::Unknown,
            (Some(FetchType::Int { kind, bytes }), _) => FieldType::Int {
                bytes: *bytes,
                signed: *kind == IntKind::Signed,
            },
            (Some(FetchType::String | FetchType::UString), _) => FieldType::String,
            (Some(FetchType::Bitfield { width, .. }), _) => FieldType::Bits { width: *width },
            (Some(FetchType::Array { .. }), _) => FieldType::Array,
            (Some(FetchType::Symbol), _) | (None, _) if arg.value != Fetch::Comm => {
                FieldType::Int {
                    bytes: pointer_size,
                    signed: false,
                }
            }
            (_, _) => FieldType::String,
        }
    }

    fn describe(self) -> String {
        match self {
            FieldType::Int { bytes, signed } => {
                format!("{}{}", if signed { 's' } else { 'u' }, bytes * 8)
            }
            FieldType::Bits { width } => format!("a {width}-bit field"),
            FieldType::String => "a string".into(),
            FieldType::Array => "an array".into(),
            FieldType::Unknown => "a raw fetcharg".into(),
        }
    }
}

/// Fields every event has, after its own (trace_events.c: the common
/// fields, then the `CPU`/`cpu`/`common_cpu` and `COMM`/`comm`
/// pseudo-fields the filter adds).
pub fn common_fields() -> Vec<FilterField> {
    let int = |bytes, signed| FieldType::Int { bytes, signed };
    [
        ("common_pid", int(4, true)),
        ("common_type", int(2, false)),
        ("common_flags", int(1, false)),
        ("common_preempt_count", int(1, false)),
        ("common_cpu", int(4, true)),
        ("cpu", int(4, true)),
        ("CPU", int(4, true)),
        ("comm", FieldType::String),
        ("COMM", FieldType::String),
    ]
    .into_iter()
    .map(|(name, ty)| FilterField {
        name: name.into(),
        display: Display::Default,
        size: None,
        ty,
        path: None,
        names: None,
    })
    .collect()
}

/// The pseudo-fields that take a `CPUS{...}` mask (newer kernels).
fn is_cpu_field(name: &str) -> bool {
    matches!(name, "common_cpu" | "cpu" | "CPU")
}

/// Check `filter` against the event's `fields` (its own first, then the
/// common ones) and give the text for the kernel. `complete`: `fields`
/// is every field of the event; otherwise (a tracepoint whose format
/// cannot be read here) an unknown name is left to the kernel. Every
/// comparison's mistake is reported.
pub fn check(
    filter: &Filter,
    fields: &[FilterField],
    complete: bool,
) -> Result<String, Vec<Diagnostic>> {
    let text = &filter.text.node;
    let base = filter.text.span.start;
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut errors = Vec::new();
    for p in filter.expr.preds() {
        let by_name = fields.iter().find(|f| f.name == p.field.node);
        let by_path = || {
            fields
                .iter()
                .find(|f| f.path.as_deref() == Some(p.field.node.as_str()))
        };
        let Some(field) = by_name.or_else(by_path) else {
            if complete {
                errors.push(unknown_field(p, fields));
            }
            continue;
        };
        if field.name != p.field.node {
            // A leaf named by its path: the kernel takes identifiers only
            // (trace_events_filter.c, parse_pred), so it gets the field.
            let (s, e) = (p.field.span.start - base, p.field.span.end - base);
            out.push_str(&text[copied..s]);
            out.push_str(&field.name);
            copied = e;
        }
        match literal(p, field) {
            Ok(None) => {}
            Ok(Some(new)) => {
                let (s, e) = (p.value.span.start - base, p.value.span.end - base);
                out.push_str(&text[copied..s]);
                out.push_str(&new);
                copied = e;
            }
            Err(d) => errors.push(d),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

fn bad(span: Span, msg: String) -> Diagnostic {
    Diagnostic::error(span, format!("bad filter: {msg}"))
}

fn unknown_field(p: &Pred, fields: &[FilterField]) -> Diagnostic {
    let name = &p.field.node;
    let help = did_you_mean(name, fields.iter().map(|f| f.name.as_str()), "").unwrap_or_else(|| {
        let own: Vec<String> = fields
            .iter()
            .take_while(|f| !common_fields().iter().any(|c| c.name == f.name))
            .map(|f| format!("`{}`", f.name))
            .collect();
        if own.is_empty() {
            "a filter compares the event's fields: here only the common ones (`common_pid`, `cpu`, `comm`, ...)".into()
        } else {
            format!(
                "a filter compares the event's fields: {} and the common ones (`common_pid`, `cpu`, `comm`, ...)",
                own.join(", ")
            )
        }
    });
    bad(p.field.span, format!("this event has no field `{name}`")).with_help(help)
}

/// Check one comparison's operator and literal against its field; the
/// literal to write instead, if it must be translated.
fn literal(p: &Pred, field: &FilterField) -> Result<Option<String>, Diagnostic> {
    let name = &field.name;
    let op = p.op.node;
    let (lit, lspan) = (&p.value.node, p.value.span);
    let shown = match lit {
        Value::Quoted(s) | Value::Bare(s) => s.as_str(),
    };
    match field.display {
        Display::Ip | Display::Swapped { .. } => {
            let Value::Bare(v) = lit else {
                return Err(bad(
                    lspan,
                    format!("`{name}` is a number: compare it without quotes"),
                ));
            };
            return translated(p, field, v).map(Some);
        }
        // A latency: a time with its unit, compared in nanoseconds.
        Display::Duration => {
            let ns = match lit {
                Value::Bare(v) if op != CmpOp::Glob => duration_ns(v),
                _ => None,
            };
            return match ns {
                Some(ns) => Ok(Some(ns.to_string())),
                None => Err(bad(
                    lspan,
                    format!("`{shown}` is not a time to compare with `{name}`"),
                )
                .with_help("e.g. 500us, 10ms, 1.5s; a bare number is nanoseconds")),
            };
        }
        _ => {}
    }
    match field.ty {
        FieldType::Unknown => Ok(None),
        FieldType::Array => Err(bad(
            p.field.span,
            format!("`{name}` is an array: the kernel's filters cannot compare it"),
        )
        .with_help("name one element instead (`x=...[2]`)")),
        FieldType::String => {
            if !matches!(op, CmpOp::Eq | CmpOp::Ne | CmpOp::Glob) {
                return Err(bad(
                    p.op.span,
                    format!("`{name}` is a string: `{}` cannot compare it", op.as_str()),
                )
                .with_help("strings take `==`, `!=` and `~` (a glob: `name ~ \"/tmp/*\"`)"));
            }
            match lit {
                Value::Quoted(_) => Ok(None),
                Value::Bare(v) => Err(bad(
                    lspan,
                    format!("`{name}` is a string: the value must be quoted"),
                )
                .with_help(format!("write `{name} {} \"{v}\"`", op.as_str()))),
            }
        }
        ty @ (FieldType::Int { .. } | FieldType::Bits { .. }) => {
            if op == CmpOp::Glob {
                return Err(bad(
                    p.op.span,
                    format!(
                        "`{name}` is a number ({}): `~` matches strings",
                        ty.describe()
                    ),
                )
                .with_help("compare numbers with == != < <= > >= or & (bits)"));
            }
            let v = match lit {
                Value::Quoted(_) => {
                    return Err(bad(
                        lspan,
                        format!(
                            "`{name}` is a number ({}), not a string: compare it with a number",
                            ty.describe()
                        ),
                    )
                    .with_help_opt(
                        kernel_number(shown.trim_start_matches('-'))
                            .map(|_| format!("write `{name} {} {shown}`", op.as_str())),
                    ))
                }
                Value::Bare(v) => v,
            };
            if v.starts_with("CPUS{") && is_cpu_field(name) {
                return Ok(None);
            }
            if kernel_number(v.trim_start_matches('-')).is_none() {
                if let Some(names) = &field.names {
                    return named_literal(p, field, ty, names, v).map(Some);
                }
            }
            check_number(name, ty, v, lspan).map(|()| None)
        }
    }
}

/// A time as nanoseconds: `1500` (ns), `1500ns`, `12us`, `1.5ms`, `2s`.
pub fn duration_ns(t: &str) -> Option<u64> {
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale: u64 = match unit {
        "" | "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        _ => return None,
    };
    if num.is_empty() {
        return None;
    }
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if frac.contains('.') || frac.len() > 9 {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut f: u64 = 0;
    let mut fscale = scale;
    for c in frac.chars() {
        fscale /= 10;
        f += c.to_digit(10)? as u64 * fscale;
        if fscale == 0 && c != '0' {
            // Finer than a nanosecond.
            return None;
        }
    }
    whole.checked_mul(scale)?.checked_add(f)
}

/// The number a name stands for in a field that has names for its
/// numbers (an enumerator, `true`, `-ENOENT`, a name of a tracepoint's
/// print format), written as the field holds it.
fn named_literal(
    p: &Pred,
    field: &FilterField,
    ty: FieldType,
    names: &Names,
    v: &str,
) -> Result<String, Diagnostic> {
    let name = &field.name;
    let (n, known): (Option<i128>, Vec<String>) = match names {
        Names::Table(t) => (
            t.value_of(v).map(i128::from),
            t.entries.iter().map(|e| e.name.clone()).collect(),
        ),
        Names::Bool => (
            match v {
                "true" => Some(1),
                "false" => Some(0),
                _ => None,
            },
            vec!["true".into(), "false".into()],
        ),
        Names::Errno => (
            v.strip_prefix('-')
                .and_then(crate::kernel::errno::number)
                .map(|e| -i128::from(e)),
            vec!["-ENOENT".into(), "-EAGAIN".into()],
        ),
        Names::Print(fp) => (fp.value_of(v).map(i128::from), fp.names()),
        Names::Symbol => (None, Vec::new()),
    };
    let Some(n) = n else {
        let what = match names {
            Names::Table(t) => format!("`{}`", t.what),
            _ => format!("`{name}`"),
        };
        let help = did_you_mean(v, known.iter().map(String::as_str), "")
            .or_else(|| {
                (!known.is_empty()).then(|| {
                    let mut some: Vec<String> =
                        known.iter().take(6).map(|k| format!("`{k}`")).collect();
                    if known.len() > 6 {
                        some.push("...".into());
                    }
                    format!("its names: {}", some.join(", "))
                })
            })
            .unwrap_or_else(|| "compare it with a number".into());
        return Err(bad(
            p.value.span,
            format!("`{v}` is not a number, nor a name of {what}"),
        )
        .with_help(help));
    };
    // As the field holds it: a negative number of an unsigned field is
    // its bits; a signed field's bit pattern above its maximum, negative.
    let (bits, signed) = match ty {
        FieldType::Int { bytes, signed } => (bytes * 8, signed),
        FieldType::Bits { width } => (width, false),
        _ => (64, false),
    };
    let mask: i128 = if bits >= 64 {
        u64::MAX.into()
    } else {
        (1i128 << bits) - 1
    };
    let u = n & mask;
    Ok(if signed && bits > 0 && u >> (bits - 1) == 1 {
        (u - (mask + 1)).to_string()
    } else {
        u.to_string()
    })
}

/// A number as the kernel's filter reads it (kstrtoll/kstrtoull, base 0:
/// decimal, `0x` hex, `0` octal; `-` only for signed fields), and that
/// fits the field.
fn check_number(name: &str, ty: FieldType, v: &str, span: Span) -> Result<(), Diagnostic> {
    let (neg, digits) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v),
    };
    let Some(n) = kernel_number(digits) else {
        return Err(bad(
            span,
            format!(
                "`{v}` is not a number (decimal, 0x hex or 0 octal), and `{name}` is one ({})",
                ty.describe()
            ),
        ));
    };
    let (bits, signed) = match ty {
        FieldType::Int { bytes, signed } => (bytes * 8, signed),
        FieldType::Bits { width } => (width, false),
        _ => return Ok(()),
    };
    let max = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    if neg && !signed {
        // -1 on a u8 is meant as 0xff: say so, the kernel refuses `-`.
        let wrapped = if bits >= 64 {
            Some(0u64.wrapping_sub(n))
        } else {
            (n <= 1 << bits).then(|| ((1u128 << bits) - n as u128) as u64 & max)
        };
        return Err(bad(
            span,
            format!(
                "`{v}` is negative, and `{name}` is unsigned ({})",
                ty.describe()
            ),
        )
        .with_help_opt(
            wrapped.map(|w| {
                format!("the kernel compares the field's bits: {v} in {bits} bits is {w:#x}")
            }),
        ));
    }
    // A signed field takes its own range and, as a bit pattern, up to its
    // unsigned maximum (0xffffffff for an s32); a 64-bit one only what
    // kstrtoll reads.
    let fits = if neg {
        n <= 1u64 << (bits - 1)
    } else if signed && bits >= 64 {
        n <= i64::MAX as u64
    } else {
        n <= max
    };
    if !fits {
        return Err(bad(
            span,
            format!("`{v}` does not fit `{name}` ({})", ty.describe()),
        )
        .with_help("the kernel would compare a truncated value"));
    }
    Ok(())
}

/// kstrtoull's base 0: `0x1f`, `017`, `42`.
fn kernel_number(t: &str) -> Option<u64> {
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16)
            .ok()
            .filter(|_| !h.starts_with('+'));
    }
    if t.len() > 1 && t.starts_with('0') {
        return u64::from_str_radix(&t[1..], 8)
            .ok()
            .filter(|_| !t[1..].starts_with('+'));
    }
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// A decimal or `0x` hex number (the way values are shown).
fn number(t: &str) -> Option<u64> {
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    }
}

/// The literal for an `ip_`/byte-swapped field, as the kernel compares it.
fn translated(p: &Pred, field: &FilterField, lit: &str) -> Result<String, Diagnostic> {
    let name = &field.name;
    let op = p.op.node;
    let err = |msg: String| bad(p.value.span, msg);
    Ok(match field.display {
        Display::Ip => {
            if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                return Err(bad(
                    p.op.span,
                    format!("`{name}` is an address: only `==` and `!=` can compare it"),
                ));
            }
            if field.size == Some(16) {
                return Err(err(format!(
                    "`{name}` is a 128-bit IPv6 address, which kernel filters cannot compare"
                )));
            }
            if let Ok(a) = lit.parse::<std::net::Ipv4Addr>() {
                format!("{:#x}", u32::from_le_bytes(a.octets()))
            } else if number(lit).is_some_and(|n| n <= u32::MAX as u64) {
                // Already the raw word.
                lit.to_string()
            } else {
                return Err(err(format!(
                    "`{lit}` is not an IPv4 address (compare `{name}` with e.g. 127.0.0.1)"
                )));
            }
        }
        Display::Swapped { bits, .. } => {
            if !matches!(op, CmpOp::Eq | CmpOp::Ne | CmpOp::BitAnd) {
                return Err(bad(
                    p.op.span,
                    format!("`{name}` is byte-swapped: only `==`, `!=` and `&` keep their meaning"),
                ));
            }
            let Some(v) = number(lit) else {
                return Err(err(format!(
                    "`{lit}` is not a number (decimal or 0x hex) to compare with `{name}`"
                )));
            };
            let swapped = match bits {
                16 if v <= u16::MAX as u64 => (v as u16).swap_bytes() as u64,
                32 if v <= u32::MAX as u64 => (v as u32).swap_bytes() as u64,
                64 => v.swap_bytes(),
                _ => {
                    return Err(err(format!(
                        "`{lit}` does not fit the {bits} bits of `{name}`"
                    )))
                }
            };
            format!("{swapped:#x}")
        }
        _ => lit.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spanned;

    fn int(bytes: u32, signed: bool) -> FieldType {
        FieldType::Int { bytes, signed }
    }

    fn fields() -> Vec<FilterField> {
        let f = |name: &str, display, size, ty| FilterField {
            name: name.into(),
            display,
            size,
            ty,
            path: None,
            names: None,
        };
        let mut v = vec![
            f("ip_src", Display::Ip, Some(4), int(4, false)),
            f("ip_v6", Display::Ip, Some(16), FieldType::Array),
            f(
                "b16_dport",
                Display::Swapped {
                    bits: 16,
                    hex: false,
                },
                Some(2),
                int(2, false),
            ),
            f(
                "B32_x",
                Display::Swapped {
                    bits: 32,
                    hex: true,
                },
                Some(4),
                int(4, false),
            ),
            f("proto", Display::Hex, Some(1), int(1, false)),
            f("n", Display::Default, Some(4), int(4, true)),
            f("name", Display::Default, None, FieldType::String),
            f("mac", Display::Default, None, FieldType::Array),
            f("flag", Display::Default, None, FieldType::Bits { width: 3 }),
            f("raw", Display::Default, None, FieldType::Unknown),
            f("lat", Display::Duration, Some(8), int(8, false)),
        ];
        // A whole struct's leaves, and values with names for numbers.
        let table = |flags, entries: &[(u64, &str)]| {
            Names::Table(std::sync::Arc::new(super::super::plan::NameTable {
                what: "enum state".into(),
                size: 1,
                flags,
                entries: entries
                    .iter()
                    .map(|&(value, name)| super::super::plan::NameEntry {
                        mask: if flags { value } else { u64::MAX },
                        value,
                        name: name.into(),
                    })
                    .collect(),
            }))
        };
        let leaf = |name: &str, path: &str, ty, names: Option<Names>| FilterField {
            path: Some(path.into()),
            names,
            ..f(name, Display::Default, None, ty)
        };
        v.extend([
            leaf("c_skc_num", "c.skc_num", int(2, false), None),
            leaf(
                "c_7",
                "c.skc_v6_rcv_saddr.in6_u.u6_addr32[1]",
                int(4, false),
                None,
            ),
            leaf(
                "c_skc_state",
                "c.skc_state",
                int(1, false),
                Some(table(false, &[(1, "TCP_ESTABLISHED"), (7, "TCP_CLOSE")])),
            ),
            leaf(
                "c_perm",
                "c.perm",
                FieldType::Bits { width: 4 },
                Some(table(true, &[(1, "P_READ"), (4, "P_EXEC")])),
            ),
            FilterField {
                names: Some(table(false, &[(0xff, "S_NEG")])),
                ..f("s", Display::Default, None, int(1, true))
            },
            FilterField {
                names: Some(Names::Errno),
                ..f("ret", Display::Default, None, int(8, true))
            },
            FilterField {
                names: Some(Names::Bool),
                ..f("on", Display::Default, None, int(1, false))
            },
        ]);
        v.extend(common_fields());
        v
    }

    #[test]
    fn leaves_by_their_path() {
        assert_eq!(
            ok("c.skc_num == 22 || c_skc_num == 23"),
            "c_skc_num == 22 || c_skc_num == 23"
        );
        assert_eq!(
            ok("c.skc_v6_rcv_saddr.in6_u.u6_addr32[1]==0xffff0000 && common_pid>1"),
            "c_7==0xffff0000 && common_pid>1"
        );
        let (m, at) = err("c.skc_nom == 22");
        assert!(m.contains("no field `c.skc_nom`"), "{m}");
        assert_eq!(at, "c.skc_nom");
    }

    #[test]
    fn names_for_numbers_as_literals() {
        assert_eq!(
            ok("c.skc_state==TCP_ESTABLISHED || c_skc_state != TCP_CLOSE"),
            "c_skc_state==1 || c_skc_state != 7"
        );
        assert_eq!(ok("c.perm & P_EXEC"), "c_perm & 4");
        // As the field holds it: 0xff in an s8 is -1.
        assert_eq!(ok("s == S_NEG"), "s == -1");
        assert_eq!(ok("ret == -ENOENT"), "ret == -2");
        assert_eq!(ok("on == true && on != false"), "on == 1 && on != 0");
        let (m, at) = err("c.skc_state == TCP_ESTABLISHD");
        assert!(m.contains("nor a name of `enum state`"), "{m}");
        assert_eq!(at, "TCP_ESTABLISHD");
        let e = check(&filter("c_skc_state == TCP_ESTABLISHD"), &fields(), true).unwrap_err();
        assert!(
            e[0].help.as_deref().unwrap().contains("`TCP_ESTABLISHED`"),
            "{e:?}"
        );
        // A field without names still wants a number.
        assert!(err("n == TCP_CLOSE").0.contains("not a number"));
    }

    fn filter(text: &str) -> Filter {
        Filter {
            text: Spanned {
                node: text.into(),
                span: Span::new(0, text.len()),
            },
            expr: crate::spec::filter::parse(text, 0).unwrap(),
        }
    }

    fn ok(text: &str) -> String {
        check(&filter(text), &fields(), true).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    /// The first error, and the text under its caret.
    fn err(text: &str) -> (String, String) {
        let e = check(&filter(text), &fields(), true).expect_err(text);
        let sp = e[0].span.unwrap();
        (e[0].message.clone(), text[sp.start..sp.end].to_string())
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ns("1500"), Some(1500));
        assert_eq!(duration_ns("1500ns"), Some(1500));
        assert_eq!(duration_ns("12us"), Some(12_000));
        assert_eq!(duration_ns("1.5ms"), Some(1_500_000));
        assert_eq!(duration_ns("2s"), Some(2_000_000_000));
        assert_eq!(duration_ns("0.000000001s"), Some(1));
        assert_eq!(duration_ns("1.5ns"), None);
        assert_eq!(duration_ns("ms"), None);
        assert_eq!(duration_ns("10h"), None);
        assert_eq!(ok("lat>10ms && lat<=1s"), "lat>10000000 && lat<=1000000000");
        let (m, at) = err("lat>10h");
        assert!(m.contains("not a time to compare with `lat`"), "{m}");
        assert_eq!(at, "10h");
    }

    #[test]
    fn readme_example() {
        assert_eq!(ok("ip_src==127.0.0.1"), "ip_src==0x100007f");
    }

    #[test]
    fn mixed_expression_keeps_the_rest() {
        assert_eq!(
            ok("(ip_src == 10.1.2.3 || ip_src!=192.168.0.1) && proto==1 && b16_dport == 80 && B32_x & 0xff && common_pid != 1"),
            "(ip_src == 0x302010a || ip_src!=0x100a8c0) && proto==1 && b16_dport == 0x5000 && B32_x & 0xff000000 && common_pid != 1"
        );
    }

    #[test]
    fn untranslatable_literals_are_errors() {
        let (m, at) = err("ip_src==300.1.1.1");
        assert!(
            m.contains("not an IPv4 address") && at == "300.1.1.1",
            "{m}"
        );
        assert_eq!(err("proto==1 && ip_src < 1.2.3.4").1, "<");
        assert!(err("b16_dport==70000")
            .0
            .contains("does not fit the 16 bits"));
        assert!(err("b16_dport==http").0.contains("not a number"));
        assert!(err("ip_v6==1.2.3.4").0.contains("128-bit"));
    }

    #[test]
    fn strings_pass_as_written() {
        let s = r#"name == "ip_src==1.2.3.4" && comm ~ "ba*" && name != 'x'"#;
        assert_eq!(ok(s), s);
    }

    #[test]
    fn names_are_checked() {
        let (m, at) = err("nn == 3");
        assert!(m.contains("no field `nn`") && at == "nn", "{m}");
        let e = check(&filter("nn == 3"), &fields(), true).unwrap_err();
        assert!(e[0].help.as_deref().unwrap().contains("`n`"), "{e:?}");
        // Every comparison's mistake at once.
        assert_eq!(
            check(&filter("x == 1 || y == 2"), &fields(), true)
                .unwrap_err()
                .len(),
            2
        );
        // Not known to be complete (a tracepoint without its format).
        assert_eq!(
            check(&filter("x == 1"), &fields(), false).unwrap(),
            "x == 1"
        );
    }

    #[test]
    fn literals_against_types() {
        for (text, msg, under) in [
            ("name == bash", "must be quoted", "bash"),
            ("name < \"a\"", "cannot compare it", "<"),
            ("n ~ \"1*\"", "`~` matches strings", "~"),
            ("n == \"1\"", "not a string", "\"1\""),
            ("n == 1.5", "not a number", "1.5"),
            ("n == 08", "not a number", "08"),
            ("n > 300000000000", "does not fit `n` (s32)", "300000000000"),
            ("proto == -1", "negative", "-1"),
            ("proto == 256", "does not fit", "256"),
            ("flag == 8", "does not fit", "8"),
            ("mac == 1", "array", "mac"),
            ("common_pid == \"1\"", "not a string", "\"1\""),
            ("comm == 3", "must be quoted", "3"),
        ] {
            let (m, at) = err(text);
            assert!(m.contains(msg), "{text}: {m}");
            assert_eq!(at, under, "{text}");
        }
        for text in [
            "n == -1",
            "n == 0xffffffff",
            "n == -0x10",
            "n == 010",
            "n == 2147483647",
            "proto == 255",
            "flag == 7",
            "raw == anything",
            "common_cpu & CPUS{0-1}",
            "n & 0x4",
        ] {
            assert_eq!(ok(text), text);
        }
        let e = check(&filter("proto == -1"), &fields(), true).unwrap_err();
        assert!(e[0].help.as_deref().unwrap().contains("0xff"), "{e:?}");
    }
}

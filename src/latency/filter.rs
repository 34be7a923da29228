//! A completed call's filter evaluated in coolkprobe, where the latency
//! is paired in user space and no kernel event holds the call: the
//! kernel's filter language (Documentation/trace/events.rst, "Event
//! filtering"), parsed by [`crate::spec::filter`] and already checked and
//! translated by the compiler (addresses, swapped values, times are the
//! numbers the fields hold). `&` is "some bits set", `~` a glob.

use crate::ring::Value;
use crate::spec::filter::{self as ast, CmpOp};
use crate::tracefs::format::{EventFormat, Field};

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Cmp { field: Field, op: CmpOp, lit: Lit },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Num(i128),
    Str(Vec<u8>),
}

impl Filter {
    /// Parse the (translated) filter `text` against the fields of `format`.
    pub fn parse(text: &str, format: &EventFormat) -> Result<Filter, String> {
        let e = ast::parse(text, 0).map_err(|d| format!("filter `{text}`: {}", d.message))?;
        Filter::of(&e, format, text)
    }

    fn of(e: &ast::Expr, format: &EventFormat, text: &str) -> Result<Filter, String> {
        Ok(match e {
            ast::Expr::Or(a, b) => Filter::Or(
                Box::new(Filter::of(a, format, text)?),
                Box::new(Filter::of(b, format, text)?),
            ),
            ast::Expr::And(a, b) => Filter::And(
                Box::new(Filter::of(a, format, text)?),
                Box::new(Filter::of(b, format, text)?),
            ),
            ast::Expr::Not(a) => Filter::Not(Box::new(Filter::of(a, format, text)?)),
            ast::Expr::Pred(p) => {
                let name = &p.field.node;
                let field = format
                    .field(name)
                    .cloned()
                    .ok_or_else(|| format!("filter `{text}`: no value `{name}`"))?;
                let lit = match &p.value.node {
                    ast::Value::Quoted(s) => Lit::Str(s.as_bytes().to_vec()),
                    ast::Value::Bare(v) if crate::agg::is_string_field(&field) => {
                        Lit::Str(v.as_bytes().to_vec())
                    }
                    ast::Value::Bare(v) => Lit::Num(
                        number(v)
                            .ok_or_else(|| format!("filter `{text}`: `{v}` is not a number"))?,
                    ),
                };
                Filter::Cmp {
                    field,
                    op: p.op.node,
                    lit,
                }
            }
        })
    }

    /// Whether the record `payload` passes.
    pub fn eval(&self, payload: &[u8]) -> bool {
        match self {
            Filter::And(a, b) => a.eval(payload) && b.eval(payload),
            Filter::Or(a, b) => a.eval(payload) || b.eval(payload),
            Filter::Not(a) => !a.eval(payload),
            Filter::Cmp { field, op, lit } => match (field.value(payload), lit) {
                (Some(Value::Str(s)), Lit::Str(l)) => match op {
                    CmpOp::Eq => s == l.as_slice(),
                    CmpOp::Ne => s != l.as_slice(),
                    CmpOp::Glob => glob(l, s),
                    _ => false,
                },
                (Some(Value::Unsigned(u)), Lit::Num(n)) => cmp(u as i128, *op, *n),
                (Some(Value::Signed(i)), Lit::Num(n)) => cmp(i as i128, *op, *n),
                _ => false,
            },
        }
    }
}

fn cmp(v: i128, op: CmpOp, n: i128) -> bool {
    match op {
        CmpOp::Eq => v == n,
        CmpOp::Ne => v != n,
        CmpOp::Lt => v < n,
        CmpOp::Le => v <= n,
        CmpOp::Gt => v > n,
        CmpOp::Ge => v >= n,
        CmpOp::BitAnd => v & n != 0,
        CmpOp::Glob => false,
    }
}

/// `*` and `?` globs, as the kernel's `~`.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

/// A number as the kernel reads it: decimal, `0x` hex, `0` octal, `-`.
fn number(t: &str) -> Option<i128> {
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        u64::from_str_radix(&t[1..], 8).ok()?
    } else {
        t.parse::<u64>().ok()?
    } as i128;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FMT: &str = "name: c\nID: 7\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
        \tfield:u64 lat;\toffset:8;\tsize:8;\tsigned:0;\n\
        \tfield:s64 ret;\toffset:16;\tsize:8;\tsigned:1;\n\
        \tfield:__data_loc char[] fn;\toffset:24;\tsize:4;\tsigned:1;\n";

    fn record(lat: u64, ret: i64, name: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; 32];
        r[4..8].copy_from_slice(&42i32.to_ne_bytes());
        r[8..16].copy_from_slice(&lat.to_ne_bytes());
        r[16..24].copy_from_slice(&ret.to_ne_bytes());
        r[24..28].copy_from_slice(&(((name.len() as u32 + 1) << 16) | 32).to_ne_bytes());
        r.extend_from_slice(name);
        r.push(0);
        r
    }

    #[test]
    fn evaluates_as_the_kernel() {
        let f = EventFormat::parse(FMT).unwrap();
        let t = |text: &str, r: &[u8]| Filter::parse(text, &f).unwrap().eval(r);
        let slow = record(2_000_000, -2, b"/etc/passwd");
        let fast = record(500, 3, b"/tmp/x");
        assert!(t("lat>1000000", &slow) && !t("lat>1000000", &fast));
        assert!(t("ret<0", &slow) && !t("ret<0", &fast));
        assert!(t("ret==-2 && fn==\"/etc/passwd\"", &slow));
        assert!(t("fn ~ \"/tmp/*\"", &fast) && !t("fn ~ \"/tmp/*\"", &slow));
        assert!(t("!(lat>1000) || common_pid==42", &fast));
        assert!(t("lat & 0x1", &record(1, 0, b"")) && !t("lat & 0x2", &record(1, 0, b"")));
        assert!(t("(lat<1000 || ret==-2) && common_pid!=1", &slow));
        assert!(t("lat==010", &record(8, 0, b"")));
        for bad in ["nope>1", "lat>", "lat>x", "(lat>1"] {
            assert!(Filter::parse(bad, &f).is_err(), "{bad}");
        }
    }
}

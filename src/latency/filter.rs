//! An ftrace event filter (Documentation/trace/events.rst, "Event
//! filtering") evaluated on a record in coolkprobe: the filter of a
//! completed call paired in user space, which no kernel event holds.
//! The same language as the kernel's: `&&`, `||`, `!`, parentheses;
//! `==`, `!=`, `<`, `<=`, `>`, `>=`, `&` on numbers; `==`, `!=` and `~`
//! (a glob) on strings. Literals are already what the field holds (the
//! compiler translated addresses, swapped values and times).

use crate::ring::Value;
use crate::spec::filter::{tokens, Token};
use crate::tracefs::format::{EventFormat, Field};

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Cmp { field: Field, op: Op, lit: Lit },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Glob,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Num(i128),
    Str(Vec<u8>),
}

struct P<'a> {
    text: &'a str,
    toks: Vec<(Token, &'a str)>,
    i: usize,
    format: &'a EventFormat,
}

impl Filter {
    /// Parse `text` against the fields of `format`.
    pub fn parse(text: &str, format: &EventFormat) -> Result<Filter, String> {
        let toks = tokens(text)
            .into_iter()
            .map(|t| (t.kind, &text[t.span.start..t.span.end]))
            .collect();
        let mut p = P {
            text,
            toks,
            i: 0,
            format,
        };
        let f = p.or()?;
        if let Some((_, t)) = p.toks.get(p.i) {
            return Err(format!("unexpected `{t}` in filter `{}`", p.text));
        }
        Ok(f)
    }

    /// Whether the record `payload` passes.
    pub fn eval(&self, payload: &[u8]) -> bool {
        match self {
            Filter::And(a, b) => a.eval(payload) && b.eval(payload),
            Filter::Or(a, b) => a.eval(payload) || b.eval(payload),
            Filter::Not(a) => !a.eval(payload),
            Filter::Cmp { field, op, lit } => match (field.value(payload), lit) {
                (Some(Value::Str(s)), Lit::Str(l)) => match op {
                    Op::Eq => s == l.as_slice(),
                    Op::Ne => s != l.as_slice(),
                    Op::Glob => glob(l, s),
                    _ => false,
                },
                (Some(Value::Unsigned(u)), Lit::Num(n)) => cmp(u as i128, *op, *n),
                (Some(Value::Signed(i)), Lit::Num(n)) => cmp(i as i128, *op, *n),
                _ => false,
            },
        }
    }
}

fn cmp(v: i128, op: Op, n: i128) -> bool {
    match op {
        Op::Eq => v == n,
        Op::Ne => v != n,
        Op::Lt => v < n,
        Op::Le => v <= n,
        Op::Gt => v > n,
        Op::Ge => v >= n,
        Op::And => v & n != 0,
        Op::Glob => false,
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

fn number(t: &str) -> Option<i128> {
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok()?,
        None => t.parse::<u64>().ok()?,
    } as i128;
    Some(if neg { -v } else { v })
}

impl<'a> P<'a> {
    fn peek(&self) -> Option<(Token, &'a str)> {
        self.toks.get(self.i).copied()
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut a = self.and()?;
        while self.peek() == Some((Token::Op, "||")) {
            self.i += 1;
            a = Filter::Or(Box::new(a), Box::new(self.and()?));
        }
        Ok(a)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut a = self.not()?;
        while self.peek() == Some((Token::Op, "&&")) {
            self.i += 1;
            a = Filter::And(Box::new(a), Box::new(self.not()?));
        }
        Ok(a)
    }

    fn not(&mut self) -> Result<Filter, String> {
        match self.peek() {
            Some((Token::Op, "!")) => {
                self.i += 1;
                Ok(Filter::Not(Box::new(self.not()?)))
            }
            Some((Token::Paren, "(")) => {
                self.i += 1;
                let f = self.or()?;
                if self.peek() != Some((Token::Paren, ")")) {
                    return Err(format!("missing `)` in filter `{}`", self.text));
                }
                self.i += 1;
                Ok(f)
            }
            _ => self.cmp(),
        }
    }

    fn cmp(&mut self) -> Result<Filter, String> {
        let bad = |what: &str| format!("{what} in filter `{}`", self.text);
        let Some((Token::Ident, name)) = self.peek() else {
            return Err(bad("expected a field name"));
        };
        let field = self
            .format
            .field(name)
            .cloned()
            .ok_or_else(|| bad(&format!("no value `{name}`")))?;
        self.i += 1;
        let op = match self.peek() {
            Some((Token::Op, o)) => match o {
                "==" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                "&" => Op::And,
                "~" => Op::Glob,
                _ => return Err(bad(&format!("unknown operator `{o}`"))),
            },
            _ => return Err(bad(&format!("expected an operator after `{name}`"))),
        };
        self.i += 1;
        let Some((Token::Literal | Token::Ident, lit)) = self.peek() else {
            return Err(bad(&format!("expected a value after `{name}`")));
        };
        self.i += 1;
        let is_str = crate::agg::is_string_field(&field);
        let lit = if is_str {
            if !matches!(op, Op::Eq | Op::Ne | Op::Glob) {
                return Err(bad(&format!(
                    "`{name}` is a string: compare it with ==, != or ~"
                )));
            }
            let unq = lit
                .strip_prefix('"')
                .and_then(|l| l.strip_suffix('"'))
                .or_else(|| lit.strip_prefix('\'').and_then(|l| l.strip_suffix('\'')))
                .unwrap_or(lit);
            Lit::Str(unq.as_bytes().to_vec())
        } else {
            if op == Op::Glob {
                return Err(bad(&format!("`{name}` is a number: `~` is for strings")));
            }
            Lit::Num(number(lit).ok_or_else(|| bad(&format!("`{lit}` is not a number")))?)
        };
        Ok(Filter::Cmp { field, op, lit })
    }
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
        for bad in [
            "nope>1",
            "lat>",
            "lat>>1",
            "fn<3",
            "lat~\"x\"",
            "(lat>1",
            "lat>1 lat",
        ] {
            assert!(Filter::parse(bad, &f).is_err(), "{bad}");
        }
    }
}

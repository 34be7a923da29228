//! A tracepoint's `print fmt:` line, read the way libtraceevent reads it,
//! for the fields the kernel prints by name: `__print_symbolic`
//! (`newstate=TCP_ESTABLISHED`), `__print_flags` (`prev_state=S|D`) and
//! addresses (`%pI4`, `%pI6c`).
//!
//! The line is a C printf format and its arguments
//! (include/trace/stages/stage3_trace_output.h writes them): `"family=%s
//! sport=%hu", __print_symbolic(REC->family, { 2, "AF_INET" }), REC->sport`.
//! The format is split into its pieces (`name=%s`, `type:%s`); a piece whose
//! arguments read one field only and name its numbers is kept with its
//! arguments parsed into expressions, and evaluated per event with that
//! field's value exactly as the kernel's own text output prints it (C
//! operators, `?:`, casts, the kernel's `trace_print_symbols_seq` and
//! `trace_print_flags_seq`). Anything else in the line is left to the
//! field's plain display: nothing here can make a value wrong, only
//! unnamed.

use std::fmt::Write as _;

/// How one field is printed by name: the text after `name=` in the
/// format, conversions bound to their argument expressions.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldPrint {
    /// The field every argument reads (`REC->newstate`).
    pub field: String,
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Conv(Conv, Expr),
}

/// One printf conversion: `%-08lx`, `%s`, `%pI4`.
#[derive(Clone, Debug, PartialEq)]
struct Conv {
    left: bool,
    zero: bool,
    alt: bool,
    plus: bool,
    width: usize,
    precision: Option<usize>,
    /// Bytes of the integer the length modifier says (`hh` 1, `h` 2,
    /// none 4, `l`/`ll`/`z` 8).
    bytes: u32,
    kind: ConvKind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ConvKind {
    Signed,
    Unsigned,
    Hex {
        upper: bool,
    },
    Octal,
    Char,
    Str,
    Ip4,
    /// `%pI6` (full) or `%pI6c` (compressed).
    Ip6 {
        compressed: bool,
    },
}

/// An argument expression.
#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Num(u64),
    Str(String),
    /// `REC->name`.
    Field(String),
    /// `(unsigned char)x`: the value cut to its bytes (sign-extended for a
    /// signed type); 0: a cast that changes nothing we model (`(void *)`).
    Cast {
        bytes: u32,
        signed: bool,
        expr: Box<Expr>,
    },
    Unary(char, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `__print_symbolic(value, { v, "name" }, ...)`.
    Symbolic(Box<Expr>, Vec<(u64, String)>),
    /// `__print_flags(value, "delim", { mask, "name" }, ...)`.
    Flags(Box<Expr>, String, Vec<(u64, String)>),
}

/// What an expression is worth.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Int(u64),
    Str(String),
    Bytes(Vec<u8>),
}

/// Every field of an event that its print format prints by name.
pub fn parse(print_fmt: &str) -> Vec<FieldPrint> {
    parse_line(print_fmt).unwrap_or_default()
}

/// The table of the `__print_flags` applied to `field` in a print
/// format (the allocation flags of `kmem:kmalloc`'s `gfp_flags`).
pub fn flags_table(print_fmt: &str, field: &str) -> Option<Vec<(u64, String)>> {
    fn find(e: &Expr, field: &str) -> Option<Vec<(u64, String)>> {
        match e {
            Expr::Flags(v, _, t) if **v == Expr::Field(field.into()) => Some(t.clone()),
            Expr::Cond(a, b, c) => find(a, field)
                .or_else(|| find(b, field))
                .or_else(|| find(c, field)),
            Expr::Cast { expr, .. } | Expr::Unary(_, expr) => find(expr, field),
            Expr::Binary(_, a, b) => find(a, field).or_else(|| find(b, field)),
            _ => None,
        }
    }
    let (_, args) = split_line(print_fmt)?;
    args.iter().flatten().find_map(|e| find(e, field))
}

/// The format string and each argument, parsed whole or None: one that
/// is not understood to its end is never guessed at.
fn split_line(line: &str) -> Option<(String, Vec<Option<Expr>>)> {
    let mut p = Lexer::new(line);
    let fmt = p.string()?;
    let rest = p.peek();
    let rest = match rest.strip_prefix(',') {
        Some(r) => r,
        None if rest.is_empty() => "",
        None => return None,
    };
    let args = split_args(rest)
        .into_iter()
        .map(|a| {
            let mut l = Lexer::new(a);
            let e = l.expr()?;
            l.peek().is_empty().then_some(e)
        })
        .collect();
    Some((fmt, args))
}

fn parse_line(line: &str) -> Option<Vec<FieldPrint>> {
    let (fmt, args) = split_line(line)?;
    let mut out = Vec::new();
    let mut next = 0;
    // Pieces of the format separated by spaces (`newstate=%s`, `type:%s`,
    // `%s%s`): each conversion's argument is known by counting.
    for token in fmt.split(' ') {
        let mut pieces = split_conversions(token)?;
        let convs = pieces.iter().filter(|p| p.is_conv()).count();
        let mine = args.get(next..next + convs)?;
        next += convs;
        // The value is what the conversions print, with any text between
        // them (`%s%s`), not the label around (`name=`, `type:`, `(..)`).
        while pieces.last().is_some_and(|p| !p.is_conv()) {
            pieces.pop();
        }
        let first = pieces
            .iter()
            .position(RawPiece::is_conv)
            .unwrap_or(pieces.len());
        let mut args = mine.iter();
        let bound: Vec<(Piece, Option<String>)> = pieces
            .into_iter()
            .skip(first)
            .map(|piece| match piece {
                RawPiece::Text(t) => Some((Piece::Text(t), None)),
                RawPiece::Conv(c) => {
                    // Parsed, and reading one field only.
                    let e = args.next()?.as_ref()?;
                    let mut fields = Vec::new();
                    e.fields(&mut fields);
                    let [f] = fields.as_slice() else {
                        return Some((Piece::Text(String::new()), Some(String::new())));
                    };
                    Some((Piece::Conv(c, e.clone()), Some(f.clone())))
                }
            })
            .collect::<Option<_>>()
            .unwrap_or_default();
        let mut fields: Vec<&str> = bound.iter().filter_map(|(_, f)| f.as_deref()).collect();
        fields.dedup();
        match fields.as_slice() {
            // One field: the whole piece is its value.
            [f] if !f.is_empty() => {
                let pieces: Vec<Piece> = bound.iter().map(|(p, _)| p.clone()).collect();
                out.extend(named(f, pieces));
            }
            // Several (`(%s|%s)`): each conversion alone.
            _ => {
                for (p, f) in &bound {
                    if let (Piece::Conv(..), Some(f)) = (p, f) {
                        out.extend(named(f, vec![p.clone()]));
                    }
                }
            }
        }
    }
    Some(out)
}

/// The piece, if it gives the field's numbers names (or prints it as an
/// address).
fn named(field: &str, pieces: Vec<Piece>) -> Option<FieldPrint> {
    let names = pieces.iter().any(|p| match p {
        Piece::Conv(c, e) => e.names() || matches!(c.kind, ConvKind::Ip4 | ConvKind::Ip6 { .. }),
        Piece::Text(_) => false,
    });
    (names && !field.is_empty()).then(|| FieldPrint {
        field: field.to_string(),
        pieces,
    })
}

enum RawPiece {
    Text(String),
    Conv(Conv),
}

impl RawPiece {
    fn is_conv(&self) -> bool {
        matches!(self, RawPiece::Conv(_))
    }
}

/// A piece of format text split into literal text and conversions.
fn split_conversions(s: &str) -> Option<Vec<RawPiece>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            let c = s[i..].chars().next()?;
            text.push(c);
            i += c.len_utf8();
            continue;
        }
        if b.get(i + 1) == Some(&b'%') {
            text.push('%');
            i += 2;
            continue;
        }
        if !text.is_empty() {
            out.push(RawPiece::Text(std::mem::take(&mut text)));
        }
        let (c, n) = conversion(&s[i + 1..])?;
        out.push(RawPiece::Conv(c));
        i += 1 + n;
    }
    if !text.is_empty() {
        out.push(RawPiece::Text(text));
    }
    Some(out)
}

/// The conversion after a `%`, and its length; None for what this
/// reader does not follow (`%*d`, an unknown letter).
fn conversion(s: &str) -> Option<(Conv, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut c = Conv {
        left: false,
        zero: false,
        alt: false,
        plus: false,
        width: 0,
        precision: None,
        bytes: 4,
        kind: ConvKind::Signed,
    };
    while let Some(&f) = b.get(i) {
        match f {
            b'-' => c.left = true,
            b'0' => c.zero = true,
            b'#' => c.alt = true,
            b'+' => c.plus = true,
            b' ' => {}
            _ => break,
        }
        i += 1;
    }
    while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
        c.width = c.width.checked_mul(10)?.checked_add((d - b'0') as usize)?;
        i += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut p = 0usize;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            p = p.checked_mul(10)?.checked_add((d - b'0') as usize)?;
            i += 1;
        }
        c.precision = Some(p);
    }
    let rest = &s[i..];
    let (bytes, n) = if rest.starts_with("hh") {
        (1, 2)
    } else if rest.starts_with("ll") {
        (8, 2)
    } else if rest.starts_with(['h']) {
        (2, 1)
    } else if rest.starts_with(['l', 'z', 'j', 't', 'L', 'q']) {
        (8, 1)
    } else {
        (4, 0)
    };
    c.bytes = bytes;
    i += n;
    c.kind = match *b.get(i)? {
        b'd' | b'i' => ConvKind::Signed,
        b'u' => ConvKind::Unsigned,
        b'x' => ConvKind::Hex { upper: false },
        b'X' => ConvKind::Hex { upper: true },
        b'o' => ConvKind::Octal,
        b'c' => ConvKind::Char,
        b's' => ConvKind::Str,
        b'p' => {
            // `%p` and its kernel extensions (`%pS`, `%pI4`, `%pI6c`...):
            // addresses only are followed, the rest is left unnamed.
            let ext: String = s[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            let (kind, used) = if ext.starts_with("I4") || ext.starts_with("i4") {
                (ConvKind::Ip4, 2)
            } else if ext.starts_with("I6c") {
                (ConvKind::Ip6 { compressed: true }, 3)
            } else if ext.starts_with("I6") || ext.starts_with("i6") {
                (ConvKind::Ip6 { compressed: false }, 2)
            } else {
                // Printed as a pointer: hex; its extension letters are
                // part of the conversion.
                c.alt = true;
                c.bytes = 8;
                (ConvKind::Hex { upper: false }, ext.len())
            };
            c.kind = kind;
            return Some((c, i + 1 + used));
        }
        _ => return None,
    };
    Some((c, i + 1))
}

impl Expr {
    /// The fields it reads.
    fn fields(&self, out: &mut Vec<String>) {
        match self {
            Expr::Field(f) => {
                if !out.contains(f) {
                    out.push(f.clone())
                }
            }
            Expr::Num(_) | Expr::Str(_) => {}
            Expr::Cast { expr, .. } | Expr::Unary(_, expr) => expr.fields(out),
            Expr::Binary(_, a, b) => {
                a.fields(out);
                b.fields(out);
            }
            Expr::Cond(a, b, c) => {
                a.fields(out);
                b.fields(out);
                c.fields(out);
            }
            Expr::Symbolic(v, _) | Expr::Flags(v, _, _) => v.fields(out),
        }
    }

    /// Whether it gives numbers names.
    fn names(&self) -> bool {
        match self {
            Expr::Symbolic(..) | Expr::Flags(..) => true,
            Expr::Num(_) | Expr::Str(_) | Expr::Field(_) => false,
            Expr::Cast { expr, .. } | Expr::Unary(_, expr) => expr.names(),
            Expr::Binary(_, a, b) => a.names() || b.names(),
            Expr::Cond(a, b, c) => a.names() || b.names() || c.names(),
        }
    }

    fn eval(&self, get: &dyn Fn(&str) -> Option<Val>) -> Option<Val> {
        let int = |e: &Expr| match e.eval(get)? {
            Val::Int(v) => Some(v),
            _ => None,
        };
        Some(match self {
            Expr::Num(n) => Val::Int(*n),
            Expr::Str(s) => Val::Str(s.clone()),
            Expr::Field(f) => get(f)?,
            Expr::Cast {
                bytes,
                signed,
                expr,
            } => match expr.eval(get)? {
                Val::Int(v) if *bytes > 0 && *bytes < 8 => {
                    let sh = 64 - 8 * bytes;
                    Val::Int(if *signed {
                        (((v << sh) as i64) >> sh) as u64
                    } else {
                        (v << sh) >> sh
                    })
                }
                v => v,
            },
            Expr::Unary(op, e) => {
                let v = int(e)?;
                Val::Int(match op {
                    '-' => v.wrapping_neg(),
                    '~' => !v,
                    '!' => (v == 0) as u64,
                    _ => v,
                })
            }
            Expr::Binary(op, a, b) => {
                let (x, y) = (int(a)?, int(b)?);
                let (sx, sy) = (x as i64, y as i64);
                Val::Int(match *op {
                    "*" => x.wrapping_mul(y),
                    "/" => sx.checked_div(sy)? as u64,
                    "%" => sx.checked_rem(sy)? as u64,
                    "+" => x.wrapping_add(y),
                    "-" => x.wrapping_sub(y),
                    "<<" => x.checked_shl(u32::try_from(y).ok()?).unwrap_or(0),
                    ">>" => x.checked_shr(u32::try_from(y).ok()?).unwrap_or(0),
                    "<" => (sx < sy) as u64,
                    ">" => (sx > sy) as u64,
                    "<=" => (sx <= sy) as u64,
                    ">=" => (sx >= sy) as u64,
                    "==" => (x == y) as u64,
                    "!=" => (x != y) as u64,
                    "&" => x & y,
                    "^" => x ^ y,
                    "|" => x | y,
                    "&&" => (x != 0 && y != 0) as u64,
                    "||" => (x != 0 || y != 0) as u64,
                    _ => return None,
                })
            }
            Expr::Cond(c, a, b) => {
                if int(c)? != 0 {
                    a.eval(get)?
                } else {
                    b.eval(get)?
                }
            }
            // kernel/trace/trace_output.c, trace_print_symbols_seq: the
            // name, or the value in hex.
            Expr::Symbolic(v, table) => {
                let v = int(v)?;
                Val::Str(match table.iter().find(|(k, _)| *k == v) {
                    Some((_, name)) => name.clone(),
                    None => format!("0x{v:x}"),
                })
            }
            // trace_print_flags_seq: each entry whose bits are all set, in
            // order, its bits taken away; what is left over in hex.
            Expr::Flags(v, delim, table) => {
                let mut flags = int(v)?;
                let mut s = String::new();
                for (mask, name) in table {
                    if flags == 0 {
                        break;
                    }
                    if flags & mask != *mask {
                        continue;
                    }
                    flags &= !mask;
                    if !s.is_empty() {
                        s.push_str(delim);
                    }
                    s.push_str(name);
                }
                if flags != 0 {
                    if !s.is_empty() {
                        s.push_str(delim);
                    }
                    let _ = write!(s, "0x{flags:x}");
                }
                Val::Str(s)
            }
        })
    }
}

impl FieldPrint {
    /// The tables of `__print_symbolic`/`__print_flags` applied to the
    /// field itself (not to a value computed from it).
    fn tables(&self) -> Vec<&[(u64, String)]> {
        fn walk<'a>(e: &'a Expr, field: &str, out: &mut Vec<&'a [(u64, String)]>) {
            let of_field = |v: &Expr| match v {
                Expr::Field(f) => f == field,
                Expr::Cast { expr, .. } => matches!(&**expr, Expr::Field(f) if f == field),
                _ => false,
            };
            match e {
                Expr::Symbolic(v, t) | Expr::Flags(v, _, t) if of_field(v) => out.push(t),
                Expr::Cond(_, b, c) => {
                    walk(b, field, out);
                    walk(c, field, out);
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        for p in &self.pieces {
            if let Piece::Conv(_, e) = p {
                walk(e, &self.field, &mut out);
            }
        }
        out
    }

    /// The number one of the field's names stands for (a filter's
    /// literal: `newstate==TCP_ESTABLISHED`).
    pub fn value_of(&self, name: &str) -> Option<u64> {
        self.tables()
            .into_iter()
            .flatten()
            .find(|(_, n)| n == name)
            .map(|(v, _)| *v)
    }

    /// The field's names, in table order.
    pub fn names(&self) -> Vec<String> {
        self.tables()
            .into_iter()
            .flatten()
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// The field's text as the kernel prints it; None where a value does
    /// not fit its conversion (the caller shows the number).
    pub fn eval(&self, get: &dyn Fn(&str) -> Option<Val>) -> Option<String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Conv(c, e) => format(&mut out, c, e.eval(get)?)?,
            }
        }
        Some(out)
    }
}

/// One conversion of one value, as the kernel's vsnprintf would.
fn format(out: &mut String, c: &Conv, v: Val) -> Option<()> {
    let body = match (c.kind, v) {
        (ConvKind::Str, Val::Str(s)) => match c.precision {
            Some(p) => s.chars().take(p).collect(),
            None => s,
        },
        (ConvKind::Ip4, Val::Bytes(b)) => {
            let a: [u8; 4] = b.get(..4)?.try_into().ok()?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        (ConvKind::Ip6 { compressed }, Val::Bytes(b)) => {
            let a: [u8; 16] = b.get(..16)?.try_into().ok()?;
            if compressed {
                std::net::Ipv6Addr::from(a).to_string()
            } else {
                a.chunks(2)
                    .map(|w| format!("{:02x}{:02x}", w[0], w[1]))
                    .collect::<Vec<_>>()
                    .join(":")
            }
        }
        (kind, Val::Int(v)) => {
            let sh = 64 - 8 * c.bytes;
            let u = (v << sh) >> sh;
            match kind {
                ConvKind::Signed => {
                    let i = ((v << sh) as i64) >> sh;
                    if c.plus && i >= 0 {
                        format!("+{i}")
                    } else {
                        i.to_string()
                    }
                }
                ConvKind::Unsigned => u.to_string(),
                ConvKind::Hex { upper } => {
                    let h = if upper {
                        format!("{u:X}")
                    } else {
                        format!("{u:x}")
                    };
                    if c.alt && u != 0 {
                        format!("0x{h}")
                    } else {
                        h
                    }
                }
                ConvKind::Octal => format!("{u:o}"),
                ConvKind::Char => char::from(u as u8).to_string(),
                _ => return None,
            }
        }
        _ => return None,
    };
    let pad = c.width.saturating_sub(body.chars().count());
    let numeric = !matches!(c.kind, ConvKind::Str | ConvKind::Char);
    if c.left {
        out.push_str(&body);
        out.extend(std::iter::repeat_n(' ', pad));
    } else if c.zero && numeric {
        // Zeros go after a sign or 0x.
        let split = if body.starts_with(['-', '+']) {
            1
        } else if body.starts_with("0x") {
            2
        } else {
            0
        };
        out.push_str(&body[..split]);
        out.extend(std::iter::repeat_n('0', pad));
        out.push_str(&body[split..]);
    } else {
        out.extend(std::iter::repeat_n(' ', pad));
        out.push_str(&body);
    }
    Some(())
}

/// The arguments after the format: split at the commas outside
/// parentheses, braces, brackets and strings.
fn split_args(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start, mut i) = (0i32, false, 0, 0);
    while i < b.len() {
        let c = b[i];
        if quote {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                quote = false;
            }
        } else {
            match c {
                b'"' => quote = true,
                b'(' | b'{' | b'[' => depth += 1,
                b')' | b'}' | b']' => depth -= 1,
                b',' if depth == 0 => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    if !s[start..].trim().is_empty() || !out.is_empty() {
        out.push(&s[start..]);
    }
    out
}

/// The argument list's tokens, read on demand.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
    /// Nesting so far: a format is a few levels deep, input that is not
    /// one must not exhaust the stack.
    depth: u32,
}

/// Deeper than any kernel's print format nests.
const MAX_DEPTH: u32 = 64;

/// Binary operators by precedence, loosest first (C's).
const LEVELS: &[&[&str]] = &[
    &["||"],
    &["&&"],
    &["|"],
    &["^"],
    &["&"],
    &["==", "!="],
    &["<=", ">=", "<", ">"],
    &["<<", ">>"],
    &["+", "-"],
    &["*", "/", "%"],
];

/// C type words a cast may be made of, with the bytes and sign they give.
fn cast_type(words: &str) -> Option<(u32, bool)> {
    let w: Vec<&str> = words
        .split_whitespace()
        .filter(|w| !matches!(*w, "const" | "volatile"))
        .collect();
    if w.is_empty() {
        return None;
    }
    if w.iter().any(|x| x.contains('*')) || w.last() == Some(&"*") {
        return Some((0, false));
    }
    let unsigned = w.contains(&"unsigned");
    let has = |x: &str| w.contains(&x);
    let known = |x: &str| {
        matches!(
            x,
            "unsigned" | "signed" | "char" | "short" | "int" | "long" | "_Bool" | "bool"
        )
    };
    if w.iter().all(|x| known(x)) {
        let bytes = if has("char") || has("_Bool") || has("bool") {
            1
        } else if has("short") {
            2
        } else if has("long") {
            8
        } else {
            4
        };
        return Some((bytes, !unsigned && !has("_Bool") && !has("bool")));
    }
    if w.len() == 1 {
        // A typedef: `u8`, `__s32`, `size_t`; a lone other word is an
        // expression in parentheses, not a cast.
        let t = w[0].trim_start_matches("__");
        if let Some(bits) = t.strip_prefix('u').or_else(|| t.strip_prefix('s')) {
            if let Ok(b @ (8 | 16 | 32 | 64)) = bits.parse::<u32>() {
                return Some((b / 8, t.starts_with('s')));
            }
        }
        return match t {
            "size_t" | "ulong" => Some((8, false)),
            "ssize_t" | "loff_t" => Some((8, true)),
            t if t.ends_with("_t") && t.starts_with(|c: char| c.is_ascii_alphabetic()) => {
                Some((0, false))
            }
            _ => None,
        };
    }
    if w.first()
        .is_some_and(|x| matches!(*x, "struct" | "union" | "enum"))
    {
        return Some((if w[0] == "enum" { 4 } else { 0 }, false));
    }
    None
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str) -> Lexer<'a> {
        Lexer {
            s,
            pos: 0,
            depth: 0,
        }
    }

    fn ws(&mut self) {
        while self.s[self.pos..].starts_with(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> &'a str {
        self.ws();
        &self.s[self.pos..]
    }

    fn eat(&mut self, t: &str) -> bool {
        if self.peek().starts_with(t) {
            self.pos += t.len();
            true
        } else {
            false
        }
    }

    /// An operator `t`, not the start of a longer one (`|` not `||`).
    fn eat_op(&mut self, t: &str) -> bool {
        let rest = self.peek();
        if !rest.starts_with(t) {
            return false;
        }
        let after = &rest[t.len()..];
        let longer = match t {
            "|" => after.starts_with(['|', '=']),
            "&" => after.starts_with(['&', '=']),
            "<" => after.starts_with(['<', '=']),
            ">" => after.starts_with(['>', '=']),
            "-" => after.starts_with(['>', '-', '=']),
            "+" => after.starts_with(['+', '=']),
            "!" => after.starts_with('='),
            _ => false,
        };
        if longer {
            return false;
        }
        self.pos += t.len();
        true
    }

    fn ident(&mut self) -> Option<&'a str> {
        let rest = self.peek();
        let n = rest
            .char_indices()
            .find(|(i, c)| {
                !(c.is_ascii_alphanumeric() || *c == '_') || (*i == 0 && c.is_ascii_digit())
            })
            .map_or(rest.len(), |(i, _)| i);
        if n == 0 {
            return None;
        }
        self.pos += n;
        Some(&rest[..n])
    }

    /// A C string literal (adjacent ones joined).
    fn string(&mut self) -> Option<String> {
        let mut out = String::new();
        let mut any = false;
        while self.peek().starts_with('"') {
            any = true;
            self.pos += 1;
            loop {
                let c = self.s[self.pos..].chars().next()?;
                self.pos += c.len_utf8();
                match c {
                    '"' => break,
                    '\\' => {
                        let e = self.s[self.pos..].chars().next()?;
                        self.pos += e.len_utf8();
                        out.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            other => other,
                        });
                    }
                    c => out.push(c),
                }
            }
        }
        any.then_some(out)
    }

    /// One argument expression; None for what this reader does not know.
    fn expr(&mut self) -> Option<Expr> {
        self.cond()
    }

    fn cond(&mut self) -> Option<Expr> {
        self.depth += 1;
        let e = if self.depth > MAX_DEPTH {
            None
        } else {
            self.cond_inner()
        };
        self.depth -= 1;
        e
    }

    fn cond_inner(&mut self) -> Option<Expr> {
        let c = self.binary(0)?;
        if self.eat("?") {
            let a = self.cond()?;
            if !self.eat(":") {
                return None;
            }
            let b = self.cond()?;
            return Some(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Some(c)
    }

    fn binary(&mut self, level: usize) -> Option<Expr> {
        let Some(ops) = LEVELS.get(level) else {
            return self.unary();
        };
        let mut left = self.binary(level + 1)?;
        'more: loop {
            for op in ops.iter() {
                if self.eat_op(op) {
                    let right = self.binary(level + 1)?;
                    left = Expr::Binary(op, Box::new(left), Box::new(right));
                    continue 'more;
                }
            }
            return Some(left);
        }
    }

    fn unary(&mut self) -> Option<Expr> {
        for op in ['-', '~', '!', '+'] {
            if self.eat_op(&op.to_string()) {
                self.depth += 1;
                let e = if self.depth > MAX_DEPTH {
                    None
                } else {
                    self.unary()
                };
                self.depth -= 1;
                return Some(Expr::Unary(op, Box::new(e?)));
            }
        }
        if self.peek().starts_with('(') {
            // A cast `(type)x`, or a parenthesised expression.
            let save = self.pos;
            self.pos += self.peek_offset() + 1;
            let rest = &self.s[self.pos..];
            if let Some(end) = rest.find(')') {
                let words = &rest[..end];
                let typeish = words
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ' || c == '*');
                if typeish && !words.trim().is_empty() {
                    if let Some((bytes, signed)) = cast_type(words) {
                        self.pos += end + 1;
                        self.depth += 1;
                        let e = if self.depth > MAX_DEPTH {
                            None
                        } else {
                            self.unary()
                        };
                        self.depth -= 1;
                        let expr = Box::new(e?);
                        return Some(Expr::Cast {
                            bytes,
                            signed,
                            expr,
                        });
                    }
                }
            }
            self.pos = save;
            self.eat("(");
            let e = self.cond()?;
            return self.eat(")").then_some(e);
        }
        self.primary()
    }

    /// Whitespace before the next token.
    fn peek_offset(&self) -> usize {
        self.s[self.pos..].len() - self.s[self.pos..].trim_start().len()
    }

    fn primary(&mut self) -> Option<Expr> {
        let rest = self.peek();
        if rest.starts_with('"') {
            return Some(Expr::Str(self.string()?));
        }
        if let Some(r) = rest.strip_prefix('\'') {
            let c = r.chars().next()?;
            if !r[c.len_utf8()..].starts_with('\'') {
                return None;
            }
            self.pos += 2 + c.len_utf8();
            return Some(Expr::Num(c as u64));
        }
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            let n = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            let lit = rest[..n].trim_end_matches(['u', 'U', 'l', 'L']);
            self.pos += n;
            let v = if let Some(h) = lit.strip_prefix("0x").or_else(|| lit.strip_prefix("0X")) {
                u64::from_str_radix(h, 16).ok()?
            } else if lit.len() > 1 && lit.starts_with('0') {
                u64::from_str_radix(&lit[1..], 8).ok()?
            } else {
                lit.parse().ok()?
            };
            return Some(Expr::Num(v));
        }
        let name = self.ident()?;
        if name == "REC" {
            if !self.eat("->") {
                return None;
            }
            return Some(Expr::Field(self.ident()?.to_string()));
        }
        if !self.eat("(") {
            return None;
        }
        match name {
            "__print_symbolic" | "__print_symbolic_u64" => {
                let v = self.cond()?;
                Some(Expr::Symbolic(Box::new(v), self.table()?))
            }
            "__print_flags" | "__print_flags_u64" => {
                let v = self.cond()?;
                if !self.eat(",") {
                    return None;
                }
                let delim = self.string()?;
                Some(Expr::Flags(Box::new(v), delim, self.table()?))
            }
            _ => None,
        }
    }

    /// `, { v, "name" }, ... )`
    fn table(&mut self) -> Option<Vec<(u64, String)>> {
        let mut t = Vec::new();
        while self.eat(",") {
            if !self.eat("{") {
                return None;
            }
            let Expr::Num(v) = self.const_expr()? else {
                return None;
            };
            if !self.eat(",") {
                return None;
            }
            // A `{ 0, NULL }` entry ends some kernels' tables.
            let name = match self.string() {
                Some(n) => Some(n),
                None => match self.const_expr()? {
                    Expr::Num(0) => None,
                    _ => return None,
                },
            };
            if !self.eat("}") {
                return None;
            }
            if let Some(name) = name {
                t.push((v, name));
            }
        }
        self.eat(")").then_some(t)
    }

    /// A table's value: a constant expression (`1UL << 3`, `-1`).
    fn const_expr(&mut self) -> Option<Expr> {
        let e = self.cond()?;
        match e.eval(&|_| None)? {
            Val::Int(v) => Some(Expr::Num(v)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's (Linux 6.18) `sock:inet_sock_set_state`.
    const INET: &str = r#""family=%s protocol=%s sport=%hu dport=%hu saddr=%pI4 daddr=%pI4 saddrv6=%pI6c daddrv6=%pI6c oldstate=%s newstate=%s", __print_symbolic(REC->family, { 2, "AF_INET" }, { 10, "AF_INET6" }), __print_symbolic(REC->protocol, { 6, "IPPROTO_TCP" }, { 132, "IPPROTO_SCTP" }, { 262, "IPPROTO_MPTCP" }), REC->sport, REC->dport, REC->saddr, REC->daddr, REC->saddr_v6, REC->daddr_v6, __print_symbolic(REC->oldstate, { 1, "TCP_ESTABLISHED" }, { 2, "TCP_SYN_SENT" }, { 3, "TCP_SYN_RECV" }, { 4, "TCP_FIN_WAIT1" }, { 5, "TCP_FIN_WAIT2" }, { 6, "TCP_TIME_WAIT" }, { 7, "TCP_CLOSE" }, { 8, "TCP_CLOSE_WAIT" }, { 9, "TCP_LAST_ACK" }, { 10, "TCP_LISTEN" }, { 11, "TCP_CLOSING" }, { 12, "TCP_NEW_SYN_RECV" }), __print_symbolic(REC->newstate, { 1, "TCP_ESTABLISHED" }, { 2, "TCP_SYN_SENT" }, { 3, "TCP_SYN_RECV" }, { 4, "TCP_FIN_WAIT1" }, { 5, "TCP_FIN_WAIT2" }, { 6, "TCP_TIME_WAIT" }, { 7, "TCP_CLOSE" }, { 8, "TCP_CLOSE_WAIT" }, { 9, "TCP_LAST_ACK" }, { 10, "TCP_LISTEN" }, { 11, "TCP_CLOSING" }, { 12, "TCP_NEW_SYN_RECV" })"#;

    /// This machine's `sched:sched_switch`: `prev_state=%s%s`, a `?:`
    /// around `__print_flags` and a second argument for the `+`.
    const SWITCH: &str = r#""prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s next_pid=%d next_prio=%d", REC->prev_comm, REC->prev_pid, REC->prev_prio, (REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1)) ? __print_flags(REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1), "|", { 0x00000001, "S" }, { 0x00000002, "D" }, { 0x00000004, "T" }, { 0x00000008, "t" }, { 0x00000010, "X" }, { 0x00000020, "Z" }, { 0x00000040, "P" }, { 0x00000080, "I" }) : "R", REC->prev_state & (((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) ? "+" : "", REC->next_comm, REC->next_pid, REC->next_prio"#;

    fn one(fmt: &str, field: &str, v: Val) -> Option<String> {
        let all = parse(fmt);
        let p = all.iter().find(|p| p.field == field)?;
        p.eval(&|f| (f == field).then(|| v.clone()))
    }

    #[test]
    fn inet_sock_set_state() {
        let fields: Vec<String> = parse(INET).into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "family", "protocol", "saddr", "daddr", "saddr_v6", "daddr_v6", "oldstate",
                "newstate"
            ]
        );
        assert_eq!(
            one(INET, "newstate", Val::Int(1)).unwrap(),
            "TCP_ESTABLISHED"
        );
        assert_eq!(one(INET, "oldstate", Val::Int(7)).unwrap(), "TCP_CLOSE");
        // No match: the kernel prints the value in hex.
        assert_eq!(one(INET, "newstate", Val::Int(13)).unwrap(), "0xd");
        assert_eq!(one(INET, "family", Val::Int(10)).unwrap(), "AF_INET6");
        assert_eq!(
            one(INET, "saddr", Val::Bytes(vec![127, 0, 0, 1])).unwrap(),
            "127.0.0.1"
        );
        let mut six = vec![0u8; 16];
        six[15] = 1;
        assert_eq!(one(INET, "daddr_v6", Val::Bytes(six)).unwrap(), "::1");
        // A string where a number is due: unnamed, never wrong.
        assert_eq!(one(INET, "newstate", Val::Str("x".into())), None);
    }

    #[test]
    fn sched_switch_prev_state() {
        let s = |v| one(SWITCH, "prev_state", Val::Int(v)).unwrap();
        assert_eq!(s(0), "R");
        assert_eq!(s(1), "S");
        assert_eq!(s(2), "D");
        assert_eq!(s(0x3), "S|D");
        assert_eq!(s(0x80), "I");
        // TASK_REPORT_MAX (0x100): preempted, `R+`.
        assert_eq!(s(0x100), "R+");
        assert!(parse(SWITCH).iter().all(|p| p.field == "prev_state"));
    }

    #[test]
    fn printf_conversions() {
        let f = |fmt: &str, v: u64| {
            let line = format!(
                "\"x={fmt}\", REC->x == 12345 ? __print_symbolic(REC->x, {{ 1, \"n\" }}) : REC->x"
            );
            one(&line, "x", Val::Int(v))
        };
        assert_eq!(f("%d", 0xffff_ffff).unwrap(), "-1");
        assert_eq!(f("%u", 0xffff_ffff).unwrap(), "4294967295");
        assert_eq!(f("%08lx", 0xbeef).unwrap(), "0000beef");
        assert_eq!(f("%#x", 255).unwrap(), "0xff");
        assert_eq!(f("%-4d", 7).unwrap(), "7   ");
        assert_eq!(f("%hhu", 0x1ff).unwrap(), "255");
        assert_eq!(f("%lld", u64::MAX).unwrap(), "-1");
    }

    #[test]
    fn casts_flags_and_leftovers() {
        let fmt = r#""gfp=%s", __print_flags((unsigned long)REC->gfp, "|", { (unsigned long)0x400, "__GFP_A" }, { 1UL << 1, "__GFP_B" }, { 0x3, "BOTH" })"#;
        let g = |v| one(fmt, "gfp", Val::Int(v)).unwrap();
        assert_eq!(g(0x402), "__GFP_A|__GFP_B");
        assert_eq!(g(0x3), "__GFP_B|0x1");
        assert_eq!(g(0x10), "0x10");
        assert_eq!(g(0), "");
        // A cast to a narrower type cuts the value (and sign-extends it).
        let fmt = r#""s=%s", __print_symbolic((signed char)REC->s, { -1, "MINUS" })"#;
        assert_eq!(one(fmt, "s", Val::Int(0xff)).unwrap(), "MINUS");
    }

    /// A format file's print fmt line.
    fn print_fmt(file: &str) -> &str {
        file.lines()
            .find_map(|l| l.strip_prefix("print fmt: "))
            .unwrap()
    }

    /// This machine's (6.18) `kmem:kmalloc`: `__print_flags` inside `?:`,
    /// its table made of casts and shifts.
    #[test]
    fn kmalloc_gfp_flags() {
        let fmt = print_fmt(include_str!("testdata/kmalloc-6.18.format"));
        let t = flags_table(fmt, "gfp_flags").unwrap();
        let get = |n: &str| t.iter().find(|(_, m)| m == n).unwrap().0;
        // include/linux/gfp_types.h: __GFP_IO bit 6, __GFP_FS 7,
        // __GFP_DIRECT_RECLAIM 10, __GFP_KSWAPD_RECLAIM 11, __GFP_ZERO 8.
        assert_eq!(get("__GFP_ZERO"), 0x100);
        assert_eq!(get("GFP_KERNEL"), 0xcc0);
        assert_eq!(t[0].1, "GFP_TRANSHUGE");
        let g = |v| one(fmt, "gfp_flags", Val::Int(v)).unwrap();
        assert_eq!(g(0xdc0), "GFP_KERNEL|__GFP_ZERO");
        assert_eq!(g(0), "none");
    }

    #[test]
    fn real_formats_parse_whole() {
        let inet = print_fmt(include_str!("testdata/inet_sock_set_state-6.18.format"));
        assert_eq!(parse(inet), parse(INET));
        let switch = print_fmt(include_str!("testdata/sched_switch-6.18.format"));
        assert_eq!(parse(switch), parse(SWITCH));
    }

    #[test]
    fn deep_input_ends() {
        for deep in [
            "(".repeat(100_000),
            "-".repeat(100_000),
            "(int)".repeat(100_000),
        ] {
            let line = format!("\"a=%s\", __print_symbolic({deep}REC->a, {{ 1, \"x\" }})");
            assert!(parse(&line).is_empty());
        }
    }

    #[test]
    fn what_is_not_followed_is_left_alone() {
        // Two fields in one piece, an unknown function, `%*d`.
        for fmt in [
            r#""a=%s", __print_symbolic(REC->a + REC->b, { 1, "x" })"#,
            r#""a=%s", __get_str(a)"#,
            r#""a=%*d", 4, __print_symbolic(REC->a, { 1, "x" })"#,
            r#""a=%s""#,
            r#"garbage"#,
            "",
        ] {
            assert!(parse(fmt).is_empty(), "{fmt}");
        }
    }
}

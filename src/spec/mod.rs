//! Probe spec text → AST with byte spans into the original text.
//!
//! `TYPE PLACE [NAME=EXPR]... [f:FILTER]`. The parser knows nothing of
//! kernels or types: `%0~(struct task_struct)->comm` is only a base, a cast
//! and a list of steps here; whether `comm` exists is the compiler's job.
//! Every node keeps the span of the text it came from, so any later stage
//! can point at the offending part.

pub mod filter;

use std::fmt;

pub use crate::diag::{Diagnostic, Span, Spanned};
/// `struct` or `union`: the type model's own kind, so a cast names what
/// the types hold.
pub use crate::types::CompositeKind;

/// One probe as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The whole spec text; every span points into it.
    pub text: String,
    pub kind: Spanned<ProbeKind>,
    pub place: Spanned<Place>,
    pub args: Vec<Arg>,
    /// `count()`, `sum(v)`, `hist(v)`, `lhist(v,STEP)`, each with optional
    /// `[key,...]`: the events are aggregated instead of printed.
    pub aggs: Vec<Aggregation>,
    pub filter: Option<Filter>,
}

/// `f:FILTER`: the text as written (for the kernel) and its parse (for
/// the checks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub text: Spanned<String>,
    pub expr: filter::Expr,
}

/// `FUNC(ARGS)[KEYS]`: one aggregation of the probe's events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aggregation {
    pub func: Spanned<AggFunc>,
    /// The value summed or bucketed: a name the probe defines.
    pub value: Option<Spanned<String>>,
    /// `lhist`'s bucket width.
    pub step: Option<Spanned<u64>>,
    /// Key names: the probe's named values, `comm`, `pid`, `cpu`, `stack`.
    pub keys: Vec<Spanned<String>>,
    /// The whole `FUNC(...)[...]`.
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    Hist,
    Lhist,
    /// The largest value, with the other values of its event.
    Max,
}

impl AggFunc {
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Hist => "hist",
            AggFunc::Lhist => "lhist",
            AggFunc::Max => "max",
        }
    }
}

const AGG_HELP: &str = "aggregations are `count()`, `sum(V)`, `hist(V)` (log2 buckets), `lhist(V,STEP)` (linear buckets) and `max(V)` (the largest, with its event's values), each with optional keys: `hist(n)[comm,pid]`";

/// The name of the latency value of an `l` probe.
pub const LATENCY_NAME: &str = "lat";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// `p`: function entry (or an instruction inside, with `+OFFSET`).
    Entry,
    /// `r`: function return.
    Return,
    /// `t`: an existing tracepoint.
    Tracepoint,
    /// `l`: a function's latency, entry to return (an entry and a return
    /// probe, paired per thread).
    Latency,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// `SYMBOL`, `SYMBOL+OFFSET`, `MODULE:SYMBOL` (the kernel's syntax).
    Kernel {
        /// As the kernel takes it: `MODULE:NAME` or `NAME`.
        symbol: String,
        offset: u64,
        /// Where each part of it was written.
        spans: KernelSpans,
    },
    /// `/path/bin:SYMBOL[+OFFSET]` or `/path/bin:0xOFFSET`.
    User { path: String, loc: UserLoc },
    /// `SYSTEM:EVENT`.
    Tracepoint { system: String, event: String },
}

/// The parts of a kernel place, `[MODULE:]NAME[+OFFSET]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KernelSpans {
    pub module: Option<Span>,
    pub name: Span,
    /// `+OFFSET`, with its `+`.
    pub offset: Option<Span>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserLoc {
    Symbol {
        name: String,
        offset: u64,
    },
    /// A file offset, taken as given.
    Offset(u64),
}

/// `NAME=EXPR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    pub name: Spanned<String>,
    pub expr: Expr,
    /// The whole `NAME=EXPR`.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// A fetcharg for the kernel as written: `%r12`, `$retval`, `+8(%si):u32`.
    Raw(Spanned<String>),
    /// An expression walking C types.
    Typed(TypedExpr),
    /// `since(fN)` or `since(fN, KEY)`: the time since the last event of
    /// probe N of the same thread (or with the same value of KEY, a name
    /// both probes define).
    Since(Since),
}

/// `since(fN[, KEY])`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Since {
    /// The index of the probe whose event starts the interval.
    pub start: Spanned<usize>,
    pub key: Option<Spanned<String>>,
    pub span: Span,
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::Raw(r) => r.span,
            Expr::Typed(t) => t.span,
            Expr::Since(s) => s.span,
        }
    }
}

/// `[*]%N[F][~CAST]STEP...` or `[*]param STEP...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypedExpr {
    /// A leading `*`: what the pointer the walk ends on points at (a
    /// whole struct, shown member by member).
    pub deref: Option<Span>,
    pub base: Spanned<Base>,
    pub format: Option<Spanned<Format>>,
    pub cast: Option<Spanned<Cast>>,
    pub steps: Vec<Spanned<Step>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// `%N`: the function's argument N (0-based).
    Arg(u32),
    /// A parameter by its name in the function's prototype (typed by it).
    Param(String),
    /// `$retval` with nothing after it but a member walk: typed by the
    /// function's return type. (`$retval:u32` stays a raw fetcharg.)
    Retval,
}

/// The display/fetch letter after `%N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Signed,
    Unsigned,
    Hex,
}

impl Format {
    /// The fetch type letter: `s`, `u`, `x`.
    pub fn letter(self) -> char {
        match self {
            Format::Signed => 's',
            Format::Unsigned => 'u',
            Format::Hex => 'x',
        }
    }
}

/// `(struct T)`, or the packet form `$(struct H)l3`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cast {
    pub kind: CompositeKind,
    pub name: Spanned<String>,
    /// Set for `$(...)`: the argument is a `struct sk_buff *` and the
    /// packet at `skb->data` is read as this header.
    pub packet: Option<Packet>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Where `skb->data` points at the probe; None = the default (l3).
    pub layer: Option<Spanned<Layer>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    L2,
    L3,
    L4,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::L2 => "l2",
            Layer::L3 => "l3",
            Layer::L4 => "l4",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `->m`: through a pointer.
    Arrow(String),
    /// `.m`: inside the same object.
    Dot(String),
    /// `[i]`: an array element.
    Index(u64),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Arrow(m) => write!(f, "->{m}"),
            Step::Dot(m) => write!(f, ".{m}"),
            Step::Index(i) => write!(f, "[{i}]"),
        }
    }
}

fn err<T>(span: Span, msg: impl Into<String>) -> Result<T, Diagnostic> {
    Err(Diagnostic::error(span, msg))
}

fn err_help<T>(
    span: Span,
    msg: impl Into<String>,
    help: impl Into<String>,
) -> Result<T, Diagnostic> {
    Err(Diagnostic::error(span, msg).with_help(help))
}

/// Parse one probe spec.
pub fn parse_probe(text: &str) -> Result<Probe, Diagnostic> {
    // A control character (a NUL or an escape from a probe file) would
    // reach the kernel, which ends its line at a NUL: refused where it is.
    if let Some((i, c)) = text
        .char_indices()
        .find(|&(_, c)| c.is_control() && c != '\t')
    {
        return err_help(
            Span::new(i, i + c.len_utf8()),
            format!("a control character ({:#04x}) in the probe", c as u32),
            "probes are text; remove it (a probe file is one probe per line)",
        );
    }
    Parser { s: text, pos: 0 }.probe()
}

/// What the kernel reads differently than written in a definition's
/// text (a raw fetcharg, a binary's path): `#` starts a comment there
/// (everything after it on the line is dropped); a raw fetcharg's
/// parentheses must pair up.
fn kernel_text(text: &str, at: usize, what: &str, parens: bool) -> Result<(), Diagnostic> {
    if let Some(i) = text.find('#') {
        return err_help(
            Span::new(at + i, at + i + 1),
            format!("a `#` in {what}: the kernel reads the rest of the line as a comment"),
            "everything after it, the other values of the probe too, would be lost",
        );
    }
    if !parens {
        return Ok(());
    }
    let mut open = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            '(' => open.push(i),
            ')' if open.pop().is_none() => {
                return err(Span::new(at + i, at + i + 1), "`)` without a matching `(`")
            }
            _ => {}
        }
    }
    match open.last() {
        Some(&i) => err(Span::new(at + i, at + i + 1), "`(` is never closed"),
        None => Ok(()),
    }
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn eat(&mut self, lit: &str) -> bool {
        if self.rest().starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }
    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
        self.pos > start
    }
    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }
    /// The span of the next character (or an empty span at the end).
    fn here(&self) -> Span {
        let len = self.peek().map_or(0, char::len_utf8);
        Span::new(self.pos, self.pos + len)
    }
    /// Consume up to the next whitespace.
    fn word(&mut self) -> (&'a str, Span) {
        let start = self.pos;
        while self.peek().is_some_and(|c| !c.is_whitespace()) {
            self.bump();
        }
        (&self.s[start..self.pos], Span::new(start, self.pos))
    }
    fn ident(&mut self) -> Option<(String, Span)> {
        let start = self.pos;
        if !self.peek().is_some_and(is_ident_start) {
            return None;
        }
        while self.peek().is_some_and(is_ident) {
            self.bump();
        }
        Some((
            self.s[start..self.pos].to_string(),
            Span::new(start, self.pos),
        ))
    }

    fn probe(mut self) -> Result<Probe, Diagnostic> {
        self.skip_ws();
        if self.at_end() {
            return err_help(
                self.here(),
                "empty probe",
                "a probe is `TYPE PLACE [NAME=EXPR]... [f:FILTER]`, e.g. `p do_exit`",
            );
        }
        let (ty, ty_span) = self.word();
        let kind = match ty {
            "p" => ProbeKind::Entry,
            "r" => ProbeKind::Return,
            "t" => ProbeKind::Tracepoint,
            "l" => ProbeKind::Latency,
            _ => {
                return err_help(
                    ty_span,
                    format!("unknown probe type `{ty}`"),
                    "the type is `p` (entry), `r` (return), `t` (tracepoint) or `l` (latency, entry to return)",
                )
            }
        };
        self.skip_ws();
        if self.at_end() {
            let what = match kind {
                ProbeKind::Tracepoint => "SYSTEM:EVENT",
                _ => "a function or /path/binary:SYMBOL",
            };
            return err(
                self.here(),
                format!("missing place after `{ty}`: expected {what}"),
            );
        }
        let place = self.place(kind)?;
        let mut args: Vec<Arg> = Vec::new();
        let mut aggs: Vec<Aggregation> = Vec::new();
        let mut filter = None;
        loop {
            let had_ws = self.skip_ws();
            if self.at_end() {
                break;
            }
            if !had_ws {
                return err(self.here(), format!("unexpected `{}`", self.here_text()));
            }
            if self.rest().starts_with("f:") {
                let start = self.pos;
                self.pos += 2;
                let body = self.rest();
                let lead = body.len() - body.trim_start().len();
                let text = body.trim();
                if text.is_empty() {
                    return err(Span::new(start, self.s.len()), "empty filter after `f:`");
                }
                let fs = self.pos + lead;
                filter = Some(Filter {
                    text: Spanned {
                        node: text.to_string(),
                        span: Span::new(fs, fs + text.len()),
                    },
                    expr: filter::parse(text, fs)?,
                });
                self.pos = self.s.len();
                break;
            }
            if self.at_aggregation() {
                aggs.push(self.aggregation()?);
                continue;
            }
            if !aggs.is_empty() {
                return err_help(
                    self.here(),
                    "named values come before the aggregations",
                    "write `TYPE PLACE NAME=EXPR... AGGREGATION... f:FILTER`",
                );
            }
            let arg = self.arg()?;
            if args.iter().any(|a| a.name.node == arg.name.node) {
                return err(
                    arg.name.span,
                    format!("`{}` is named twice in this probe", arg.name.node),
                );
            }
            args.push(arg);
        }
        Ok(Probe {
            text: self.s.to_string(),
            kind: Spanned {
                node: kind,
                span: ty_span,
            },
            place,
            args,
            aggs,
            filter,
        })
    }

    /// `IDENT(` starts an aggregation (`NAME=` a named value).
    fn at_aggregation(&self) -> bool {
        let r = self.rest();
        let n = r.chars().take_while(|&c| is_ident(c)).count();
        n > 0 && r.chars().next().is_some_and(is_ident_start) && r[n..].starts_with('(')
    }

    /// `count()`, `sum(v)`, `hist(v)`, `lhist(v, STEP)`, then `[k, ...]`.
    fn aggregation(&mut self) -> Result<Aggregation, Diagnostic> {
        let start = self.pos;
        let (name, fspan) = self.ident().unwrap_or_default();
        let func = match name.as_str() {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "hist" => AggFunc::Hist,
            "lhist" => AggFunc::Lhist,
            "max" => AggFunc::Max,
            _ => return err_help(fspan, format!("unknown aggregation `{name}`"), AGG_HELP),
        };
        self.eat("(");
        self.skip_ws();
        let mut value = None;
        let mut step = None;
        if func != AggFunc::Count {
            match self.ident() {
                Some((v, sp)) => value = Some(Spanned { node: v, span: sp }),
                None => {
                    return err_help(
                        self.here(),
                        format!("`{name}` needs a value: a name the probe defines"),
                        AGG_HELP,
                    )
                }
            }
            self.skip_ws();
        }
        if func == AggFunc::Lhist {
            if !self.eat(",") {
                return err_help(
                    self.here(),
                    "`lhist` needs a bucket width: `lhist(V, STEP)`",
                    AGG_HELP,
                );
            }
            self.skip_ws();
            let ns = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                self.bump();
            }
            let sp = Span::new(ns, self.pos);
            let n = number(&self.s[ns..self.pos], sp)?;
            if n == 0 {
                return err(sp, "a bucket width must be at least 1");
            }
            step = Some(Spanned { node: n, span: sp });
            self.skip_ws();
        }
        if !self.eat(")") {
            let what = if func == AggFunc::Count {
                "`count()` takes no value"
            } else {
                "expected `)`"
            };
            return err_help(self.here(), what, AGG_HELP);
        }
        let mut keys = Vec::new();
        if self.eat("[") {
            loop {
                self.skip_ws();
                match self.ident() {
                    Some((k, sp)) => {
                        if keys.iter().any(|q: &Spanned<String>| q.node == k) {
                            return err(sp, format!("`{k}` is a key twice"));
                        }
                        keys.push(Spanned { node: k, span: sp });
                    }
                    None => {
                        return err_help(
                            self.here(),
                            "expected a key name",
                            "keys are the probe's named values, `comm`, `pid`, `cpu` or `stack`",
                        )
                    }
                }
                self.skip_ws();
                if self.eat(",") {
                    continue;
                }
                if self.eat("]") {
                    break;
                }
                return err(self.here(), "expected `,` or `]` in the keys");
            }
        }
        if !self.at_end() && !self.peek().is_some_and(char::is_whitespace) {
            return err(
                self.here(),
                format!("unexpected `{}` after the aggregation", self.here_text()),
            );
        }
        Ok(Aggregation {
            func: Spanned {
                node: func,
                span: fspan,
            },
            value,
            step,
            keys,
            span: Span::new(start, self.pos),
        })
    }

    fn here_text(&self) -> &'a str {
        let sp = self.here();
        &self.s[sp.start..sp.end]
    }

    fn place(&mut self, kind: ProbeKind) -> Result<Spanned<Place>, Diagnostic> {
        let (w, span) = self.word();
        let place = match kind {
            ProbeKind::Tracepoint => {
                let Some((sys, ev)) = w.split_once(':') else {
                    return err_help(
                        span,
                        format!("`{w}` is not a tracepoint"),
                        "a tracepoint is `SYSTEM:EVENT`, e.g. `sched:sched_switch`",
                    );
                };
                let ok = |s: &str| !s.is_empty() && s.chars().all(is_ident);
                if !ok(sys) || !ok(ev) {
                    return err_help(
                        span,
                        format!("`{w}` is not a tracepoint name"),
                        "a tracepoint is `SYSTEM:EVENT`, e.g. `sched:sched_switch`",
                    );
                }
                Place::Tracepoint {
                    system: sys.to_string(),
                    event: ev.to_string(),
                }
            }
            // A path (`/bin/x:f`, `./prog:f`): no kernel symbol has a `/`.
            _ if w.contains('/') => {
                let Some(colon) = w.rfind(':') else {
                    return err_help(
                        span,
                        format!("`{w}` names a binary but no place in it"),
                        "a uprobe is `/path/to/binary:SYMBOL` or `/path/to/binary:0xOFFSET`",
                    );
                };
                let (path, loc) = (&w[..colon], &w[colon + 1..]);
                kernel_text(path, span.start, "the binary's path", false)?;
                let loc_span = Span::new(span.start + colon + 1, span.end);
                if path.len() < 2 {
                    return err(
                        Span::new(span.start, span.start + colon),
                        "empty binary path",
                    );
                }
                let loc = if loc.starts_with("0x") || loc.starts_with("0X") {
                    UserLoc::Offset(number(loc, loc_span)?)
                } else {
                    let (name, offset) = symbol_offset(loc, loc_span)?;
                    UserLoc::Symbol { name, offset }
                };
                if matches!(kind, ProbeKind::Return | ProbeKind::Latency) {
                    if let UserLoc::Symbol { offset: 1.., .. } = loc {
                        return err(loc_span, "a return probe cannot have an offset");
                    }
                }
                Place::User {
                    path: path.to_string(),
                    loc,
                }
            }
            _ => {
                // The kernel's own `MODULE:SYMBOL` form passes through.
                let (module, rest, rs) = match w.split_once(':') {
                    Some((m, rest)) if !m.is_empty() && m.chars().all(is_ident) => (
                        Some((m, Span::new(span.start, span.start + m.len()))),
                        rest,
                        Span::new(span.start + m.len() + 1, span.end),
                    ),
                    _ => (None, w, span),
                };
                let (name, offset) = symbol_offset(rest, rs)?;
                if matches!(kind, ProbeKind::Return | ProbeKind::Latency) && offset != 0 {
                    return err(span, "a return probe cannot have an offset");
                }
                let name_span = Span::new(rs.start, rs.start + name.len());
                let spans = KernelSpans {
                    module: module.map(|m| m.1),
                    name: name_span,
                    offset: (name_span.end < span.end).then(|| Span::new(name_span.end, span.end)),
                };
                let symbol = match module {
                    Some((m, _)) => format!("{m}:{name}"),
                    None => name,
                };
                Place::Kernel {
                    symbol,
                    offset,
                    spans,
                }
            }
        };
        Ok(Spanned { node: place, span })
    }

    fn arg(&mut self) -> Result<Arg, Diagnostic> {
        let start = self.pos;
        let Some((name, name_span)) = self.ident() else {
            let (w, span) = self.word();
            return err_help(
                span,
                format!("expected NAME=EXPR, found `{w}`"),
                "arguments are `NAME=EXPR` (e.g. `comm=%0~(struct task_struct)->comm`); a filter starts with `f:`",
            );
        };
        if !self.eat("=") {
            if self.at_end() || self.peek().is_some_and(char::is_whitespace) {
                return err_help(
                    name_span,
                    format!("`{name}` has no value"),
                    format!("write `{name}=EXPR`"),
                );
            }
            return err(
                self.here(),
                format!(
                    "expected `=` after the name `{name}`, found `{}`",
                    self.here_text()
                ),
            );
        }
        if self.at_end() || self.peek().is_some_and(char::is_whitespace) {
            return err(self.here(), format!("missing expression after `{name}=`"));
        }
        let expr = self.expr()?;
        Ok(Arg {
            name: Spanned {
                node: name,
                span: name_span,
            },
            span: Span::new(start, self.pos),
            expr,
        })
    }

    fn expr(&mut self) -> Result<Expr, Diagnostic> {
        let start = self.pos;
        if self.rest().starts_with("since(") {
            return self.since();
        }
        // `*EXPR`: C's dereference (no fetcharg starts with `*`).
        let deref = match self.rest().strip_prefix('*') {
            Some(after) if after.starts_with(['%', '$']) || after.starts_with(is_ident_start) => {
                self.pos += 1;
                Some(Span::new(start, start + 1))
            }
            _ => None,
        };
        let rest = self.rest();
        let mut chars = rest.chars();
        let c0 = chars.next();
        let c1 = chars.next();
        let retval = rest.strip_prefix("$retval").is_some_and(|after| {
            after.is_empty()
                || after.starts_with(char::is_whitespace)
                || after.starts_with("->")
                || after.starts_with('.')
                || after.starts_with('~')
        });
        let typed = match (c0, c1) {
            _ if retval => true,
            (Some('%'), Some(d)) if d.is_ascii_digit() => true,
            (Some(c), _) if is_ident_start(c) => true,
            _ => false,
        };
        if !typed {
            if let Some(d) = deref {
                return err_help(
                    d,
                    "`*` dereferences a typed expression",
                    "write `*%N~(struct T)`, `*param` or `*param->member`",
                );
            }
            let (w, span) = self.word();
            kernel_text(w, span.start, "a fetcharg", true)?;
            return Ok(Expr::Raw(Spanned {
                node: w.to_string(),
                span,
            }));
        }
        let base = if retval {
            self.pos += "$retval".len();
            Spanned {
                node: Base::Retval,
                span: Span::new(start, self.pos),
            }
        } else if self.eat("%") {
            let ds = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
            let span = Span::new(start, self.pos);
            let n: u32 = self.s[ds..self.pos].parse().map_err(|_| {
                Diagnostic::error(
                    span,
                    format!("argument number `{}` is too large", &self.s[ds..self.pos]),
                )
            })?;
            Spanned {
                node: Base::Arg(n),
                span,
            }
        } else {
            let (name, span) = self.ident().unwrap_or_default();
            Spanned {
                node: Base::Param(name),
                span,
            }
        };
        let mut format = None;
        let mut cast = None;
        if matches!(base.node, Base::Retval) && self.eat("~") {
            cast = Some(self.cast()?);
        }
        if matches!(base.node, Base::Arg(_)) {
            let f = match self.peek() {
                Some('S') => Some(Format::Signed),
                Some('U') => Some(Format::Unsigned),
                Some('X') => Some(Format::Hex),
                _ => None,
            };
            if let Some(f) = f {
                format = Some(Spanned {
                    node: f,
                    span: self.here(),
                });
                self.bump();
            }
            if self.eat("~") {
                cast = Some(self.cast()?);
            }
        }
        let mut steps = Vec::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                break;
            }
            let ss = self.pos;
            let step = if self.eat("->") {
                Step::Arrow(self.member_name("->")?)
            } else if self.eat(".") {
                Step::Dot(self.member_name(".")?)
            } else if self.eat("[") {
                self.skip_ws();
                let ns = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                    self.bump();
                }
                let ntext = &self.s[ns..self.pos];
                let nspan = Span::new(ns, self.pos);
                if ntext.is_empty() {
                    return err(self.here(), "expected an index inside `[...]`");
                }
                let n = number(ntext, nspan)?;
                self.skip_ws();
                if !self.eat("]") {
                    return err(self.here(), "expected `]` to close the index");
                }
                Step::Index(n)
            } else {
                let what = match &base.node {
                    Base::Arg(_) if cast.is_none() && steps.is_empty() => {
                        " (expected a format letter S/U/X, `~(struct T)`, `->member`, `.member` or `[index]`)"
                    }
                    _ => " (expected `->member`, `.member` or `[index]`)",
                };
                return err(
                    self.here(),
                    format!("unexpected `{}` in expression{what}", self.here_text()),
                );
            };
            steps.push(Spanned {
                node: step,
                span: Span::new(ss, self.pos),
            });
        }
        Ok(Expr::Typed(TypedExpr {
            deref,
            base,
            format,
            cast,
            steps,
            span: Span::new(start, self.pos),
        }))
    }

    /// `since(fN)` or `since(fN, KEY)`.
    fn since(&mut self) -> Result<Expr, Diagnostic> {
        const HELP: &str = "`NAME=since(fN)` is the time since probe N's last event of the same thread; `since(fN, KEY)` pairs by a value KEY both probes name";
        let start = self.pos;
        self.pos += "since(".len();
        self.skip_ws();
        let ps = self.pos;
        if !self.eat("f") {
            return err_help(
                self.here(),
                "expected a probe name `fN` in `since(...)`",
                HELP,
            );
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let pspan = Span::new(ps, self.pos);
        let Ok(n) = self.s[ps + 1..self.pos].parse::<usize>() else {
            return err_help(pspan, "expected a probe name `fN` in `since(...)`", HELP);
        };
        self.skip_ws();
        let mut key = None;
        if self.eat(",") {
            self.skip_ws();
            match self.ident() {
                Some((k, sp)) => key = Some(Spanned { node: k, span: sp }),
                None => return err_help(self.here(), "expected a key name", HELP),
            }
            self.skip_ws();
        }
        if !self.eat(")") {
            return err_help(self.here(), "expected `)` to close `since(...)`", HELP);
        }
        if !self.at_end() && !self.peek().is_some_and(char::is_whitespace) {
            return err(
                self.here(),
                format!("unexpected `{}` after `since(...)`", self.here_text()),
            );
        }
        Ok(Expr::Since(Since {
            start: Spanned {
                node: n,
                span: pspan,
            },
            key,
            span: Span::new(start, self.pos),
        }))
    }

    fn member_name(&mut self, op: &str) -> Result<String, Diagnostic> {
        match self.ident() {
            Some((n, _)) => Ok(n),
            None => err(self.here(), format!("expected a member name after `{op}`")),
        }
    }

    /// After `~`: `(struct T)` or `$(struct H)[l2|l3|l4]`.
    fn cast(&mut self) -> Result<Spanned<Cast>, Diagnostic> {
        let start = self.pos;
        let packet = self.eat("$");
        if !self.eat("(") {
            return err_help(
                self.here(),
                "expected `(` after `~`",
                "a cast is `~(struct NAME)`, or `~$(struct HEADER)l3` for a packet",
            );
        }
        self.skip_ws();
        let ks = self.pos;
        let kind = match self.ident() {
            Some((k, _)) if k == "struct" => CompositeKind::Struct,
            Some((k, _)) if k == "union" => CompositeKind::Union,
            Some((k, sp)) => {
                return err_help(
                    sp,
                    format!("a cast names a struct or union, not `{k}`"),
                    format!("write `(struct {k})` or `(union {k})`"),
                )
            }
            None => {
                return err(
                    Span::new(ks, ks.max(self.here().end)),
                    "expected `struct` or `union` in the cast",
                )
            }
        };
        if !self.skip_ws() {
            return err(self.here(), format!("expected a name after `{kind}`"));
        }
        let Some((name, name_span)) = self.ident() else {
            return err(self.here(), format!("expected a name after `{kind}`"));
        };
        self.skip_ws();
        if !self.eat(")") {
            return err(self.here(), "expected `)` to close the cast");
        }
        let packet = if packet {
            let ls = self.pos;
            let layer = match self.ident() {
                None => None,
                Some((l, _)) if l == "l2" => Some(Layer::L2),
                Some((l, _)) if l == "l3" => Some(Layer::L3),
                Some((l, _)) if l == "l4" => Some(Layer::L4),
                Some((l, sp)) => {
                    return err(
                        sp,
                        format!("unknown layer marker `{l}`: expected `l2`, `l3` or `l4`"),
                    )
                }
            };
            Some(Packet {
                layer: layer.map(|l| Spanned {
                    node: l,
                    span: Span::new(ls, self.pos),
                }),
            })
        } else {
            None
        };
        Ok(Spanned {
            node: Cast {
                kind,
                name: Spanned {
                    node: name,
                    span: name_span,
                },
                packet,
            },
            span: Span::new(start, self.pos),
        })
    }
}

/// A decimal or `0x` hex number.
fn number(text: &str, span: Span) -> Result<u64, Diagnostic> {
    let r = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => text.parse(),
    };
    r.or_else(|_| {
        err(
            span,
            format!("`{text}` is not a number (decimal or 0x hex)"),
        )
    })
}

/// `SYMBOL` or `SYMBOL+OFFSET`.
fn symbol_offset(w: &str, span: Span) -> Result<(String, u64), Diagnostic> {
    let (sym, off) = match w.split_once('+') {
        Some((s, o)) => {
            let os = Span::new(span.start + s.len() + 1, span.end);
            if o.is_empty() {
                return err(os, "missing offset after `+`");
            }
            (s, number(o, os)?)
        }
        None => (w, 0),
    };
    let sym_span = Span::new(span.start, span.start + sym.len());
    // `.` appears in compiler-made names: `foo.isra.0`, `bar.cold`.
    let ok = sym.chars().next().is_some_and(is_ident_start)
        && sym.chars().all(|c| is_ident(c) || c == '.');
    if !ok {
        return err(sym_span, format!("`{sym}` is not a symbol name"));
    }
    Ok((sym.to_string(), off))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(p: &Probe, i: usize) -> &TypedExpr {
        match &p.args[i].expr {
            Expr::Typed(t) => t,
            e => panic!("not typed: {e:?}"),
        }
    }

    fn text(p: &Probe, s: Span) -> &str {
        &p.text[s.start..s.end]
    }

    #[test]
    fn readme_example_comm() {
        let p = parse_probe("p wake_up_new_task comm=%0~(struct task_struct)->comm").unwrap();
        assert_eq!(p.kind.node, ProbeKind::Entry);
        assert_eq!(
            p.place.node,
            Place::Kernel {
                symbol: "wake_up_new_task".into(),
                offset: 0,
                spans: KernelSpans {
                    module: None,
                    name: Span::new(2, 18),
                    offset: None
                }
            }
        );
        assert_eq!(text(&p, p.place.span), "wake_up_new_task");
        assert_eq!(p.args.len(), 1);
        assert_eq!(p.args[0].name.node, "comm");
        let t = typed(&p, 0);
        assert_eq!(t.base.node, Base::Arg(0));
        assert_eq!(t.format, None);
        let c = t.cast.as_ref().unwrap();
        assert_eq!(c.node.kind, CompositeKind::Struct);
        assert_eq!(c.node.name.node, "task_struct");
        assert_eq!(text(&p, c.node.name.span), "task_struct");
        assert_eq!(text(&p, c.span), "(struct task_struct)");
        assert_eq!(t.steps.len(), 1);
        assert_eq!(t.steps[0].node, Step::Arrow("comm".into()));
        assert_eq!(text(&p, t.steps[0].span), "->comm");
        assert_eq!(text(&p, t.span), "%0~(struct task_struct)->comm");
        assert!(p.filter.is_none());
    }

    #[test]
    fn format_letter_and_chain() {
        let p =
            parse_probe("p wake_up_new_task users=%0S~(struct task_struct)->mm->mm_users").unwrap();
        let t = typed(&p, 0);
        assert_eq!(t.format.unwrap().node, Format::Signed);
        assert_eq!(text(&p, t.format.unwrap().span), "S");
        assert_eq!(
            t.steps.iter().map(|s| s.node.clone()).collect::<Vec<_>>(),
            vec![Step::Arrow("mm".into()), Step::Arrow("mm_users".into())]
        );
    }

    #[test]
    fn dots_indexes_union() {
        let p = parse_probe("p f x=%2U~( union  foo )->a.b[3]->c[0x10]").unwrap();
        let t = typed(&p, 0);
        assert_eq!(t.base.node, Base::Arg(2));
        assert_eq!(t.cast.as_ref().unwrap().node.kind, CompositeKind::Union);
        assert_eq!(t.cast.as_ref().unwrap().node.name.node, "foo");
        let steps: Vec<Step> = t.steps.iter().map(|s| s.node.clone()).collect();
        assert_eq!(
            steps,
            vec![
                Step::Arrow("a".into()),
                Step::Dot("b".into()),
                Step::Index(3),
                Step::Arrow("c".into()),
                Step::Index(16)
            ]
        );
        assert_eq!(text(&p, t.steps[2].span), "[3]");
    }

    #[test]
    fn raw_fetchargs_pass_through() {
        let p = parse_probe(
            "p kernel_clone+21 r=%r12 a=%di rv=$retval:u64 c=$comm s=$stack3 g=@jiffies m=+8(%si):u32 a1=$arg1 i=\\123",
        )
        .unwrap();
        assert_eq!(
            p.place.node,
            Place::Kernel {
                symbol: "kernel_clone".into(),
                offset: 21,
                spans: KernelSpans {
                    module: None,
                    name: Span::new(2, 14),
                    offset: Some(Span::new(14, 17))
                }
            }
        );
        let raws: Vec<&str> = p
            .args
            .iter()
            .map(|a| match &a.expr {
                Expr::Raw(r) => r.node.as_str(),
                e => panic!("{e:?}"),
            })
            .collect();
        assert_eq!(
            raws,
            [
                "%r12",
                "%di",
                "$retval:u64",
                "$comm",
                "$stack3",
                "@jiffies",
                "+8(%si):u32",
                "$arg1",
                "\\123"
            ]
        );
        assert_eq!(text(&p, p.args[6].expr.span()), "+8(%si):u32");
        // A bare `$retval` (or one with a member walk) is typed by the
        // return type when there is one; `$retvalx` is not it.
        let p = parse_probe("r f a=$retval b=$retval->x.y c=$retval~(struct s)->z").unwrap();
        for (i, steps) in [(0, 0), (1, 2), (2, 1)] {
            let Expr::Typed(t) = &p.args[i].expr else {
                panic!("{:?}", p.args[i].expr)
            };
            assert_eq!(t.base.node, Base::Retval);
            assert_eq!(t.steps.len(), steps);
        }
        assert!(matches!(&p.args[2].expr, Expr::Typed(t) if t.cast.is_some()));
    }

    #[test]
    fn hex_offset_and_return() {
        let p = parse_probe("p do_sys_open+0x1f").unwrap();
        assert_eq!(
            p.place.node,
            Place::Kernel {
                symbol: "do_sys_open".into(),
                offset: 0x1f,
                spans: KernelSpans {
                    module: None,
                    name: Span::new(2, 13),
                    offset: Some(Span::new(13, 18))
                }
            }
        );
        let r = parse_probe("r kernel_clone r=$retval").unwrap();
        assert_eq!(r.kind.node, ProbeKind::Return);
        let e = parse_probe("r kernel_clone+4").unwrap_err();
        assert!(e.message.contains("return probe cannot have an offset"));
    }

    #[test]
    fn uprobes() {
        let p = parse_probe("p /usr/bin/bash:readline").unwrap();
        assert_eq!(
            p.place.node,
            Place::User {
                path: "/usr/bin/bash".into(),
                loc: UserLoc::Symbol {
                    name: "readline".into(),
                    offset: 0
                }
            }
        );
        let p = parse_probe("r /lib/x86_64-linux-gnu/libc.so.6:0x1a2b3 rv=$retval").unwrap();
        assert_eq!(
            p.place.node,
            Place::User {
                path: "/lib/x86_64-linux-gnu/libc.so.6".into(),
                loc: UserLoc::Offset(0x1a2b3)
            }
        );
        let e = parse_probe("p /bin/true").unwrap_err();
        assert!(e.message.contains("no place"), "{e}");
    }

    #[test]
    fn tracepoint_and_filter() {
        let p =
            parse_probe("t sched:sched_switch f: prev_pid == 1 && (next_comm ~ \"sys*\")").unwrap();
        assert_eq!(p.kind.node, ProbeKind::Tracepoint);
        assert_eq!(
            p.place.node,
            Place::Tracepoint {
                system: "sched".into(),
                event: "sched_switch".into()
            }
        );
        let f = p.filter.unwrap().text;
        assert_eq!(f.node, "prev_pid == 1 && (next_comm ~ \"sys*\")");
        assert_eq!(&p.text[f.span.start..f.span.end], f.node);
        let e = parse_probe("t sched_switch").unwrap_err();
        assert!(e.message.contains("not a tracepoint"));
    }

    #[test]
    fn packet_form() {
        let p = parse_probe(
            "p ip_rcv proto=%0~$(struct iphdr)l3->protocol s=%0S~$(struct icmphdr)->sdata[0]",
        )
        .unwrap();
        let t = typed(&p, 0);
        let c = &t.cast.as_ref().unwrap().node;
        assert_eq!(c.name.node, "iphdr");
        let l = c.packet.unwrap().layer.unwrap();
        assert_eq!(l.node, Layer::L3);
        assert_eq!(text(&p, l.span), "l3");
        let t = typed(&p, 1);
        let c = &t.cast.as_ref().unwrap().node;
        assert_eq!(c.packet, Some(Packet { layer: None }));
        assert_eq!(t.steps[1].node, Step::Index(0));
        let spec = "p ip_rcv x=%0~$(struct iphdr)l5->protocol";
        let e = parse_probe(spec).unwrap_err();
        let sp = e.span.unwrap();
        assert_eq!(&spec[sp.start..sp.end], "l5");
        assert!(e.message.contains("unknown layer marker"));
    }

    #[test]
    fn typed_forms_parse() {
        let p = parse_probe("p vfs_read ino=file->f_inode->i_ino n=count m=%1->x").unwrap();
        let t = typed(&p, 0);
        assert_eq!(t.base.node, Base::Param("file".into()));
        assert_eq!(t.steps.len(), 2);
        assert_eq!(typed(&p, 1).base.node, Base::Param("count".into()));
        let t = typed(&p, 2);
        assert_eq!(t.base.node, Base::Arg(1));
        assert!(t.cast.is_none());
    }

    #[test]
    fn aggregations() {
        let p = parse_probe(
            "p vfs_read n=count c=%0 count() hist(n)[comm, pid] lhist(n,0x100)[cpu] sum(c) f:n>1",
        )
        .unwrap();
        assert_eq!(p.args.len(), 2);
        assert_eq!(p.aggs.len(), 4);
        assert_eq!(p.aggs[0].func.node, AggFunc::Count);
        assert!(p.aggs[0].keys.is_empty());
        let h = &p.aggs[1];
        assert_eq!(h.func.node, AggFunc::Hist);
        assert_eq!(h.value.as_ref().unwrap().node, "n");
        let keys: Vec<&str> = h.keys.iter().map(|k| k.node.as_str()).collect();
        assert_eq!(keys, ["comm", "pid"]);
        assert_eq!(text(&p, h.span), "hist(n)[comm, pid]");
        assert_eq!(text(&p, h.keys[1].span), "pid");
        assert_eq!(p.aggs[2].step.unwrap().node, 256);
        assert_eq!(p.filter.unwrap().text.node, "n>1");
        // A tracepoint, no named values.
        let t = parse_probe("t syscalls:sys_enter_read count()[comm]").unwrap();
        assert_eq!(t.aggs[0].keys[0].node, "comm");
        // `NAME=` still names a value, even `count=`.
        let v = parse_probe("p vfs_read count=%dx hist(count)").unwrap();
        assert_eq!(v.args[0].name.node, "count");
    }

    #[test]
    fn aggregation_errors() {
        let cases: &[(&str, &str, &str)] = &[
            ("p f n=%0 avg(n)", "avg", "unknown aggregation"),
            ("p f n=%0 hist()", ")", "needs a value"),
            ("p f n=%0 count(n)", "n", "takes no value"),
            ("p f n=%0 lhist(n)", ")", "bucket width"),
            ("p f n=%0 lhist(n,0)", "0", "at least 1"),
            ("p f n=%0 hist(n)[comm,comm]", "comm", "a key twice"),
            ("p f n=%0 hist(n)[comm", "", "expected `,` or `]`"),
            ("p f n=%0 hist(n)x", "x", "unexpected `x`"),
            ("p f count() n=%0", "n", "come before the aggregations"),
        ];
        for (spec, under, msg) in cases {
            let e = parse_probe(spec).unwrap_err();
            assert!(e.message.contains(msg), "{spec}: {}", e.message);
            let sp = e.span.unwrap();
            assert_eq!(&spec[sp.start..sp.end], *under, "{spec}: {e:?}");
        }
    }

    #[test]
    fn errors_have_spans() {
        let cases: &[(&str, &str, &str)] = &[
            ("x do_exit", "x", "unknown probe type"),
            ("p do_exit comm", "comm", "has no value"),
            ("p do_exit c=%0~(struct task_struct", "", "expected `)`"),
            (
                "p do_exit c=%0~(task_struct)->comm",
                "task_struct",
                "not `task_struct`",
            ),
            (
                "p do_exit c=%0~(struct task_struct)->",
                "",
                "expected a member name",
            ),
            ("p do_exit c=%0~(struct t)->a[x]", "x", "not a number"),
            ("p do_exit c=%0~(struct t)->a[1", "", "expected `]`"),
            ("p do_exit c=%0Q", "Q", "unexpected `Q`"),
            ("p do_exit c=%0~(struct t)->a+1", "+", "unexpected `+`"),
            ("p do_exit f:", "f:", "empty filter"),
            ("p do_exit =1", "=1", "expected NAME=EXPR"),
            ("p do_exit a=1 a=2", "a", "named twice"),
            ("p", "", "missing place"),
            ("   ", "", "empty probe"),
            ("p 9lives", "9lives", "not a symbol name"),
            ("p do_exit+", "", "missing offset"),
            ("p do_exit c=%99999999999", "%99999999999", "too large"),
        ];
        for (spec, under, msg) in cases {
            let e = parse_probe(spec).unwrap_err();
            assert!(e.message.contains(msg), "{spec}: {}", e.message);
            let sp = e.span.unwrap();
            assert_eq!(&spec[sp.start..sp.end], *under, "{spec}: {e:?}");
        }
    }
}

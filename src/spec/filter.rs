//! The text after `f:`: an ftrace event filter
//! (Documentation/trace/events.rst, "Event filtering"), parsed with the
//! kernel's grammar into an expression with spans, so that later stages
//! can check every name and literal and point at the offending part.
//!
//! ```text
//! expr  := and ('||' and)*          && binds tighter than ||, as in C
//! and   := unary ('&&' unary)*
//! unary := '!' unary | '(' expr ')' | FIELD OP VALUE
//! OP    := == != < <= > >= & ~
//! VALUE := a number, a "quoted" or 'quoted' string (no escapes: the
//!          kernel has none), or a bare word (an address, a name)
//! ```
//!
//! The parser knows nothing of fields: whether `count` exists, or whether
//! a string may be compared with it, is the compiler's question.

use super::{Diagnostic, Span, Spanned};

/// A parsed filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Pred(Pred),
}

/// `FIELD OP VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pred {
    pub field: Spanned<String>,
    pub op: Spanned<CmpOp>,
    pub value: Spanned<Value>,
}

/// A comparison, as the kernel spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `&`: some of the bits set.
    BitAnd,
    /// `~`: a glob match (strings only).
    Glob,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::BitAnd => "&",
            CmpOp::Glob => "~",
        }
    }
}

/// What a field is compared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `"text"` or `'text'`: the text between the quotes.
    Quoted(String),
    /// Anything else, as written: `42`, `-0x10`, `127.0.0.1`, `bash`.
    Bare(String),
}

impl Expr {
    /// Every comparison, left to right.
    pub fn preds(&self) -> Vec<&Pred> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Pred>) {
        match self {
            Expr::Or(a, b) | Expr::And(a, b) => {
                a.collect(out);
                b.collect(out);
            }
            Expr::Not(e) => e.collect(out),
            Expr::Pred(p) => out.push(p),
        }
    }

    /// Whether some comparison is on the field `name`.
    pub fn mentions(&self, name: &str) -> bool {
        self.preds().iter().any(|p| p.field.node == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Ident,
    /// A value that is not a name: `42`, `-1`, `10.0.0.1`.
    Bare,
    /// `"..."`/`'...'`, quotes included in the span.
    Quoted,
    Cmp(CmpOp),
    AndAnd,
    OrOr,
    Not,
    Open,
    Close,
    /// A lone `=`.
    Assign,
}

struct Lexeme {
    tok: Tok,
    span: Span,
}

/// Characters that end a bare value (the kernel's operators, parentheses
/// and quotes).
const STOP: &[u8] = b"()&|!=<>~\"'";

fn lex(s: &str, base: usize) -> Result<Vec<Lexeme>, Diagnostic> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let two = b.get(i + 1).copied();
        let (tok, len) = match (c, two) {
            (b'(', _) => (Tok::Open, 1),
            (b')', _) => (Tok::Close, 1),
            (b'&', Some(b'&')) => (Tok::AndAnd, 2),
            (b'|', Some(b'|')) => (Tok::OrOr, 2),
            (b'!', Some(b'=')) => (Tok::Cmp(CmpOp::Ne), 2),
            (b'!', _) => (Tok::Not, 1),
            (b'=', Some(b'=')) => (Tok::Cmp(CmpOp::Eq), 2),
            (b'=', _) => (Tok::Assign, 1),
            (b'<', Some(b'=')) => (Tok::Cmp(CmpOp::Le), 2),
            (b'<', _) => (Tok::Cmp(CmpOp::Lt), 1),
            (b'>', Some(b'=')) => (Tok::Cmp(CmpOp::Ge), 2),
            (b'>', _) => (Tok::Cmp(CmpOp::Gt), 1),
            (b'&', _) => (Tok::Cmp(CmpOp::BitAnd), 1),
            (b'~', _) => (Tok::Cmp(CmpOp::Glob), 1),
            (b'|', _) => {
                return Err(error(
                    Span::new(base + i, base + i + 1),
                    "`|` is not an operator of filters",
                )
                .with_help("`||` is either-or; `&` tests bits"));
            }
            (b'"' | b'\'', _) => match s[i + 1..].find(c as char) {
                Some(end) => (Tok::Quoted, end + 2),
                None => {
                    return Err(error(
                        Span::new(base + i, base + s.len()),
                        format!("the string is not closed: a `{}` is missing", c as char),
                    )
                    .with_help("the kernel's filter strings have no escapes: a string cannot hold its own quote character"));
                }
            },
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let n = ident_len(&b[i..]);
                // A cpumask value, `CPUS{0-3,5}` (newer kernels).
                match (b.get(i + n), s[i + n..].find('}')) {
                    (Some(b'{'), Some(close)) => (Tok::Bare, n + close + 1),
                    _ => (Tok::Ident, n),
                }
            }
            _ => {
                let mut n = 0;
                while i + n < b.len()
                    && !b[i + n].is_ascii_whitespace()
                    && !STOP.contains(&b[i + n])
                {
                    n += 1;
                }
                (Tok::Bare, n)
            }
        };
        i += len;
        // Keep spans on char boundaries for non-ASCII input.
        while i < b.len() && !s.is_char_boundary(i) {
            i += 1;
        }
        out.push(Lexeme {
            tok,
            span: Span::new(base + start, base + i),
        });
    }
    Ok(out)
}

/// The length of a name at the start of `b`: a C identifier, and a
/// whole struct's member path after it (`c.skc_num`, `v.path[1].x`;
/// README, "Whole structs"), which the compiler turns into the field's
/// name.
fn ident_len(b: &[u8]) -> usize {
    let word = |b: &[u8]| {
        b.iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count()
    };
    let mut n = word(b);
    loop {
        match b.get(n..) {
            Some([b'.', c, ..]) if c.is_ascii_alphabetic() || *c == b'_' => {
                n += 1 + word(&b[n + 1..]);
            }
            Some([b'[', rest @ ..]) => {
                let d = rest.iter().take_while(|c| c.is_ascii_digit()).count();
                if d == 0 || rest.get(d) != Some(&b']') {
                    return n;
                }
                n += d + 2;
            }
            _ => return n,
        }
    }
}

/// A mistake in the filter, at `span`.
fn error(span: Span, msg: impl Into<String>) -> Diagnostic {
    Diagnostic::error(span, format!("bad filter: {}", msg.into()))
}

/// Parse `text`, the filter as written; `base` is where it starts in the
/// probe spec, so that the spans point into the spec.
pub fn parse(text: &str, base: usize) -> Result<Expr, Diagnostic> {
    let toks = lex(text, base)?;
    let mut p = Parser {
        text,
        base,
        toks,
        i: 0,
    };
    if p.toks.is_empty() {
        return Err(error(Span::new(base, base + text.len()), "empty filter"));
    }
    let e = p.or()?;
    match p.peek() {
        None => Ok(e),
        Some(l) if l.tok == Tok::Close => Err(error(l.span, "`)` without a matching `(`")),
        Some(l) => Err(error(
            l.span,
            format!("expected `&&` or `||` before `{}`", p.show(l.span)),
        )
        .with_help("join comparisons with `&&` (both) or `||` (either)")),
    }
}

struct Parser<'a> {
    text: &'a str,
    base: usize,
    toks: Vec<Lexeme>,
    i: usize,
}

const OPS_HELP: &str = "a comparison is FIELD OP VALUE, OP one of == != < <= > >= & ~ (e.g. `count > 100`, `name ~ \"/tmp/*\"`)";

impl Parser<'_> {
    fn peek(&self) -> Option<&Lexeme> {
        self.toks.get(self.i)
    }

    fn show(&self, span: Span) -> &str {
        &self.text[span.start - self.base..span.end - self.base]
    }

    /// An empty span just after the last token.
    fn end(&self) -> Span {
        let e = self.base + self.text.trim_end().len();
        Span::new(e, e)
    }

    fn eat(&mut self, t: Tok) -> Option<Span> {
        match self.peek() {
            Some(l) if l.tok == t => {
                let sp = l.span;
                self.i += 1;
                Some(sp)
            }
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Expr, Diagnostic> {
        let mut left = self.and()?;
        while let Some(sp) = self.eat(Tok::OrOr) {
            self.operand_after(sp, "||")?;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, Diagnostic> {
        let mut left = self.unary()?;
        while let Some(sp) = self.eat(Tok::AndAnd) {
            self.operand_after(sp, "&&")?;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    /// `&&`/`||` needs something after it (the kernel lets a trailing one
    /// pass, meaning nothing).
    fn operand_after(&self, sp: Span, op: &str) -> Result<(), Diagnostic> {
        match self.peek() {
            None => Err(error(sp, format!("nothing after `{op}`"))
                .with_help(format!("remove the `{op}` or add a comparison after it"))),
            Some(l) if matches!(l.tok, Tok::AndAnd | Tok::OrOr | Tok::Close) => {
                Err(error(l.span, format!("expected a comparison after `{op}`"))
                    .with_help(OPS_HELP))
            }
            _ => Ok(()),
        }
    }

    fn unary(&mut self) -> Result<Expr, Diagnostic> {
        if self.eat(Tok::Not).is_some() {
            if self.peek().is_none() {
                return Err(
                    error(self.end(), "expected a comparison after `!`").with_help(OPS_HELP)
                );
            }
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if let Some(open) = self.eat(Tok::Open) {
            if let Some(close) = self.eat(Tok::Close) {
                return Err(error(open.to(close), "empty parentheses"));
            }
            let e = self.or()?;
            if self.eat(Tok::Close).is_none() {
                return Err(match self.peek() {
                    None => error(open, "`(` is never closed")
                        .with_help("add a `)` where the group ends"),
                    Some(l) => error(
                        l.span,
                        format!("expected `&&`, `||` or `)` before `{}`", self.show(l.span)),
                    ),
                });
            }
            return Ok(e);
        }
        self.pred().map(Expr::Pred)
    }

    fn pred(&mut self) -> Result<Pred, Diagnostic> {
        let Some(l) = self.peek() else {
            return Err(error(self.end(), "expected a comparison").with_help(OPS_HELP));
        };
        let (tok, span) = (l.tok, l.span);
        if tok != Tok::Ident {
            let what = self.show(span).to_string();
            let d = match tok {
                Tok::Close => error(span, "`)` without a matching `(`"),
                Tok::Bare | Tok::Quoted => {
                    error(span, format!("expected a field name, found `{what}`"))
                        .with_help("the field comes first: `FIELD OP VALUE`")
                }
                _ => error(span, format!("expected a comparison, found `{what}`"))
                    .with_help(OPS_HELP),
            };
            return Err(d);
        }
        self.i += 1;
        let field = Spanned {
            node: self.show(span).to_string(),
            span,
        };
        let op = match self.peek() {
            Some(l) if matches!(l.tok, Tok::Cmp(_)) => {
                let Tok::Cmp(op) = l.tok else { unreachable!() };
                Spanned {
                    node: op,
                    span: l.span,
                }
            }
            Some(l) if l.tok == Tok::Assign => {
                return Err(error(l.span, "`=` is not an operator of filters")
                    .with_help("equality is `==`"))
            }
            Some(l) => {
                return Err(error(
                    l.span,
                    format!(
                        "expected a comparison operator after `{}`, found `{}`",
                        field.node,
                        self.show(l.span)
                    ),
                )
                .with_help(OPS_HELP))
            }
            None => {
                return Err(error(
                    self.end(),
                    format!("`{}` is compared with nothing", field.node),
                )
                .with_help(OPS_HELP))
            }
        };
        self.i += 1;
        let value = match self.peek() {
            Some(l) if matches!(l.tok, Tok::Ident | Tok::Bare) => Spanned {
                node: Value::Bare(self.show(l.span).to_string()),
                span: l.span,
            },
            Some(l) if l.tok == Tok::Quoted => {
                let q = self.show(l.span);
                Spanned {
                    node: Value::Quoted(q[1..q.len() - 1].to_string()),
                    span: l.span,
                }
            }
            other => {
                let at = other.map_or(self.end(), |l| l.span);
                return Err(error(
                    at,
                    format!(
                        "missing the value to compare `{}` with after `{}`",
                        field.node,
                        op.node.as_str()
                    ),
                )
                .with_help(OPS_HELP));
            }
        };
        self.i += 1;
        Ok(Pred { field, op, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(e: &Expr) -> String {
        match e {
            Expr::Or(a, b) => format!("({} || {})", show(a), show(b)),
            Expr::And(a, b) => format!("({} && {})", show(a), show(b)),
            Expr::Not(a) => format!("!{}", show(a)),
            Expr::Pred(p) => format!(
                "{}{}{}",
                p.field.node,
                p.op.node.as_str(),
                match &p.value.node {
                    Value::Quoted(s) => format!("{s:?}"),
                    Value::Bare(s) => s.clone(),
                }
            ),
        }
    }

    #[test]
    fn the_kernels_grammar() {
        let cases = [
            ("a==1", "a==1"),
            ("a == 1 && b != 2 || c < 3", "((a==1 && b!=2) || c<3)"),
            ("a==1 || b==2 && c==3", "(a==1 || (b==2 && c==3))"),
            ("(a==1 || b==2) && c==3", "((a==1 || b==2) && c==3)"),
            ("!(a==1)", "!a==1"),
            ("!!a==1", "!!a==1"),
            ("a==1&&!b==2", "(a==1 && !b==2)"),
            ("x<=-0x10 && y>=4", "(x<=-0x10 && y>=4)"),
            ("f & 0x4", "f&0x4"),
            (r#"name ~ "/tmp/*""#, r#"name~"/tmp/*""#),
            ("comm == 'a b'", r#"comm=="a b""#),
            ("ip_src==127.0.0.1", "ip_src==127.0.0.1"),
            ("common_cpu & CPUS{0-3}", "common_cpu&CPUS{0-3}"),
            ("b16_p == http", "b16_p==http"),
            // A whole struct's leaf by its member path.
            ("c.skc_num==22", "c.skc_num==22"),
            ("v.path[1].y>=13&&v.at.x<0", "(v.path[1].y>=13 && v.at.x<0)"),
            ("state==TCP_CLOSE", "state==TCP_CLOSE"),
        ];
        for (text, want) in cases {
            let e = parse(text, 0).unwrap_or_else(|d| panic!("{text}: {d}"));
            assert_eq!(show(&e), want, "{text}");
        }
    }

    #[test]
    fn spans_point_into_the_spec() {
        let spec = "p f n=%di f:n > 1 && name ~ \"x*\"";
        let at = spec.find("n >").unwrap();
        let e = parse(&spec[at..], at).unwrap();
        let preds = e.preds();
        let sp = |s: Span| &spec[s.start..s.end];
        assert_eq!(sp(preds[0].field.span), "n");
        assert_eq!(sp(preds[0].op.span), ">");
        assert_eq!(sp(preds[1].value.span), "\"x*\"");
        assert!(e.mentions("name") && !e.mentions("x"));
    }

    /// Mistakes, each with the part the caret goes under.
    #[test]
    fn mistakes() {
        let cases: &[(&str, &str, &str)] = &[
            ("count >", "", "compare `count` with after `>`"),
            ("count", "", "compared with nothing"),
            ("a = 1", "=", "`=` is not an operator"),
            ("a==1) || (b==2", ")", "without a matching `(`"),
            ("((a==1)", "(", "never closed"),
            ("a==1 b==2", "b", "expected `&&` or `||` before `b`"),
            ("a==1 &&", "&&", "nothing after `&&`"),
            ("a==1 || ", "||", "nothing after `||`"),
            ("&& a==1", "&&", "expected a comparison, found `&&`"),
            ("3 == a", "3", "expected a field name"),
            ("a == \"x", "\"x", "not closed"),
            ("()", "()", "empty parentheses"),
            ("a==1 && ()", "()", "empty parentheses"),
            ("a | 1", "|", "not an operator"),
            ("a b", "b", "expected a comparison operator after `a`"),
            ("(a==1 b==2)", "b", "expected `&&`, `||` or `)`"),
            ("a==1 && || b==2", "||", "expected a comparison after `&&`"),
            ("!", "", "after `!`"),
            ("a == == 1", "==", "missing the value"),
            ("c. == 1", ".", "expected a comparison operator after `c`"),
            (
                "v[x] == 1",
                "[x]",
                "expected a comparison operator after `v`",
            ),
        ];
        for (text, under, msg) in cases {
            let d = parse(text, 0).expect_err(text);
            assert!(d.message.contains(msg), "{text}: {}", d.message);
            let sp = d.span.unwrap();
            assert_eq!(&text[sp.start..sp.end], *under, "{text}: {d:?}");
        }
    }
}

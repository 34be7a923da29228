//! The text after `f:`: an ftrace event filter
//! (Documentation/trace/events.rst, "Event filtering"), split into tokens
//! with spans, so that later stages can check and translate it and point
//! at the offending part.

use super::Span;

/// One token: its kind and where it is in the filter text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lexeme {
    pub kind: Token,
    pub span: Span,
}

/// What a piece of a filter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// A field name (`ip_src`, `common_pid`).
    Ident,
    /// `==`, `&&`, `~`, ...
    Op,
    Paren,
    /// A number, an address, a quoted string.
    Literal,
}

/// Split a filter into tokens with their spans (relative to the filter
/// text).
pub fn tokens(s: &str) -> Vec<Lexeme> {
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
        let tok = if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            // `10.0.0.1`-like runs start with digits; an identifier
            // followed by `.`/`:` is still an identifier for our purpose.
            Token::Ident
        } else if c == b'(' || c == b')' {
            i += 1;
            Token::Paren
        } else if b"=!<>&|~".contains(&c) {
            while i < b.len() && b"=!<>&|~".contains(&b[i]) {
                i += 1;
            }
            Token::Op
        } else if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            Token::Literal
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() && !b"=!<>&|~()".contains(&b[i]) {
                i += 1;
            }
            Token::Literal
        };
        // Keep ranges on char boundaries for non-ASCII input.
        while i < b.len() && !s.is_char_boundary(i) {
            i += 1;
        }
        out.push(Lexeme {
            kind: tok,
            span: Span::new(start, i),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_spans() {
        let f = r#"ip_src==1.2.3.4 && (comm ~ "a b")"#;
        let got: Vec<(Token, &str)> = tokens(f)
            .iter()
            .map(|t| (t.kind, &f[t.span.start..t.span.end]))
            .collect();
        assert_eq!(
            got,
            [
                (Token::Ident, "ip_src"),
                (Token::Op, "=="),
                (Token::Literal, "1.2.3.4"),
                (Token::Op, "&&"),
                (Token::Paren, "("),
                (Token::Ident, "comm"),
                (Token::Op, "~"),
                (Token::Literal, "\"a b\""),
                (Token::Paren, ")"),
            ]
        );
    }
}

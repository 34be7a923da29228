//! Diagnostics: what any stage has to say about the user's input — an
//! error, a warning or a note — with the part of the text it is about and
//! a hint. Every stage reports in this one shape (the spec parser, the
//! compiler, the checks against the running kernel, the discovery
//! commands); the binary renders them all alike, rustc-style, with carets
//! under the span.

use std::fmt;

/// A byte range `start..end` into the text a diagnostic is about (a probe
/// spec, an option's value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
    /// This span moved `by` bytes to the right (a span inside a part of
    /// the text made relative to the whole).
    pub fn shifted(self, by: usize) -> Span {
        Span::new(self.start + by, self.end + by)
    }
}

/// A value with the span it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The input cannot be used: nothing is installed.
    Error,
    /// Probably not what was meant, but the run goes on.
    Warning,
    /// Worth knowing (which of two ways was chosen, a steadier alternative).
    Note,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        })
    }
}

/// What kind of mistake a diagnostic reports, where a tool sorting them
/// needs to know (the fleet check's table: a member missing on one
/// kernel, a function missing on another). Most diagnostics have none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// No struct or union of that name.
    UnknownType,
    /// The struct or union has no member of that name.
    UnknownMember,
    /// The kernel has no function of that name.
    NoFunction,
    /// The kernel has the function only as compiler copies
    /// (`name.isra.0`, `name.constprop.0`).
    OnlyCopies,
    /// The function's prototype has no such parameter, or not that many.
    Prototype,
    /// What the probe asks of the architecture it does not have (a
    /// register, an argument beyond its argument registers, another
    /// arch's syscall wrapper).
    Arch,
}

/// One thing to tell the user about their input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub level: Level,
    /// The offending part of the text; None when it is about the whole.
    pub span: Option<Span>,
    pub message: String,
    pub help: Option<String>,
    pub code: Option<Code>,
}

impl Diagnostic {
    pub fn error(span: impl Into<Option<Span>>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Level::Error, span, message)
    }
    pub fn warning(span: impl Into<Option<Span>>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Level::Warning, span, message)
    }
    pub fn note(span: impl Into<Option<Span>>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Level::Note, span, message)
    }
    pub fn new(
        level: Level,
        span: impl Into<Option<Span>>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            level,
            span: span.into(),
            message: message.into(),
            help: None,
            code: None,
        }
    }
    /// Say what kind of mistake this is.
    pub fn with_code(mut self, code: Code) -> Diagnostic {
        self.code = Some(code);
        self
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
    /// The help, if there is one to give.
    pub fn with_help_opt(mut self, help: Option<String>) -> Diagnostic {
        self.help = help;
        self
    }
    /// Give a diagnostic that has no span this one (a failure deep in a
    /// walk gets the span of the expression that walked there).
    pub fn or_span(mut self, span: Span) -> Diagnostic {
        self.span.get_or_insert(span);
        self
    }
    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// The diagnostics of a run that has several probes: each with the index
/// of the probe it is about.
pub type ProbeDiagnostics = Vec<(usize, Diagnostic)>;

/// `did you mean `a` or `b`?` from the names nearest to `want`, each
/// written with `prefix` (`struct `); None when nothing is near.
pub fn did_you_mean<'a>(
    want: &str,
    names: impl Iterator<Item = &'a str>,
    prefix: &str,
) -> Option<String> {
    let near = nearest(want, names);
    if near.is_empty() {
        return None;
    }
    let quoted: Vec<String> = near.iter().map(|n| format!("`{prefix}{n}`")).collect();
    Some(format!("did you mean {}?", join_or(&quoted)))
}

/// `a`, `a or b`, `a, b or c`.
pub fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Up to three names close to `want`: by edit distance (scaled to the
/// name's length), a name that merely adds a prefix or suffix counts too
/// (`task` → `task_struct`).
pub fn nearest<'a>(want: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let limit = (want.chars().count() / 3).clamp(1, 4);
    let mut scored: Vec<(usize, &str)> = names
        .filter(|n| *n != want)
        .filter_map(|n| {
            let d = distance(want, n);
            if d <= limit {
                Some((d, n))
            } else if want.len() >= 3
                && n.len() <= want.len() + 8
                && (n.starts_with(want) || n.ends_with(want) || abbreviates(want, n))
            {
                Some((limit + 1 + n.len() - want.len(), n))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    // A much closer name makes the far ones noise.
    let best = scored.first().map_or(0, |s| s.0);
    scored
        .into_iter()
        .take_while(|s| s.0 <= best + 1)
        .take(3)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// `cnt` for `count`, `len` for `length`: same first letter, the rest in
/// order.
fn abbreviates(short: &str, long: &str) -> bool {
    let mut l = long.chars();
    let mut s = short.chars();
    if s.next() != l.next() {
        return false;
    }
    s.all(|c| l.any(|d| d == c))
}

/// Levenshtein distance over chars, with a cheap length cut-off.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > 8 {
        return usize::MAX / 2;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("comm", "comm"), 0);
    }

    #[test]
    fn did_you_mean_lists_the_nearest() {
        let names = ["task_struct", "task_group", "mm_struct"];
        assert_eq!(
            did_you_mean("task", names.into_iter(), "struct ").as_deref(),
            Some("did you mean `struct task_group` or `struct task_struct`?")
        );
        assert_eq!(did_you_mean("zzzzzzzz", names.into_iter(), ""), None);
        assert_eq!(join_or(&["a".into(), "b".into(), "c".into()]), "a, b or c");
    }

    #[test]
    fn picks_close_names() {
        let names = [
            "task_struct",
            "task_group",
            "mm_struct",
            "tasklet_struct",
            "x",
        ];
        assert_eq!(nearest("task_strut", names.into_iter())[0], "task_struct");
        assert_eq!(
            nearest("task", names.into_iter()),
            vec!["task_group", "task_struct"]
        );
        assert!(nearest("zzzzzzzz", names.into_iter()).is_empty());
    }
}

//! Diagnostics for the terminal, rustc-style: the message, the text it is
//! about with carets under the span, a hint.

use std::fmt::Write as _;

use coolkprobe::diag::{Diagnostic, ProbeDiagnostics};
use coolkprobe::pipeline::Source;

/// One diagnostic about `text` (a probe spec, an option as written);
/// `origin` (`FILE:LINE`) says where the text came from.
pub fn render(d: &Diagnostic, text: Option<&str>, origin: Option<&str>) -> String {
    let mut out = format!("{}: {}\n", d.level, d.message);
    if let Some(o) = origin {
        let _ = writeln!(out, "  --> {o}");
    }
    if let (Some(text), Some(span)) = (text, d.span) {
        // Spans are byte offsets; columns are characters. Clamp so a bad
        // span can never make the renderer panic.
        let clamp = |i: usize| {
            let mut i = i.min(text.len());
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let (start, end) = (clamp(span.start), clamp(span.end.max(span.start)));
        let col = text[..start].chars().count();
        let width = text[start..end].chars().count().max(1);
        let shown: String = text
            .chars()
            .map(|c| match c {
                '\n' | '\t' => ' ',
                // Shown, not sent to the terminal (one column, as counted).
                c if c.is_control() => '\u{fffd}',
                c => c,
            })
            .collect();
        let _ = writeln!(out, "  {shown}");
        let _ = writeln!(out, "  {}{}", " ".repeat(col), "^".repeat(width));
    }
    if let Some(h) = &d.help {
        let _ = writeln!(out, "help: {h}");
    }
    out
}

/// Every diagnostic of a run's probes, in order, each under its probe.
pub fn render_probes(diags: &ProbeDiagnostics, sources: &[Source]) -> String {
    diags
        .iter()
        .map(|(i, d)| {
            let s = sources.get(*i);
            render(
                d,
                s.map(|s| s.text.as_str()),
                s.and_then(|s| s.origin.as_deref()),
            )
        })
        .collect::<Vec<_>>()
        .join("")
}

/// A diagnostic about an option's value (`--layout task_strct`): its span
/// points into the value, and is shown under the option as written.
pub fn render_option(d: &Diagnostic, option: &str, value: &str) -> String {
    let text = format!("{option} {value}");
    let d = Diagnostic {
        span: d.span.map(|s| s.shifted(option.len() + 1)),
        ..d.clone()
    };
    render(&d, Some(&text), None)
}

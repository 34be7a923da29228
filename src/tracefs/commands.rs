//! The tracefs writes that install and remove a plan, as data.
//!
//! Show mode (`-S`) prints them as a shell script; a live session performs
//! them. Both use this one list, so what `-S` prints is what a live run
//! does.

use crate::compile::plan::{CompiledProbe, Plan};

/// One write to a file under the tracefs root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// Path relative to the tracefs root, e.g. `kprobe_events`.
    pub file: String,
    pub text: String,
    /// `>>` (append) rather than `>` (truncate).
    pub append: bool,
}

impl Write {
    fn put(file: String, text: impl Into<String>) -> Write {
        Write {
            file,
            text: text.into(),
            append: false,
        }
    }
    fn append(file: &str, text: impl Into<String>) -> Write {
        Write {
            file: file.to_string(),
            text: text.into(),
            append: true,
        }
    }

    /// `echo '...' >> $T/file`, quoted for sh.
    pub fn to_shell(&self, root_var: &str) -> String {
        format!(
            "echo {} {} {root_var}/{}",
            sh_quote(&self.text),
            if self.append { ">>" } else { ">" },
            self.file
        )
    }
}

/// Single-quote for POSIX sh: `'` becomes `'\''`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Options of the install that are not part of the plan itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct InstallOptions {
    /// `-s`: a `stacktrace` trigger on each of our events.
    pub stack: bool,
    /// Aggregations in the kernel, as hist triggers for a kernel with
    /// these features; None: their events are streamed and counted in
    /// coolkprobe.
    pub hist: Option<super::hist::Features>,
    /// The hist triggers' `size=`.
    pub agg_size: Option<usize>,
}

/// The hist triggers of a probe (kernel path), in order.
pub fn hist_triggers(p: &CompiledProbe, opts: InstallOptions) -> Vec<String> {
    match opts.hist {
        Some(f) => p
            .aggs
            .iter()
            .map(|a| super::hist::trigger(a, p, &f, opts.agg_size))
            .collect(),
        None => Vec::new(),
    }
}

/// Whether the probe's events go to the ring buffer: not when all that
/// is asked of them is aggregated by hist triggers.
pub fn streamed(p: &CompiledProbe, opts: InstallOptions) -> bool {
    p.aggs.is_empty() || opts.hist.is_none()
}

/// Whether the probe records a kernel stack with each event: `-s`, or a
/// `stack` key counted in user space.
pub fn stacks(p: &CompiledProbe, opts: InstallOptions) -> bool {
    streamed(p, opts)
        && (opts.stack
            || p.aggs
                .iter()
                .any(|a| a.keys.contains(&crate::compile::plan::AggKey::Stack)))
}

/// Writes that create, filter and enable every probe of the plan, in order.
pub fn install(plan: &Plan, opts: InstallOptions) -> Vec<Write> {
    let mut out = Vec::new();
    for p in &plan.probes {
        if let (Some(file), Some(def)) = (p.events_file(), p.definition(&plan.group)) {
            out.push(Write::append(file, def));
        }
    }
    for p in &plan.probes {
        let (sys, ev) = p.event_path(&plan.group);
        let dir = format!("events/{sys}/{ev}");
        if !streamed(p, opts) {
            // Aggregated in the kernel: the triggers take the filter as
            // their `if`; the event stays disabled, so nothing reaches the
            // ring buffer (a trigger runs on a soft-disabled event). `>>`:
            // `>` would remove the triggers already there.
            for t in hist_triggers(p, opts) {
                out.push(Write::append(&format!("{dir}/trigger"), t));
            }
            continue;
        }
        if let Some(f) = &p.filter {
            out.push(Write::put(format!("{dir}/filter"), f.clone()));
        }
        if stacks(p, opts) {
            out.push(Write::put(format!("{dir}/trigger"), "stacktrace"));
        }
        out.push(Write::put(format!("{dir}/enable"), "1"));
    }
    out
}

/// The write that takes back one write of [`install`] (what a `-S`
/// script runs when a later write fails): a definition is removed, an
/// enabled event disabled, a trigger removed, a filter cleared.
pub fn undo(w: &Write) -> Option<Write> {
    let f = w.file.as_str();
    if f.ends_with("kprobe_events") || f.ends_with("uprobe_events") {
        // `p:GROUP/EVENT PLACE ...` -> `-:GROUP/EVENT`
        let head = w.text.split_whitespace().next()?;
        let (_, event) = head.split_once(':')?;
        return Some(Write::append(f, format!("-:{event}")));
    }
    if f.ends_with("/enable") && w.text == "1" {
        return Some(Write::put(w.file.clone(), "0"));
    }
    if f.ends_with("/filter") {
        return Some(Write::put(w.file.clone(), "0"));
    }
    if f.ends_with("/trigger") {
        return Some(Write {
            text: format!("!{}", w.text),
            ..w.clone()
        });
    }
    None
}

/// Writes that undo [`install`]: disable, drop triggers and filters we
/// set, delete our dynamic events. Tracepoint filters are cleared with
/// `0`; a live session restores the previous filter text instead, which
/// it read before installing.
pub fn uninstall(plan: &Plan, opts: InstallOptions) -> Vec<Write> {
    let mut out = Vec::new();
    for p in &plan.probes {
        let (sys, ev) = p.event_path(&plan.group);
        let dir = format!("events/{sys}/{ev}");
        if !streamed(p, opts) {
            // Triggers go before the events they are on can go.
            for t in hist_triggers(p, opts).into_iter().rev() {
                out.push(Write::append(&format!("{dir}/trigger"), format!("!{t}")));
            }
            continue;
        }
        out.push(Write::put(format!("{dir}/enable"), "0"));
        if stacks(p, opts) {
            out.push(Write::put(format!("{dir}/trigger"), "!stacktrace"));
        }
        if p.filter.is_some() && p.events_file().is_none() {
            out.push(Write::put(format!("{dir}/filter"), "0"));
        }
    }
    for p in &plan.probes {
        if let Some(file) = p.events_file() {
            out.push(Write::append(
                file,
                format!("-:{}/{}", plan.group, p.event_name()),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        let w = Write::append("kprobe_events", "p:g/f0 do_exit");
        assert_eq!(
            w.to_shell("$T"),
            "echo 'p:g/f0 do_exit' >> $T/kprobe_events"
        );
    }
}

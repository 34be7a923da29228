//! The tracefs writes that install and remove a plan, as data.
//!
//! Show mode (`-S`) prints them as a shell script; a live session performs
//! them. Both use this one list, so what `-S` prints is what a live run
//! does.

use super::PidFilter;
use crate::compile::plan::{CompiledProbe, Plan};

/// Where a write's file is: the tracefs root, or the tree the events are
/// enabled in (a live run's instance; the root or an instance in `-S`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `kprobe_events`, `uprobe_events`: one list for the whole machine.
    Global,
    /// `events/...`, `set_event_pid`, `options/...`.
    Instance,
}

/// One write to a file under the tracefs root or an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// Path relative to its scope's directory, e.g. `kprobe_events`.
    pub file: String,
    pub text: String,
    /// `>>` (append) rather than `>` (truncate).
    pub append: bool,
    pub scope: Scope,
    /// In a shell script, this shell word instead of the quoted text
    /// (what only the target can know, e.g. a process's threads).
    pub shell_text: Option<String>,
}

impl Write {
    fn put(file: String, text: impl Into<String>) -> Write {
        Write {
            file,
            text: text.into(),
            append: false,
            scope: Scope::Instance,
            shell_text: None,
        }
    }
    fn append(file: &str, text: impl Into<String>) -> Write {
        Write {
            file: file.to_string(),
            text: text.into(),
            append: true,
            scope: Scope::Global,
            shell_text: None,
        }
    }
    /// `>>` to a file of the instance (a trigger beside the others).
    fn add(file: String, text: impl Into<String>) -> Write {
        Write {
            append: true,
            ..Write::put(file, text)
        }
    }

    /// `echo '...' >> $T/file`, quoted for sh; instance files under
    /// `inst_var`.
    pub fn to_shell(&self, root_var: &str, inst_var: &str) -> String {
        let dir = match self.scope {
            Scope::Global => root_var,
            Scope::Instance => inst_var,
        };
        format!(
            "echo {} {} {dir}/{}",
            self.shell_text
                .clone()
                .unwrap_or_else(|| sh_quote(&self.text)),
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
    /// `-p PID` / `--tid TID` in a script: the instance records only that
    /// process (its threads listed on the target, new ones followed by
    /// event-fork) or thread. A live session writes its own pid list.
    pub pid: Option<PidFilter>,
    /// Aggregations in the kernel, as hist triggers for a kernel with
    /// these features; None: their events are streamed and counted in
    /// coolkprobe.
    pub hist: Option<super::hist::Features>,
    /// The hist triggers' `size=`.
    pub agg_size: Option<usize>,
    /// Latencies paired in the kernel, by synthetic events and hist
    /// triggers, on a kernel with these features; None: both events are
    /// streamed and paired in coolkprobe.
    pub latency: Option<super::hist::Features>,
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
/// is asked of them is aggregated by hist triggers, nor (in the kernel
/// path) for the two ends of a latency, whose completed calls are the
/// synthetic event's (see [`shown_event`]).
pub fn streamed(p: &CompiledProbe, opts: InstallOptions) -> bool {
    if p.starts_latency() && opts.latency.is_some() {
        return false;
    }
    p.aggs.is_empty() || opts.hist.is_none()
}

/// The event whose records a probe's output is read from: its own, or
/// for the end of a latency paired in the kernel, the synthetic event.
pub fn shown_event(p: &CompiledProbe, group: &str, opts: InstallOptions) -> (String, String) {
    match (p.latency_end(), opts.latency) {
        (Some(l), Some(_)) => ("synthetic".into(), l.synth.clone()),
        _ => p.event_path(group),
    }
}

/// Whether the probe records a kernel stack with each event: `-s`, or a
/// `stack` key counted in user space. Not the parts of a latency: a
/// completed call has no stack of its own.
pub fn stacks(p: &CompiledProbe, opts: InstallOptions) -> bool {
    streamed(p, opts)
        && p.latency.is_none()
        && (opts.stack
            || p.aggs
                .iter()
                .any(|a| a.keys.contains(&crate::compile::plan::AggKey::Stack)))
}

/// The trigger that records a stack for the hits the event keeps: a
/// trigger runs on every hit, the event's filter only drops the record,
/// so an unfiltered trigger would record stacks of filtered-out hits.
fn stack_trigger(filter: Option<&str>) -> String {
    match filter {
        Some(f) => format!("stacktrace if {f}"),
        None => "stacktrace".to_string(),
    }
}

/// The write that removes a trigger written as `text`: `!` and the same
/// text (the kernel matches on the command; the filter is repeated so
/// that the pair reads as one).
pub fn trigger_removal(text: &str) -> String {
    format!("!{text}")
}

/// Writes that create, filter and enable every probe of the plan, in order.
pub fn install(plan: &Plan, opts: InstallOptions) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(PidFilter { pid, follow }) = opts.pid {
        let mut w = Write::put("set_event_pid".into(), pid.to_string());
        if follow {
            out.push(Write::put("options/event-fork".into(), "1"));
            // Every thread the process has when the script runs.
            w.shell_text = Some(format!("$(ls /proc/{pid}/task)"));
        }
        out.push(w);
    }
    for p in &plan.probes {
        if let (Some(file), Some(def)) = (p.events_file(), p.definition(&plan.group)) {
            out.push(Write::append(file, def));
        }
    }
    if let Some(f) = opts.latency {
        for l in plan.probes.iter().filter_map(|p| p.latency_end()) {
            out.push(Write::append(
                SYNTHETIC_EVENTS,
                super::synth::definition(l, &f),
            ));
        }
    }
    for p in &plan.probes {
        let (sys, ev) = p.event_path(&plan.group);
        let dir = format!("events/{sys}/{ev}");
        if p.latency.is_some() {
            match (opts.latency, p.latency_end()) {
                (Some(_), Some(l)) => latency_in_kernel(plan, p, l, opts, &mut out),
                (Some(_), None) => {}
                // Paired in user space: both streamed; the end's filter
                // is the completed call's, applied where it is made.
                (None, end) => {
                    if let (None, Some(f)) = (end, &p.filter) {
                        out.push(Write::put(format!("{dir}/filter"), f.clone()));
                    }
                    out.push(Write::put(format!("{dir}/enable"), "1"));
                }
            }
            continue;
        }
        shown(p, &dir, opts, &mut out);
    }
    out
}

/// The file that defines synthetic events.
pub const SYNTHETIC_EVENTS: &str = "synthetic_events";

/// Filter, triggers and enable of the event a probe is shown from.
fn shown(p: &CompiledProbe, dir: &str, opts: InstallOptions, out: &mut Vec<Write>) {
    if !p.aggs.is_empty() && opts.hist.is_some() {
        // Aggregated in the kernel: the triggers take the filter as
        // their `if`; the event stays disabled, so nothing reaches the
        // ring buffer (a trigger runs on a soft-disabled event). `>>`:
        // `>` would remove the triggers already there.
        for t in hist_triggers(p, opts) {
            out.push(Write::add(format!("{dir}/trigger"), t));
        }
        return;
    }
    if let Some(f) = &p.filter {
        out.push(Write::put(format!("{dir}/filter"), f.clone()));
    }
    // `>>`: `>` would also remove the event's hist triggers.
    if stacks(p, opts) {
        out.push(Write::add(
            format!("{dir}/trigger"),
            stack_trigger(p.filter.as_deref()),
        ));
    }
    out.push(Write::put(format!("{dir}/enable"), "1"));
}

/// A latency paired in the kernel: the start's trigger, the end's (in
/// that order: the end's refers to the start's variables), then the
/// synthetic event shown as any event is.
fn latency_in_kernel(
    plan: &Plan,
    end: &CompiledProbe,
    l: &crate::compile::plan::LatencyPlan,
    opts: InstallOptions,
    out: &mut Vec<Write>,
) {
    let Some(start) = plan.probes.get(l.start) else {
        return;
    };
    let dir = |p: &CompiledProbe| {
        let (sys, ev) = p.event_path(&plan.group);
        format!("events/{sys}/{ev}/trigger")
    };
    out.push(Write::add(
        dir(start),
        super::synth::start_trigger(start, end, l),
    ));
    out.push(Write::add(
        dir(end),
        super::synth::end_trigger(start, end, &plan.group, l),
    ));
    shown(end, &format!("events/synthetic/{}", l.synth), opts, out);
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
    if f == SYNTHETIC_EVENTS {
        // `NAME FIELDS...` -> `!NAME`
        let name = w.text.split_whitespace().next()?;
        return Some(Write::append(f, format!("!{name}")));
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
/// `0`. A live session removes its instance instead, which drops every
/// per-event setting with it.
pub fn uninstall(plan: &Plan, opts: InstallOptions) -> Vec<Write> {
    let mut out = Vec::new();
    for p in &plan.probes {
        let (sys, ev) = p.event_path(&plan.group);
        let dir = format!("events/{sys}/{ev}");
        if p.latency.is_some() {
            if opts.latency.is_none() {
                out.push(Write::put(format!("{dir}/enable"), "0"));
                let filtered = p.latency_end().is_none() && p.filter.is_some();
                if filtered && p.events_file().is_none() && opts.pid.is_none() {
                    out.push(Write::put(format!("{dir}/filter"), "0"));
                }
            }
            continue;
        }
        unshown(p, &dir, opts, &mut out);
    }
    if opts.latency.is_some() {
        // The synthetic event's own triggers, then the end's, then the
        // start's: a trigger whose variables another uses goes after it.
        for p in plan.probes.iter().rev() {
            let Some(l) = p.latency_end() else { continue };
            unshown(p, &format!("events/synthetic/{}", l.synth), opts, &mut out);
            let mut own = Vec::new();
            latency_in_kernel(plan, p, l, InstallOptions { hist: None, ..opts }, &mut own);
            for w in own.iter().filter(|w| w.append).rev() {
                out.push(Write::add(w.file.clone(), trigger_removal(&w.text)));
            }
        }
        for p in plan.probes.iter().rev() {
            if let Some(l) = p.latency_end() {
                out.push(Write::append(SYNTHETIC_EVENTS, format!("!{}", l.synth)));
            }
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

/// Undo [`shown`].
fn unshown(p: &CompiledProbe, dir: &str, opts: InstallOptions, out: &mut Vec<Write>) {
    if !p.aggs.is_empty() && opts.hist.is_some() {
        // Triggers go before the events they are on can go.
        for t in hist_triggers(p, opts).into_iter().rev() {
            out.push(Write::add(format!("{dir}/trigger"), trigger_removal(&t)));
        }
        return;
    }
    out.push(Write::put(format!("{dir}/enable"), "0"));
    if stacks(p, opts) {
        out.push(Write::add(
            format!("{dir}/trigger"),
            trigger_removal(&stack_trigger(p.filter.as_deref())),
        ));
    }
    if p.filter.is_some() && p.events_file().is_none() && p.latency.is_none() && opts.pid.is_none()
    {
        out.push(Write::put(format!("{dir}/filter"), "0"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::plan::{CompiledProbe, Target};

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        let w = Write::append("kprobe_events", "p:g/f0 do_exit");
        assert_eq!(
            w.to_shell("$T", "$I"),
            "echo 'p:g/f0 do_exit' >> $T/kprobe_events"
        );
    }

    fn plan() -> Plan {
        Plan {
            group: "coolkprobe_9".into(),
            probes: vec![CompiledProbe {
                index: 0,
                spec: "t syscalls:sys_enter_getppid f:common_pid==3".into(),
                target: Target::Tracepoint {
                    system: "syscalls".into(),
                    event: "sys_enter_getppid".into(),
                },
                fetchargs: vec![],
                filter: Some("common_pid==3".into()),
                fields: vec![],
                aggs: vec![],
                latency: None,
            }],
        }
    }

    /// The stack trigger carries the event's filter, on and off.
    #[test]
    fn stack_trigger_under_the_filter() {
        let o = InstallOptions {
            stack: true,
            ..InstallOptions::default()
        };
        let on: Vec<String> = install(&plan(), o).iter().map(|w| w.text.clone()).collect();
        assert!(
            on.contains(&"stacktrace if common_pid==3".to_string()),
            "{on:?}"
        );
        let off: Vec<String> = uninstall(&plan(), o)
            .iter()
            .map(|w| w.text.clone())
            .collect();
        assert!(
            off.contains(&"!stacktrace if common_pid==3".to_string()),
            "{off:?}"
        );
    }
}

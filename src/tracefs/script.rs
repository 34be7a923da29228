//! The `-S` output: a POSIX sh script that installs a plan on the target
//! as root, with reading and teardown shown as comments. The writes are
//! the ones a live session makes ([`super::commands`]).
//!
//! The install is all or nothing: when the kernel refuses a write (a
//! definition it cannot place, a filter it cannot parse), or the script
//! is interrupted, an exit trap takes back every write made so far, in
//! reverse order ([`commands::undo`]), prints the kernel's own reason
//! (the new entry of tracefs' `error_log`) and exits non-zero.

use std::fmt::Write as _;

use super::commands::{self, InstallOptions, Write};
use super::PidFilter;
use crate::compile::plan::Plan;

/// A line per whole struct of the probe (README, "Whole structs"): its
/// fields, and how many of its values the kernel's limits left out.
fn whole_structs(p: &crate::compile::plan::CompiledProbe) -> Vec<String> {
    use crate::compile::plan::PathPart;
    let mut out: Vec<(String, Vec<&str>, usize)> = Vec::new();
    for f in &p.fields {
        let Some(PathPart::Member(top)) = f.path.first() else {
            continue;
        };
        match out.last_mut() {
            Some((t, names, cut)) if t == top => {
                names.push(&f.name);
                *cut += f.cut;
            }
            _ => out.push((top.clone(), vec![&f.name], f.cut)),
        }
    }
    out.into_iter()
        .map(|(top, names, cut)| {
            let (first, last) = (names[0], names[names.len() - 1]);
            let left = if cut > 0 {
                format!("; {cut} more left out (the kernel's limits)")
            } else {
                String::new()
            };
            format!(
                "{top}: a whole struct, member by member: {} fields {first} .. {last}{left}",
                names.len()
            )
        })
        .collect()
}

/// The script; each of `comments` becomes a `# ` line of the header.
pub fn show_script(plan: &Plan, opts: InstallOptions, comments: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/sh");
    let _ = writeln!(
        s,
        "# coolkprobe: {} probe(s) in group {}; run as root on the target",
        plan.probes.len(),
        plan.group
    );
    for p in &plan.probes {
        let spec = p.spec.replace(['\n', '\r'], " ");
        match &p.latency {
            Some(crate::compile::plan::Latency::Start { end, name: Some(_) }) => {
                let _ = writeln!(s, "#   {}: the entry of f{end}", p.event_name());
            }
            _ => {
                let _ = writeln!(s, "#   {}: {spec}", p.event_name());
            }
        }
        for w in whole_structs(p) {
            let _ = writeln!(s, "#     {w}");
        }
    }
    for c in comments {
        let _ = writeln!(s, "# {}", c.replace(['\n', '\r'], " "));
    }
    match opts.pid {
        Some(PidFilter { pid, follow: true }) => {
            let _ = writeln!(
                s,
                "# -p {pid}: process {pid}, its threads and the tasks it starts, in instance {}",
                plan.group
            );
        }
        Some(PidFilter { pid, follow: false }) => {
            let _ = writeln!(
                s,
                "# --tid {pid}: thread {pid} only, in instance {}",
                plan.group
            );
        }
        None => {}
    }
    s.push_str(
        "set -e\n\
         T=/sys/kernel/tracing\n\
         if [ ! -e \"$T/events\" ]; then\n\
         \tif ! mount -t tracefs nodev \"$T\" 2>/dev/null; then\n\
         \t\tT=/sys/kernel/debug/tracing\n\
         \t\t[ -e \"$T/events\" ] || mount -t debugfs nodev /sys/kernel/debug\n\
         \tfi\n\
         fi\n",
    );
    // With a pid filter, an instance of the script's own: set_event_pid
    // and options are per instance, so the machine's stay as they are.
    let inst = if let Some(p) = opts.pid {
        // An empty write to set_event_pid clears it (everything is
        // recorded): the process must exist for its threads to be listed.
        if p.follow {
            let _ = writeln!(
                s,
                "[ -d /proc/{0}/task ] || {{ echo 'no process {0}' >&2; exit 1; }}",
                p.pid
            );
        }
        let _ = writeln!(s, "I=$T/instances/{}", plan.group);
        let _ = writeln!(s, "mkdir $I");
        Some("$I")
    } else {
        None
    };
    install_atomically(&mut s, &commands::install(plan, opts), inst);
    let inst = inst.unwrap_or("$T");
    if plan.probes.iter().any(|p| commands::streamed(p, opts)) {
        let _ = writeln!(s, "# read the events:");
        let _ = writeln!(s, "#   cat {inst}/trace_pipe");
    }
    let counted: Vec<_> = plan
        .probes
        .iter()
        .filter(|p| !p.aggs.is_empty() && !commands::streamed(p, opts))
        .collect();
    if !counted.is_empty() {
        let _ = writeln!(s, "# read the aggregations (the kernel keeps counting):");
        for p in &counted {
            let (sys, ev) = commands::shown_event(p, &plan.group, opts);
            let _ = writeln!(s, "#   cat {inst}/events/{sys}/{ev}/hist");
        }
        s.push_str(
            "# one line per key: `{ __comm: dd, n: ~ 2^7 } hitcount: 3` is 3 events of\n\
             # task dd with n in (2^6, 2^7]; `n: ~ 100-199` a linear bucket; `vals=` sums\n\
             # follow hitcount; `Dropped:` counts events its full table (size=) lost\n",
        );
    }
    let _ = writeln!(s, "# remove the probes:");
    for w in commands::uninstall(plan, opts) {
        let _ = writeln!(s, "#   {}", w.to_shell("$T", inst));
    }
    if opts.pid.is_some() {
        let _ = writeln!(s, "#   rmdir $I");
    }
    s
}

/// The install writes, each after the count of writes tried so far,
/// with the trap that takes them back when one fails. The write that
/// failed is taken back too: a filter the kernel refuses replaces the
/// event's filter with its error text (a disabled filter).
fn install_atomically(s: &mut String, writes: &[Write], inst: Option<&str>) {
    let to_shell = |w: &Write| w.to_shell("$T", inst.unwrap_or("$T"));
    s.push_str(
        "# all or nothing: on a failure, what this script wrote is taken back\n\
         ckp_n=0\n\
         ckp_log=$(cat \"$T/error_log\" 2>/dev/null || :)\n\
         ckp_undo() {\n\
         \tckp_rc=$?\n\
         \tset +e\n\
         \ttrap - EXIT INT TERM HUP\n\
         \tckp_now=$(cat \"$T/error_log\" 2>/dev/null)\n\
         \t# the kernel's reason: the entry the failed write added (3 lines)\n\
         \t[ \"$ckp_now\" = \"$ckp_log\" ] || printf '%s\\n' \"$ckp_now\" | tail -n 3 >&2\n",
    );
    for (i, w) in writes.iter().enumerate().rev() {
        if let Some(u) = commands::undo(w) {
            let _ = writeln!(
                s,
                "\t[ \"$ckp_n\" -lt {} ] || {{ {}; }} 2>/dev/null",
                i + 1,
                to_shell(&u)
            );
        }
    }
    if let Some(i) = inst {
        // The script's own instance: what was set in it goes with it.
        let _ = writeln!(s, "\trmdir {i} 2>/dev/null");
    }
    let _ = writeln!(
        s,
        "\techo \"coolkprobe: stopped at write $ckp_n of {}; every write of this script is taken back\" >&2",
        writes.len(),
    );
    s.push_str(
        "\t[ \"$ckp_rc\" -ne 0 ] || ckp_rc=1\n\
         \texit \"$ckp_rc\"\n\
         }\n\
         trap ckp_undo EXIT\n\
         trap 'exit 130' INT TERM HUP\n",
    );
    for (i, w) in writes.iter().enumerate() {
        let _ = writeln!(s, "ckp_n={}", i + 1);
        let _ = writeln!(s, "{}", to_shell(w));
    }
    s.push_str("trap - EXIT INT TERM HUP\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::plan::{CompiledProbe, Target};

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

    /// `-S -p`: an instance of the script's own; nothing global but the
    /// definitions; a failure takes the instance back too.
    #[test]
    fn pid_script_uses_an_instance() {
        let s = show_script(
            &plan(),
            InstallOptions {
                pid: Some(PidFilter {
                    pid: 42,
                    follow: true,
                }),
                ..InstallOptions::default()
            },
            &[],
        );
        assert!(s.contains("I=$T/instances/coolkprobe_9\nmkdir $I\n"), "{s}");
        assert!(s.contains("echo '1' > $I/options/event-fork\n"), "{s}");
        assert!(
            s.contains("echo $(ls /proc/42/task) > $I/set_event_pid\n"),
            "{s}"
        );
        assert!(s.contains("echo '1' > $I/events/syscalls/sys_enter_getppid/enable"));
        assert!(s.contains("\trmdir $I 2>/dev/null\n"), "{s}");
        assert!(s.contains("#   cat $I/trace_pipe\n") && s.ends_with("#   rmdir $I\n"));
        assert!(!s.contains("$T/set_event_pid") && !s.contains("$T/options"));
    }
}

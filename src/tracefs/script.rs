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
use crate::compile::plan::Plan;

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
    }
    for c in comments {
        let _ = writeln!(s, "# {}", c.replace(['\n', '\r'], " "));
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
    install_atomically(&mut s, &commands::install(plan, opts));
    if plan.probes.iter().any(|p| commands::streamed(p, opts)) {
        let _ = writeln!(s, "# read the events:");
        let _ = writeln!(s, "#   cat $T/trace_pipe");
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
            let _ = writeln!(s, "#   cat $T/events/{sys}/{ev}/hist");
        }
        s.push_str(
            "# one line per key: `{ __comm: dd, n: ~ 2^7 } hitcount: 3` is 3 events of\n\
             # task dd with n in (2^6, 2^7]; `n: ~ 100-199` a linear bucket; `vals=` sums\n\
             # follow hitcount; `Dropped:` counts events its full table (size=) lost\n",
        );
    }
    let _ = writeln!(s, "# remove the probes:");
    for w in commands::uninstall(plan, opts) {
        let _ = writeln!(s, "#   {}", w.to_shell("$T"));
    }
    s
}

/// The install writes, each after the count of writes tried so far,
/// with the trap that takes them back when one fails. The write that
/// failed is taken back too: a filter the kernel refuses replaces the
/// event's filter with its error text (a disabled filter).
fn install_atomically(s: &mut String, writes: &[Write]) {
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
                u.to_shell("$T")
            );
        }
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
        let _ = writeln!(s, "{}", w.to_shell("$T"));
    }
    s.push_str("trap - EXIT INT TERM HUP\n");
}

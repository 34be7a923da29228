//! The `-S` output: a POSIX sh script that installs a plan on the target
//! as root, with reading and teardown shown as comments. The writes are
//! the ones a live session makes ([`super::commands`]).

use std::fmt::Write as _;

use super::commands::{self, InstallOptions};
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
    for w in commands::install(plan, opts) {
        let _ = writeln!(s, "{}", w.to_shell("$T"));
    }
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

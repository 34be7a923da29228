//! The `-S` output: a POSIX sh script that installs a plan on the target
//! as root, with reading and teardown shown as comments. The writes are
//! the ones a live session makes ([`super::commands`]).
//!
//! The install is all or nothing: when the kernel refuses a write (a
//! definition it cannot place, a filter it cannot parse), or the script
//! is interrupted, an exit trap takes back every write made so far, in
//! reverse order ([`commands::undo`]), prints the kernel's own reason
//! (the new entry of tracefs' `error_log`) and exits non-zero.
//!
//! For several kernels ([`fleet_script`]) the script first finds out
//! which kernel it runs on (its build-id, else its release and arch),
//! then installs, all or nothing, the plan compiled for that kernel's
//! types; on a kernel it has no plan for it says so and installs nothing.

use std::fmt::Write as _;

use super::commands::{self, sh_quote, InstallOptions, Write};
use super::PidFilter;
use crate::arch::Arch;
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
    probe_lines(&mut s, plan, comments, opts);
    s.push_str("set -e\n");
    s.push_str(MOUNT);
    let inst = instance(&mut s, plan, opts);
    install_atomically(&mut s, &commands::install(plan, opts), inst);
    reading(&mut s, plan, opts, inst);
    removal(&mut s, plan, opts, "", inst);
    s
}

/// One kernel a fleet script has a plan for, as the script tells it.
#[derive(Clone, Debug)]
pub struct ScriptKernel {
    /// How it is called in messages.
    pub name: String,
    /// `uname -r`.
    pub release: Option<String>,
    pub arch: Arch,
    /// Its GNU build-id, in hex.
    pub build_id: Option<String>,
}

/// One script for several kernels, each with the plan compiled for its
/// types (the same probes, events and group on each).
pub fn fleet_script(
    kernels: &[(ScriptKernel, &Plan)],
    opts: InstallOptions,
    comments: &[String],
) -> String {
    let Some((_, first)) = kernels.first() else {
        return String::new();
    };
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/sh");
    let _ = writeln!(
        s,
        "# coolkprobe: {} probe(s) in group {} for {} kernels; run as root on one of them",
        first.probes.len(),
        first.group,
        kernels.len()
    );
    probe_lines(&mut s, first, comments, opts);
    s.push_str("# kernels, each with the definitions compiled for its own types:\n");
    for (i, (k, _)) in kernels.iter().enumerate() {
        let id = match &k.build_id {
            Some(b) => format!("build-id {b}"),
            None => "no build-id: known by its release and arch".into(),
        };
        let _ = writeln!(s, "#   k{}: {} {} ({id})", i + 1, line(&k.name), k.arch);
    }
    s.push_str("set -e\n");
    s.push_str(BUILD_ID_FN);
    identify(&mut s, kernels);
    s.push_str(MOUNT);
    let inst = instance(&mut s, first, opts);
    s.push_str("case $K in\n");
    for (i, (_, plan)) in kernels.iter().enumerate() {
        let _ = writeln!(s, "{})", i + 1);
        install_atomically(&mut s, &commands::install(plan, opts), inst);
        s.push_str(";;\n");
    }
    s.push_str("esac\n");
    reading(&mut s, first, opts, inst);
    let removals: Vec<Vec<String>> = kernels
        .iter()
        .map(|(_, p)| {
            commands::uninstall(p, opts)
                .iter()
                .map(|w| w.to_shell("$T", inst.unwrap_or("$T")))
                .collect()
        })
        .collect();
    if removals.iter().all(|r| *r == removals[0]) {
        removal(&mut s, first, opts, "", inst);
    } else {
        for (i, (k, plan)) in kernels.iter().enumerate() {
            removal(
                &mut s,
                plan,
                opts,
                &format!(" on k{} ({})", i + 1, line(&k.name)),
                inst,
            );
        }
    }
    s
}

/// Text for one line of a comment or an `echo`.
fn line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn probe_lines(s: &mut String, plan: &Plan, comments: &[String], opts: InstallOptions) {
    for p in &plan.probes {
        match &p.latency {
            Some(crate::compile::plan::Latency::Start { end, name: Some(_) }) => {
                let _ = writeln!(s, "#   {}: the entry of f{end}", p.event_name());
            }
            _ => {
                let _ = writeln!(s, "#   {}: {}", p.event_name(), line(&p.spec));
            }
        }
        for w in whole_structs(p) {
            let _ = writeln!(s, "#     {w}");
        }
    }
    for c in comments {
        let _ = writeln!(s, "# {}", line(c));
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
}

/// With a pid filter, an instance of the script's own (`$I`):
/// set_event_pid and options are per instance, so the machine's stay as
/// they are.
fn instance(s: &mut String, plan: &Plan, opts: InstallOptions) -> Option<&'static str> {
    let p = opts.pid?;
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
}

/// Finds tracefs, mounting it where it is not.
const MOUNT: &str = "T=/sys/kernel/tracing\n\
     if [ ! -e \"$T/events\" ]; then\n\
     \tif ! mount -t tracefs nodev \"$T\" 2>/dev/null; then\n\
     \t\tT=/sys/kernel/debug/tracing\n\
     \t\t[ -e \"$T/events\" ] || mount -t debugfs nodev /sys/kernel/debug\n\
     \tfi\n\
     fi\n";

/// `ckp_build_id FILE`: the GNU build-id among the ELF notes of FILE
/// (`/sys/kernel/notes`), in hex. Each note is namesz, descsz and type
/// (4 bytes each), then the name and the desc, each padded to 4 bytes;
/// the build-id is the desc of note `GNU` of type 3 (NT_GNU_BUILD_ID).
/// The words are read little-endian, as every arch coolkprobe knows
/// stores them.
pub const BUILD_ID_FN: &str = r#"ckp_build_id() {
	set -- $(od -An -v -tx1 "$1" 2>/dev/null)
	while [ $# -ge 12 ]; do
		n=$((0x$4$3$2$1)) d=$((0x$8$7$6$5)) t=$((0x${12}${11}${10}$9))
		shift 12
		np=$(((n + 3) / 4 * 4)) dp=$(((d + 3) / 4 * 4))
		[ $# -ge $((np + dp)) ] || return 1
		if [ $n -eq 4 ] && [ $t -eq 3 ] && [ "$1$2$3$4" = 474e5500 ]; then
			shift 4
			id=
			while [ $d -gt 0 ]; do id=$id$1; shift; d=$((d - 1)); done
			echo "$id"
			return 0
		fi
		shift $((np + dp))
	done
	return 1
}
"#;

/// How `uname -m` names an arch, as a `case` pattern.
fn machine_pattern(a: Arch) -> &'static str {
    match a {
        Arch::X86_64 => "x86_64",
        Arch::Aarch64 => "aarch64|arm64",
        Arch::Arm => "arm*",
        Arch::Riscv64 => "riscv64",
    }
}

/// Sets `K` to the number of the kernel the script runs on: the one with
/// its build-id; else, when the build-id cannot be read, the one of its
/// release and arch; else, when no kernel has its build-id, the one of its
/// release and arch whose types came without a build-id (a kernel of that
/// release with another build-id is another build: its offsets may
/// differ). On no match: a message naming the kernels it knows, exit 1,
/// nothing installed.
fn identify(s: &mut String, kernels: &[(ScriptKernel, &Plan)]) {
    s.push_str(
        "# Which kernel is this? Its build-id, else its release and arch.\n\
         R=$(uname -r)\n\
         M=$(uname -m)\n\
         B=$(ckp_build_id /sys/kernel/notes) || B=\n\
         case $M in\n",
    );
    for a in Arch::ALL {
        let _ = writeln!(s, "{}) A={} ;;", machine_pattern(a), a);
    }
    s.push_str("*) A=$M ;;\nesac\nK=\n");
    if kernels.iter().any(|(k, _)| k.build_id.is_some()) {
        s.push_str("case $B in\n");
        for (i, (k, _)) in kernels.iter().enumerate() {
            if let Some(b) = &k.build_id {
                let _ = writeln!(s, "{}) K={} ;;", sh_quote(b), i + 1);
            }
        }
        s.push_str("esac\n");
    }
    s.push_str("if [ -z \"$K\" ] && [ -z \"$B\" ]; then\n\tcase \"$R $A\" in\n");
    for (i, (k, _)) in kernels.iter().enumerate() {
        if let Some(r) = &k.release {
            let _ = writeln!(
                s,
                "\t{}) K={} ;;",
                sh_quote(&format!("{r} {}", k.arch)),
                i + 1
            );
        }
    }
    s.push_str(
        "\tesac\n\
         \t[ -z \"$K\" ] || echo \"coolkprobe: cannot read this kernel's build-id (/sys/kernel/notes): the definitions are chosen by its release and arch, $R $A\" >&2\n\
         elif [ -z \"$K\" ]; then\n\
         \tcase \"$R $A\" in\n",
    );
    for (i, (k, _)) in kernels.iter().enumerate() {
        let Some(r) = &k.release else { continue };
        let pattern = sh_quote(&format!("{r} {}", k.arch));
        match &k.build_id {
            None => {
                let _ = writeln!(s, "\t{pattern}) K={} ;;", i + 1);
            }
            Some(b) => {
                let msg = format!(
                    "coolkprobe: this kernel, {r} {}, is build $B; this script has the types of build {b} of that release, whose offsets may differ: nothing installed",
                    k.arch
                );
                let _ = writeln!(
                    s,
                    "\t{pattern})\n\t\techo \"{}\" >&2\n\t\texit 1\n\t\t;;",
                    msg.replace('"', "\\\"")
                );
            }
        }
    }
    s.push_str(
        "\tesac\n\
         \t[ -z \"$K\" ] || echo \"coolkprobe: no types of this build ($B) here: the definitions are chosen by its release and arch, $R $A\" >&2\n\
         fi\n\
         if [ -z \"$K\" ]; then\n",
    );
    let known: Vec<String> = kernels
        .iter()
        .map(|(k, _)| format!("{} {}", k.name, k.arch))
        .collect();
    let msg = format!(
        "coolkprobe: no definitions for this kernel ($R $A, build-id ${{B:-unknown}}): this script has them for {}; nothing installed",
        known.join(", ")
    );
    let _ = writeln!(
        s,
        "\techo \"{}\" >&2\n\texit 1\nfi",
        line(&msg).replace(['"', '`'], "'")
    );
    s.push_str("echo \"coolkprobe: installing the definitions for k$K ($R $A)\" >&2\n");
}

/// How to read what the probes give.
fn reading(s: &mut String, plan: &Plan, opts: InstallOptions, inst: Option<&str>) {
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
}

/// The writes that remove `plan`, as comments; `on` says for which kernel.
fn removal(s: &mut String, plan: &Plan, opts: InstallOptions, on: &str, inst: Option<&str>) {
    let _ = writeln!(s, "# remove the probes{on}:");
    for w in commands::uninstall(plan, opts) {
        let _ = writeln!(s, "#   {}", w.to_shell("$T", inst.unwrap_or("$T")));
    }
    if inst.is_some() {
        let _ = writeln!(s, "#   rmdir $I");
    }
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

    /// A fleet script with `-p`: the instance is made once the kernel is
    /// identified (a refusal leaves nothing), each kernel's install and
    /// its trap use it, the removal takes it away.
    #[test]
    fn fleet_pid_script_makes_its_instance_after_identifying() {
        let p = plan();
        let k = |n: &str, a: Arch| ScriptKernel {
            name: n.into(),
            release: Some(n.into()),
            arch: a,
            build_id: None,
        };
        let s = fleet_script(
            &[
                (k("6.1.0-1", Arch::X86_64), &p),
                (k("6.12.0-1", Arch::Aarch64), &p),
            ],
            InstallOptions {
                pid: Some(PidFilter {
                    pid: 42,
                    follow: false,
                }),
                ..InstallOptions::default()
            },
            &[],
        );
        let at = |what: &str| {
            s.find(what)
                .unwrap_or_else(|| panic!("no {what:?} in:\n{s}"))
        };
        assert!(
            at("nothing installed\"") < at("\nT=/sys/kernel/tracing\n"),
            "{s}"
        );
        assert!(at("\nT=/sys/kernel/tracing\n") < at("I=$T/instances/coolkprobe_9\nmkdir $I\n"));
        assert!(at("mkdir $I\n") < at("case $K in\n"), "{s}");
        assert_eq!(s.matches("\trmdir $I 2>/dev/null\n").count(), 2, "{s}");
        assert_eq!(
            s.matches("echo '42' > $I/set_event_pid\n").count(),
            2,
            "{s}"
        );
        assert!(
            s.contains("#   cat $I/trace_pipe\n") && s.ends_with("#   rmdir $I\n"),
            "{s}"
        );
        assert!(
            !s.contains("$T/set_event_pid") && !s.contains("$T/options"),
            "{s}"
        );
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

//! What is read from the running kernel, as opposed to a type source or a
//! spec: its functions (/proc/kallsyms, the kprobe blacklist,
//! `available_filter_functions`, its build configuration) and the checks
//! made against them, the syscalls its tracepoints describe, and what its
//! tracefs says it supports. Nothing here mounts or writes anything.

pub mod checks;
pub mod errno;
pub mod kallsyms;
pub mod symbols;
pub mod syscalls;

pub use checks::check;
pub use symbols::KernelSymbols;

use crate::tracefs::Tracefs;

/// Where the running kernel's probe events take `$argN`, from its
/// tracefs README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argn {
    /// At a kprobe's entry: the README lists `$arg<N>` (Linux 4.20+ on
    /// x86_64).
    pub entry: bool,
    /// In return probes, the entry's arguments kept for the return (Linux
    /// 6.10, commit 25f00e40ce79 "tracing/probes: Support $argN in return
    /// probe (kprobe and fprobe)", also in later 6.6 stable kernels): the
    /// README says `kernel return probes support: $retval, $arg<N>, $comm`.
    pub ret: bool,
}

impl Argn {
    pub fn from_readme(readme: &str) -> Argn {
        Argn {
            entry: readme.contains("$arg<N>"),
            ret: readme.lines().any(|l| {
                l.trim_start().starts_with("kernel return probes support:") && l.contains("$arg<N>")
            }),
        }
    }
}

/// Where the running kernel takes `$argN`; None when tracefs is not
/// readable.
pub fn argn() -> Option<Argn> {
    let readme = Tracefs::find()?.read("README").ok()?;
    Some(Argn::from_readme(&readme))
}

#[cfg(test)]
mod tests {
    use super::Argn;

    /// The README lines of Debian's 6.1 and 6.12 kernels (trace.c's
    /// readme_msg).
    #[test]
    fn return_probe_argn_from_the_readme() {
        let k61 = "\t     args: <name>=fetcharg[:type]\n\
                   \t fetcharg: (%<register>|$<efield>), @<address>, @<symbol>[+|-<offset>],\n\
                   \t           $stack<index>, $stack, $retval, $comm, $arg<N>,\n\
                   \t           +|-[u]<offset>(<fetcharg>), \\imm-value, \\\"imm-string\"\n\
                   \t     type: s8/16/32/64, u8/16/32/64, x8/16/32/64, char, string, symbol,\n";
        let k612 = "\t fetcharg: (%<register>|$<efield>), @<address>, @<symbol>[+|-<offset>],\n\
                    \t           $stack<index>, $stack, $retval, $comm, $arg<N>,\n\
                    \t           <argname>[->field[->field|.field...]],\n\
                    \t           +|-[u]<offset>(<fetcharg>), \\imm-value, \\\"imm-string\"\n\
                    \t     kernel return probes support: $retval, $arg<N>, $comm\n\
                    \t     type: s8/16/32/64, u8/16/32/64, x8/16/32/64, char, string, symbol,\n";
        assert_eq!(
            Argn::from_readme(k61),
            Argn {
                entry: true,
                ret: false
            }
        );
        assert_eq!(
            Argn::from_readme(k612),
            Argn {
                entry: true,
                ret: true
            }
        );
    }
}

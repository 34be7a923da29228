//! What the target kernel would refuse of a probe definition, checked
//! before anything is installed, where the compiler can tell: the register
//! names of the target arch (the kernel's `regoffset_table`, matched
//! exactly), the instruction alignment of a place inside a function on
//! arches with fixed-size instructions, and the limits of
//! kernel/trace/trace_probe.h (MAX_TRACE_ARGS, MAX_ARGSTR_LEN,
//! MAX_ARG_NAME_LEN, the reserved field names; a fetch program's 16
//! instructions take every dereference 63 characters can write).

use crate::arch::Arch;
use crate::diag::{did_you_mean, Code, Diagnostic};
use crate::fetch::FetchArg;
use crate::spec::{Span, Spanned};

/// Arguments of one probe (MAX_TRACE_ARGS).
pub const MAX_ARGS: usize = 128;
/// Characters of one fetcharg, type included (MAX_ARGSTR_LEN).
pub const MAX_FETCHARG_LEN: usize = 63;
/// Characters of an argument's name (MAX_ARG_NAME_LEN).
pub const MAX_NAME_LEN: usize = 32;

/// Names every probe event has, which the kernel refuses for an argument
/// (trace_probe.c, reserved_field_names).
const RESERVED: &[&str] = &[
    "common_type",
    "common_flags",
    "common_preempt_count",
    "common_pid",
    "common_tgid",
    "__probe_ip",
    "__probe_ret_ip",
    "__probe_func",
];

fn error(span: Span, msg: impl Into<String>) -> Diagnostic {
    Diagnostic::error(span, msg)
}

/// Every `%REG` of a raw fetcharg (`text`, written at `span`) is a
/// register of `arch`, as the kernel names them. The text is scanned, not
/// the fetch IR, so that each register is pointed at where it is written
/// (and so that text the IR keeps verbatim is checked too).
pub fn raw_registers(text: &str, span: Span, arch: Arch) -> Result<(), Diagnostic> {
    // `\"imm-string"`: text, not registers.
    if text.starts_with("\\\"") {
        return Ok(());
    }
    let b = text.as_bytes();
    for (i, _) in text.match_indices('%') {
        let len = b[i + 1..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        let name = &text[i + 1..i + 1 + len];
        let at = Span::new(span.start + i, span.start + i + 1 + len);
        if name.is_empty() {
            return Err(error(at, "`%` without a register name"));
        }
        if !arch.registers().contains(&name) {
            let regs = arch.registers();
            let help = did_you_mean(name, regs.iter().copied(), "%").unwrap_or_else(|| {
                format!(
                    "{arch}'s registers are {}",
                    regs.iter()
                        .map(|r| format!("%{r}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            });
            return Err(error(at, format!("`%{name}` is not a register of {arch}"))
                .with_help(help)
                .with_code(Code::Arch));
        }
    }
    Ok(())
}

/// A place `offset` bytes into a function is on an instruction: where the
/// arch's instructions have a fixed size, a multiple of it. `user`: a
/// uprobe (user code on arm may be Thumb, 2-byte instructions).
pub fn alignment(offset: u64, arch: Arch, user: bool, span: Span) -> Result<(), Diagnostic> {
    let align = match arch {
        Arch::Arm if user => Some(2),
        a => a.insn_align(),
    };
    let Some(a) = align else { return Ok(()) };
    if offset.is_multiple_of(a) {
        return Ok(());
    }
    let before = offset - offset % a;
    Err(error(
        span,
        format!(
            "`{offset:#x}` is not on an instruction: {arch} instructions are {a} bytes, so a place inside a function is a multiple of {a}"
        ),
    )
    .with_help(format!(
        "the instructions around it start at {before:#x} and {:#x}",
        before + a
    ))
    .with_code(Code::Arch))
}

/// One named value against the kernel's limits: its name (length, not a
/// field every event has), its fetcharg's length.
pub fn arg_limits(name: &Spanned<String>, fetch: &FetchArg, span: Span) -> Result<(), Diagnostic> {
    let n = &name.node;
    if n.len() > MAX_NAME_LEN {
        return Err(error(
            name.span,
            format!(
                "the name `{n}` is {} characters long: the kernel takes at most {MAX_NAME_LEN}",
                n.len()
            ),
        ));
    }
    if RESERVED.contains(&n.as_str()) {
        return Err(error(
            name.span,
            format!("`{n}` is a field every probe event has: the kernel refuses it as a name"),
        )
        .with_help("name the value otherwise"));
    }
    let text = fetch.fetch_text();
    if text.len() > MAX_FETCHARG_LEN {
        return Err(error(
            span,
            format!(
                "`{text}` is {} characters long: the kernel takes at most {MAX_FETCHARG_LEN} for one fetcharg",
                text.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(text: &str, arch: Arch) -> Result<(), String> {
        raw_registers(text, Span::new(0, text.len()), arch).map_err(|d| {
            let sp = d.span.unwrap();
            format!("{} | {} | {:?}", &text[sp.start..sp.end], d.message, d.help)
        })
    }

    #[test]
    fn registers_of_the_target() {
        assert!(regs("+0(%si):string", Arch::X86_64).is_ok());
        assert!(regs("+8(%sp):u64", Arch::Aarch64).is_ok());
        assert!(regs("%orig_ax", Arch::X86_64).is_ok());
        assert!(regs("%ORIG_r0", Arch::Arm).is_ok());
        let e = regs("+0(%si):string", Arch::Aarch64).unwrap_err();
        assert!(
            e.starts_with("%si | `%si` is not a register of aarch64"),
            "{e}"
        );
        let e = regs("%rdi", Arch::X86_64).unwrap_err();
        assert!(e.contains("did you mean `%di`"), "{e}");
        let e = regs("%DI", Arch::X86_64).unwrap_err();
        assert!(e.starts_with("%DI |"), "{e}");
        assert!(regs("+4(%)", Arch::X86_64)
            .unwrap_err()
            .contains("without a register name"));
    }

    #[test]
    fn instruction_alignment() {
        let sp = Span::new(0, 1);
        assert!(alignment(2, Arch::X86_64, false, sp).is_ok());
        assert!(alignment(8, Arch::Aarch64, false, sp).is_ok());
        let e = alignment(2, Arch::Aarch64, false, sp).unwrap_err();
        assert!(
            e.message.contains("aarch64 instructions are 4 bytes"),
            "{e}"
        );
        assert!(e.help.unwrap().contains("0x0 and 0x4"));
        assert!(alignment(2, Arch::Riscv64, false, sp).is_ok());
        assert!(alignment(3, Arch::Riscv64, false, sp).is_err());
        assert!(alignment(2, Arch::Arm, true, sp).is_ok());
        assert!(alignment(2, Arch::Arm, false, sp).is_err());
    }

    #[test]
    fn the_kernels_limits() {
        let name = |n: &str| Spanned {
            node: n.to_string(),
            span: Span::new(0, n.len()),
        };
        let sp = Span::new(0, 1);
        let ok = FetchArg::raw("a", "+8(%si):u32");
        assert!(arg_limits(&name("a"), &ok, sp).is_ok());
        assert!(arg_limits(&name(&"n".repeat(32)), &ok, sp).is_ok());
        let e = arg_limits(&name(&"n".repeat(33)), &ok, sp).unwrap_err();
        assert!(e.message.contains("at most 32"), "{e}");
        let e = arg_limits(&name("common_pid"), &ok, sp).unwrap_err();
        assert!(e.message.contains("every probe event has"), "{e}");
        let long = FetchArg::raw("a", &format!("+{}(%si):u32", "1".repeat(60)));
        assert!(arg_limits(&name("a"), &long, sp)
            .unwrap_err()
            .message
            .contains("at most 63"));
    }
}

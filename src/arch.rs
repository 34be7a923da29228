//! One small table per architecture: where arguments live, how wide a
//! pointer is. The compiler asks nothing else of the arch.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
    Arm,
    Riscv64,
}

struct Table {
    name: &'static str,
    aliases: &'static [&'static str],
    /// Argument registers in calling-convention order, as ftrace spells them.
    arg_regs: &'static [&'static str],
    /// Every register name a fetcharg may use (`%NAME`): the kernel's
    /// `regoffset_table` of arch/*/kernel/ptrace.c, matched exactly.
    regs: &'static [&'static str],
    /// Where a probe may sit inside a function: a multiple of this many
    /// bytes from its start, on arches whose instructions have fixed sizes
    /// (riscv: 2, its compressed instructions). None: any byte may start
    /// one (x86), only the kernel can tell.
    insn_align: Option<u64>,
    pointer_size: u32,
    /// The syscall wrapper prefix: `__x64_sys_openat(struct pt_regs *)`.
    syscall_prefix: &'static str,
    /// Where a wrapped syscall's arguments sit in `struct pt_regs`:
    /// (member, index into it when it is an array of u64). Empty where
    /// syscalls are not wrapped (arm: `sys_openat` takes its own args).
    syscall_args: &'static [(&'static str, u64)],
}

const X86_64: Table = Table {
    name: "x86_64",
    aliases: &["x86", "amd64", "x86-64"],
    arg_regs: &["%di", "%si", "%dx", "%cx", "%r8", "%r9"],
    regs: &[
        "r15", "r14", "r13", "r12", "r11", "r10", "r9", "r8", "bx", "cx", "dx", "si", "di", "bp",
        "ax", "orig_ax", "ip", "cs", "flags", "sp", "ss",
    ],
    insn_align: None,
    pointer_size: 8,
    syscall_prefix: "__x64_sys_",
    syscall_args: &[
        ("di", 0),
        ("si", 0),
        ("dx", 0),
        ("r10", 0),
        ("r8", 0),
        ("r9", 0),
    ],
};
const AARCH64: Table = Table {
    name: "aarch64",
    aliases: &["arm64"],
    arg_regs: &["%x0", "%x1", "%x2", "%x3", "%x4", "%x5", "%x6", "%x7"],
    regs: &[
        "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
        "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26",
        "x27", "x28", "x29", "x30", "lr", "sp", "pc", "pstate",
    ],
    insn_align: Some(4),
    pointer_size: 8,
    syscall_prefix: "__arm64_sys_",
    syscall_args: &[
        ("regs", 0),
        ("regs", 1),
        ("regs", 2),
        ("regs", 3),
        ("regs", 4),
        ("regs", 5),
    ],
};
const ARM: Table = Table {
    name: "arm",
    aliases: &["arm32", "armhf", "armv7"],
    arg_regs: &["%r0", "%r1", "%r2", "%r3"],
    regs: &[
        "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "fp", "ip", "sp", "lr",
        "pc", "cpsr", "ORIG_r0",
    ],
    // ARM-mode kernels (a Thumb-2 kernel would take 2).
    insn_align: Some(4),
    pointer_size: 4,
    syscall_prefix: "sys_",
    syscall_args: &[],
};
const RISCV64: Table = Table {
    name: "riscv64",
    aliases: &["riscv"],
    arg_regs: &["%a0", "%a1", "%a2", "%a3", "%a4", "%a5", "%a6", "%a7"],
    regs: &[
        "epc", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
        "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
        "t5", "t6", "status", "badaddr", "cause", "orig_a0",
    ],
    insn_align: Some(2),
    pointer_size: 8,
    syscall_prefix: "__riscv_sys_",
    syscall_args: &[
        ("a0", 0),
        ("a1", 0),
        ("a2", 0),
        ("a3", 0),
        ("a4", 0),
        ("a5", 0),
    ],
};

impl Arch {
    pub const ALL: [Arch; 4] = [Arch::X86_64, Arch::Aarch64, Arch::Arm, Arch::Riscv64];

    fn table(self) -> &'static Table {
        match self {
            Arch::X86_64 => &X86_64,
            Arch::Aarch64 => &AARCH64,
            Arch::Arm => &ARM,
            Arch::Riscv64 => &RISCV64,
        }
    }

    /// The architecture this binary runs on.
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else if cfg!(target_arch = "arm") {
            Arch::Arm
        } else if cfg!(target_arch = "riscv64") {
            Arch::Riscv64
        } else {
            Arch::X86_64
        }
    }

    pub fn name(self) -> &'static str {
        self.table().name
    }

    /// Argument registers, `%di` style, in order.
    pub fn arg_regs(self) -> &'static [&'static str] {
        self.table().arg_regs
    }

    /// The register holding argument `n` (0-based), if the arch passes it in one.
    pub fn arg_reg(self, n: usize) -> Option<&'static str> {
        self.table().arg_regs.get(n).copied()
    }

    /// The register names the kernel's fetchargs take (`di`, `x0`), without `%`.
    pub fn registers(self) -> &'static [&'static str] {
        self.table().regs
    }

    /// The instruction alignment a probe inside a kernel function must
    /// keep, where the arch's instructions have fixed sizes.
    pub fn insn_align(self) -> Option<u64> {
        self.table().insn_align
    }

    pub fn pointer_size(self) -> u32 {
        self.table().pointer_size
    }

    pub fn syscall_prefix(self) -> &'static str {
        self.table().syscall_prefix
    }

    /// The syscall behind a wrapper symbol (`__x64_sys_openat` → `openat`),
    /// on arches whose syscalls receive a `struct pt_regs *`.
    pub fn wrapped_syscall(self, symbol: &str) -> Option<&str> {
        if self.table().syscall_args.is_empty() {
            return None;
        }
        symbol
            .strip_prefix(self.table().syscall_prefix)
            .filter(|s| !s.is_empty() && !s.contains('.'))
    }

    /// Where syscall argument `n` sits in `struct pt_regs`: a member and
    /// an index into it (arm64 keeps `u64 regs[31]`).
    pub fn syscall_arg(self, n: usize) -> Option<(&'static str, u64)> {
        self.table().syscall_args.get(n).copied()
    }

    /// How many arguments a syscall can have (six on every arch).
    pub fn syscall_arg_count(self) -> usize {
        self.table().syscall_args.len()
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown architecture `{0}` (known: x86_64/x86, aarch64/arm64, arm, riscv64)")]
pub struct UnknownArch(pub String);

impl FromStr for Arch {
    type Err = UnknownArch;
    fn from_str(s: &str) -> Result<Arch, UnknownArch> {
        let l = s.to_ascii_lowercase();
        Arch::ALL
            .into_iter()
            .find(|a| a.table().name == l || a.table().aliases.contains(&l.as_str()))
            .ok_or_else(|| UnknownArch(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        assert_eq!("x86".parse::<Arch>().unwrap(), Arch::X86_64);
        assert_eq!("arm64".parse::<Arch>().unwrap(), Arch::Aarch64);
        assert_eq!("ARM".parse::<Arch>().unwrap(), Arch::Arm);
        assert_eq!("riscv64".parse::<Arch>().unwrap(), Arch::Riscv64);
        assert!("mips".parse::<Arch>().is_err());
    }

    #[test]
    fn registers() {
        assert_eq!(Arch::X86_64.arg_reg(0), Some("%di"));
        assert_eq!(Arch::X86_64.arg_reg(5), Some("%r9"));
        assert_eq!(Arch::X86_64.arg_reg(6), None);
        assert_eq!(Arch::Aarch64.arg_reg(7), Some("%x7"));
        assert_eq!(Arch::Arm.arg_reg(4), None);
        assert_eq!(Arch::Riscv64.arg_reg(0), Some("%a0"));
        // The argument registers are among the kernel's names.
        for a in Arch::ALL {
            for r in a.arg_regs() {
                assert!(a.registers().contains(&&r[1..]), "{a} {r}");
            }
        }
        assert!(!Arch::Aarch64.registers().contains(&"si"));
        assert!(!Arch::X86_64.registers().contains(&"rdi"));
    }
}

//! What a syscall's argument is, as far as a fetch is concerned. The
//! arguments come from the running kernel's `syscalls:sys_enter_*`
//! tracepoint format (see `kernel::syscalls`): BTF has the wrapper
//! (`__x64_sys_openat(const struct pt_regs *)`) but not the syscall's own
//! prototype (`__do_sys_openat` is inlined away).

/// Finds a syscall's arguments by its name (`openat`).
pub type Lookup = dyn Fn(&str) -> Option<Vec<SysParam>>;

/// One argument of a syscall, as its tracepoint format spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysParam {
    pub name: String,
    /// The C type as written: `const char *`, `int`, `struct open_how *`.
    pub ctype: String,
    pub size: u32,
    pub signed: bool,
}

/// What such a C type is, as far as a fetch is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SysType<'a> {
    Int {
        size: u32,
        signed: bool,
    },
    /// `char *`: a string in user memory.
    UserString,
    /// `struct T *` (or union): a member walk may start here.
    UserComposite {
        union: bool,
        name: &'a str,
    },
    /// Any other pointer: shown as an address.
    OtherPointer,
}

impl SysParam {
    pub fn kind(&self) -> SysType<'_> {
        let t = self.ctype.trim();
        let Some(pointee) = t.strip_suffix('*') else {
            // The format stores every argument as an `unsigned long`
            // (`int dfd` is `size:8; signed:0`): the C type says how much
            // of the register is the value.
            let (size, signed) = c_int(t).unwrap_or((self.size, self.signed));
            return SysType::Int { size, signed };
        };
        let words: Vec<&str> = pointee
            .split_whitespace()
            .filter(|w| !matches!(*w, "const" | "volatile" | "__user" | "restrict"))
            .collect();
        match words.as_slice() {
            ["char"] | ["unsigned", "char"] | ["signed", "char"] => SysType::UserString,
            ["struct", name] => SysType::UserComposite { union: false, name },
            ["union", name] => SysType::UserComposite { union: true, name },
            _ => SysType::OtherPointer,
        }
    }
}

/// Width and signedness of the integer types syscalls are declared with.
fn c_int(t: &str) -> Option<(u32, bool)> {
    let t = t.strip_prefix("const ").unwrap_or(t);
    Some(match t {
        "int" | "pid_t" | "key_serial_t" | "clockid_t" | "timer_t" | "mqd_t" | "rwf_t"
        | "__s32" | "s32" | "int32_t" => (4, true),
        "unsigned int" | "unsigned" | "u32" | "__u32" | "uid_t" | "gid_t" | "qid_t"
        | "uint32_t" => (4, false),
        "umode_t" | "unsigned short" | "u16" | "__u16" | "old_uid_t" | "old_gid_t" => (2, false),
        "short" | "s16" | "__s16" => (2, true),
        "long"
        | "long long"
        | "loff_t"
        | "off_t"
        | "ssize_t"
        | "time_t"
        | "s64"
        | "__s64"
        | "__kernel_old_time_t" => (8, true),
        "unsigned long" | "unsigned long long" | "size_t" | "u64" | "__u64" | "aio_context_t" => {
            (8, false)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers() {
        let k = |c: &str| {
            SysParam {
                name: "x".into(),
                ctype: c.into(),
                size: 8,
                signed: false,
            }
            .kind()
            .clone()
            .eq(&SysType::UserComposite {
                union: false,
                name: "open_how",
            })
        };
        assert!(k("struct open_how *"));
        assert!(!k("struct open_how"));
        let p = SysParam {
            name: "buf".into(),
            ctype: "void *".into(),
            size: 8,
            signed: false,
        };
        assert_eq!(p.kind(), SysType::OtherPointer);
    }
}

//! What a syscall takes, from the running kernel's `syscalls:sys_enter_*`
//! tracepoint format. BTF has the wrapper (`__x64_sys_openat(const struct
//! pt_regs *)`) but not the syscall's own prototype (`__do_sys_openat` is
//! inlined away), so the format file is where names and C types live.

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

/// The arguments in a `sys_enter_*` format file: every field after the
/// common ones and `__syscall_nr`.
pub fn parse_format(text: &str) -> Vec<SysParam> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("field:") else {
            continue;
        };
        let mut decl = "";
        let (mut size, mut signed) = (0, false);
        for part in rest.split(';') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("size:") {
                size = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = part.strip_prefix("signed:") {
                signed = v.trim() == "1";
            } else if !part.contains(':') && decl.is_empty() {
                decl = part;
            }
        }
        // `const char * filename`: the name is the last word.
        let Some(cut) = decl.rfind(|c: char| c.is_whitespace() || c == '*') else {
            continue;
        };
        let (ctype, name) = (decl[..=cut].trim(), decl[cut + 1..].trim());
        if name.is_empty() || name.starts_with("common_") || name == "__syscall_nr" {
            continue;
        }
        out.push(SysParam {
            name: name.to_string(),
            ctype: ctype.to_string(),
            size,
            signed,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// events/syscalls/sys_enter_openat/format of this machine's 6.18.
    const OPENAT: &str = "name: sys_enter_openat
ID: 702
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;

print fmt: \"dfd: 0x%08lx, filename: 0x%08lx, flags: 0x%08lx, mode: 0x%08lx\", ...
";

    #[test]
    fn openat() {
        let p = parse_format(OPENAT);
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["dfd", "filename", "flags", "mode"]);
        assert_eq!(p[1].ctype, "const char *");
        assert_eq!(p[1].kind(), SysType::UserString);
        assert_eq!(p[0].ctype, "int");
        assert_eq!(
            p[0].kind(),
            SysType::Int {
                size: 4,
                signed: true
            }
        );
        assert_eq!(
            p[3].kind(),
            SysType::Int {
                size: 2,
                signed: false
            }
        );
    }

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

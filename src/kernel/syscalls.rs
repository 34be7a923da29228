//! A syscall's arguments, from the running kernel's
//! `syscalls:sys_enter_NAME` tracepoint format: BTF has the wrapper
//! (`__x64_sys_openat(const struct pt_regs *)`) but not the syscall's own
//! prototype, so the format file is where names and C types live.

use crate::compile::syscall::SysParam;
use crate::tracefs::format::EventFormat;
use crate::tracefs::Tracefs;

/// The arguments of syscall `name` (`openat`) on the running kernel.
pub fn params(name: &str) -> Option<Vec<SysParam>> {
    let text = Tracefs::find()?
        .read(&format!("events/syscalls/sys_enter_{name}/format"))
        .ok()?;
    Some(from_format(&EventFormat::parse(&text).ok()?))
}

/// The arguments in a `sys_enter_*` format: every field after the common
/// ones and `__syscall_nr`.
pub fn from_format(f: &EventFormat) -> Vec<SysParam> {
    f.own_fields()
        .filter(|field| field.name != "__syscall_nr")
        .map(|field| SysParam {
            name: field.name.clone(),
            ctype: field.type_text.clone(),
            size: field.size as u32,
            signed: field.signed,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::syscall::SysType;

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
        let p = from_format(&EventFormat::parse(OPENAT).unwrap());
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
}

//! Numbers the kernel's headers name but a value's C type does not: a
//! few members and typedefs that people who trace the kernel read most
//! (README, "Values by name"). Chosen by what is probed most: opens
//! (`file->f_flags`, `open_how->flags`: the open flags), sockets
//! (`skc_state`: a TCP state, `skc_family`: an address family) and
//! allocations (`gfp_t`). Each table is the target's own where the target
//! has it (the TCP states are an anonymous enum in BTF; the allocation
//! flags are the running kernel's `kmem:kmalloc` print format), and
//! user-API constants only where they are stable (`O_*`, `AF_*`).

use std::sync::Arc;

use crate::arch::Arch;
use crate::types::{resolve, Type, TypeId, TypeSource};

use super::names::{enum_table, mask};
use super::plan::{NameEntry, NameTable, Names};
use super::Result;

/// What the compiler knows beyond the types.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// The open flags of the target arch.
    arch: Option<Arch>,
    /// `gfp_t`'s names, from the running kernel (`kmem:kmalloc`'s
    /// `__print_flags`), when it is the target.
    pub gfp: Option<Arc<NameTable>>,
}

impl Known {
    pub fn new(arch: Arch, gfp: Option<Arc<NameTable>>) -> Known {
        Known {
            arch: Some(arch),
            gfp,
        }
    }

    /// Names for a value of type `ty`, the member `member` of a struct.
    pub(super) fn for_value(
        &self,
        src: &dyn TypeSource,
        ty: TypeId,
        member: Option<(&str, &str)>,
    ) -> Result<Option<Names>> {
        if let Some(g) = &self.gfp {
            if has_typedef(src, ty, "gfp_t")? {
                return Ok(Some(Names::Table(g.clone())));
            }
        }
        let size = match resolve(src, ty)?.1 {
            Type::Int(i) => i.size,
            _ => return Ok(None),
        };
        let table = match member {
            Some(("sock_common", "skc_state")) => {
                let Some(id) = src.find_enumerator("TCP_ESTABLISHED")? else {
                    return Ok(None);
                };
                let Type::Enum { values, .. } = resolve(src, id)?.1 else {
                    return Ok(None);
                };
                enum_table("TCP state".into(), size, &values)
            }
            Some(("sock_common", "skc_family")) => table("address family", size, false, AF),
            Some(("file", "f_flags") | ("open_how", "flags") | ("open_flags", "open_flag")) => {
                match self.arch {
                    Some(a) => open_flags(a, size),
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(Names::Table(Arc::new(table))))
    }
}

/// Whether `ty` is, or is a typedef chain through, `name`.
fn has_typedef(src: &dyn TypeSource, ty: TypeId, name: &str) -> Result<bool> {
    let mut cur = ty;
    for _ in 0..16 {
        match src.get(cur)? {
            Type::Typedef { name: n, target } => {
                if n == name {
                    return Ok(true);
                }
                cur = target;
            }
            Type::Qualified { target, .. } => cur = target,
            _ => return Ok(false),
        }
    }
    Ok(false)
}

fn table(what: &str, size: u32, flags: bool, entries: &[(u64, &str)]) -> NameTable {
    let full = mask(size);
    NameTable {
        what: what.into(),
        size,
        flags,
        entries: entries
            .iter()
            .map(|&(v, n)| NameEntry {
                mask: if flags { v } else { full },
                value: v,
                name: n.into(),
            })
            .collect(),
    }
}

/// Address families (include/linux/socket.h), the common ones.
const AF: &[(u64, &str)] = &[
    (0, "AF_UNSPEC"),
    (1, "AF_UNIX"),
    (2, "AF_INET"),
    (10, "AF_INET6"),
    (16, "AF_NETLINK"),
    (17, "AF_PACKET"),
    (30, "AF_TIPC"),
    (31, "AF_BLUETOOTH"),
    (38, "AF_ALG"),
    (40, "AF_VSOCK"),
    (44, "AF_XDP"),
    (45, "AF_MCTP"),
];

/// Open flags (include/uapi/asm-generic/fcntl.h; arm's own differ in
/// four bits, arch/arm/include/uapi/asm/fcntl.h): the access mode is a
/// two-bit field, the rest are flags. `O_SYNC` holds `__O_SYNC|O_DSYNC`,
/// `O_TMPFILE` `__O_TMPFILE|O_DIRECTORY`: the whole ones come first.
fn open_flags(arch: Arch, size: u32) -> NameTable {
    let arm = arch == Arch::Arm;
    let (directory, nofollow, direct, largefile) = if arm {
        (0o40000, 0o100000, 0o200000, 0o400000)
    } else {
        (0o200000, 0o400000, 0o40000, 0o100000)
    };
    let mut entries = vec![
        NameEntry {
            mask: 3,
            value: 0,
            name: "O_RDONLY".into(),
        },
        NameEntry {
            mask: 3,
            value: 1,
            name: "O_WRONLY".into(),
        },
        NameEntry {
            mask: 3,
            value: 2,
            name: "O_RDWR".into(),
        },
    ];
    for (v, n) in [
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (0o4010000, "O_SYNC"),
        (0o10000, "O_DSYNC"),
        (0o20000, "O_ASYNC"),
        (direct, "O_DIRECT"),
        (largefile, "O_LARGEFILE"),
        (0o20000000 | directory, "O_TMPFILE"),
        (directory, "O_DIRECTORY"),
        (nofollow, "O_NOFOLLOW"),
        (0o1000000, "O_NOATIME"),
        (0o2000000, "O_CLOEXEC"),
        (0o10000000, "O_PATH"),
    ] {
        entries.push(NameEntry {
            mask: v,
            value: v,
            name: n.into(),
        });
    }
    NameTable {
        what: "open flags".into(),
        size,
        flags: true,
        entries,
    }
}

/// `gfp_t`'s names from the running kernel's `kmem:kmalloc` print
/// format: its `__print_flags(REC->gfp_flags, ...)` table, composites
/// (`GFP_KERNEL`) first, as the kernel prints them.
pub fn gfp_from_format(format: &str) -> Option<NameTable> {
    let line = format
        .lines()
        .find_map(|l| l.trim().strip_prefix("print fmt:"))?;
    let table = crate::tracefs::printfmt::flags_table(line, "gfp_flags")?;
    Some(NameTable {
        what: "gfp_t".into(),
        size: 4,
        flags: true,
        entries: table
            .into_iter()
            .map(|(mask, name)| NameEntry {
                mask,
                value: mask,
                name,
            })
            .collect(),
    })
}

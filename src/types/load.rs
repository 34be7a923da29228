//! Pick and open a type source: a raw BTF file, an ELF vmlinux's .BTF
//! section (its DWARF when it has none), or the running kernel's BTF.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object::{Object, ObjectSection};

use super::btf::{has_btf_magic, map_or_read, Backing, Btf};
use super::btf_source::BtfSource;
use super::dwarf::DwarfSource;
use super::{NoKernelTypes, Result, TypeError, TypeSource};

/// The running kernel's BTF; module BTF sits beside it.
pub const SYSFS_VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Open `path`, or the running kernel's types when None.
pub fn open(path: Option<&Path>) -> Result<Box<dyn TypeSource>> {
    match path {
        Some(p) => open_file(p),
        None => open_running_kernel(),
    }
}

fn open_running_kernel() -> Result<Box<dyn TypeSource>> {
    let path = Path::new(SYSFS_VMLINUX_BTF);
    if path.exists() {
        return Ok(Box::new(open_kernel_btf(path, path.parent())?));
    }
    // A kernel built without BTF: its debuginfo vmlinux, if installed, and
    // only of this very build (another one's offsets would be wrong).
    let release = kernel_release().unwrap_or_else(|| "$(uname -r)".into());
    let running = running_build_id();
    let looked = debuginfo_vmlinux(&release);
    let mut other_builds = Vec::new();
    for v in &looked {
        if !v.is_file() {
            continue;
        }
        match (&running, file_build_id(v)) {
            (Some(want), Some(have)) if *want != have => {
                other_builds.push(format!("{} (build-id {})", v.display(), hex(&have)))
            }
            _ => return open_file(v),
        }
    }
    let proc_version = std::fs::read_to_string("/proc/version").unwrap_or_default();
    Err(TypeError::NoKernelTypes(Box::new(NoKernelTypes {
        btf: SYSFS_VMLINUX_BTF.into(),
        package: debuginfo_package(&release, &proc_version),
        release,
        build_id: running.as_deref().map(hex),
        looked: looked.iter().map(|p| p.display().to_string()).collect(),
        other_builds,
    })))
}

/// What installs the debuginfo vmlinux of kernel `release`, told apart by
/// the kernel's own `/proc/version` (who built it) and its release suffix;
/// None when neither says.
pub fn debuginfo_package(release: &str, proc_version: &str) -> Option<String> {
    // `5.14.0-362.el9.x86_64`, `6.5.6-300.fc39.x86_64`, `6.1.0-1.amzn2023.x86_64`.
    let rpm = ["el", "fc", "amzn"].iter().any(|d| {
        release.split('.').any(|part| {
            part.strip_prefix(d)
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
        })
    });
    if proc_version.contains("Ubuntu") {
        Some(format!(
            "linux-image-unsigned-{release}-dbgsym (from Ubuntu's debug-symbol archive)"
        ))
    } else if proc_version.contains("Debian") {
        Some(format!("linux-image-{release}-dbg"))
    } else if rpm {
        Some(format!(
            "kernel-debuginfo-{release} (`dnf debuginfo-install kernel-{release}`)"
        ))
    } else {
        None
    }
}

/// The running kernel's GNU build-id, from the notes it exports.
pub(crate) fn running_build_id() -> Option<Vec<u8>> {
    let notes = std::fs::read("/sys/kernel/notes").ok()?;
    super::target::build_id_in_notes(&notes)
}

/// An ELF file's GNU build-id.
fn file_build_id(path: &Path) -> Option<Vec<u8>> {
    let backing = map_or_read(path).ok()?;
    let elf = object::File::parse(backing.bytes()).ok()?;
    elf.build_id().ok().flatten().map(<[u8]>::to_vec)
}

use super::target::hex;

/// Where distributions put a kernel's debuginfo vmlinux (the places perf
/// and systemtap look), for release `uname -r`.
pub fn debuginfo_vmlinux(release: &str) -> Vec<PathBuf> {
    vec![
        PathBuf::from(format!("/usr/lib/debug/boot/vmlinux-{release}")),
        PathBuf::from(format!("/usr/lib/debug/lib/modules/{release}/vmlinux")),
        PathBuf::from(format!("/boot/vmlinux-{release}")),
    ]
}

/// `uname -r`.
pub(crate) fn kernel_release() -> Option<String> {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    Some(r.trim().to_string()).filter(|r| !r.is_empty())
}

/// A kernel's raw BTF plus the directory of its modules' split BTF
/// (every file there but `vmlinux`), searched when vmlinux lacks a name.
pub fn open_kernel_btf(vmlinux: &Path, module_dir: Option<&Path>) -> Result<BtfSource> {
    let backing = Arc::new(map_or_read(vmlinux)?);
    let len = backing.bytes().len();
    let btf = Btf::parse(backing, 0..len)?;
    Ok(BtfSource::new(
        format!("BTF of {}", vmlinux.display()),
        btf,
        module_dir.map(PathBuf::from),
    ))
}

/// A raw BTF blob (by its magic) or an ELF file, either of them also
/// xz-compressed or in a tar (`.btf.tar.xz`, see [`super::archive`]).
pub fn open_file(path: &Path) -> Result<Box<dyn TypeSource>> {
    let backing = Arc::new(map_or_read(path)?);
    match super::archive::unpack(path, backing.bytes())? {
        Some(inner) => {
            let what = match &inner.member {
                Some(m) => format!("{} (in {})", m, path.display()),
                None => path.display().to_string(),
            };
            open_bytes(path, &what, Arc::new(inner.backing))
        }
        None => open_bytes(path, &path.display().to_string(), backing),
    }
}

/// The types in `backing`, the contents of `path` (`what`, in messages).
fn open_bytes(path: &Path, what: &str, backing: Arc<Backing>) -> Result<Box<dyn TypeSource>> {
    let bytes = backing.bytes();
    if has_btf_magic(bytes) {
        let len = bytes.len();
        let btf = Btf::parse(backing, 0..len)?;
        return Ok(Box::new(BtfSource::new(
            format!("BTF of {what}"),
            btf,
            None,
        )));
    }
    if bytes.starts_with(b"\x7fELF") {
        let range = btf_section(bytes, path)?;
        return match range {
            Some(r) => match Btf::parse(backing.clone(), r) {
                Ok(btf) => Ok(Box::new(BtfSource::new(
                    format!("BTF section of {what}"),
                    btf,
                    None,
                ))),
                // A kernel module's .BTF is split BTF, meaningless without
                // its vmlinux: its DWARF (a .ko debug file) stands alone.
                Err(e) => open_dwarf(path, backing).map_err(|_| e),
            },
            None => open_dwarf(path, backing),
        };
    }
    Err(TypeError::NoTypes {
        path: path.display().to_string(),
    })
}

/// The file range of an ELF's .BTF section, if it has one.
fn btf_section(bytes: &[u8], path: &Path) -> Result<Option<std::ops::Range<usize>>> {
    let elf = object::File::parse(bytes).map_err(|e| TypeError::BadElf {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    let Some(sec) = elf.section_by_name(".BTF") else {
        return Ok(None);
    };
    let (off, size) = sec.file_range().ok_or_else(|| TypeError::BadElf {
        path: path.display().to_string(),
        msg: ".BTF section has no data in the file".into(),
    })?;
    let start = off as usize;
    let end = start
        .checked_add(size as usize)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| TypeError::BadElf {
            path: path.display().to_string(),
            msg: ".BTF section runs past the end of the file".into(),
        })?;
    Ok(Some(start..end))
}

/// An ELF without .BTF: its DWARF.
fn open_dwarf(path: &Path, backing: Arc<Backing>) -> Result<Box<dyn TypeSource>> {
    match DwarfSource::from_backing(path, backing.clone()) {
        // A stripped binary: its DWARF may be in a separate debug file.
        Err(TypeError::NoTypes { .. }) => {
            let own_id = object::File::parse(backing.bytes())
                .ok()
                .and_then(|e| e.build_id().ok().flatten().map(<[u8]>::to_vec));
            for debug in separate_debug_files(path, backing.bytes()) {
                let Ok(src) = DwarfSource::open(&debug) else {
                    continue;
                };
                // The debug file of another build would give wrong offsets.
                let same_build = match (&own_id, src.cache_key().strip_prefix(b"build-id:")) {
                    (Some(a), Some(b)) => a.as_slice() == b,
                    _ => true,
                };
                if same_build {
                    return Ok(Box::new(src));
                }
            }
            Err(TypeError::NoTypes {
                path: path.display().to_string(),
            })
        }
        other => Ok(Box::new(other?)),
    }
}

/// Where a stripped ELF's DWARF is kept, in the order gdb looks: by
/// build-id under /usr/lib/debug/.build-id/, then by its .gnu_debuglink
/// name beside it, in .debug/ beside it, and under /usr/lib/debug/.
pub fn separate_debug_files(path: &Path, bytes: &[u8]) -> Vec<PathBuf> {
    let Ok(elf) = object::File::parse(bytes) else {
        return Vec::new();
    };
    let mut v = Vec::new();
    if let Ok(Some(id)) = elf.build_id() {
        if id.len() >= 2 {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            v.push(PathBuf::from(format!(
                "/usr/lib/debug/.build-id/{}/{}.debug",
                &hex[..2],
                &hex[2..]
            )));
        }
    }
    if let Ok(Some((name, _crc))) = elf.gnu_debuglink() {
        let name = Path::new(std::str::from_utf8(name).unwrap_or_default());
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let (Some(dir), Some(file)) = (real.parent(), name.file_name()) {
            // A debuglink naming the file itself would be no help.
            if Some(file) != real.file_name() {
                v.push(dir.join(file));
            }
            v.push(dir.join(".debug").join(file));
            let rel = dir.strip_prefix("/").unwrap_or(dir);
            v.push(Path::new("/usr/lib/debug").join(rel).join(file));
        }
    }
    v.retain(|p| p.is_file());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debuginfo_package_by_who_built_the_kernel() {
        let debian = "Linux version 6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3";
        assert_eq!(
            debuginfo_package("6.1.0-57-cloud-amd64", debian).as_deref(),
            Some("linux-image-6.1.0-57-cloud-amd64-dbg")
        );
        let ubuntu = "Linux version 6.8.0-45-generic (buildd@lcy02-amd64-075) (x86_64-linux-gnu-gcc-13 (Ubuntu 13.2.0-23ubuntu4) 13.2.0) #45-Ubuntu SMP";
        assert!(debuginfo_package("6.8.0-45-generic", ubuntu)
            .unwrap()
            .starts_with("linux-image-unsigned-6.8.0-45-generic-dbgsym"));
        let rhel = "Linux version 5.14.0-362.8.1.el9_3.x86_64 (mockbuild@x86-vm-08.build.eng.bos.redhat.com) (gcc (GCC) 11.4.1)";
        assert!(debuginfo_package("5.14.0-362.8.1.el9_3.x86_64", rhel)
            .unwrap()
            .starts_with("kernel-debuginfo-5.14.0-362.8.1.el9_3.x86_64"));
        // Nobody says: no package is guessed (`-fc-` is not Fedora's `.fc39`).
        assert_eq!(
            debuginfo_package(
                "6.18.0-fc-custom",
                "Linux version 6.18.0-fc-custom (builder@buildhost)"
            ),
            None
        );
    }

    #[test]
    fn no_kernel_types_names_every_place_and_the_package() {
        let looked: Vec<String> = debuginfo_vmlinux("6.1.0-57-cloud-amd64")
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let e = NoKernelTypes {
            btf: SYSFS_VMLINUX_BTF.into(),
            release: "6.1.0-57-cloud-amd64".into(),
            build_id: Some("ab12".into()),
            looked: looked.clone(),
            other_builds: vec![],
            package: Some("linux-image-6.1.0-57-cloud-amd64-dbg".into()),
        };
        assert_eq!(
            e.to_string(),
            "the running kernel (6.1.0-57-cloud-amd64) has no BTF (/sys/kernel/btf/vmlinux does not exist) \
             and no debuginfo vmlinux at /usr/lib/debug/boot/vmlinux-6.1.0-57-cloud-amd64, \
             /usr/lib/debug/lib/modules/6.1.0-57-cloud-amd64/vmlinux or /boot/vmlinux-6.1.0-57-cloud-amd64\n\
             help: install linux-image-6.1.0-57-cloud-amd64-dbg, this build's debuginfo, \
             or name a vmlinux or BTF file with -v"
        );
        let e = NoKernelTypes {
            btf: SYSFS_VMLINUX_BTF.into(),
            release: "6.1.0-57-cloud-amd64".into(),
            build_id: Some("ab12".into()),
            looked,
            other_builds: vec!["/boot/vmlinux-6.1.0-57-cloud-amd64 (build-id cd34)".into()],
            package: None,
        };
        let msg = e.to_string();
        assert!(
            msg.contains("no debuginfo vmlinux of its build (build-id ab12) at ")
                && msg.contains(": /boot/vmlinux-6.1.0-57-cloud-amd64 (build-id cd34) is another build's\n")
                && msg.contains("help: install this kernel build's debuginfo (a vmlinux with DWARF) at one of those places"),
            "{msg}"
        );
    }
}

//! Pick and open a type source: a raw BTF file, an ELF vmlinux's .BTF
//! section (its DWARF when it has none), or the running kernel's BTF.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object::{Object, ObjectSection};

use super::btf::{has_btf_magic, map_or_read, Backing, Btf};
use super::btf_source::BtfSource;
use super::dwarf::DwarfSource;
use super::{Result, TypeError, TypeSource};

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
    if !path.exists() {
        // A kernel built without BTF: its debuginfo vmlinux, if installed.
        if let Some(release) = kernel_release() {
            if let Some(v) = debuginfo_vmlinux(&release)
                .into_iter()
                .find(|p| p.is_file())
            {
                return open_file(&v);
            }
        }
    }
    let src = open_kernel_btf(path, path.parent())?;
    Ok(Box::new(src))
}

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
fn kernel_release() -> Option<String> {
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

/// A raw BTF blob (by its magic) or an ELF file.
pub fn open_file(path: &Path) -> Result<Box<dyn TypeSource>> {
    let backing = Arc::new(map_or_read(path)?);
    let bytes = backing.bytes();
    if has_btf_magic(bytes) {
        let len = bytes.len();
        let btf = Btf::parse(backing, 0..len)?;
        return Ok(Box::new(BtfSource::new(
            format!("BTF of {}", path.display()),
            btf,
            None,
        )));
    }
    if bytes.starts_with(b"\x7fELF") {
        let range = btf_section(bytes, path)?;
        return match range {
            Some(r) => {
                let btf = Btf::parse(backing, r)?;
                Ok(Box::new(BtfSource::new(
                    format!("BTF section of {}", path.display()),
                    btf,
                    None,
                )))
            }
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
    Ok(Box::new(DwarfSource::from_backing(path, backing)?))
}

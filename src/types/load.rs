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

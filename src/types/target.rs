//! Kernel targets: the kernels a probe file is compiled for, each named by
//! its release and arch, and identified the way a running kernel can be
//! (its build-id in `/sys/kernel/notes`, `uname -r`, `uname -m`).
//!
//! BTF itself holds neither release nor build-id, so they come from what
//! travels with it: an ELF vmlinux has its build-id note (`.notes`) and the
//! `linux_banner` string (`Linux version 6.1.0-57-cloud-amd64 (...)`); a
//! raw BTF file or archive is named after its release
//! (`vmlinux-6.1.0-56-cloud-amd64.btf`, btfhub's
//! `ubuntu/20.04/x86_64/5.4.0-91-generic.btf.tar.xz`), and a copy of the
//! kernel's `/sys/kernel/notes` beside it (`NAME.notes`) gives its
//! build-id. The arch comes from the ELF header, else from what the types
//! say (`struct pt_regs` differs per arch), else from the name.
//!
//! Identifying a target reads no types: a fleet's files are opened one at
//! a time, when their probes are compiled.

use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, ObjectSymbol};

use super::btf::{has_btf_magic, map_or_read};
use super::{resolve, CompositeKind, Result, Type, TypeError, TypeSource};
use crate::arch::Arch;

/// One kernel a probe file is meant for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// Its type file; None: the running kernel's BTF.
    pub path: Option<PathBuf>,
    /// `uname -r` on that kernel.
    pub release: Option<String>,
    /// Where the release was read: `linux_banner`, `its file name`, `uname -r`.
    pub release_from: &'static str,
    pub arch: Option<Arch>,
    /// Where the arch was read: `its ELF header`, `its struct pt_regs`,
    /// `its file name`, `-a`.
    pub arch_from: &'static str,
    /// Its GNU build-id (what `/sys/kernel/notes` shows on it).
    pub build_id: Option<Vec<u8>>,
}

impl Kernel {
    /// How the kernel is called in reports: its release, else its file.
    pub fn name(&self) -> String {
        match (&self.release, &self.path) {
            (Some(r), _) => r.clone(),
            (None, Some(p)) => p.display().to_string(),
            (None, None) => "the running kernel".into(),
        }
    }

    /// The build-id in hex.
    pub fn build_id_hex(&self) -> Option<String> {
        self.build_id.as_deref().map(hex)
    }

    /// The running kernel: `uname -r`, this machine's arch, the build-id
    /// of `/sys/kernel/notes`.
    pub fn running() -> Kernel {
        Kernel {
            path: None,
            release: super::load::kernel_release(),
            release_from: "uname -r",
            arch: Some(Arch::host()),
            arch_from: "this machine",
            build_id: super::load::running_build_id(),
        }
    }

    /// The arch as the types say it, unless an ELF header said it: a
    /// file's name is only a name.
    pub fn learn_arch(&mut self, types: &dyn TypeSource) {
        if self.arch.is_some() && self.arch_from != FROM_NAME {
            return;
        }
        if let Some(a) = arch_of_types(types) {
            self.arch = Some(a);
            self.arch_from = "its struct pt_regs";
        }
    }
}

const FROM_NAME: &str = "its file name";

/// Bytes in hex, as build-ids are written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The type files `paths` name: each file as it is, and every kernel's
/// type file under each directory, sorted: raw BTF (not a module's split
/// BTF), an ELF file with a `.BTF` section or named `vmlinux*`, an xz or
/// tar archive named `*btf*` or `vmlinux*` (btfhub's `R.btf.tar.xz`).
/// Other files in a directory (a README, `.notes` copies, programs) are
/// passed over; a directory without any is an error.
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| io(p, e))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(p, 0, &mut found)?;
            found.sort();
            if found.is_empty() {
                return Err(TypeError::NoKernels {
                    path: p.display().to_string(),
                });
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn io(p: &Path, source: std::io::Error) -> TypeError {
    TypeError::Io {
        path: p.display().to_string(),
        source,
    }
}

/// Deep enough for btfhub's `DISTRO/VERSION/ARCH/FILE`, and no link loop.
const MAX_DEPTH: usize = 8;

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let path = entry.map_err(|e| io(dir, e))?.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, depth + 1, out)?;
        } else if meta.is_file() && holds_types(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether a file starts like a type file.
fn holds_types(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; 512];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let head = &head[..n];
    if has_btf_magic(head) {
        return is_base_btf(head, &mut f);
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if head.starts_with(b"\x7fELF") {
        return name.starts_with("vmlinux") || has_btf_section(path);
    }
    (super::archive::is_xz(head) || super::archive::is_tar(head))
        && (name.contains("btf") || name.starts_with("vmlinux"))
}

/// Whether an ELF file has a `.BTF` section (a vmlinux under another name).
fn has_btf_section(path: &Path) -> bool {
    let Ok(b) = map_or_read(path) else {
        return false;
    };
    object::File::parse(b.bytes()).is_ok_and(|elf| elf.section_by_name(".BTF").is_some())
}

/// Whether a BTF file stands alone: a module's split BTF (in
/// `/sys/kernel/btf/` beside vmlinux) continues vmlinux's strings, so its
/// string section does not start with the empty string a base's does.
fn is_base_btf(head: &[u8], f: &mut std::fs::File) -> bool {
    use std::io::{Read as _, Seek as _};
    let Some(h) = head.get(..24) else {
        return false;
    };
    let word = |o: usize| {
        let b = [h[o], h[o + 1], h[o + 2], h[o + 3]];
        if h[0] == 0x9f {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let (hdr_len, str_off, str_len) = (word(4) as u64, word(16) as u64, word(20));
    let mut first = [1u8];
    str_len > 0
        && f.seek(std::io::SeekFrom::Start(hdr_len + str_off)).is_ok()
        && f.read_exact(&mut first).is_ok()
        && first[0] == 0
}

/// A target's identity, read from its file without its types: for an ELF
/// file its header, build-id note and `linux_banner`; for any file its
/// name and a `.notes` copy beside it.
pub fn identify(path: &Path) -> Result<Kernel> {
    if path == Path::new(super::load::SYSFS_VMLINUX_BTF) {
        let mut running = Kernel::running();
        running.path = Some(path.to_path_buf());
        return Ok(running);
    }
    let backing = map_or_read(path)?;
    identify_bytes(path, backing.bytes())
}

/// [`identify`] of a file's contents (`path` names it, and the `.notes`
/// beside it).
pub fn identify_bytes(path: &Path, bytes: &[u8]) -> Result<Kernel> {
    let mut k = Kernel {
        path: Some(path.to_path_buf()),
        release: None,
        release_from: "",
        arch: None,
        arch_from: "",
        build_id: None,
    };
    if bytes.starts_with(b"\x7fELF") {
        let elf = object::File::parse(bytes).map_err(|e| TypeError::BadElf {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        k.arch = match elf.architecture() {
            object::Architecture::X86_64 => Some(Arch::X86_64),
            object::Architecture::Aarch64 => Some(Arch::Aarch64),
            object::Architecture::Arm => Some(Arch::Arm),
            object::Architecture::Riscv64 => Some(Arch::Riscv64),
            _ => None,
        };
        if k.arch.is_some() {
            k.arch_from = "its ELF header";
        }
        k.build_id = elf.build_id().ok().flatten().map(<[u8]>::to_vec);
        if let Some(r) = banner_release(&elf) {
            k.release = Some(r);
            k.release_from = "its linux_banner";
        }
    }
    if k.release.is_none() {
        if let Some(r) = release_from_name(path) {
            k.release = Some(r);
            k.release_from = FROM_NAME;
        }
    }
    if k.arch.is_none() {
        if let Some(a) = arch_from_name(path, k.release.as_deref()) {
            k.arch = Some(a);
            k.arch_from = FROM_NAME;
        }
    }
    if k.build_id.is_none() {
        k.build_id = notes_beside(path);
    }
    Ok(k)
}

/// `uname -r` as the kernel's banner says it: `Linux version R (...)`,
/// from the `linux_banner` symbol, else (a stripped vmlinux, such as the
/// one inside a bzImage) the first such string in `.rodata`.
fn banner_release(elf: &object::File<'_>) -> Option<String> {
    const PREFIX: &[u8] = b"Linux version ";
    let from = |data: &[u8]| -> Option<String> {
        let rest = data.strip_prefix(PREFIX)?;
        let end = rest.iter().position(|&b| b == b' ' || b == 0)?;
        let r = std::str::from_utf8(&rest[..end]).ok()?;
        looks_like_release(r).then(|| r.to_string())
    };
    if let Some(sym) = elf.symbol_by_name("linux_banner") {
        if let Some(sec) = sym
            .section_index()
            .and_then(|i| elf.section_by_index(i).ok())
        {
            if let Ok(data) = sec.data() {
                let at = sym.address().checked_sub(sec.address())? as usize;
                if let Some(r) = data.get(at..).and_then(from) {
                    return Some(r);
                }
            }
        }
    }
    let rodata = elf.section_by_name(".rodata")?.data().ok()?;
    let mut at = 0;
    while let Some(i) = find(&rodata[at..], PREFIX) {
        if let Some(r) = from(&rodata[at + i..]) {
            return Some(r);
        }
        at += i + 1;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(i) = hay.get(from..)?.iter().position(|&b| b == first) {
        if hay[from + i..].starts_with(needle) {
            return Some(from + i);
        }
        from += i + 1;
    }
    None
}

/// `6.1.0-57-cloud-amd64`, `5.4.0-91-generic`, `6.5.6-300.fc39.x86_64`:
/// a digit first, a dot, nothing a release never has.
fn looks_like_release(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit())
        && s.contains('.')
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+~-".contains(c))
}

/// The release a file is named after: `vmlinux-R`, `vmlinux-R.btf`,
/// `R.btf.tar.xz`, `R.btf`, `R.xz`; a file called `vmlinux` takes its
/// directory's name (`/usr/lib/debug/lib/modules/R/vmlinux`).
pub fn release_from_name(path: &Path) -> Option<String> {
    let mut name = path.file_name()?.to_str()?;
    loop {
        let before = name;
        for suffix in [".xz", ".tar", ".btf", ".debug", ".elf"] {
            name = name.strip_suffix(suffix).unwrap_or(name);
        }
        if name == before {
            break;
        }
    }
    let bare = name
        .strip_prefix("vmlinux-")
        .or_else(|| name.strip_prefix("vmlinuz-"))
        .unwrap_or(name);
    if looks_like_release(bare) {
        return Some(bare.to_string());
    }
    if bare == "vmlinux" {
        let dir = path.parent()?.file_name()?.to_str()?;
        return looks_like_release(dir).then(|| dir.to_string());
    }
    None
}

/// The arch a release or its directory names: `-amd64`, `.x86_64`,
/// `-arm64` in the release, or a directory called `x86_64`/`arm64`
/// (btfhub's layout).
pub fn arch_from_name(path: &Path, release: Option<&str>) -> Option<Arch> {
    let tokens = release
        .into_iter()
        .flat_map(|r| r.rsplit(['-', '.', '+', '~']));
    let dir = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|d| d.to_str());
    tokens.chain(dir).find_map(|t| t.parse().ok())
}

/// The build-id of a copy of the kernel's `/sys/kernel/notes` beside
/// `path`: `NAME.notes`, or `NAME` without `.btf` then `.notes`.
fn notes_beside(path: &Path) -> Option<Vec<u8>> {
    let name = path.file_name()?.to_str()?;
    let mut candidates = vec![path.with_file_name(format!("{name}.notes"))];
    if let Some(stem) = name.strip_suffix(".btf") {
        candidates.push(path.with_file_name(format!("{stem}.notes")));
    }
    candidates
        .iter()
        .find_map(|c| std::fs::read(c).ok())
        .and_then(|notes| build_id_in_notes(&notes))
}

/// The GNU build-id among ELF notes (the bytes of `/sys/kernel/notes` or
/// of a `.notes` section), in this machine's byte order.
pub fn build_id_in_notes(notes: &[u8]) -> Option<Vec<u8>> {
    type Elf = object::elf::FileHeader64<object::NativeEndian>;
    let mut it =
        object::read::elf::NoteIterator::<Elf>::new(object::NativeEndian, 4, notes).ok()?;
    while let Ok(Some(note)) = it.next() {
        if note.name() == object::elf::ELF_NOTE_GNU
            && note.n_type(object::NativeEndian) == object::elf::NT_GNU_BUILD_ID
        {
            return Some(note.desc().to_vec());
        }
    }
    None
}

/// The arch whose `struct pt_regs` the types hold: each arch saves other
/// registers on kernel entry (arch/*/include/asm/ptrace.h).
pub fn arch_of_types(src: &dyn TypeSource) -> Option<Arch> {
    let id = src
        .find_composite(CompositeKind::Struct, "pt_regs")
        .ok()??;
    let mut names = Vec::new();
    member_names(src, id, 0, &mut names);
    let has = |n: &str| names.iter().any(|m| m == n);
    if has("r15") && has("di") {
        Some(Arch::X86_64)
    } else if has("pstate") && has("orig_x0") {
        Some(Arch::Aarch64)
    } else if has("epc") && has("a0") {
        Some(Arch::Riscv64)
    } else if has("uregs") {
        Some(Arch::Arm)
    } else {
        None
    }
}

/// Member names, through anonymous structs and unions (arm64's registers
/// sit in one).
fn member_names(src: &dyn TypeSource, id: super::TypeId, depth: usize, out: &mut Vec<String>) {
    let Ok((_, Type::Composite(c))) = resolve(src, id) else {
        return;
    };
    for m in c.members {
        match m.name {
            Some(n) => out.push(n),
            None if depth < 4 => member_names(src, m.ty, depth + 1, out),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_from_names() {
        let r = |p: &str| release_from_name(Path::new(p));
        assert_eq!(
            r("btf-fixtures/vmlinux-6.1.0-56-cloud-amd64.btf").as_deref(),
            Some("6.1.0-56-cloud-amd64")
        );
        assert_eq!(
            r("ubuntu/20.04/x86_64/5.4.0-91-generic.btf.tar.xz").as_deref(),
            Some("5.4.0-91-generic")
        );
        assert_eq!(
            r("/usr/lib/debug/lib/modules/6.1.0-57-cloud-amd64/vmlinux").as_deref(),
            Some("6.1.0-57-cloud-amd64")
        );
        assert_eq!(
            r("fedora/39/x86_64/6.5.6-300.fc39.x86_64.btf.tar.xz").as_deref(),
            Some("6.5.6-300.fc39.x86_64")
        );
        assert_eq!(r("/tmp/vmlinux"), None);
        assert_eq!(r("/tmp/my-kernel.btf"), None);
    }

    #[test]
    fn arches_from_names() {
        let a = |p: &str| arch_from_name(Path::new(p), release_from_name(Path::new(p)).as_deref());
        assert_eq!(
            a("vmlinux-6.12.117+deb12-cloud-arm64.btf"),
            Some(Arch::Aarch64)
        );
        assert_eq!(a("vmlinux-6.1.0-56-cloud-amd64.btf"), Some(Arch::X86_64));
        assert_eq!(
            a("ubuntu/20.04/x86_64/5.4.0-91-generic.btf.tar.xz"),
            Some(Arch::X86_64)
        );
        assert_eq!(
            a("ubuntu/22.04/arm64/5.15.0-91-generic.btf.tar.xz"),
            Some(Arch::Aarch64)
        );
        assert_eq!(
            a("fedora/39/6.5.6-300.fc39.aarch64.btf.tar.xz"),
            Some(Arch::Aarch64)
        );
        assert_eq!(a("vmlinux-6.18.44-fc-v782.btf"), None);
    }

    /// `/sys/kernel/notes` of a 6.18 x86_64 kernel: Xen notes, then the
    /// GNU build-id (real bytes, shortened Xen part).
    #[test]
    fn build_id_among_notes() {
        let mut notes = Vec::new();
        let mut note = |name: &[u8], ty: u32, desc: &[u8]| {
            notes.extend((name.len() as u32 + 1).to_ne_bytes());
            notes.extend((desc.len() as u32).to_ne_bytes());
            notes.extend(ty.to_ne_bytes());
            let mut n = name.to_vec();
            n.push(0);
            n.resize(n.len().div_ceil(4) * 4, 0);
            notes.extend(n);
            let mut d = desc.to_vec();
            d.resize(d.len().div_ceil(4) * 4, 0);
            notes.extend(d);
        };
        note(b"Xen", 6, b"linux\0");
        note(b"GNU", 5, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let id: Vec<u8> = (0..20).collect();
        note(b"GNU", 3, &id);
        assert_eq!(build_id_in_notes(&notes), Some(id));
        assert_eq!(build_id_in_notes(&notes[..20]), None);
    }
}

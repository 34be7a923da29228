//! Debian's newest 6.1 cloud kernel with DWARF: the `-dbg` package of the
//! very build the VM tests boot, resolved at run time by
//! `tests/vm/kernel.sh -g 6.1` (~280 MB download once; only its vmlinux,
//! ~600 MB, and nf_conntrack.ko are kept, in the VM tests' cache). No
//! version is pinned: when the archive moves on, so do the tests, and
//! their expectations come from the same build (its vmlinux also carries
//! the build's BTF in `.BTF`), never from fixed numbers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The kernel's cache directory (see tests/vm/kernel.sh), its debuginfo
/// fetched: `dbg/vmlinux-<release>`, `dbg/nf_conntrack.ko`.
fn dbg_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/kernel.sh");
        let out = Command::new("bash")
            .arg(&script)
            .args(["-g", "6.1"])
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} -g 6.1 failed ({}): the DWARF tests need Debian's linux-image-6.1.0-*-cloud-amd64-dbg",
            script.display(),
            out.status
        );
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        PathBuf::from(dir).join("dbg")
    })
}

/// The debuginfo vmlinux (ELF with DWARF and the build's `.BTF`).
pub fn vmlinux() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = dbg_dir();
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("vmlinux-"))
            })
            .unwrap_or_else(|| panic!("no vmlinux-* in {}", dir.display()))
    })
}

/// The same build's vmlinux as it boots: the ELF inside its bzImage
/// (`tests/vm/kernel.sh -x 6.1`), stripped of symbols, with its `.BTF`
/// and build-id note.
pub fn boot_vmlinux() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/kernel.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["-x", "6.1"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(out.status.success(), "{} -x 6.1 failed", script.display());
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("vmlinux")
}

/// A module's debug file from the same package (relocatable ELF with
/// DWARF, and split BTF that needs vmlinux).
pub fn module() -> PathBuf {
    dbg_dir().join("nf_conntrack.ko")
}

/// The GNU build-id of `path`, in hex (what the DWARF index cache file is
/// named after).
pub fn build_id(path: &Path) -> String {
    use object::Object;
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // SAFETY: a cached download nobody writes while the tests run.
    let data =
        unsafe { memmap2::Mmap::map(&file) }.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let elf = object::File::parse(&*data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let id = elf
        .build_id()
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("{} has no build-id", path.display()));
    id.iter().map(|b| format!("{b:02x}")).collect()
}

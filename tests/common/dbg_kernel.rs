//! Debian's 6.1.0-56 cloud kernel with DWARF (the `-dbg` package, ~280 MB
//! download, ~590 MB unpacked): the same build whose BTF is in
//! btf-fixtures/, so its DWARF and BTF describe the same kernel.
//!
//! Fetched once with `apt-get download`, only the vmlinux is kept, under
//! `${XDG_CACHE_HOME:-$HOME/.cache}/coolkprobe/kernels/`. The environment
//! variable COOLKPROBE_DBG_VMLINUX names an already unpacked copy instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const PACKAGE: &str = "linux-image-6.1.0-56-cloud-amd64-dbg";
pub const VMLINUX: &str = "vmlinux-6.1.0-56-cloud-amd64";

pub fn cache_root() -> PathBuf {
    match std::env::var_os("XDG_CACHE_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x),
        _ => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"),
    }
    .join("coolkprobe")
}

/// The debuginfo vmlinux, downloaded on first use.
pub fn vmlinux() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("COOLKPROBE_DBG_VMLINUX") {
            return PathBuf::from(p);
        }
        fetch(VMLINUX)
    })
}

/// A module's debug file from the same package (relocatable ELF with
/// DWARF, and split BTF that needs vmlinux).
pub const MODULE: &str = "nf_conntrack.ko";

pub fn module() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| fetch(MODULE))
}

/// Files kept from the package, under their base names.
const KEEP: &[&str] = &[VMLINUX, MODULE];

/// `name` (one of KEEP) from the cache, downloading the package (and
/// keeping every file of KEEP) when it is missing.
fn fetch(name: &str) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = cache_root().join("kernels");
    let path = dir.join(name);
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let work = dir.join(format!("dl-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    eprintln!("downloading {PACKAGE} (~280 MB) into {}", dir.display());
    let download = || {
        Command::new("apt-get")
            .args(["download", "-q", PACKAGE])
            .current_dir(&work)
            .status()
            .expect("apt-get")
            .success()
    };
    // A fresh machine may have no package lists yet.
    if !download() {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        assert!(download(), "apt-get download {PACKAGE} failed");
    }
    let deb = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("downloaded .deb");
    let patterns: Vec<String> = KEEP.iter().map(|k| format!("'*/{k}'")).collect();
    let sh = format!(
        "dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards {}",
        deb.display(),
        work.display(),
        patterns.join(" ")
    );
    let st = Command::new("sh").args(["-c", &sh]).status().unwrap();
    assert!(st.success(), "unpacking {KEEP:?} from {}", deb.display());
    for k in KEEP {
        let found = Command::new("find")
            .arg(&work)
            .args(["-name", k, "-type", "f"])
            .output()
            .unwrap();
        let found = String::from_utf8(found.stdout).unwrap();
        let src = found
            .lines()
            .next()
            .unwrap_or_else(|| panic!("{k} not in {PACKAGE}"));
        if !dir.join(k).exists() {
            std::fs::rename(src, dir.join(k)).unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    path
}

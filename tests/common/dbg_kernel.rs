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
        let dir = cache_root().join("kernels");
        let path = dir.join(VMLINUX);
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
        let tmp = dir.join(format!("{VMLINUX}.part{}", std::process::id()));
        let sh = format!(
            "dpkg-deb --fsys-tarfile '{}' | tar -xO --wildcards '*/boot/{VMLINUX}' > '{}'",
            deb.display(),
            tmp.display()
        );
        let st = Command::new("sh").args(["-c", &sh]).status().unwrap();
        assert!(st.success(), "unpacking {VMLINUX} from {}", deb.display());
        std::fs::rename(&tmp, &path).unwrap();
        let _ = std::fs::remove_dir_all(&work);
        path
    })
}

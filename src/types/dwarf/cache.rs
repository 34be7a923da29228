//! The name index on disk, under `${XDG_CACHE_HOME:-~/.cache}/coolkprobe/`,
//! one file per DWARF file, named after its build-id.
//!
//! The file is only a hint: it is used when its checksum, its recorded
//! build-id and `.debug_info` length all match the file being read, and
//! every lookup through it is checked against the DIE it points at. A
//! missing, stale or damaged file means the index is built again.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::index::Index;

/// `${XDG_CACHE_HOME:-$HOME/.cache}/coolkprobe`.
pub fn default_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(x) if !x.is_empty() && Path::new(&x).is_absolute() => PathBuf::from(x),
        _ => PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?).join(".cache"),
    };
    Some(base.join("coolkprobe"))
}

/// The cache file for a key: the build-id in hex, or a hash of the
/// fingerprint for files without one.
pub fn file_for(dir: &Path, key: &[u8]) -> PathBuf {
    let name = match key.strip_prefix(b"build-id:") {
        Some(id) => id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        None => format!("file-{:016x}", super::index::checksum(key)),
    };
    dir.join(format!("dwarf-{name}.idx"))
}

/// The cached index for this file, if there is a valid one.
pub fn load(dir: &Path, key: &[u8], info_len: u64) -> Option<Index> {
    let data = crate::types::btf::map_or_read(&file_for(dir, key)).ok()?;
    Index::parse(data, key, info_len)
}

/// Save an index (written aside, then renamed: readers never see half a
/// file, and concurrent runs do not corrupt each other).
pub fn store(dir: &Path, key: &[u8], idx: &Index) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = file_for(dir, key);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(idx.bytes())?;
        std::fs::rename(&tmp, &path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

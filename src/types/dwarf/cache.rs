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
    write_aside(&file_for(dir, key), idx.bytes())
}

/// Write `data` to `file` (and its directory): written aside under a name
/// unique to this process and call, then renamed, so that a reader never
/// maps half a file and writers (processes, or a fleet's threads storing
/// the same kernel twice) never write into one file together.
pub fn write_aside(file: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let tmp = file.with_extension(format!("tmp{}.{call}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        std::fs::rename(&tmp, file)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Threads of one process storing the same file at once (a fleet
    /// naming one archive twice): every write succeeds, and the file is
    /// always one writer's whole data, never a mix or a cut.
    #[test]
    fn concurrent_writers_of_one_file() {
        let dir = std::env::temp_dir().join(format!("ckp-aside-{}", std::process::id()));
        let file = dir.join("xz-0000000000000001");
        let datas: Vec<Vec<u8>> = (0..8u8)
            .map(|i| vec![i; 64 * 1024 * (1 + i as usize)])
            .collect();
        for _ in 0..20 {
            std::thread::scope(|s| {
                let hs: Vec<_> = datas
                    .iter()
                    .map(|d| s.spawn(|| write_aside(&file, d)))
                    .collect();
                for h in hs {
                    h.join().unwrap().unwrap();
                }
            });
            let got = std::fs::read(&file).unwrap();
            assert!(
                datas.contains(&got),
                "a mixed or cut file of {} bytes",
                got.len()
            );
        }
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "temporary files left: {left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

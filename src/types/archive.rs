//! Compressed type files: the `.xz` and `.tar.xz` BTF archives in which
//! distributions' BTF is published (btfhub's layout:
//! `ubuntu/20.04/x86_64/5.4.0-91-generic.btf.tar.xz`, one `.btf` file in
//! a tar, xz-compressed), and plain tars.
//!
//! Decompressing a distribution kernel's BTF costs ~0.1 s (liblzma, 1 MB
//! of xz into 4-5 MB of BTF), ten times what compiling probes against it
//! costs, so the decompressed stream is kept under the cache directory
//! (`${XDG_CACHE_HOME:-~/.cache}/coolkprobe/xz-KEY`, KEY from the
//! archive's path, size, mtime and inode) and later runs map it.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use super::btf::{has_btf_magic, map_or_read, Backing};
use super::{Result, TypeError};

/// The magic of an xz stream.
const XZ_MAGIC: &[u8] = b"\xfd7zXZ\0";

/// Whether `bytes` start an xz stream.
pub fn is_xz(bytes: &[u8]) -> bool {
    bytes.starts_with(XZ_MAGIC)
}

/// Whether `bytes` start a POSIX tar archive (`ustar` at byte 257).
pub fn is_tar(bytes: &[u8]) -> bool {
    bytes.get(257..262) == Some(b"ustar")
}

/// A type file taken out of an archive.
pub struct Unpacked {
    /// The member's bytes (BTF or an ELF file).
    pub backing: Backing,
    /// The member's name inside a tar, if it came from one.
    pub member: Option<String>,
}

/// The type file inside `bytes` (the contents of `path`) when they are
/// xz-compressed or a tar; None when they are neither.
pub fn unpack(path: &Path, bytes: &[u8]) -> Result<Option<Unpacked>> {
    unpack_cached(path, bytes, super::dwarf::cache::default_dir().as_deref())
}

/// [`unpack`], decompressed streams kept in `cache` (none: kept nowhere).
pub fn unpack_cached(path: &Path, bytes: &[u8], cache: Option<&Path>) -> Result<Option<Unpacked>> {
    if is_xz(bytes) {
        let inner = decompressed(path, bytes, cache)?;
        if is_tar(inner.bytes()) {
            return tar_member(path, inner.bytes()).map(Some);
        }
        return Ok(Some(Unpacked {
            backing: inner,
            member: None,
        }));
    }
    if is_tar(bytes) {
        return tar_member(path, bytes).map(Some);
    }
    Ok(None)
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> TypeError {
    TypeError::BadArchive {
        path: path.display().to_string(),
        msg: msg.to_string(),
    }
}

/// The xz stream `bytes` decompressed: from the cache when it holds this
/// archive, else decompressed (and cached, when `cache` is writable).
pub fn decompressed(path: &Path, bytes: &[u8], cache: Option<&Path>) -> Result<Backing> {
    let cached = cache.and_then(|dir| cache_key(path).map(|k| dir.join(format!("xz-{k:016x}"))));
    if let Some(file) = &cached {
        if let Ok(b) = map_or_read(file) {
            return Ok(b);
        }
    }
    let mut out = Vec::with_capacity(bytes.len() * 5);
    liblzma::read::XzDecoder::new_multi_decoder(bytes)
        .read_to_end(&mut out)
        .map_err(|e| bad(path, format!("xz: {e}")))?;
    if let Some(file) = &cached {
        // A cache that cannot be written costs the next run the
        // decompression again, nothing more.
        let _ = store(file, &out);
    }
    Ok(Backing::Owned(out))
}

/// Written aside, then renamed: a reader never maps half a file.
fn store(file: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Unique to this process and call: a fleet's kernels are read by
    // several threads, and the same archive may be named twice.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp: PathBuf = file.with_extension(format!("tmp{}.{call}", std::process::id()));
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

/// What names one version of an archive: its real path, size, mtime and
/// inode, hashed (FNV-1a: stable across builds, unlike std's hasher).
fn cache_key(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let real = std::fs::canonicalize(path).ok()?;
    let m = std::fs::metadata(&real).ok()?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(real.as_os_str().as_encoded_bytes());
    for n in [
        m.len(),
        m.mtime() as u64,
        m.mtime_nsec() as u64,
        m.ino(),
        m.dev(),
    ] {
        eat(&n.to_le_bytes());
    }
    Some(h)
}

/// The first regular file of the tar that holds types (BTF or ELF).
fn tar_member(path: &Path, tar: &[u8]) -> Result<Unpacked> {
    let mut archive = tar::Archive::new(tar);
    let entries = archive.entries().map_err(|e| bad(path, e))?;
    let mut seen = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| bad(path, e))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(|e| bad(path, e))?
            .display()
            .to_string();
        // The member's data lies in the archive as it is: no copy through
        // the reader, only of the member itself.
        let start = entry.raw_file_position() as usize;
        let end = start
            .checked_add(entry.size() as usize)
            .filter(|&e| e <= tar.len())
            .ok_or_else(|| bad(path, format!("member {name} runs past the end")))?;
        let data = &tar[start..end];
        if has_btf_magic(data) || data.starts_with(b"\x7fELF") {
            return Ok(Unpacked {
                backing: Backing::Owned(data.to_vec()),
                member: Some(name),
            });
        }
        seen.push(name);
    }
    Err(bad(
        path,
        if seen.is_empty() {
            "the tar holds no file".to_string()
        } else {
            format!("no member holds BTF or an ELF file ({})", seen.join(", "))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics() {
        assert!(is_xz(b"\xfd7zXZ\0\0\x04"));
        assert!(!is_xz(b"\x9f\xeb\x01\0"));
        let mut tar = vec![0u8; 512];
        tar[257..263].copy_from_slice(b"ustar\0");
        assert!(is_tar(&tar));
        assert!(!is_tar(b"short"));
    }
}

//! The BTF fixture kernels of btf-fixtures/.

use std::path::{Path, PathBuf};

/// Every `btf-fixtures/*.btf`, sorted; at least three kernels.
pub fn btf() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("btf-fixtures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "btf"))
        .collect();
    v.sort();
    assert!(
        v.len() >= 3,
        "expected at least three fixture kernels in {}",
        dir.display()
    );
    v
}

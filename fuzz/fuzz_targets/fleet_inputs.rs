//! Arbitrary bytes as a fleet's kernel files: an archive (`.tar.xz`,
//! `.xz`, `.tar`), an ELF vmlinux, a copy of `/sys/kernel/notes`.
//! Unpacking and naming the kernel (release, arch, build-id) must end in
//! Ok or an error, never a panic or a hang. No cache: nothing is written.
#![no_main]

use std::path::Path;

use coolkprobe::types::{archive, target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/nonexistent/debian/12/x86_64/6.1.0-9-amd64.btf.tar.xz");
    if let Ok(Some(u)) = archive::unpack_cached(path, data, None) {
        let _ = target::identify_bytes(path, u.backing.bytes());
    }
    let _ = target::identify_bytes(path, data);
    let _ = target::build_id_in_notes(data);
});

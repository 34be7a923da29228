//! Arbitrary bytes as an ELF file with DWARF: opening, indexing, looking
//! up and describing types must end in Ok or an error, never a panic or a
//! hang. Seeds: small gcc -g programs (fuzz/seeds/dwarf_reader/).
#![no_main]

use std::path::Path;
use std::sync::Arc;

use coolkprobe::types::btf::Backing;
use coolkprobe::types::dwarf::DwarfSource;
use coolkprobe::types::{layout, resolve, type_name, CompositeKind, TypeId, TypeSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let backing = Arc::new(Backing::Owned(data.to_vec()));
    let Ok(src) = DwarfSource::from_backing(Path::new("fuzz"), backing) else {
        return;
    };
    let src = src.with_cache_dir(None);
    for kind in [CompositeKind::Struct, CompositeKind::Union] {
        for name in src.composite_names(kind).unwrap_or_default().iter().take(16) {
            if let Ok(Some(id)) = src.find_composite(kind, name) {
                let _ = layout::render(&src, id, 8);
            }
        }
    }
    for name in src.func_names().unwrap_or_default().iter().take(16) {
        if let Ok(Some(id)) = src.find_func(name) {
            let _ = type_name(&src, id);
            if let Ok(coolkprobe::types::Type::Func { proto, .. }) = src.get(id) {
                let _ = src.get(proto);
            }
        }
    }
    // Ids that may or may not be DIEs.
    for off in (0..data.len().min(4096) as u64).step_by(7) {
        let _ = resolve(&src, TypeId(off));
        let _ = resolve(&src, TypeId(off | 1 << 48));
        let _ = src.get(TypeId(off | 1 << 63));
    }
});

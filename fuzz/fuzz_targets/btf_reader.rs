//! Arbitrary bytes as BTF: parsing and describing every type must end in
//! Ok or an error, never a panic or a hang.
#![no_main]

use coolkprobe::types::btf::Btf;
use coolkprobe::types::{resolve, size_of, type_name, CompositeKind, TypeId, TypeSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(btf) = Btf::from_bytes(data.to_vec()) else { return };
    for id in 0..=btf.type_count() as u32 + 1 {
        let _ = btf.get(id);
    }
    let src = coolkprobe::types::btf_source::BtfSource::new("fuzz".into(), btf, None);
    // A fleet's one-pass lookup of several names (then remembered).
    let structs = src.composite_names(CompositeKind::Struct).unwrap_or_default();
    let wanted: Vec<(CompositeKind, &str)> = structs
        .iter()
        .take(4)
        .map(|n| (CompositeKind::Struct, n.as_str()))
        .chain([(CompositeKind::Union, "u"), (CompositeKind::Struct, "")])
        .collect();
    src.prefetch(&["f", "", "main"], &wanted);
    for kind in [CompositeKind::Struct, CompositeKind::Union] {
        for name in src.composite_names(kind).unwrap_or_default().iter().take(8) {
            if let Ok(Some(id)) = src.find_composite(kind, name) {
                let _ = size_of(&src, id, 8);
                let _ = type_name(&src, id);
            }
        }
    }
    for id in 0..64u64 {
        let _ = resolve(&src, TypeId(id));
        let _ = size_of(&src, TypeId(id), 8);
        let _ = type_name(&src, TypeId(id));
    }
});

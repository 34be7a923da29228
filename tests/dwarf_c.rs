//! The DWARF type source on small C programs built with gcc -g during the
//! test (DWARF 2, 4 and 5, PIE and not, -O0 and -O2), checked against pahole
//! reading the same DWARF, and against what the C source says. Also:
//! malformed files, and a damaged or misleading index cache.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use coolkprobe::types::dwarf::{cache, DwarfSource};
use coolkprobe::types::{
    layout, load, resolve, type_name, CompositeKind, Qualifier, Type, TypeError, TypeId, TypeSource,
};

use common::pahole;

const BUILDS: &[(&str, &[&str])] = &[
    // DWARF 2: member locations as DW_OP_plus_uconst expressions.
    (
        "dwarf2-strict",
        &["-gdwarf-2", "-gstrict-dwarf", "-O0", "-no-pie"],
    ),
    ("dwarf4-nopie", &["-gdwarf-4", "-O0", "-no-pie"]),
    ("dwarf4-pie", &["-gdwarf-4", "-O0", "-pie", "-fPIE"]),
    ("dwarf5-nopie", &["-gdwarf-5", "-O0", "-no-pie"]),
    ("dwarf5-pie-O2", &["-gdwarf-5", "-O2", "-pie", "-fPIE"]),
];

fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("ckp-dwarf-c-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// The test program built each way (once per test run).
fn binaries() -> &'static [(String, PathBuf)] {
    static BINS: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    BINS.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/types.c");
        BUILDS
            .iter()
            .map(|(name, flags)| {
                let out = work_dir().join(format!("types-{name}"));
                let st = Command::new("gcc")
                    .args(["-g"])
                    .args(*flags)
                    .arg("-o")
                    .arg(&out)
                    .arg(&src)
                    .status()
                    .expect("gcc is needed");
                assert!(st.success(), "gcc {flags:?} failed");
                (name.to_string(), out)
            })
            .collect()
    })
}

/// No cache: these files are rebuilt per run and tiny.
fn open(path: &Path) -> DwarfSource {
    DwarfSource::open(path).unwrap().with_cache_dir(None)
}

fn find(src: &dyn TypeSource, kind: CompositeKind, name: &str) -> TypeId {
    src.find_composite(kind, name)
        .unwrap()
        .unwrap_or_else(|| panic!("{kind} {name} not found in {}", src.describe()))
}

fn composite(src: &dyn TypeSource, id: TypeId) -> coolkprobe::types::Composite {
    match resolve(src, id).unwrap().1 {
        Type::Composite(c) => c,
        t => panic!("not a composite: {t:?}"),
    }
}

fn member(src: &dyn TypeSource, id: TypeId, name: &str) -> coolkprobe::types::Member {
    composite(src, id)
        .members
        .into_iter()
        .find(|m| m.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no member {name}"))
}

#[test]
fn layouts_match_pahole() {
    let mut compared = 0;
    for (build, bin) in binaries() {
        let src = open(bin);
        for (kind, name) in [
            (CompositeKind::Struct, "inner"),
            (CompositeKind::Struct, "bits"),
            (CompositeKind::Struct, "packed"),
            (CompositeKind::Struct, "holder"),
            (CompositeKind::Struct, "uses_fwd"),
            (CompositeKind::Union, "top"),
        ] {
            let ours = layout::render(&src, find(&src, kind, name), 8).unwrap();
            let out = Command::new("pahole")
                .args(["-F", "dwarf", "-C", name])
                .arg(bin)
                .output()
                .expect("pahole is needed (apt-get install dwarves)");
            let theirs = String::from_utf8(out.stdout).unwrap();
            assert!(
                !theirs.is_empty(),
                "pahole printed nothing for {name} ({build})"
            );
            let (a, b) = (
                pahole::members(&ours),
                pahole::members(&pahole::without_zero_width(&theirs)),
            );
            assert!(!a.is_empty(), "{name}: no members parsed:\n{ours}");
            assert_eq!(
                a, b,
                "{kind} {name} ({build}) differs from pahole.\nours:\n{ours}\npahole:\n{theirs}"
            );
            compared += a.len();
        }
    }
    eprintln!("{compared} member offsets agree with pahole");
    assert!(compared > 150);
}

/// Bit offsets of `struct bits` from the C rules (x86_64, little-endian):
/// DWARF 4's DW_AT_bit_offset and DWARF 5's DW_AT_data_bit_offset must
/// both decode to these.
#[test]
fn bitfields_both_encodings() {
    let want: &[(&str, u64, u32)] = &[
        ("lo", 0, 3),
        ("mid", 3, 7),
        ("neg", 10, 5),
        ("c1", 32, 1),
        ("c2", 33, 7),
        ("wide", 64, 40),
        ("rest", 104, 24),
        ("flag", 128, 1),
        ("col", 129, 4),
        ("across", 144, 12),
    ];
    for (build, bin) in binaries() {
        let src = open(bin);
        let c = composite(&src, find(&src, CompositeKind::Struct, "bits"));
        let got: Vec<(&str, u64, u32)> = c
            .members
            .iter()
            .map(|m| {
                (
                    m.name.as_deref().unwrap_or(""),
                    m.bit_offset,
                    m.bitfield_size.expect("a bitfield"),
                )
            })
            .collect();
        assert_eq!(got, want, "{build}");
        assert_eq!(c.size, 24, "{build}");
        let neg = member(&src, find(&src, CompositeKind::Struct, "bits"), "neg");
        assert!(matches!(resolve(&src, neg.ty).unwrap().1, Type::Int(i) if i.signed));
        // Packed: a bitfield straddling bytes 5..7.
        let p = composite(&src, find(&src, CompositeKind::Struct, "packed"));
        let pb = p
            .members
            .iter()
            .find(|m| m.name.as_deref() == Some("pbits"))
            .unwrap();
        assert_eq!((pb.bit_offset, pb.bitfield_size), (40, Some(9)), "{build}");
        assert_eq!(p.size, 15, "{build}");
    }
}

fn array_dims(src: &dyn TypeSource, mut id: TypeId) -> (Vec<u64>, TypeId) {
    let mut dims = Vec::new();
    while let Type::Array { elem, len } = src.get(id).unwrap() {
        dims.push(len);
        id = elem;
    }
    (dims, id)
}

#[test]
fn arrays_typedefs_qualifiers_enums() {
    for (build, bin) in binaries() {
        let src = open(bin);
        let h = find(&src, CompositeKind::Struct, "holder");
        let m = |n| member(&src, h, n);

        let (dims, elem) = array_dims(&src, m("matrix").ty);
        assert_eq!(dims, [2, 3], "{build}");
        assert_eq!(type_name(&src, elem), "int");
        let (dims, elem) = array_dims(&src, m("cube").ty);
        assert_eq!(dims, [2, 3, 4], "{build}");
        assert_eq!(type_name(&src, elem), "char");
        assert_eq!(
            array_dims(&src, m("tail").ty).0,
            [0],
            "{build}: flexible array"
        );
        assert_eq!(array_dims(&src, m("comm").ty).0, [16]);
        let (dims, elem) = array_dims(&src, m("arr_of_structs").ty);
        assert_eq!(dims, [3]);
        assert_eq!(type_name(&src, elem), "inner2_t");
        assert!(
            matches!(resolve(&src, elem).unwrap().1, Type::Composite(c) if c.name.as_deref() == Some("inner"))
        );

        // cflags_t -> const flags_t -> flags_t -> u32_t -> unsigned int
        let mut chain = Vec::new();
        let mut id = m("flags").ty;
        loop {
            match src.get(id).unwrap() {
                Type::Typedef { name, target } => {
                    chain.push(name);
                    id = target
                }
                Type::Qualified { qualifier, target } => {
                    chain.push(format!("{qualifier:?}"));
                    id = target
                }
                Type::Int(i) => {
                    chain.push(i.name);
                    assert!(!i.signed && i.size == 4);
                    break;
                }
                t => panic!("{t:?}"),
            }
        }
        assert_eq!(
            chain,
            ["cflags_t", "Const", "flags_t", "u32_t", "unsigned int"],
            "{build}"
        );

        // const volatile int *
        let Type::Pointer { target, .. } = src.get(m("cvp").ty).unwrap() else {
            panic!()
        };
        let mut quals = Vec::new();
        let mut id = target;
        while let Type::Qualified { qualifier, target } = src.get(id).unwrap() {
            quals.push(qualifier);
            id = target;
        }
        quals.sort_by_key(|q| format!("{q:?}"));
        assert_eq!(quals, [Qualifier::Const, Qualifier::Volatile], "{build}");

        // Enums: signedness from a negative enumerator / the base type;
        // the enumerators with their values (a negative one
        // sign-extended, one past 32 bits whole).
        let values = |vs: &[(&str, u64)]| -> Vec<coolkprobe::types::Enumerator> {
            vs.iter()
                .map(|(n, v)| coolkprobe::types::Enumerator {
                    name: n.to_string(),
                    value: *v,
                })
                .collect()
        };
        assert_eq!(
            src.get(m("color").ty).unwrap(),
            Type::Enum {
                name: Some("color".into()),
                size: 4,
                signed: true,
                values: values(&[("RED", u64::MAX), ("GREEN", 0), ("BLUE", 7)]),
            },
            "{build}"
        );
        assert_eq!(
            src.get(m("big").ty).unwrap(),
            Type::Enum {
                name: Some("big".into()),
                size: 8,
                signed: false,
                values: values(&[("SMALL", 1), ("HUGE", 0x1_0000_0000)]),
            },
            "{build}"
        );

        // A function pointer: int (*)(struct holder *, const char *, ...)
        let Type::Pointer { target, .. } = src.get(m("callback").ty).unwrap() else {
            panic!()
        };
        let Type::FuncProto {
            ret,
            params,
            variadic,
        } = src.get(target).unwrap()
        else {
            panic!()
        };
        assert!(variadic);
        assert_eq!(type_name(&src, ret), "int");
        let types: Vec<String> = params.iter().map(|p| type_name(&src, p.ty)).collect();
        assert_eq!(types, ["struct holder *", "const char *"], "{build}");

        // Anonymous members: a union holding a struct, searched through.
        let c = composite(&src, h);
        let anon = &c.members[1];
        assert_eq!((anon.name.as_deref(), anon.bit_offset), (None, 32));
        let u = composite(&src, anon.ty);
        assert_eq!(u.kind, CompositeKind::Union);
        let inner = composite(&src, u.members[2].ty);
        assert_eq!(inner.members[1].name.as_deref(), Some("hi16"));
        assert_eq!(inner.members[1].bit_offset, 16);

        // A pointer to a struct declared but never defined.
        let f = find(&src, CompositeKind::Struct, "uses_fwd");
        let Type::Pointer { target, .. } = src.get(member(&src, f, "opaque").ty).unwrap() else {
            panic!()
        };
        assert_eq!(
            src.get(target).unwrap(),
            Type::Fwd {
                name: "fwd_only".into(),
                kind: CompositeKind::Struct
            }
        );
        assert_eq!(
            src.find_composite(CompositeKind::Struct, "fwd_only")
                .unwrap(),
            None
        );

        // `char` and `_Bool`.
        let Type::Int(ch) = resolve(&src, elem_of(&src, m("comm").ty)).unwrap().1 else {
            panic!()
        };
        assert!(ch.is_char && ch.signed && ch.size == 1, "{ch:?}");
        let fl = member(&src, find(&src, CompositeKind::Struct, "bits"), "flag");
        assert!(matches!(resolve(&src, fl.ty).unwrap().1, Type::Int(i) if i.is_bool));
    }
}

fn elem_of(src: &dyn TypeSource, id: TypeId) -> TypeId {
    match src.get(id).unwrap() {
        Type::Array { elem, .. } => elem,
        t => panic!("{t:?}"),
    }
}

#[test]
fn functions_with_parameter_names() {
    for (build, bin) in binaries() {
        let src = open(bin);
        let f = src.find_func("probe_me").unwrap().unwrap();
        let Type::Func { name, proto } = src.get(f).unwrap() else {
            panic!()
        };
        assert_eq!(name, "probe_me");
        let Type::FuncProto {
            ret,
            params,
            variadic,
        } = src.get(proto).unwrap()
        else {
            panic!()
        };
        assert!(!variadic);
        assert_eq!(type_name(&src, ret), "int");
        let got: Vec<(String, String)> = params
            .iter()
            .map(|p| (p.name.clone().unwrap(), type_name(&src, p.ty)))
            .collect();
        assert_eq!(
            got,
            [
                ("h".into(), "struct holder *".into()),
                ("label".into(), "const char *".into()),
                ("n".into(), "int".into())
            ],
            "{build}"
        );
        let s = src.find_func("sum_all").unwrap().unwrap();
        let Type::Func { proto, .. } = src.get(s).unwrap() else {
            panic!()
        };
        assert!(
            matches!(src.get(proto).unwrap(), Type::FuncProto { variadic: true, ref params, .. } if params.len() == 1)
        );
        assert_eq!(src.find_func("no_such_function").unwrap(), None);
        // printf is only declared (libc has no DWARF here) or absent;
        // either way no panic.
        let _ = src.find_func("printf").unwrap();
    }
}

/// `-v` on an ELF without .BTF picks its DWARF.
#[test]
fn load_picks_dwarf_without_btf() {
    let (_, bin) = &binaries()[0];
    let src = load::open_file(bin).unwrap();
    assert!(
        src.describe().starts_with("DWARF of "),
        "{}",
        src.describe()
    );
    assert!(src
        .find_composite(CompositeKind::Struct, "holder")
        .unwrap()
        .is_some());
}

/// The cache: used on the second open, and never trusted blindly.
#[test]
fn cache_checked_against_the_dies() {
    let (_, bin) = &binaries()[3];
    let dir = work_dir().join("cache");
    let _ = std::fs::remove_dir_all(&dir);
    let open_c = || {
        DwarfSource::open(bin)
            .unwrap()
            .with_cache_dir(Some(dir.clone()))
    };
    let want = {
        let s = open_c();
        layout::render(&s, find(&s, CompositeKind::Struct, "holder"), 8).unwrap()
    };
    let file = cache::file_for(&dir, open_c().cache_key());
    let good = std::fs::read(&file).expect("index saved");
    let check = |what: &str| {
        let s = open_c();
        let got = layout::render(&s, find(&s, CompositeKind::Struct, "holder"), 8).unwrap();
        assert_eq!(got, want, "{what}");
        assert!(s.find_func("probe_me").unwrap().is_some(), "{what}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            good,
            "{what}: index rewritten"
        );
    };
    check("cached");

    // A well-formed index (valid checksum) whose entries point at the
    // wrong DIEs: every entry gets the next entry's offset.
    let mut lying = good.clone();
    let u32_at =
        |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let (key_len, n_units, n_entries) = (u32_at(&good, 8), u32_at(&good, 12), u32_at(&good, 16));
    let entries = 48 + key_len.div_ceil(8) * 8 + n_units * 8;
    assert!(n_entries > 3);
    for i in 0..n_entries {
        let j = (i + 1) % n_entries;
        lying[entries + 16 * i..entries + 16 * i + 8]
            .copy_from_slice(&good[entries + 16 * j..entries + 16 * j + 8]);
    }
    let sum = coolkprobe::types::dwarf::index::file_checksum(&lying);
    lying[32..40].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(&file, &lying).unwrap();
    check("entries pointing at other DIEs");

    // Another file's index under this file's name (build-id mismatch).
    let other = &binaries()[0].1;
    let other_src = DwarfSource::open(other)
        .unwrap()
        .with_cache_dir(Some(dir.clone()));
    other_src.find_func("main").unwrap();
    let other_file = cache::file_for(&dir, other_src.cache_key());
    assert_ne!(other_file, file);
    std::fs::copy(&other_file, &file).unwrap();
    check("index of another build");

    let mut flipped = good.clone();
    let at = flipped.len() - 3;
    flipped[at] ^= 1;
    for (what, bytes) in [
        ("flipped byte", flipped),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("garbage", vec![0x5a; 300]),
        ("empty", Vec::new()),
    ] {
        std::fs::write(&file, &bytes).unwrap();
        check(what);
    }
}

/// Find a section's file range with the object crate.
fn section_range(bytes: &[u8], name: &str) -> std::ops::Range<usize> {
    use object::{Object, ObjectSection};
    let f = object::File::parse(bytes).unwrap();
    let s = f.section_by_name(name).unwrap();
    let (off, size) = s.file_range().unwrap();
    off as usize..(off + size) as usize
}

/// Open, look up and describe everything reachable; any result is fine
/// but a panic. Returns whether it all worked.
fn exercise(path: &Path) -> bool {
    let Ok(src) = DwarfSource::open(path) else {
        return false;
    };
    let src = src.with_cache_dir(None);
    let mut ok = true;
    for name in ["holder", "bits", "packed", "inner"] {
        match src.find_composite(CompositeKind::Struct, name) {
            Ok(Some(id)) => ok &= layout::render(&src, id, 8).is_ok(),
            _ => ok = false,
        }
    }
    match src.find_func("probe_me") {
        Ok(Some(f)) => {
            if let Ok(Type::Func { proto, .. }) = src.get(f) {
                ok &= src.get(proto).is_ok();
            }
        }
        _ => ok = false,
    }
    ok &= src.composite_names(CompositeKind::Union).is_ok();
    // Ids that are not DIEs.
    for raw in [1u64, 7, 0x1_0000_0000, u64::MAX, (1 << 63) | 12] {
        let _ = src.get(TypeId(raw));
    }
    ok
}

#[test]
fn malformed_files_are_errors_not_panics() {
    let (_, bin) = &binaries()[3];
    let good = std::fs::read(bin).unwrap();
    assert!(exercise(bin));
    let dir = work_dir().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };

    // Truncated ELF files.
    for len in [0, 4, 16, 63, 64, 1000, good.len() / 3, good.len() - 1] {
        let p = write("truncated", &good[..len]);
        match DwarfSource::open(&p) {
            Err(TypeError::BadElf { .. } | TypeError::NoTypes { .. }) => {}
            Err(e) => panic!("truncated to {len}: unexpected {e}"),
            Ok(_) => {
                exercise(&p);
            }
        }
    }
    // Not ELF; ELF without DWARF.
    assert!(matches!(
        DwarfSource::open(&write("text", b"hello world, not an ELF")),
        Err(TypeError::BadElf { .. })
    ));
    let stripped = dir.join("stripped");
    let st = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(bin)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(matches!(
        DwarfSource::open(&stripped),
        Err(TypeError::NoTypes { .. })
    ));

    // Garbage in .debug_info / .debug_abbrev: whole sections, then many
    // single-byte changes (a small deterministic fuzz).
    let info = section_range(&good, ".debug_info");
    let abbrev = section_range(&good, ".debug_abbrev");
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for (what, range) in [("info", info.clone()), ("abbrev", abbrev.clone())] {
        let mut bad = good.clone();
        for b in &mut bad[range.clone()] {
            *b = next() as u8;
        }
        let p = write("garbage", &bad);
        assert!(!exercise(&p), "garbage {what} went unnoticed");
        let mut bad = good.clone();
        bad[range.clone()].fill(0xff);
        exercise(&write("ones", &bad));
    }
    let mut failures = 0;
    for i in 0..400 {
        let mut bad = good.clone();
        let range = if i % 4 == 0 {
            abbrev.clone()
        } else {
            info.clone()
        };
        for _ in 0..1 + i % 3 {
            let at = range.start + (next() as usize) % range.len();
            bad[at] = next() as u8;
        }
        if !exercise(&write("mutated", &bad)) {
            failures += 1;
        }
    }
    eprintln!("400 mutated files: {failures} gave errors, none panicked");
}

/// A stripped binary whose DWARF was split off (`objcopy
/// --only-keep-debug` + `--add-gnu-debuglink`, as distributions ship
/// -dbgsym packages): its types come from the debug file, and only from
/// the debug file of the same build.
#[test]
fn separate_debug_file() {
    let (_, bin) = &binaries()[3];
    let dir = work_dir().join("split");
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let st = Command::new(args[0])
            .args(&args[1..])
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "{args:?}");
    };
    std::fs::copy(bin, dir.join("prog")).unwrap();
    run(&["objcopy", "--only-keep-debug", "prog", "prog.debug"]);
    run(&["strip", "--strip-debug", "-o", "prog.stripped", "prog"]);
    run(&["objcopy", "--add-gnu-debuglink=prog.debug", "prog.stripped"]);
    let stripped = dir.join("prog.stripped");
    assert!(matches!(
        DwarfSource::open(&stripped),
        Err(TypeError::NoTypes { .. })
    ));
    let src = load::open_file(&stripped).unwrap();
    assert!(src.describe().ends_with("prog.debug"), "{}", src.describe());
    let id = find(src.as_ref(), CompositeKind::Struct, "holder");
    let want = {
        let full = open(bin);
        layout::render(&full, find(&full, CompositeKind::Struct, "holder"), 8).unwrap()
    };
    assert_eq!(layout::render(src.as_ref(), id, 8).unwrap(), want);

    // The debug file of another build under the linked name: refused.
    let (_, other) = &binaries()[4];
    std::fs::copy(other, dir.join("other")).unwrap();
    std::fs::remove_file(dir.join("prog.debug")).unwrap();
    run(&["objcopy", "--only-keep-debug", "other", "prog.debug"]);
    assert!(matches!(
        load::open_file(&stripped),
        Err(TypeError::NoTypes { .. })
    ));
}

/// Compressed debug sections (SHF_COMPRESSED, zlib and zstd, as some
/// distributions ship them) read the same as plain ones.
#[test]
fn compressed_debug_sections() {
    let (_, bin) = &binaries()[3];
    let plain = open(bin);
    let want = layout::render(&plain, find(&plain, CompositeKind::Struct, "holder"), 8).unwrap();
    for method in ["zlib", "zstd"] {
        let out = work_dir().join(format!("compressed-{method}"));
        let st = Command::new("objcopy")
            .arg(format!("--compress-debug-sections={method}"))
            .arg(bin)
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success(), "objcopy {method}");
        {
            use object::{Object, ObjectSection};
            let bytes = std::fs::read(&out).unwrap();
            let f = object::File::parse(&*bytes).unwrap();
            let info = f.section_by_name(".debug_info").unwrap();
            assert_ne!(
                info.compressed_file_range().unwrap().format,
                object::CompressionFormat::None,
                "{method}: .debug_info not compressed"
            );
        }
        let src = open(&out);
        let got = layout::render(&src, find(&src, CompositeKind::Struct, "holder"), 8).unwrap();
        assert_eq!(got, want, "{method}");
        assert!(src.find_func("probe_me").unwrap().is_some(), "{method}");
    }
}

/// Relocatable objects (`gcc -c`, and kernel modules' .ko debug files):
/// their DWARF's string and section references are relocations, applied
/// on load. Same layouts as the linked program, and as pahole says.
#[test]
fn relocatable_objects() {
    let src_c = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/types.c");
    for (flag, linked) in [("-gdwarf-4", 1), ("-gdwarf-5", 3)] {
        let obj = work_dir().join(format!("types{flag}.o"));
        let st = Command::new("gcc")
            .args(["-c", "-g", flag, "-O0", "-fno-pie", "-o"])
            .arg(&obj)
            .arg(&src_c)
            .status()
            .unwrap();
        assert!(st.success());
        let o = open(&obj);
        let full = open(&binaries()[linked].1);
        for (kind, name) in [
            (CompositeKind::Struct, "holder"),
            (CompositeKind::Struct, "bits"),
            (CompositeKind::Struct, "packed"),
            (CompositeKind::Union, "top"),
        ] {
            let ours = layout::render(&o, find(&o, kind, name), 8).unwrap();
            let want = layout::render(&full, find(&full, kind, name), 8).unwrap();
            assert_eq!(ours, want, "{flag} {name}");
            let out = Command::new("pahole")
                .args(["-F", "dwarf", "-C", name])
                .arg(&obj)
                .output()
                .unwrap();
            let theirs = String::from_utf8(out.stdout).unwrap();
            assert_eq!(
                pahole::members(&ours),
                pahole::members(&theirs),
                "{flag} {name} vs pahole:\n{theirs}"
            );
        }
        let f = o.find_func("probe_me").unwrap().unwrap();
        let Type::Func { proto, .. } = o.get(f).unwrap() else {
            panic!()
        };
        let Type::FuncProto { params, .. } = o.get(proto).unwrap() else {
            panic!()
        };
        let names: Vec<_> = params.iter().map(|p| p.name.clone().unwrap()).collect();
        assert_eq!(names, ["h", "label", "n"], "{flag}");
    }
}

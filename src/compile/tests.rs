//! Walk rules on a small hand-made type graph: the corners real kernels
//! rarely show (bitfields straddling their unit, flexible arrays, forward
//! declarations, typedef loops, deep single-member nesting). The real
//! proof is tests/offsets_pahole.rs on real BTF; this pins the edges.

use std::collections::HashMap;

use super::{compile_probe, Context};
use crate::arch::Arch;
use crate::spec::parse_probe;
use crate::types::*;

#[derive(Default)]
struct Graph {
    types: HashMap<u64, Type>,
    names: Vec<(CompositeKind, String, u64)>,
    funcs: Vec<(String, u64)>,
}

impl Graph {
    fn add(&mut self, id: u64, t: Type) {
        if let Type::Composite(c) = &t {
            if let Some(n) = &c.name {
                self.names.push((c.kind, n.clone(), id));
            }
        }
        self.types.insert(id, t);
    }
}

impl TypeSource for Graph {
    fn describe(&self) -> String {
        "test graph".into()
    }
    fn find_composite(&self, kind: CompositeKind, name: &str) -> Result<Option<TypeId>> {
        Ok(self
            .names
            .iter()
            .find(|(k, n, _)| *k == kind && n == name)
            .map(|x| TypeId(x.2)))
    }
    fn get(&self, id: TypeId) -> Result<Type> {
        self.types
            .get(&id.0)
            .cloned()
            .ok_or(TypeError::NoSuchType(id.0))
    }
    fn find_func(&self, name: &str) -> Result<Option<TypeId>> {
        Ok(self
            .funcs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| TypeId(*id)))
    }
    fn func_names(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    fn composite_names(&self, kind: CompositeKind) -> Result<Vec<String>> {
        Ok(self
            .names
            .iter()
            .filter(|x| x.0 == kind)
            .map(|x| x.1.clone())
            .collect())
    }
}

fn int(name: &str, size: u32, signed: bool) -> Type {
    Type::Int(IntType {
        name: name.into(),
        size,
        signed,
        is_char: false,
        is_bool: false,
    })
}

fn member(name: Option<&str>, ty: u64, bit_offset: u64, bits: Option<u32>) -> Member {
    Member {
        name: name.map(String::from),
        ty: TypeId(ty),
        bit_offset,
        bitfield_size: bits,
    }
}

fn strukt(name: Option<&str>, size: u64, members: Vec<Member>) -> Type {
    Type::Composite(Composite {
        kind: CompositeKind::Struct,
        name: name.map(String::from),
        size,
        members,
    })
}

/// ids: 1 u8, 2 u32, 3 char, 4 u64; 10 struct s; 20.. helpers.
fn graph() -> Graph {
    let mut g = Graph::default();
    g.add(1, int("unsigned char", 1, false));
    g.add(2, int("unsigned int", 4, false));
    g.add(3, int("char", 1, true));
    g.add(4, int("long long unsigned int", 8, false));
    g.add(
        5,
        Type::Typedef {
            name: "u8".into(),
            target: TypeId(1),
        },
    );
    // struct s {
    //   u32 a:3 at bit 0; u32 b:6 at bit 30 (straddles its u32 unit);
    //   u64 flex[] at 8; struct fwd *f at 8 (pointer); struct w1 w at 16;
    //   loop_t l at 24; u8 bytes[4] at 28; struct body *bp at 0 (a
    //   pointer to a forward declaration whose body exists);
    // }
    g.add(
        10,
        strukt(
            Some("s"),
            32,
            vec![
                member(Some("a"), 2, 0, Some(3)),
                member(Some("b"), 2, 30, Some(6)),
                member(Some("flex"), 21, 64, None),
                member(Some("f"), 22, 64, None),
                member(Some("w"), 30, 128, None),
                member(Some("l"), 40, 192, None),
                member(Some("bytes"), 23, 224, None),
                member(Some("bp"), 50, 0, None),
            ],
        ),
    );
    g.add(
        21,
        Type::Array {
            elem: TypeId(4),
            len: 0,
        },
    );
    g.add(
        22,
        Type::Pointer {
            target: TypeId(24),
            user: false,
        },
    );
    g.add(
        23,
        Type::Array {
            elem: TypeId(5),
            len: 4,
        },
    );
    g.add(
        24,
        Type::Fwd {
            name: "fwd".into(),
            kind: CompositeKind::Struct,
        },
    );
    // struct w1 { struct w2 { struct w3 { u32 v; } } }: nested single members.
    g.add(
        30,
        strukt(Some("w1"), 4, vec![member(Some("x"), 31, 0, None)]),
    );
    g.add(31, strukt(Some("w2"), 4, vec![member(None, 32, 0, None)]));
    g.add(32, strukt(None, 4, vec![member(Some("v"), 2, 0, None)]));
    // typedef loop: 40 -> 41 -> 40
    g.add(
        40,
        Type::Typedef {
            name: "loop_t".into(),
            target: TypeId(41),
        },
    );
    g.add(
        41,
        Type::Qualified {
            qualifier: Qualifier::Const,
            target: TypeId(40),
        },
    );
    g.add(
        50,
        Type::Pointer {
            target: TypeId(51),
            user: false,
        },
    );
    g.add(
        51,
        Type::Fwd {
            name: "body".into(),
            kind: CompositeKind::Struct,
        },
    );
    g.add(
        52,
        strukt(Some("body"), 8, vec![member(Some("z"), 4, 0, None)]),
    );
    g
}

fn compile(g: &Graph, spec: &str) -> std::result::Result<String, String> {
    let cx = Context::new(Arch::X86_64, Some(g));
    let p = parse_probe(spec).unwrap();
    compile_probe(0, &p, &cx)
        .map(|c| c.fetchargs[0].fetch_text())
        .map_err(|e| e.to_string())
}

#[test]
fn bitfields_round_to_their_unit_and_grow_when_straddling() {
    let g = graph();
    assert_eq!(
        compile(&g, "p f x=%0~(struct s)->a").unwrap(),
        "+0(%di):b3@0/32"
    );
    // bits 30..36 do not fit the u32 at 0: the u64 at 0 holds them.
    assert_eq!(
        compile(&g, "p f x=%0~(struct s)->b").unwrap(),
        "+0(%di):b6@30/64"
    );
}

#[test]
fn flexible_arrays_have_no_bound() {
    let g = graph();
    assert_eq!(
        compile(&g, "p f x=%0~(struct s)->flex[3]").unwrap(),
        "+0x20(%di):x64"
    );
}

#[test]
fn typedefd_bytes_are_not_strings() {
    let g = graph();
    // A whole array of a typedef of unsigned char: the elements.
    assert_eq!(
        compile(&g, "p f x=%0~(struct s)->bytes").unwrap(),
        "+0x1c(%di):x8[4]"
    );
    assert_eq!(
        compile(&g, "p f x=%0U~(struct s)->bytes").unwrap(),
        "+0x1c(%di):u8[4]"
    );
    assert_eq!(
        compile(&g, "p f x=%0~(struct s)->bytes[3]").unwrap(),
        "+0x1f(%di):x8"
    );
}

#[test]
fn nested_single_member_structs_reduce_through_anonymous_ones() {
    let g = graph();
    assert_eq!(
        compile(&g, "p f x=%0U~(struct s)->w").unwrap(),
        "+0x10(%di):u32"
    );
    assert_eq!(
        compile(&g, "p f x=%0~(struct s)->w.x.v").unwrap(),
        "+0x10(%di):x32"
    );
}

#[test]
fn forward_declarations_and_loops_are_errors_not_hangs() {
    let g = graph();
    let e = compile(&g, "p f x=%0~(struct s)->f->y").unwrap_err();
    assert_eq!(
        e,
        "`->y` needs a pointer to a struct or union, but `%0~(struct s)->f` is `struct fwd *`"
    );
    // The pointer itself is fine.
    assert_eq!(
        compile(&g, "p f x=%0~(struct s)->f").unwrap(),
        "+0x8(%di):x64"
    );
    assert_eq!(
        compile(&g, "p f x=%0~(struct s)->bp->z").unwrap(),
        "+0(+0(%di)):x64"
    );
    let e = compile(&g, "p f x=%0~(struct s)->l").unwrap_err();
    assert!(e.contains("loops"), "{e}");
}

/// `__user` pointers (BTF type tag `user`, as clang-built kernels carry):
/// every dereference through them, and through pointers read from user
/// memory, is a user access (`+u`), strings there are `ustring`.
#[test]
fn user_pointers_read_user_memory() {
    let mut g = graph();
    // struct ustr { char *name; struct ustr *next; u32 n; }
    g.add(
        60,
        strukt(
            Some("ustr"),
            24,
            vec![
                member(Some("name"), 61, 0, None),
                member(Some("next"), 62, 64, None),
                member(Some("n"), 2, 128, None),
            ],
        ),
    );
    g.add(
        61,
        Type::Pointer {
            target: TypeId(3),
            user: false,
        },
    );
    g.add(
        62,
        Type::Pointer {
            target: TypeId(60),
            user: false,
        },
    );
    // int f(struct ustr __user *u, const char __user *s, struct ustr *k)
    g.add(
        63,
        Type::Pointer {
            target: TypeId(60),
            user: true,
        },
    );
    g.add(
        64,
        Type::Pointer {
            target: TypeId(3),
            user: true,
        },
    );
    g.add(
        65,
        Type::FuncProto {
            ret: TypeId(2),
            params: vec![
                Param {
                    name: Some("u".into()),
                    ty: TypeId(63),
                },
                Param {
                    name: Some("s".into()),
                    ty: TypeId(64),
                },
                Param {
                    name: Some("k".into()),
                    ty: TypeId(62),
                },
            ],
            variadic: false,
        },
    );
    g.add(
        66,
        Type::Func {
            name: "f".into(),
            proto: TypeId(65),
        },
    );
    g.funcs.push(("f".into(), 66));
    for (spec, want) in [
        ("p f a=u->n", "+u0x10(%di):u32"),
        ("p f a=%0->n", "+u0x10(%di):u32"),
        ("p f a=u->next->n", "+u0x10(+u0x8(%di)):u32"),
        ("p f a=u->name", "+0(+u0(%di)):ustring"),
        ("p f a=s", "+0(%si):ustring"),
        // Kernel pointers stay plain.
        ("p f a=k->next->n", "+0x10(+0x8(%dx)):u32"),
        ("p f a=k->name", "+0(+0(%dx)):string"),
    ] {
        assert_eq!(compile(&g, spec).as_deref(), Ok(want), "{spec}");
    }
}

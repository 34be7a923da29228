//! [`TypeSource`] over BTF: a base blob (vmlinux, or a file given with -v)
//! plus, for the running kernel, the split BTF of loaded modules, which is
//! opened only when a name is not found in vmlinux.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::btf::{map_or_read, Btf};
use super::{CompositeKind, Result, Type, TypeId, TypeSource};

pub struct BtfSource {
    origin: String,
    base: Arc<Btf>,
    /// Directory of module BTF files (`/sys/kernel/btf`), if modules apply.
    module_dir: Option<PathBuf>,
    modules: OnceCell<Vec<Btf>>,
    /// Names looked up so far, and what was found: a lookup scans every
    /// type, and the stages ask for the same function several times (its
    /// check, its prototype, its compile).
    found: RefCell<HashMap<(Lookup, String), Option<TypeId>>>,
}

/// What a name was looked up as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Lookup {
    Composite(CompositeKind),
    Func,
}

/// TypeId layout: the low 32 bits are the BTF id, the high bits say which
/// blob (0 = base, m + 1 = module m), since module ids overlap each other.
fn encode(blob: usize, id: u32) -> TypeId {
    TypeId(((blob as u64) << 32) | id as u64)
}

impl BtfSource {
    pub fn new(origin: String, base: Btf, module_dir: Option<PathBuf>) -> BtfSource {
        BtfSource {
            origin,
            base: Arc::new(base),
            module_dir,
            modules: OnceCell::new(),
            found: RefCell::new(HashMap::new()),
        }
    }

    /// Module blobs, loaded on first use. A module file that fails to parse
    /// is skipped: one broken module must not hide vmlinux types.
    fn modules(&self) -> &[Btf] {
        self.modules.get_or_init(|| {
            let Some(dir) = &self.module_dir else {
                return Vec::new();
            };
            let Ok(rd) = std::fs::read_dir(dir) else {
                return Vec::new();
            };
            let mut paths: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.file_name().is_some_and(|n| n != "vmlinux"))
                .collect();
            paths.sort();
            paths
                .into_iter()
                .filter_map(|p| {
                    let backing = Arc::new(map_or_read(&p).ok()?);
                    let len = backing.bytes().len();
                    Btf::parse_split(backing, 0..len, self.base.clone()).ok()
                })
                .collect()
        })
    }

    fn blob(&self, id: TypeId) -> Result<(usize, &Btf, u32)> {
        let blob = (id.0 >> 32) as usize;
        let raw = id.0 as u32;
        if blob == 0 {
            return Ok((0, &self.base, raw));
        }
        match self.modules().get(blob - 1) {
            Some(m) => Ok((blob, m, raw)),
            None => Err(super::TypeError::NoSuchType(id.0)),
        }
    }

    /// Re-encode ids found in a module's type: ids below the module's own
    /// range belong to the base.
    fn rebase(&self, blob: usize, t: Type) -> Type {
        if blob == 0 {
            return t;
        }
        let first = self.base.next_id() as u64;
        let fix = |id: TypeId| {
            if id.0 >= first {
                encode(blob, id.0 as u32)
            } else {
                id
            }
        };
        match t {
            Type::Pointer { target, user } => Type::Pointer {
                target: fix(target),
                user,
            },
            Type::Array { elem, len } => Type::Array {
                elem: fix(elem),
                len,
            },
            Type::Composite(mut c) => {
                for m in &mut c.members {
                    m.ty = fix(m.ty);
                }
                Type::Composite(c)
            }
            Type::Typedef { name, target } => Type::Typedef {
                name,
                target: fix(target),
            },
            Type::Qualified { qualifier, target } => Type::Qualified {
                qualifier,
                target: fix(target),
            },
            Type::Func { name, proto } => Type::Func {
                name,
                proto: fix(proto),
            },
            Type::FuncProto {
                ret,
                mut params,
                variadic,
            } => {
                for p in &mut params {
                    p.ty = fix(p.ty);
                }
                Type::FuncProto {
                    ret: fix(ret),
                    params,
                    variadic,
                }
            }
            other => other,
        }
    }

    /// [`Self::find`], once per name.
    fn find_once(
        &self,
        what: Lookup,
        name: &str,
        f: impl Fn(&Btf) -> Option<u32>,
    ) -> Option<TypeId> {
        let key = (what, name.to_string());
        if let Some(found) = self.found.borrow().get(&key) {
            return *found;
        }
        let found = self.find(f);
        self.found.borrow_mut().insert(key, found);
        found
    }

    fn find(&self, f: impl Fn(&Btf) -> Option<u32>) -> Option<TypeId> {
        if let Some(id) = f(&self.base) {
            return Some(encode(0, id));
        }
        self.modules()
            .iter()
            .enumerate()
            .find_map(|(i, m)| f(m).map(|id| encode(i + 1, id)))
    }
}

impl TypeSource for BtfSource {
    fn describe(&self) -> String {
        self.origin.clone()
    }

    fn find_composite(&self, kind: CompositeKind, name: &str) -> Result<Option<TypeId>> {
        Ok(self.find_once(Lookup::Composite(kind), name, |b| {
            b.find_composite(kind, name)
        }))
    }

    fn get(&self, id: TypeId) -> Result<Type> {
        let (blob, btf, raw) = self.blob(id)?;
        let t = btf.get(raw)?;
        Ok(self.rebase(blob, t))
    }

    fn find_func(&self, name: &str) -> Result<Option<TypeId>> {
        Ok(self.find_once(Lookup::Func, name, |b| b.find_func(name)))
    }

    fn prefetch(&self, funcs: &[&str], composites: &[(CompositeKind, &str)]) {
        // In vmlinux, in one pass; a module is searched by name later,
        // only for what vmlinux lacks.
        let found = self.base.find_all(funcs, composites);
        let keys = funcs.iter().map(|f| (Lookup::Func, f.to_string())).chain(
            composites
                .iter()
                .map(|(k, n)| (Lookup::Composite(*k), n.to_string())),
        );
        let mut memo = self.found.borrow_mut();
        for (key, id) in keys.zip(found) {
            match id {
                Some(id) => {
                    memo.insert(key, Some(encode(0, id)));
                }
                None if self.module_dir.is_none() => {
                    memo.insert(key, None);
                }
                None => {}
            }
        }
    }

    fn find_enumerator(&self, name: &str) -> Result<Option<TypeId>> {
        Ok(self.find(|b| b.find_enumerator(name)))
    }

    fn func_names(&self) -> Result<Vec<String>> {
        let mut names = self.base.func_names();
        for m in self.modules() {
            names.extend(m.func_names());
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn composite_names(&self, kind: CompositeKind) -> Result<Vec<String>> {
        let mut names = self.base.composite_names(kind);
        for m in self.modules() {
            names.extend(m.composite_names(kind));
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

//! [`TypeSource`] over an ELF file's DWARF (a debuginfo vmlinux, or a user
//! program built with -g), read with gimli straight from the mapped file.
//!
//! A debuginfo vmlinux carries hundreds of MB of DWARF, so nothing is
//! parsed up front. Describing a type decodes the one DIE its [`TypeId`]
//! points at (the id *is* the DIE's `.debug_info` offset). Finding a struct
//! or function by name needs an index of names: [`index`] builds it in one
//! pass over the top level of every unit (children are skipped through
//! `DW_AT_sibling`), and [`cache`] keeps it on disk keyed by the file's
//! build-id, so only the first run on a given kernel pays for the pass.

pub mod cache;
mod die;
pub mod index;

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gimli::{EndianSlice, RunTimeEndian};
use object::{Object, ObjectSection};

use super::btf::{map_or_read, Backing};
use super::{CompositeKind, Result, Type, TypeError, TypeId, TypeSource};
use index::{Index, Kind};

pub(crate) type R<'a> = EndianSlice<'a, RunTimeEndian>;

/// Bits of a [`TypeId`]: the low 48 are a `.debug_info` offset; the others
/// name types DWARF has no DIE of their own for.
pub(crate) const OFFSET_BITS: u64 = (1 << 48) - 1;
/// The prototype of the function (`DW_TAG_subprogram`) at the offset.
pub(crate) const PROTO_FLAG: u64 = 1 << 63;
/// Bits 48..56: for an array DIE, the first dimension this id describes
/// (`int a[2][3]` is one DIE with two subranges; its id with dimension 1
/// is the `int[3]` inside).
pub(crate) const DIM_SHIFT: u32 = 48;

/// A debug section: where its bytes are in the file, or its decompressed
/// copy (SHF_COMPRESSED sections).
enum Sec {
    Missing,
    InFile(std::ops::Range<usize>),
    Owned(Vec<u8>),
}

pub struct DwarfSource {
    origin: String,
    path: PathBuf,
    backing: Arc<Backing>,
    endian: RunTimeEndian,
    info: Sec,
    abbrev: Sec,
    str_: Sec,
    str_offsets: Sec,
    line_str: Sec,
    /// Cache key: the NT_GNU_BUILD_ID note, or a fingerprint of the file.
    key: Vec<u8>,
    /// Where the index is kept between runs (None: not kept).
    cache_dir: Option<PathBuf>,
    index: OnceCell<Index>,
    /// Unit start offsets, sorted (from the index, or a walk of the unit
    /// headers when no name lookup has been made).
    units: OnceCell<Vec<u64>>,
    abbrevs: RefCell<HashMap<u64, Arc<gimli::Abbreviations>>>,
}

fn bad_elf(path: &Path, msg: impl Into<String>) -> TypeError {
    TypeError::BadElf {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

pub(crate) fn bad(offset: Option<u64>, msg: impl Into<String>) -> TypeError {
    TypeError::BadDwarf {
        offset: offset.map(|o| o as usize),
        msg: msg.into(),
    }
}

pub(crate) fn gimli_err(offset: Option<u64>, e: gimli::Error) -> TypeError {
    bad(offset, e.to_string())
}

impl DwarfSource {
    /// Open an ELF file's DWARF.
    pub fn open(path: &Path) -> Result<DwarfSource> {
        let backing = Arc::new(map_or_read(path)?);
        DwarfSource::from_backing(path, backing)
    }

    /// The DWARF of an ELF file already mapped (see `load::open_file`).
    pub fn from_backing(path: &Path, backing: Arc<Backing>) -> Result<DwarfSource> {
        let bytes = backing.bytes();
        let elf = object::File::parse(bytes).map_err(|e| bad_elf(path, e.to_string()))?;
        let endian = if elf.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let load = |name: &str| -> Result<Sec> {
            let Some(sec) = elf.section_by_name(name) else {
                return Ok(Sec::Missing);
            };
            let compressed = sec
                .compressed_file_range()
                .map_err(|e| bad_elf(path, format!("{name}: {e}")))?;
            if compressed.format == object::CompressionFormat::None {
                // Sections without file data (NOBITS) read as empty.
                let Some((off, size)) = sec.file_range() else {
                    return Ok(Sec::Missing);
                };
                let start = usize::try_from(off).map_err(|_| bad_elf(path, "huge offset"))?;
                let end = usize::try_from(size)
                    .ok()
                    .and_then(|s| start.checked_add(s))
                    .filter(|&e| e <= bytes.len())
                    .ok_or_else(|| {
                        bad_elf(path, format!("{name} runs past the end of the file"))
                    })?;
                return Ok(Sec::InFile(start..end));
            }
            let data = sec
                .uncompressed_data()
                .map_err(|e| bad_elf(path, format!("{name}: {e}")))?;
            Ok(Sec::Owned(data.into_owned()))
        };
        // A relocatable file (.o, a kernel module's .ko) holds its DWARF's
        // references to other sections (string offsets, abbreviation
        // offsets) as relocations: apply them to copies of the sections.
        let relocatable = elf.kind() == object::ObjectKind::Relocatable;
        let load = |name: &str| -> Result<Sec> {
            let sec = load(name)?;
            if !relocatable || matches!(sec, Sec::Missing) {
                return Ok(sec);
            }
            let mut data = match sec {
                Sec::InFile(r) => bytes[r].to_vec(),
                Sec::Owned(v) => v,
                Sec::Missing => Vec::new(),
            };
            if let Some(s) = elf.section_by_name(name) {
                relocate(&elf, &s, &mut data).map_err(|m| bad_elf(path, format!("{name}: {m}")))?;
            }
            Ok(Sec::Owned(data))
        };
        let info = load(".debug_info")?;
        if matches!(info, Sec::Missing) {
            return Err(TypeError::NoTypes {
                path: path.display().to_string(),
            });
        }
        let key = match elf.build_id() {
            Ok(Some(id)) if !id.is_empty() => {
                let mut k = b"build-id:".to_vec();
                k.extend_from_slice(id);
                k
            }
            _ => file_fingerprint(path, bytes.len()),
        };
        let src = DwarfSource {
            origin: format!("DWARF of {}", path.display()),
            path: path.to_path_buf(),
            endian,
            abbrev: load(".debug_abbrev")?,
            str_: load(".debug_str")?,
            str_offsets: load(".debug_str_offsets")?,
            line_str: load(".debug_line_str")?,
            info,
            key,
            cache_dir: cache::default_dir(),
            index: OnceCell::new(),
            units: OnceCell::new(),
            abbrevs: RefCell::new(HashMap::new()),
            backing,
        };
        Ok(src)
    }

    /// Keep the name index in `dir` (None: build it every run).
    pub fn with_cache_dir(mut self, dir: Option<PathBuf>) -> DwarfSource {
        self.cache_dir = dir;
        self
    }

    /// The cache key of this file (build-id, else a file fingerprint).
    pub fn cache_key(&self) -> &[u8] {
        &self.key
    }

    fn sec<'s>(&'s self, s: &'s Sec) -> &'s [u8] {
        match s {
            Sec::Missing => &[],
            Sec::InFile(r) => self.backing.bytes().get(r.clone()).unwrap_or(&[]),
            Sec::Owned(v) => v,
        }
    }

    pub(crate) fn info_bytes(&self) -> &[u8] {
        self.sec(&self.info)
    }

    /// gimli's view of the sections; cheap (a few slices), made per call
    /// because the slices borrow from `self`.
    pub(crate) fn dwarf(&self) -> gimli::Dwarf<R<'_>> {
        let mut d = gimli::Dwarf::<R<'_>>::default();
        let e = self.endian;
        d.debug_info = gimli::DebugInfo::new(self.sec(&self.info), e);
        d.debug_abbrev = gimli::DebugAbbrev::new(self.sec(&self.abbrev), e);
        d.debug_str = gimli::DebugStr::new(self.sec(&self.str_), e);
        d.debug_str_offsets = gimli::DebugStrOffsets::from(R::new(self.sec(&self.str_offsets), e));
        d.debug_line_str = gimli::DebugLineStr::from(R::new(self.sec(&self.line_str), e));
        d
    }

    pub(crate) fn abbreviations(
        &self,
        dwarf: &gimli::Dwarf<R<'_>>,
        header: &gimli::UnitHeader<R<'_>>,
    ) -> Result<Arc<gimli::Abbreviations>> {
        let off = header.debug_abbrev_offset().0 as u64;
        if let Some(a) = self.abbrevs.borrow().get(&off) {
            return Ok(a.clone());
        }
        let a = Arc::new(
            header
                .abbreviations(&dwarf.debug_abbrev)
                .map_err(|e| gimli_err(None, e))?,
        );
        self.abbrevs.borrow_mut().insert(off, a.clone());
        Ok(a)
    }

    /// The name index: from the cache when it matches this file, else
    /// built (and saved).
    pub(crate) fn index(&self) -> Result<&Index> {
        if let Some(i) = self.index.get() {
            return Ok(i);
        }
        let info_len = self.info_bytes().len() as u64;
        let cached = self
            .cache_dir
            .as_deref()
            .and_then(|d| cache::load(d, &self.key, info_len));
        let idx = match cached {
            Some(i) => i,
            None => {
                let built = index::build(self)?;
                if let Some(d) = &self.cache_dir {
                    // Failing to save only costs the next run time.
                    let _ = cache::store(d, &self.key, &built);
                }
                built
            }
        };
        Ok(self.index.get_or_init(|| idx))
    }

    fn units(&self) -> Result<&[u64]> {
        if let Some(u) = self.units.get() {
            return Ok(u);
        }
        let list = match self.index.get() {
            Some(i) => i.units().to_vec(),
            None => index::unit_offsets(self)?,
        };
        Ok(self.units.get_or_init(|| list))
    }

    /// The start of the unit holding `.debug_info` offset `off`.
    pub(crate) fn unit_of(&self, off: u64) -> Result<u64> {
        let units = self.units()?;
        let i = units.partition_point(|&u| u <= off);
        if i == 0 {
            return Err(bad(Some(off), "offset before the first unit"));
        }
        Ok(units[i - 1])
    }

    /// Look `name` up in the index, and check the DIE it names really is
    /// that `kind` with that name: a stale or damaged cache is never
    /// trusted blindly. A mismatch rebuilds the index once.
    fn lookup(&self, kind: Kind, name: &str) -> Result<Option<TypeId>> {
        let idx = self.index()?;
        let Some(off) = idx.find(kind, name.as_bytes()) else {
            return Ok(None);
        };
        if die::check_named(self, off, kind, name)? {
            return Ok(Some(TypeId(off)));
        }
        // The cached index disagrees with the file: rebuild from DWARF.
        let fresh = index::build(self)?;
        let off = fresh.find(kind, name.as_bytes());
        if let Some(d) = &self.cache_dir {
            let _ = cache::store(d, &self.key, &fresh);
        }
        match off {
            Some(off) if die::check_named(self, off, kind, name)? => Ok(Some(TypeId(off))),
            Some(off) => Err(bad(
                Some(off),
                format!("index names {name} at a different DIE"),
            )),
            None => Ok(None),
        }
    }

    /// The definition (with a body) of a struct/union known only by a
    /// declaration in some unit.
    pub(crate) fn definition_of(&self, kind: CompositeKind, name: &str) -> Result<Option<u64>> {
        let k = match kind {
            CompositeKind::Struct => Kind::Struct,
            CompositeKind::Union => Kind::Union,
        };
        Ok(self.lookup(k, name)?.map(|t| t.0))
    }

    /// The definition of an enum known only by a declaration in some unit.
    pub(crate) fn enum_definition(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.lookup(Kind::Enum, name)?.map(|t| t.0))
    }

    pub(crate) fn is_little_endian(&self) -> bool {
        matches!(self.endian, RunTimeEndian::Little)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Apply a relocatable file's relocations of one debug section: each place
/// gets symbol value + addend (section symbols are 0 in such files, so a
/// string reference becomes its offset in .debug_str).
fn relocate(
    elf: &object::File<'_>,
    sec: &object::Section<'_, '_>,
    data: &mut [u8],
) -> std::result::Result<(), String> {
    use object::{ObjectSymbol, RelocationTarget};
    let little = elf.is_little_endian();
    for (at, rel) in sec.relocations() {
        let base = match rel.target() {
            RelocationTarget::Symbol(i) => {
                elf.symbol_by_index(i).map_err(|e| e.to_string())?.address()
            }
            RelocationTarget::Section(_) | RelocationTarget::Absolute => 0,
            _ => return Err("unsupported relocation target".into()),
        };
        let at = usize::try_from(at).map_err(|_| "relocation offset overflows")?;
        let width = match rel.size() {
            32 => 4,
            64 => 8,
            n => return Err(format!("unsupported {n}-bit relocation")),
        };
        let place = data
            .get_mut(at..at + width)
            .ok_or("relocation outside the section")?;
        let implicit = if rel.has_implicit_addend() {
            let mut b = [0u8; 8];
            if little {
                b[..width].copy_from_slice(place);
                i64::from_le_bytes(b)
            } else {
                b[8 - width..].copy_from_slice(place);
                i64::from_be_bytes(b)
            }
        } else {
            0
        };
        let v = base
            .wrapping_add(rel.addend() as u64)
            .wrapping_add(implicit as u64);
        match (width, little) {
            (4, true) => place.copy_from_slice(&(v as u32).to_le_bytes()),
            (4, false) => place.copy_from_slice(&(v as u32).to_be_bytes()),
            (_, true) => place.copy_from_slice(&v.to_le_bytes()),
            (_, false) => place.copy_from_slice(&v.to_be_bytes()),
        }
    }
    Ok(())
}

/// No build-id: path, size and mtime stand in for it (a rebuilt file gets
/// a new key).
fn file_fingerprint(path: &Path, len: usize) -> Vec<u8> {
    let mut k = b"file:".to_vec();
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    k.extend_from_slice(abs.to_string_lossy().as_bytes());
    k.extend_from_slice(&(len as u64).to_le_bytes());
    if let Ok(m) = std::fs::metadata(path) {
        if let Ok(t) = m.modified() {
            if let Ok(d) = t.duration_since(std::time::UNIX_EPOCH) {
                k.extend_from_slice(&d.as_nanos().to_le_bytes());
            }
        }
    }
    k
}

impl TypeSource for DwarfSource {
    fn describe(&self) -> String {
        self.origin.clone()
    }

    fn find_composite(&self, kind: CompositeKind, name: &str) -> Result<Option<TypeId>> {
        let k = match kind {
            CompositeKind::Struct => Kind::Struct,
            CompositeKind::Union => Kind::Union,
        };
        self.lookup(k, name)
    }

    fn get(&self, id: TypeId) -> Result<Type> {
        die::describe(self, id)
    }

    fn find_func(&self, name: &str) -> Result<Option<TypeId>> {
        self.lookup(Kind::Func, name)
    }

    fn composite_names(&self, kind: CompositeKind) -> Result<Vec<String>> {
        let k = match kind {
            CompositeKind::Struct => Kind::Struct,
            CompositeKind::Union => Kind::Union,
        };
        Ok(self.index()?.names(k))
    }

    /// Every named function in DWARF: definitions, and declarations of
    /// functions defined elsewhere (they carry a prototype too).
    fn func_names(&self) -> Result<Vec<String>> {
        Ok(self.index()?.names(Kind::Func))
    }
}

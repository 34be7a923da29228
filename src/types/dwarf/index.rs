//! The name index: struct, union, enum and function names → the `.debug_info`
//! offset of their DIE.
//!
//! Built in one pass over the top level of every unit; a DIE's children
//! (struct members, function bodies: most of the bytes) are jumped over
//! through `DW_AT_sibling`, and only the DIEs that can be looked up by name
//! have their attributes decoded. Units are split between threads. The
//! result is kept in the same flat byte layout the cache file uses, so a
//! cached index is looked up in place (binary search), never rebuilt into
//! maps.
//!
//! Layout (little-endian):
//! ```text
//!  0  magic "CKPDWIX2" (1 had no enums)
//!  8  key_len u32, n_units u32, n_entries u32, names_len u32
//! 24  debug_info length u64
//! 32  checksum u64 of every other byte of the file
//! 40  reserved u64
//! 48  key (build-id note or file fingerprint), padded to 8
//!     units:   n_units × u64 unit start offsets, ascending
//!     entries: n_entries × { kind<<56 | DIE offset: u64, name_off u32,
//!              name_len u32 }, sorted by (kind, name)
//!     names:   names_len bytes
//! ```

#![allow(non_upper_case_globals)] // gimli's DW_* constants

use std::collections::HashMap;

use gimli::constants::*;
use gimli::{AttributeValue, DebugStrOffsetsBase, DwarfFileType, UnitHeader};

use super::{bad, gimli_err, DwarfSource, Result, R};
use crate::types::btf::Backing;

pub const MAGIC: &[u8; 8] = b"CKPDWIX2";
const HEADER: usize = 48;
const ENTRY: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Struct = 0,
    Union = 1,
    Func = 2,
    /// An enum's definition, for a unit that only declares it.
    Enum = 3,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::Struct,
            1 => Kind::Union,
            2 => Kind::Func,
            3 => Kind::Enum,
            _ => return None,
        })
    }
}

/// The index, in its serialized form (built in memory, or the cache file
/// mapped: only the pages a lookup touches are read).
pub struct Index {
    data: Backing,
    key_len: usize,
    n_units: usize,
    n_entries: usize,
    names_len: usize,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Multiplicative hash over four independent lanes of words: catches a
/// damaged or truncated file, cheaply (well under a millisecond for a
/// kernel's index), not an adversary.
pub fn checksum(b: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lanes = [
        0x243f_6a88_85a3_08d3u64,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    ];
    let mut blocks = b.chunks_exact(32);
    for blk in &mut blocks {
        for (i, lane) in lanes.iter_mut().enumerate() {
            let w = u64::from_le_bytes(blk[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]));
            *lane = (*lane ^ w).wrapping_mul(K).rotate_left(31);
        }
    }
    let mut h = b.len() as u64;
    for lane in lanes {
        h = (h ^ lane).wrapping_mul(K).rotate_left(27);
    }
    for &x in blocks.remainder() {
        h = (h ^ x as u64).wrapping_mul(K).rotate_left(13);
    }
    h ^ (h >> 29)
}

/// The checksum stored in an index file: of every byte but its own eight.
pub fn file_checksum(b: &[u8]) -> u64 {
    let mut head = [0u8; HEADER];
    let n = b.len().min(HEADER);
    head[..n].copy_from_slice(&b[..n]);
    head[32..40].fill(0);
    checksum(&head) ^ checksum(b.get(HEADER..).unwrap_or(&[])).rotate_left(17)
}

impl Index {
    /// Check a serialized index: structure, checksum, and that it belongs
    /// to this file (`key`, `.debug_info` length). None when it does not.
    pub fn parse(data: Backing, key: &[u8], info_len: u64) -> Option<Index> {
        let bytes = data.bytes();
        if bytes.get(..8)? != MAGIC {
            return None;
        }
        let key_len = u32_at(bytes, 8)? as usize;
        let n_units = u32_at(bytes, 12)? as usize;
        let n_entries = u32_at(bytes, 16)? as usize;
        let names_len = u32_at(bytes, 20)? as usize;
        let total = HEADER
            .checked_add(pad8(key_len))?
            .checked_add(n_units.checked_mul(8)?)?
            .checked_add(n_entries.checked_mul(ENTRY)?)?
            .checked_add(names_len)?;
        if total != bytes.len()
            || u64_at(bytes, 24)? != info_len
            || u64_at(bytes, 32)? != file_checksum(bytes)
            || bytes.get(HEADER..HEADER + key_len)? != key
        {
            return None;
        }
        Some(Index {
            data,
            key_len,
            n_units,
            n_entries,
            names_len,
        })
    }

    pub(crate) fn serialize(
        key: &[u8],
        info_len: u64,
        units: &[u64],
        entries: &[(Kind, &[u8], u64)],
    ) -> Option<Index> {
        let names_len: usize = entries.iter().map(|e| e.1.len()).sum();
        let mut b = Vec::with_capacity(
            HEADER + pad8(key.len()) + units.len() * 8 + entries.len() * ENTRY + names_len,
        );
        b.extend_from_slice(MAGIC);
        for n in [key.len(), units.len(), entries.len(), names_len] {
            b.extend_from_slice(&u32::try_from(n).ok()?.to_le_bytes());
        }
        b.extend_from_slice(&info_len.to_le_bytes());
        b.extend_from_slice(&[0; 16]); // checksum, reserved
        b.extend_from_slice(key);
        b.resize(HEADER + pad8(key.len()), 0);
        for u in units {
            b.extend_from_slice(&u.to_le_bytes());
        }
        let mut name_off = 0u32;
        for (k, name, off) in entries {
            b.extend_from_slice(&(((*k as u64) << 56) | off).to_le_bytes());
            b.extend_from_slice(&name_off.to_le_bytes());
            b.extend_from_slice(&(name.len() as u32).to_le_bytes());
            name_off += name.len() as u32;
        }
        for (_, name, _) in entries {
            b.extend_from_slice(name);
        }
        let sum = file_checksum(&b);
        b[32..40].copy_from_slice(&sum.to_le_bytes());
        let (key_len, n_units, n_entries) = (key.len(), units.len(), entries.len());
        Some(Index {
            data: Backing::Owned(b),
            key_len,
            n_units,
            n_entries,
            names_len,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        self.data.bytes()
    }

    fn units_at(&self) -> usize {
        HEADER + pad8(self.key_len)
    }

    fn entries_at(&self) -> usize {
        self.units_at() + self.n_units * 8
    }

    fn names_at(&self) -> usize {
        self.entries_at() + self.n_entries * ENTRY
    }

    /// Unit start offsets, ascending.
    pub fn units(&self) -> Vec<u64> {
        let at = self.units_at();
        (0..self.n_units)
            .filter_map(|i| u64_at(self.bytes(), at + 8 * i))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.n_entries
    }

    pub fn is_empty(&self) -> bool {
        self.n_entries == 0
    }

    /// Entry `i`: (kind, name, DIE offset); None if damaged.
    fn entry(&self, i: usize) -> Option<(Kind, &[u8], u64)> {
        let at = self.entries_at() + ENTRY * i;
        let w = u64_at(self.bytes(), at)?;
        let name_off = u32_at(self.bytes(), at + 8)? as usize;
        let name_len = u32_at(self.bytes(), at + 12)? as usize;
        if name_off.checked_add(name_len)? > self.names_len {
            return None;
        }
        let start = self.names_at() + name_off;
        let name = self.bytes().get(start..start + name_len)?;
        Some((
            Kind::from_u8((w >> 56) as u8)?,
            name,
            w & super::OFFSET_BITS,
        ))
    }

    /// The DIE offset of `name` of this kind.
    pub fn find(&self, kind: Kind, name: &[u8]) -> Option<u64> {
        // Binary search on (kind, name); a damaged entry sorts last.
        let (mut lo, mut hi) = (0, self.n_entries);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let less = match self.entry(mid) {
                Some((k, n, _)) => (k, n) < (kind, name),
                None => false,
            };
            if less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        match self.entry(lo) {
            Some((k, n, off)) if k == kind && n == name => Some(off),
            _ => None,
        }
    }

    pub fn names(&self, kind: Kind) -> Vec<String> {
        (0..self.n_entries)
            .filter_map(|i| self.entry(i))
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, n, _)| String::from_utf8_lossy(n).into_owned())
            .collect()
    }
}

/// Start offsets of every unit in `.debug_info`.
pub fn unit_offsets(src: &DwarfSource) -> Result<Vec<u64>> {
    let dwarf = src.dwarf();
    let mut it = dwarf.debug_info.units();
    let mut v = Vec::new();
    while let Some(h) = it.next().map_err(|e| gimli_err(None, e))? {
        v.push(unit_start(&h)?);
    }
    Ok(v)
}

fn unit_start(h: &UnitHeader<R<'_>>) -> Result<u64> {
    h.debug_info_offset()
        .map(|o| o.0 as u64)
        .ok_or_else(|| bad(None, "unit outside .debug_info"))
}

/// A name as found: an offset into .debug_str (merged strings: the same
/// offset is the same name, compared without reading it), or bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum NameKey<'a> {
    Strp(u64),
    Bytes(&'a [u8]),
}

/// The DIE kept for a name: a definition beats a declaration, then the
/// first in the file wins.
#[derive(Clone, Copy)]
struct Best {
    off: u64,
    decl: bool,
}

impl Best {
    fn better_than(&self, o: &Best) -> bool {
        (self.decl, self.off) < (o.decl, o.off)
    }
}

/// A fast, non-keyed hash for the index build (millions of inserts of
/// string offsets; SipHash's DoS resistance buys nothing here).
#[derive(Default, Clone, Copy)]
struct FastHash(u64);

impl std::hash::Hasher for FastHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        let mut last = [0u8; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.write_u64(u64::from_le_bytes(last) ^ rest.len() as u64);
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_u8(&mut self, v: u8) {
        self.write_u64(v as u64)
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64)
    }

    fn write_isize(&mut self, v: isize) {
        self.write_u64(v as u64)
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FastHash>>;

type Found<'a> = FastMap<(Kind, NameKey<'a>), Best>;

fn keep<'a>(map: &mut Found<'a>, key: (Kind, NameKey<'a>), b: Best) {
    map.entry(key)
        .and_modify(|cur| {
            if b.better_than(cur) {
                *cur = b
            }
        })
        .or_insert(b);
}

/// Build the index of `src` (one pass over every unit's top level).
pub fn build(src: &DwarfSource) -> Result<Index> {
    let dwarf = src.dwarf();
    let mut headers = Vec::new();
    let mut it = dwarf.debug_info.units();
    while let Some(h) = it.next().map_err(|e| gimli_err(None, e))? {
        headers.push(h);
    }
    let units: Vec<u64> = headers.iter().map(unit_start).collect::<Result<_>>()?;

    // Contiguous runs of units of about equal bytes, one per thread.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    let total: usize = headers.iter().map(|h| h.length_including_self()).sum();
    let per = total / threads + 1;
    let mut chunks: Vec<&[UnitHeader<R<'_>>]> = Vec::new();
    let (mut start, mut acc) = (0, 0);
    for (i, h) in headers.iter().enumerate() {
        acc += h.length_including_self();
        if acc >= per || i + 1 == headers.len() {
            chunks.push(&headers[start..=i]);
            start = i + 1;
            acc = 0;
        }
    }

    let dw = &dwarf;
    let results: Vec<Result<Found<'_>>> = if chunks.len() <= 1 {
        chunks.iter().map(|c| scan_units(dw, c)).collect()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|c| s.spawn(move || scan_units(dw, c)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(bad(None, "index thread panicked")))
                })
                .collect()
        })
    };

    // Merge, then turn string offsets into names (and merge again: two
    // offsets may hold the same name).
    let mut by_name: FastMap<(Kind, &[u8]), Best> = FastMap::default();
    for r in results {
        for ((kind, key), b) in r? {
            let name = match key {
                NameKey::Bytes(n) => n,
                NameKey::Strp(o) => dwarf
                    .debug_str
                    .get_str(gimli::DebugStrOffset(o as usize))
                    .map_err(|e| gimli_err(Some(b.off), e))?
                    .slice(),
            };
            if name.is_empty() {
                continue;
            }
            by_name
                .entry((kind, name))
                .and_modify(|cur| {
                    if b.better_than(cur) {
                        *cur = b
                    }
                })
                .or_insert(b);
        }
    }
    let mut entries: Vec<(Kind, &[u8], u64)> = by_name
        .into_iter()
        .map(|((k, n), b)| (k, n, b.off))
        .collect();
    entries.sort_unstable();
    Index::serialize(
        src.cache_key(),
        src.info_bytes().len() as u64,
        &units,
        &entries,
    )
    .ok_or_else(|| bad(None, "index too large"))
}

fn scan_units<'a>(dwarf: &gimli::Dwarf<R<'a>>, headers: &[UnitHeader<R<'a>>]) -> Result<Found<'a>> {
    let mut found = Found::default();
    for h in headers {
        scan_unit(dwarf, h, &mut found)?;
    }
    Ok(found)
}

/// Record the named structs, unions and functions at the top level of one
/// unit, skipping everything below them.
fn scan_unit<'a>(
    dwarf: &gimli::Dwarf<R<'a>>,
    header: &UnitHeader<R<'a>>,
    found: &mut Found<'a>,
) -> Result<()> {
    let base = unit_start(header)?;
    let err = |e: gimli::Error| gimli_err(Some(base), e);
    let abbrevs = header.abbreviations(&dwarf.debug_abbrev).map_err(err)?;
    let mut raw = header.entries_raw(&abbrevs, None).map_err(err)?;
    let Some(root) = raw.read_abbreviation().map_err(err)? else {
        return Ok(());
    };
    let mut str_base =
        DebugStrOffsetsBase::default_for_encoding_and_file(header.encoding(), DwarfFileType::Main);
    for spec in root.attributes() {
        let a = raw.read_attribute(*spec).map_err(err)?;
        if let AttributeValue::DebugStrOffsetsBase(b) = a.value() {
            str_base = b;
        }
    }
    if !root.has_children() {
        return Ok(());
    }
    while !raw.is_empty() {
        let die = raw.next_offset();
        let Some(ab) = raw.read_abbreviation().map_err(err)? else {
            break; // the end of the unit DIE's children
        };
        let kind = match ab.tag() {
            DW_TAG_structure_type | DW_TAG_class_type => Some(Kind::Struct),
            DW_TAG_union_type => Some(Kind::Union),
            DW_TAG_subprogram => Some(Kind::Func),
            DW_TAG_enumeration_type => Some(Kind::Enum),
            _ => None,
        };
        if kind.is_none() && !ab.has_children() {
            raw.skip_attributes(ab.attributes()).map_err(err)?;
            continue;
        }
        let (mut name, mut decl, mut sibling) = (None, false, None);
        for spec in ab.attributes() {
            match spec.name() {
                DW_AT_name if kind.is_some() => {
                    name = Some(raw.read_attribute(*spec).map_err(err)?.value())
                }
                DW_AT_declaration if kind.is_some() => {
                    decl = matches!(
                        raw.read_attribute(*spec).map_err(err)?.value(),
                        AttributeValue::Flag(true)
                    )
                }
                DW_AT_sibling => {
                    if let AttributeValue::UnitRef(o) =
                        raw.read_attribute(*spec).map_err(err)?.value()
                    {
                        sibling = Some(o);
                    }
                }
                _ => raw
                    .skip_attributes(std::slice::from_ref(spec))
                    .map_err(err)?,
            }
        }
        if let (Some(kind), Some(name)) = (kind, name) {
            // Only definitions of structs, unions and enums are worth finding; a
            // function's declaration (its prototype, unnamed parameters)
            // is kept for functions defined nowhere in DWARF.
            if !(decl && kind != Kind::Func) {
                let key = match name {
                    AttributeValue::DebugStrRef(o) => Some(NameKey::Strp(o.0 as u64)),
                    AttributeValue::String(s) => Some(NameKey::Bytes(s.slice())),
                    AttributeValue::DebugStrOffsetsIndex(i) => {
                        let o = dwarf
                            .debug_str_offsets
                            .get_str_offset(header.format(), str_base, i)
                            .map_err(err)?;
                        Some(NameKey::Strp(o.0 as u64))
                    }
                    AttributeValue::DebugLineStrRef(o) => Some(NameKey::Bytes(
                        dwarf.debug_line_str.get_str(o).map_err(err)?.slice(),
                    )),
                    _ => None, // e.g. a name in a dwz supplementary file
                };
                if let Some(key) = key {
                    let off = base + die.0 as u64;
                    keep(found, (kind, key), Best { off, decl });
                }
            }
        }
        if ab.has_children() {
            match sibling.filter(|s| s.0 > die.0) {
                Some(s) => raw = header.entries_raw(&abbrevs, Some(s)).map_err(err)?,
                None => skip_children(&mut raw).map_err(err)?,
            }
        }
    }
    Ok(())
}

/// Walk over the children of the DIE just read (no DW_AT_sibling).
pub(super) fn skip_children(raw: &mut gimli::EntriesRaw<'_, R<'_>>) -> gimli::Result<()> {
    let mut depth = 1usize;
    while depth > 0 && !raw.is_empty() {
        match raw.read_abbreviation()? {
            None => depth -= 1,
            Some(ab) => {
                raw.skip_attributes(ab.attributes())?;
                if ab.has_children() {
                    depth += 1;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Index {
        let mut entries: Vec<(Kind, &[u8], u64)> = vec![
            (Kind::Struct, b"task_struct", 0x100),
            (Kind::Struct, b"file", 0x200),
            (Kind::Union, b"file", 0x300),
            (Kind::Func, b"vfs_read", 0x400),
            (Kind::Struct, b"a", 0x500),
        ];
        entries.sort_unstable();
        Index::serialize(b"build-id:\x01\x02", 1000, &[0, 0x80, 0x400], &entries).unwrap()
    }

    #[test]
    fn round_trip_and_lookup() {
        let idx = sample();
        let again = Index::parse(
            Backing::Owned(idx.bytes().to_vec()),
            b"build-id:\x01\x02",
            1000,
        )
        .expect("valid");
        for i in [&idx, &again] {
            assert_eq!(i.find(Kind::Struct, b"file"), Some(0x200));
            assert_eq!(i.find(Kind::Union, b"file"), Some(0x300));
            assert_eq!(i.find(Kind::Func, b"vfs_read"), Some(0x400));
            assert_eq!(i.find(Kind::Struct, b"a"), Some(0x500));
            assert_eq!(i.find(Kind::Struct, b"task_struct"), Some(0x100));
            assert_eq!(i.find(Kind::Struct, b"zzz"), None);
            assert_eq!(i.find(Kind::Func, b"file"), None);
            assert_eq!(i.units(), [0, 0x80, 0x400]);
            assert_eq!(i.names(Kind::Struct), ["a", "file", "task_struct"]);
        }
    }

    #[test]
    fn foreign_or_damaged_is_refused() {
        let good = sample().bytes().to_vec();
        let parse = |b: Vec<u8>, key: &[u8], len| Index::parse(Backing::Owned(b), key, len);
        assert!(parse(good.clone(), b"build-id:\x01\x02", 1000).is_some());
        assert!(
            parse(good.clone(), b"build-id:\x01\x03", 1000).is_none(),
            "other build"
        );
        assert!(
            parse(good.clone(), b"build-id:\x01\x02", 999).is_none(),
            "other DWARF size"
        );
        for at in [0, 9, 20, 40, 60, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            assert!(
                parse(bad, b"build-id:\x01\x02", 1000).is_none(),
                "byte {at} flipped"
            );
        }
        for len in [0, 8, 47, 48, good.len() - 1] {
            assert!(parse(good[..len].to_vec(), b"build-id:\x01\x02", 1000).is_none());
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(parse(longer, b"build-id:\x01\x02", 1000).is_none());
    }
}

//! Names for numbers: kernel symbols from /proc/kallsyms, task names
//! from /proc and the kernel's saved_cmdlines. Loaded lazily, cached.

use std::collections::HashMap;

/// Kernel symbols, sorted by address; loaded on first use.
#[derive(Default)]
pub struct Kallsyms {
    loaded: bool,
    /// (address, name) sorted by address.
    syms: Vec<(u64, Box<str>)>,
    path: Option<std::path::PathBuf>,
}

impl Kallsyms {
    /// Read symbols from another file (tests).
    pub fn from_file(path: impl Into<std::path::PathBuf>) -> Kallsyms {
        Kallsyms {
            loaded: false,
            syms: Vec::new(),
            path: Some(path.into()),
        }
    }

    /// The table, read now rather than at the first lookup.
    pub fn loaded(mut self) -> Kallsyms {
        if !self.loaded {
            self.load();
        }
        self
    }

    fn load(&mut self) {
        self.loaded = true;
        let path = self.path.clone().unwrap_or_else(|| "/proc/kallsyms".into());
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        for sym in text
            .lines()
            .filter_map(crate::kernel::kallsyms::text_symbol)
        {
            if sym.addr != 0 {
                self.syms.push((sym.addr, sym.name.into()));
            }
        }
        self.syms.sort_by_key(|s| s.0);
    }

    /// `(name, offset, size)` of the symbol holding `addr`.
    pub fn lookup(&mut self, addr: u64) -> Option<(&str, u64, u64)> {
        if !self.loaded {
            self.load();
        }
        let i = self.syms.partition_point(|s| s.0 <= addr).checked_sub(1)?;
        let (a, name) = &self.syms[i];
        let size = self.syms.get(i + 1).map_or(0, |n| n.0 - a);
        if size != 0 && addr - a >= size {
            return None;
        }
        Some((name, addr - a, size))
    }

    /// `sym+0xoff/0xsize`, or the address in hex.
    pub fn push(&mut self, b: &mut Vec<u8>, addr: u64) {
        match self.lookup(addr) {
            Some((name, off, size)) => {
                b.extend_from_slice(name.as_bytes());
                b.push(b'+');
                super::value::push_hex(b, off);
                b.push(b'/');
                super::value::push_hex(b, size);
            }
            None => super::value::push_hex(b, addr),
        }
    }
}

/// Task names by pid. The ring buffer records only pids; names come from
/// the event stream itself where the run records task events (a fork
/// names the child, a rename or an exec renames a task, each in time
/// order with the events), else from /proc, else from the kernel's
/// `saved_cmdlines` (which remembers tasks that are gone), read again
/// whenever a pid is unknown (at most every `SAVED_EVERY`).
#[derive(Default)]
pub struct Comms {
    map: HashMap<i32, Box<[u8]>>,
    /// Pids found nowhere since the last read of saved_cmdlines.
    unknown: std::collections::HashSet<i32>,
    saved_read: Option<std::time::Instant>,
    saved_path: Option<std::path::PathBuf>,
    offline: bool,
    /// Names looked up outside the stream: /proc, saved_cmdlines reads.
    pub lookups: u64,
}

const SAVED_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
const MAX_NAMES: usize = 1 << 16;

impl Comms {
    /// Where the kernel's saved_cmdlines is (the tracefs in use).
    pub fn with_saved_cmdlines(path: std::path::PathBuf) -> Comms {
        Comms {
            saved_path: Some(path),
            ..Default::default()
        }
    }

    /// Never look names up (fuzzing, offline decoding): every pid is `<...>`.
    pub fn disable_lookups(&mut self) {
        self.offline = true;
    }

    /// The name of `pid` from now on (a fork, a rename, an exec).
    pub fn set(&mut self, pid: i32, name: &[u8]) {
        self.unknown.remove(&pid);
        self.bound();
        match self.map.get_mut(&pid) {
            Some(v) if **v == *name => {}
            Some(v) => *v = name.into(),
            None => {
                self.map.insert(pid, name.into());
            }
        }
    }

    /// Past `MAX_NAMES` (a machine forking fast for hours), start over:
    /// names are found again where they were found first.
    fn bound(&mut self) {
        if self.map.len() >= MAX_NAMES {
            self.map.clear();
        }
    }

    pub fn get(&mut self, pid: i32) -> &[u8] {
        if !self.map.contains_key(&pid) {
            self.bound();
            if let Some(name) = self.find(pid) {
                self.map.insert(pid, name);
            }
        }
        self.map.get(&pid).map_or(b"<...>", |v| v)
    }

    fn find(&mut self, pid: i32) -> Option<Box<[u8]>> {
        if pid == 0 {
            return Some(b"<idle>".to_vec().into());
        }
        if self.offline {
            return None;
        }
        if self.unknown.contains(&pid) && self.saved_read.is_some_and(|t| t.elapsed() < SAVED_EVERY)
        {
            return None;
        }
        self.lookups += 1;
        if let Ok(mut c) = std::fs::read(format!("/proc/{pid}/comm")) {
            if c.last() == Some(&b'\n') {
                c.pop();
            }
            return Some(c.into());
        }
        // Gone already: the kernel remembers recent tasks' names.
        if self.saved_read.is_none_or(|t| t.elapsed() >= SAVED_EVERY) {
            self.saved_read = Some(std::time::Instant::now());
            self.unknown.clear();
            if let Some(text) = self
                .saved_path
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
            {
                for line in text.lines() {
                    if let Some((p, name)) = line.split_once(' ') {
                        if let Ok(p) = p.parse::<i32>() {
                            // Names from the stream are newer.
                            self.map.entry(p).or_insert_with(|| name.as_bytes().into());
                        }
                    }
                }
            }
            if let Some(v) = self.map.get(&pid) {
                return Some(v.clone());
            }
        }
        self.unknown.insert(pid);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_lookup() {
        let p = std::env::temp_dir().join(format!("ckp-kallsyms-{}", std::process::id()));
        std::fs::write(
            &p,
            "ffffffff81000000 T _stext\nffffffff81000100 t foo\nffffffff81000180 D data\nffffffff81000200 T bar\n",
        )
        .unwrap();
        let mut k = Kallsyms::from_file(&p);
        assert_eq!(k.lookup(0xffffffff81000110), Some(("foo", 0x10, 0x100)));
        let mut b = Vec::new();
        k.push(&mut b, 0xffffffff81000100);
        assert_eq!(b, b"foo+0x0/0x100");
        assert_eq!(k.lookup(0x10), None);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn own_comm() {
        let mut c = Comms::default();
        let me = std::process::id() as i32;
        let want = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(c.get(me), want.trim_end().as_bytes());
        assert_eq!(c.get(0), b"<idle>");
        c.set(me, b"renamed");
        assert_eq!(c.get(me), b"renamed");
    }
}

/// Where in a user program an address is, by its ELF symbols: a
/// uprobe's place (`values:take`, `values:take+0x4`) and a return
/// probe's caller (README, "Values by name"). Files are read once; a
/// caller in another file of the process is found through
/// `/proc/PID/maps` while the process lives.
#[derive(Default)]
pub struct UserSymbols {
    files: HashMap<std::path::PathBuf, Option<std::sync::Arc<Elf>>>,
    maps: HashMap<i32, Option<std::sync::Arc<Vec<Mapping>>>>,
}

/// One ELF file's functions and how its file offsets map to addresses.
struct Elf {
    /// The file's name (`libc.so.6`), as places are shown.
    name: String,
    /// (address, size, name) of each function, sorted.
    funcs: Vec<(u64, u64, Box<str>)>,
    /// (file offset, file size, address) of each loadable segment.
    segments: Vec<(u64, u64, u64)>,
}

/// A file mapped into a process: `start-end` at `offset` of `path`.
struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    path: std::path::PathBuf,
}

impl Elf {
    fn load(path: &std::path::Path) -> Option<Elf> {
        use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};
        let data = std::fs::read(path).ok()?;
        let file = object::File::parse(&*data).ok()?;
        let mut funcs: Vec<(u64, u64, Box<str>)> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
            .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.into())))
            .collect();
        // Of names for one address (`_IO_puts`, `puts`), the one a
        // programmer calls: fewest leading `_`, then the shortest.
        let rank = |n: &str| (n.len() - n.trim_start_matches('_').len(), n.len());
        funcs.sort_by(|a, b| a.0.cmp(&b.0).then(rank(&a.2).cmp(&rank(&b.2))));
        funcs.dedup_by_key(|f| f.0);
        let segments = file
            .segments()
            .map(|s| {
                let (off, size) = s.file_range();
                (off, size, s.address())
            })
            .collect();
        Some(Elf {
            name: path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            funcs,
            segments,
        })
    }

    /// The address a file offset is loaded at (before relocation).
    fn address_of(&self, off: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|(o, size, _)| off >= *o && off - o < *size)
            .map(|(o, _, a)| a + (off - o))
    }

    /// `name:function+0xoff` for an address inside a function.
    fn spell(&self, addr: u64, out: &mut Vec<u8>, offset_zero: bool) -> bool {
        let i = self.funcs.partition_point(|f| f.0 <= addr);
        let Some((a, size, f)) = i.checked_sub(1).map(|i| &self.funcs[i]) else {
            return false;
        };
        if *size != 0 && addr - a >= *size {
            return false;
        }
        out.extend_from_slice(self.name.as_bytes());
        out.push(b':');
        out.extend_from_slice(f.as_bytes());
        if addr != *a || offset_zero {
            out.push(b'+');
            super::value::push_hex(out, addr - a);
        }
        true
    }
}

impl UserSymbols {
    fn elf(&mut self, path: &std::path::Path) -> Option<std::sync::Arc<Elf>> {
        self.files
            .entry(path.to_path_buf())
            .or_insert_with(|| Elf::load(path).map(std::sync::Arc::new))
            .clone()
    }

    /// A uprobe's place, `file:function[+0xoff]`, and the unrelocated
    /// address of that file offset (for its callers); None where the
    /// file has no symbol there.
    pub fn place(&mut self, path: &std::path::Path, offset: u64) -> Option<(Vec<u8>, u64)> {
        let elf = self.elf(path)?;
        let addr = elf.address_of(offset)?;
        let mut text = Vec::new();
        elf.spell(addr, &mut text, false).then_some((text, addr))
    }

    /// A return probe's caller `ret` in process `pid`: the probed file
    /// `path`, whose function at unrelocated `func` was entered at
    /// `func_at`, first (same relocation), else the file `/proc/PID/maps`
    /// says is there. False, nothing written, where neither knows it.
    pub fn caller(
        &mut self,
        pid: i32,
        path: &std::path::Path,
        func: u64,
        func_at: u64,
        ret: u64,
        out: &mut Vec<u8>,
    ) -> bool {
        if let Some(elf) = self.elf(path) {
            let addr = ret.wrapping_sub(func_at.wrapping_sub(func));
            if elf.spell(addr, out, true) {
                return true;
            }
        }
        let maps = self
            .maps
            .entry(pid)
            .or_insert_with(|| read_maps(pid).map(std::sync::Arc::new))
            .clone();
        let Some(m) = maps.and_then(|m| {
            m.iter()
                .find(|m| ret >= m.start && ret < m.end)
                .map(|m| (m.path.clone(), ret - m.start + m.offset))
        }) else {
            return false;
        };
        let (file, off) = m;
        let Some(elf) = self.elf(&file) else {
            return false;
        };
        match elf.address_of(off) {
            Some(addr) => elf.spell(addr, out, true),
            None => false,
        }
    }
}

/// The file mappings of a process, while it lives.
fn read_maps(pid: i32) -> Option<Vec<Mapping>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    Some(
        text.lines()
            .filter_map(|l| {
                // start-end perms offset dev inode path
                let mut w = l.split_whitespace();
                let (range, _, off) = (w.next()?, w.next()?, w.next()?);
                let path = w.nth(2)?;
                if !path.starts_with('/') {
                    return None;
                }
                let (s, e) = range.split_once('-')?;
                Some(Mapping {
                    start: u64::from_str_radix(s, 16).ok()?,
                    end: u64::from_str_radix(e, 16).ok()?,
                    offset: u64::from_str_radix(off, 16).ok()?,
                    path: path.into(),
                })
            })
            .collect(),
    )
}

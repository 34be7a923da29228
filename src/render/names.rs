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

/// Task names by pid. The ring buffer records only pids.
#[derive(Default)]
pub struct Comms {
    map: HashMap<i32, Box<[u8]>>,
    saved_loaded: bool,
    saved_path: Option<std::path::PathBuf>,
    offline: bool,
}

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
        self.saved_loaded = true;
        self.offline = true;
    }

    pub fn get(&mut self, pid: i32) -> &[u8] {
        if !self.map.contains_key(&pid) {
            let name = self.find(pid);
            self.map.insert(pid, name);
        }
        self.map.get(&pid).map_or(b"<...>", |v| v)
    }

    fn find(&mut self, pid: i32) -> Box<[u8]> {
        if pid == 0 {
            return b"<idle>".to_vec().into();
        }
        if self.offline {
            return b"<...>".to_vec().into();
        }
        if let Ok(mut c) = std::fs::read(format!("/proc/{pid}/comm")) {
            if c.last() == Some(&b'\n') {
                c.pop();
            }
            return c.into();
        }
        // Gone already: the kernel remembers recent tasks' names.
        if !self.saved_loaded {
            self.saved_loaded = true;
            if let Some(text) = self
                .saved_path
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
            {
                for line in text.lines() {
                    if let Some((p, name)) = line.split_once(' ') {
                        if let Ok(p) = p.parse::<i32>() {
                            self.map.entry(p).or_insert_with(|| name.as_bytes().into());
                        }
                    }
                }
            }
            if let Some(v) = self.map.get(&pid) {
                return v.clone();
            }
        }
        b"<...>".to_vec().into()
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
    }
}

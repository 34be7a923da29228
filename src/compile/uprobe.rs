//! Uprobe places: a symbol of an ELF file → the file offset uprobe_events
//! wants (the symbol's address, through the PT_LOAD segment holding it).

use object::{Object, ObjectSegment, ObjectSymbol};

use super::ErrorKind;

/// The file offset of `symbol` in the ELF file at `path`, and the
/// symbol's size (0 when the symbol table does not say).
pub fn symbol_file_offset(path: &str, symbol: &str) -> Result<(u64, u64), ErrorKind> {
    let bin = |msg: String| ErrorKind::Binary {
        path: path.to_string(),
        msg,
    };
    let data = std::fs::read(path).map_err(|e| bin(e.to_string()))?;
    let file = object::File::parse(&*data).map_err(|e| bin(format!("not an ELF file ({e})")))?;
    // .symtab first (it has local functions too), then .dynsym.
    let (addr, size) = file
        .symbols()
        .chain(file.dynamic_symbols())
        .find(|s| s.name() == Ok(symbol) && s.is_definition())
        .map(|s| (s.address(), s.size()))
        .ok_or_else(|| ErrorKind::NoSymbol {
            symbol: symbol.to_string(),
            path: path.to_string(),
        })?;
    for seg in file.segments() {
        let (foff, fsize) = seg.file_range();
        let start = seg.address();
        if addr >= start && addr - start < fsize {
            return Ok((addr - start + foff, size));
        }
    }
    Err(bin(format!(
        "symbol `{symbol}` at {addr:#x} lies in no loadable segment"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary itself is an ELF with `main`: its offset must
    /// land on the bytes of the symbol's address in a PT_LOAD segment.
    #[test]
    fn own_binary() {
        let exe = std::env::current_exe().unwrap();
        let path = exe.to_str().unwrap();
        let data = std::fs::read(path).unwrap();
        let file = object::File::parse(&*data).unwrap();
        let sym = file.symbols().find(|s| s.name() == Ok("main")).unwrap();
        let (off, size) = symbol_file_offset(path, "main").unwrap();
        assert_eq!(size, sym.size());
        assert!(off < data.len() as u64);
        // The section holding the symbol maps it to the same file bytes.
        use object::ObjectSection;
        let sec = file.section_by_index(sym.section_index().unwrap()).unwrap();
        let (sec_off, _) = sec.file_range().unwrap();
        assert_eq!(off, sym.address() - sec.address() + sec_off);
        assert!(matches!(
            symbol_file_offset(path, "no_such_symbol_xyz"),
            Err(ErrorKind::NoSymbol { .. })
        ));
        assert!(matches!(
            symbol_file_offset("/nonexistent/bin", "main"),
            Err(ErrorKind::Binary { .. })
        ));
    }
}

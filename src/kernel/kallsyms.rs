//! One line of `/proc/kallsyms`, for the two readers of it: the renderer
//! (addresses → names) and the probe checks (names → functions).

/// A text (function) symbol: `ADDR t NAME [\t[MODULE]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextSymbol<'a> {
    /// 0 when the kernel hides addresses (not root, kptr_restrict).
    pub addr: u64,
    pub name: &'a str,
    /// The module, without brackets; None for vmlinux.
    pub module: Option<&'a str>,
}

/// The line's symbol if it is a function's (`t`/`T`/`w`/`W`): data
/// symbols would split functions' address ranges.
pub fn text_symbol(line: &str) -> Option<TextSymbol<'_>> {
    let mut w = line.split_ascii_whitespace();
    let (addr, kind, name) = (w.next()?, w.next()?, w.next()?);
    if !matches!(kind, "t" | "T" | "w" | "W") {
        return None;
    }
    let addr = u64::from_str_radix(addr, 16).ok()?;
    let module = w.next().map(|m| {
        m.strip_prefix('[')
            .and_then(|m| m.strip_suffix(']'))
            .unwrap_or(m)
    });
    Some(TextSymbol { addr, name, module })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(
            text_symbol("ffffffff81400d40 T vfs_read"),
            Some(TextSymbol {
                addr: 0xffffffff81400d40,
                name: "vfs_read",
                module: None
            })
        );
        assert_eq!(
            text_symbol("ffffffffc0a01000 t type_show\t[hid]").map(|s| s.module),
            Some(Some("hid"))
        );
        assert_eq!(text_symbol("ffffffff82a00000 D jiffies"), None);
        assert_eq!(
            text_symbol("0000000000000000 T vfs_read").map(|s| s.addr),
            Some(0)
        );
        assert_eq!(text_symbol("garbage"), None);
    }
}

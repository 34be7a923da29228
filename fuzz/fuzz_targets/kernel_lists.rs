//! The kernel's text lists as arbitrary bytes: /proc/kallsyms, the kprobe
//! blacklist, available_filter_functions, a kernel config, and a syscall
//! tracepoint's format file. Loading them and checking probes against
//! them ends in Ok or an error, never a panic; error spans lie inside the
//! probe text.
#![no_main]

use coolkprobe::kernel::{check, syscalls, KernelSymbols};
use coolkprobe::spec::parse_probe;
use coolkprobe::tracefs::format::EventFormat;
use libfuzzer_sys::fuzz_target;

const PROBES: &[&str] = &[
    "p vfs_read",
    "p vfs_read+0x10",
    "p set_ptes",
    "p hid:type_show",
    "p a.isra.0+4",
    "r do_exit",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // One input, four files: split on a byte that rarely appears.
    let mut parts = text.split('\u{1}');
    let kallsyms = parts.next().unwrap_or("");
    let blacklist = parts.next();
    let filter = parts.next();
    let config = parts.next();
    if let Ok(f) = EventFormat::parse(text) {
        for p in syscalls::from_format(&f) {
            let _ = p.kind();
        }
    }
    if let Some(c) = coolkprobe::kernel::kallsyms::text_symbol(kallsyms) {
        assert!(kallsyms.contains(c.name));
    }
    let mut syms = KernelSymbols::from_text(kallsyms, blacklist, filter);
    if let Some(c) = config {
        syms = syms.with_kernel_config(c);
    }
    let probes: Vec<_> = PROBES.iter().filter_map(|p| parse_probe(p).ok()).collect();
    for (i, p) in probes.iter().enumerate() {
        let mut diags = Vec::new();
        check(std::slice::from_ref(p), &syms, &mut diags);
        for (j, d) in diags {
            assert_eq!(j, 0);
            if let Some(s) = d.span {
                assert!(s.end <= PROBES[i].len() && s.start <= s.end);
            }
        }
    }
});

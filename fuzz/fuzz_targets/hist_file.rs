//! Arbitrary bytes as an event's `hist` file: the parser ends on every
//! input without a panic, and what it returns can be drawn (the first
//! byte picks which keys are strings).
#![no_main]

use coolkprobe::agg::histfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, text)) = data.split_first() else {
        return;
    };
    let strings = |n: &str| n.len() % 2 == (sel & 1) as usize;
    if let Ok(secs) = histfile::parse(text, &strings) {
        for s in &secs {
            for e in &s.entries {
                assert!(e.keys.len() <= s.keys.len());
            }
        }
    }
});

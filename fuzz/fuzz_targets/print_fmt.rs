//! Arbitrary bytes as a tracepoint's `print fmt:` line: the parser ends
//! on every input without a panic, and every field it names evaluates
//! without one, whatever the field's value (the first 8 bytes).
#![no_main]

use coolkprobe::tracefs::printfmt::{self, Val};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (v, text) = data.split_at(8);
    let v = u64::from_le_bytes(v.try_into().unwrap_or([0; 8]));
    let Ok(line) = std::str::from_utf8(text) else {
        return;
    };
    let _ = printfmt::flags_table(line, "f");
    for p in printfmt::parse(line) {
        let _ = p.eval(&|_| Some(Val::Int(v)));
        let _ = p.eval(&|_| Some(Val::Bytes(v.to_le_bytes().to_vec())));
        let _ = p.eval(&|_| Some(Val::Str(String::new())));
    }
});

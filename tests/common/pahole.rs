//! Member lines of `pahole -C` output (and of `types::layout`, which
//! prints the same form): (name, byte offset, bit within the storage unit).

/// (member name, byte offset, bit or None) for each member line.
pub fn members(text: &str) -> Vec<(String, u64, Option<u64>)> {
    let mut v = Vec::new();
    for line in text.lines() {
        let Some((decl, comment)) = line.split_once("/*") else {
            continue;
        };
        let decl = decl.trim();
        if !decl.ends_with(';') {
            continue;
        }
        let decl = match decl.find(" __attribute__") {
            Some(i) => &decl[..i],
            None => decl.trim_end_matches(';'),
        };
        // `};` closes an unnamed nested type; `} name;` is a member.
        if decl.is_empty() || decl == "}" {
            continue;
        }
        let name = if let Some(i) = decl.find("(*") {
            decl[i + 2..].split(')').next().unwrap_or("").to_string()
        } else {
            let d = decl.split(':').next().unwrap_or(decl);
            let d = d.split('[').next().unwrap_or(d);
            d.split_whitespace()
                .last()
                .unwrap_or("")
                .trim_start_matches('*')
                .to_string()
        };
        let nums = comment.trim_end_matches("*/").trim();
        let (off, bit) = match nums.split_once(':') {
            Some((o, rest)) => (o.trim(), rest.split_whitespace().next()),
            None => (nums.split_whitespace().next().unwrap_or(""), None),
        };
        let Ok(off) = off.parse::<u64>() else {
            continue;
        };
        v.push((name, off, bit.and_then(|b| b.parse().ok())));
    }
    v
}

/// pahole's own synthetic lines: `unsigned char :0;` (it shows where a
/// zero-width bitfield forced alignment; DWARF has no member for it).
pub fn without_zero_width(text: &str) -> String {
    text.lines()
        .filter(|l| {
            !l.split("/*")
                .next()
                .unwrap_or("")
                .trim_end()
                .ends_with(":0;")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

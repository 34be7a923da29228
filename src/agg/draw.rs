//! Tables, bar histograms and JSON for aggregation results.
//!
//! Counts and sums are tables sorted by the aggregated value, largest
//! first; histograms are drawn as bpftrace draws them, one bar per bucket
//! from the lowest to the highest that holds anything, per key. Bucket
//! bounds are the kernel's: a log2 bucket holds (2^(k-1), 2^k].

use std::fmt::Write as _;

use super::{Agg, KeyVal, Row, Show, Table};
use crate::compile::plan::AggFunc;
use crate::render::value;
use crate::ring::Value;

/// How histogram bounds are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Powers of 1024 as K, M, G... where exact (sizes, counts).
    Count,
    /// Nanoseconds as ns, us, ms, s where exact.
    Nanos,
}

/// `n` with the largest unit that divides it exactly.
pub fn fmt_unit(n: u128, unit: Unit) -> String {
    match unit {
        Unit::Count => {
            let mut v = n;
            let mut i = 0;
            const S: [&str; 8] = ["", "K", "M", "G", "T", "P", "E", "Z"];
            while v >= 1024 && v.is_multiple_of(1024) && i < S.len() - 1 {
                v /= 1024;
                i += 1;
            }
            format!("{v}{}", S[i])
        }
        Unit::Nanos => {
            for (d, s) in [(1_000_000_000u128, "s"), (1_000_000, "ms"), (1_000, "us")] {
                if n >= d && n.is_multiple_of(d) {
                    return format!("{}{s}", n / d);
                }
            }
            // Powers of two (log2 buckets of a latency) are not round:
            // three decimals of the largest unit.
            let mut b = Vec::new();
            value::push_duration(&mut b, n.min(u64::MAX as u128) as u64);
            String::from_utf8_lossy(&b).into_owned()
        }
    }
}

/// A bucket's inclusive bounds, as numbers: (min, max); min may be
/// negative for the lowest log2 bucket of a signed value.
pub fn bucket_bounds(agg: &Agg, b: u64) -> (i128, i128) {
    let signed = agg.value.as_ref().is_some_and(Show::signed);
    match agg.plan.func {
        AggFunc::Log2 if b == 0 => (if signed { i64::MIN as i128 } else { 0 }, 1),
        AggFunc::Log2 => ((1i128 << (b - 1)) + 1, 1i128 << b),
        AggFunc::Linear { step } => {
            let lo = if signed { b as i64 as i128 } else { b as i128 };
            (lo, lo + step as i128 - 1)
        }
        _ => (0, 0),
    }
}

fn fmt_signed(n: i128, unit: Unit) -> String {
    if n < 0 {
        format!("-{}", fmt_unit(n.unsigned_abs(), unit))
    } else {
        fmt_unit(n as u128, unit)
    }
}

/// `(64, 128]`, `[0, 1]`, `[100, 200)`.
pub fn bucket_label(agg: &Agg, b: u64, unit: Unit) -> String {
    let (lo, hi) = bucket_bounds(agg, b);
    match agg.plan.func {
        AggFunc::Log2 if b == 0 && lo < 0 => "(-inf, 1]".into(),
        AggFunc::Log2 if b == 0 => "[0, 1]".into(),
        AggFunc::Log2 => format!("({}, {}]", fmt_signed(lo - 1, unit), fmt_signed(hi, unit)),
        _ => format!("[{}, {})", fmt_signed(lo, unit), fmt_signed(hi + 1, unit)),
    }
}

/// One key value as text (no quotes: table cells).
fn key_text(out: &mut String, show: &Show, k: &KeyVal) {
    match (show, k) {
        (Show::Int { field, display }, KeyVal::Int(v)) => {
            let mut b = Vec::new();
            value::push_text(&mut b, field, Some(Value::Unsigned(*v)), *display);
            out.push_str(&String::from_utf8_lossy(&b));
        }
        (_, KeyVal::Str(s)) => {
            for &c in s {
                if (0x20..0x7f).contains(&c) {
                    out.push(c as char);
                } else {
                    let _ = write!(out, "\\x{c:02x}");
                }
            }
        }
        (_, KeyVal::Int(v)) => {
            let _ = write!(out, "{v}");
        }
        (_, KeyVal::Stack(_)) => {}
    }
}

fn key_json(b: &mut Vec<u8>, show: &Show, k: &KeyVal) {
    match (show, k) {
        (Show::Int { field, display }, KeyVal::Int(v)) => {
            value::push_json(b, field, Some(Value::Unsigned(*v)), *display)
        }
        (_, KeyVal::Int(v)) => value::push_u64(b, *v),
        (_, KeyVal::Str(s)) => value::push_json_str(b, s),
        (_, KeyVal::Stack(f)) => {
            b.push(b'[');
            for (i, fr) in f.iter().enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                value::push_json_str(b, fr.as_bytes());
            }
            b.push(b']');
        }
    }
}

fn value_text(agg: &Agg, v: u64) -> String {
    if is_duration(agg) {
        let mut b = Vec::new();
        value::push_duration(&mut b, v);
        return String::from_utf8_lossy(&b).into_owned();
    }
    value_num(agg, v)
}

/// The number, for JSON (a time in nanoseconds).
fn value_num(agg: &Agg, v: u64) -> String {
    if agg.value.as_ref().is_some_and(Show::signed) {
        (v as i64).to_string()
    } else {
        v.to_string()
    }
}

/// Whether the value is a time in nanoseconds (a latency).
fn is_duration(agg: &Agg) -> bool {
    matches!(
        agg.value,
        Some(Show::Int {
            display: crate::compile::plan::Display::Duration,
            ..
        })
    )
}

/// `max(V)`'s kept values as `name=value ...`.
fn saved_text(agg: &Agg, vals: &[KeyVal]) -> String {
    let mut o = String::new();
    for ((name, sh, _), v) in agg.saved.iter().zip(vals) {
        if !o.is_empty() {
            o.push(' ');
        }
        let _ = write!(o, "{name}=");
        match (sh, v) {
            (Show::Int { field, display }, KeyVal::Int(u)) => {
                let mut b = Vec::new();
                value::push_text(&mut b, field, Some(Value::Unsigned(*u)), *display);
                o.push_str(&String::from_utf8_lossy(&b));
            }
            (_, KeyVal::Str(st)) => {
                let mut b = Vec::new();
                value::push_json_str(&mut b, st);
                o.push_str(&String::from_utf8_lossy(&b));
            }
            (_, k) => key_text(&mut o, sh, k),
        }
    }
    o
}

/// The header: `f0: hist(n)[comm]: 30 events` (+ dropped / lost).
fn header(agg: &Agg, t: &Table) -> String {
    let mut h = format!("{}: {}: {} events", agg.event, agg.plan.text, t.hits);
    if t.dropped > 0 {
        let _ = write!(
            h,
            ", DROPPED {} (its table of {} entries was full; raise --agg-size)",
            t.dropped, agg.size
        );
    }
    if t.lost > 0 {
        let _ = write!(
            h,
            ", LOST {} (ring buffer overruns; try --buffer-kb)",
            t.lost
        );
    }
    h
}

/// Rows grouped by their keys (without the bucket), largest group first.
fn groups(t: &Table) -> Vec<(&[KeyVal], Vec<&Row>)> {
    let mut gs: Vec<(&[KeyVal], Vec<&Row>)> = Vec::new();
    for r in &t.rows {
        match gs.iter_mut().find(|(k, _)| *k == r.keys.as_slice()) {
            Some((_, v)) => v.push(r),
            None => gs.push((&r.keys, vec![r])),
        }
    }
    let total = |rs: &Vec<&Row>| rs.iter().map(|r| r.count).sum::<u64>();
    gs.sort_by(|a, b| total(&b.1).cmp(&total(&a.1)).then(a.0.cmp(b.0)));
    gs
}

const BAR: usize = 40;

/// The whole text rendering of one aggregation.
pub fn text(agg: &Agg, t: &Table, unit: Unit) -> String {
    let unit = if is_duration(agg) { Unit::Nanos } else { unit };
    let mut s = header(agg, t);
    s.push('\n');
    let stack_col = agg.columns.iter().position(|(_, sh)| *sh == Show::Stack);
    let plain_keys = |keys: &[KeyVal]| {
        let mut o = String::new();
        for ((label, sh), k) in agg.columns.iter().zip(keys) {
            if *sh == Show::Stack {
                continue;
            }
            if !o.is_empty() {
                o.push(' ');
            }
            let _ = write!(o, "{label}=");
            key_text(&mut o, sh, k);
        }
        o
    };
    let stack_lines = |o: &mut String, keys: &[KeyVal], indent: &str| {
        if let Some(KeyVal::Stack(f)) = stack_col.and_then(|i| keys.get(i)) {
            for fr in f {
                let _ = writeln!(o, "{indent}{fr}");
            }
        }
    };
    if agg.is_hist() {
        let step = match agg.plan.func {
            AggFunc::Linear { step } => step.max(1),
            _ => 1,
        };
        for (keys, rows) in groups(t) {
            let indent = if agg.columns.is_empty() { "" } else { "  " };
            if !agg.columns.is_empty() {
                let total: u64 = rows.iter().map(|r| r.count).sum();
                let _ = writeln!(s, "{}: {total}", plain_keys(keys).trim_end());
                stack_lines(&mut s, keys, "    ");
            }
            let lo = rows.iter().filter_map(|r| r.bucket).min().unwrap_or(0);
            let hi = rows.iter().filter_map(|r| r.bucket).max().unwrap_or(0);
            let mut lines = Vec::new();
            let mut b = lo;
            loop {
                let c: u64 = rows
                    .iter()
                    .filter(|r| r.bucket == Some(b))
                    .map(|r| r.count)
                    .sum();
                lines.push((bucket_label(agg, b, unit), c));
                if b >= hi {
                    break;
                }
                b = match agg.plan.func {
                    AggFunc::Log2 => b + 1,
                    _ => b.saturating_add(step),
                };
            }
            let lw = lines.iter().map(|l| l.0.len()).max().unwrap_or(0);
            let max = lines.iter().map(|l| l.1).max().unwrap_or(0).max(1);
            let cw = max.to_string().len();
            for (label, c) in lines {
                let n = (c as u128 * BAR as u128).div_ceil(max as u128) as usize;
                let _ = writeln!(
                    s,
                    "{indent}{label:<lw$} {c:>cw$} |{}{}|",
                    "@".repeat(n),
                    " ".repeat(BAR - n)
                );
            }
        }
        return s;
    }
    // count() / sum(v) / max(v): largest first.
    let mut rows: Vec<&Row> = t.rows.iter().collect();
    let max = agg.plan.func == AggFunc::Max;
    let sum = agg.plan.func == AggFunc::Sum || max;
    let label = if max { "max" } else { "sum" };
    let signed = agg.value.as_ref().is_some_and(Show::signed);
    let by = |r: &Row| -> i128 {
        match (sum, signed) {
            (true, true) => r.sum as i64 as i128,
            (true, false) => r.sum as i128,
            _ => r.count as i128,
        }
    };
    rows.sort_by(|a, b| by(b).cmp(&by(a)).then(a.keys.cmp(&b.keys)));
    if stack_col.is_some() {
        // A stack per row: the numbers and other keys, then the frames.
        for r in rows {
            let mut line = format!("{:>10}", r.count);
            if sum {
                let _ = write!(line, "  {label}={}", value_text(agg, r.sum));
            }
            if max {
                let _ = write!(line, "  {}", saved_text(agg, &r.saved));
            }
            let k = plain_keys(&r.keys);
            if !k.is_empty() {
                let _ = write!(line, "  {k}");
            }
            let _ = writeln!(s, "{line}");
            stack_lines(&mut s, &r.keys, "            ");
        }
        return s;
    }
    let mut cells: Vec<Vec<String>> = Vec::new();
    let mut head: Vec<String> = agg.columns.iter().map(|(l, _)| l.clone()).collect();
    head.push("count".into());
    if sum {
        head.push(format!(
            "{label}({})",
            agg.plan.value.as_deref().unwrap_or("")
        ));
    }
    if max {
        head.push("with".into());
    }
    for r in &rows {
        let mut row: Vec<String> = agg
            .columns
            .iter()
            .zip(&r.keys)
            .map(|((_, sh), k)| {
                let mut o = String::new();
                key_text(&mut o, sh, k);
                o
            })
            .collect();
        row.push(r.count.to_string());
        if sum {
            row.push(value_text(agg, r.sum));
        }
        if max {
            row.push(saved_text(agg, &r.saved));
        }
        cells.push(row);
    }
    let nk = agg.columns.len();
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].len())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cols: &[String]| {
        let mut o = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                o.push_str("  ");
            }
            // Keys left-aligned, numbers right-aligned (a maximum's
            // values are text).
            if i < nk || (max && i + 1 == cols.len()) {
                let _ = write!(o, "{c:<w$}", w = widths[i]);
            } else {
                let _ = write!(o, "{c:>w$}", w = widths[i]);
            }
        }
        o.trim_end().to_string()
    };
    let _ = writeln!(s, "{}", line(&head));
    for c in &cells {
        let _ = writeln!(s, "{}", line(c));
    }
    s
}

/// One JSON object for the aggregation (one line), for jq.
pub fn json(agg: &Agg, t: &Table, path: super::Path, elapsed: Option<f64>) -> String {
    let mut b = Vec::new();
    b.push(b'{');
    if let Some(e) = elapsed {
        let _ = write!(VecWriter(&mut b), "\"elapsed\":{e:.3},");
    }
    b.extend_from_slice(b"\"event\":");
    value::push_json_str(&mut b, agg.event.as_bytes());
    b.extend_from_slice(b",\"probe\":");
    value::push_json_str(&mut b, agg.spec.as_bytes());
    b.extend_from_slice(b",\"aggregation\":");
    value::push_json_str(&mut b, agg.plan.text.as_bytes());
    let _ = write!(
        VecWriter(&mut b),
        ",\"path\":\"{}\",\"events\":{},\"dropped\":{},\"lost\":{},\"rows\":[",
        path.name(),
        t.hits,
        t.dropped,
        t.lost
    );
    let keyobj = |b: &mut Vec<u8>, keys: &[KeyVal]| {
        b.extend_from_slice(b"\"key\":{");
        for (i, ((label, sh), k)) in agg.columns.iter().zip(keys).enumerate() {
            if i > 0 {
                b.push(b',');
            }
            value::push_json_str(b, label.as_bytes());
            b.push(b':');
            key_json(b, sh, k);
        }
        b.push(b'}');
    };
    if agg.is_hist() {
        for (gi, (keys, rows)) in groups(t).into_iter().enumerate() {
            if gi > 0 {
                b.push(b',');
            }
            b.push(b'{');
            keyobj(&mut b, keys);
            let total: u64 = rows.iter().map(|r| r.count).sum();
            let _ = write!(VecWriter(&mut b), ",\"count\":{total},\"buckets\":[");
            let mut rows = rows.clone();
            rows.sort_by_key(|r| r.bucket);
            for (i, r) in rows.iter().enumerate() {
                let (lo, hi) = bucket_bounds(agg, r.bucket.unwrap_or(0));
                if i > 0 {
                    b.push(b',');
                }
                let _ = write!(
                    VecWriter(&mut b),
                    "{{\"min\":{lo},\"max\":{hi},\"count\":{}}}",
                    r.count
                );
            }
            b.extend_from_slice(b"]}");
        }
    } else {
        let mut rows: Vec<&Row> = t.rows.iter().collect();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then(a.keys.cmp(&b.keys)));
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            b.push(b'{');
            keyobj(&mut b, &r.keys);
            let _ = write!(VecWriter(&mut b), ",\"count\":{}", r.count);
            match agg.plan.func {
                AggFunc::Sum => {
                    let _ = write!(VecWriter(&mut b), ",\"sum\":{}", value_num(agg, r.sum));
                }
                AggFunc::Max => {
                    let _ = write!(
                        VecWriter(&mut b),
                        ",\"max\":{},\"with\":{{",
                        value_num(agg, r.sum)
                    );
                    for (i, ((name, sh, _), v)) in agg.saved.iter().zip(&r.saved).enumerate() {
                        if i > 0 {
                            b.push(b',');
                        }
                        value::push_json_str(&mut b, name.as_bytes());
                        b.push(b':');
                        key_json(&mut b, sh, v);
                    }
                    b.push(b'}');
                }
                _ => {}
            }
            b.push(b'}');
        }
    }
    b.extend_from_slice(b"]}");
    String::from_utf8_lossy(&b).into_owned()
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::plan::{AggKey, AggPlan, Display};
    use crate::tracefs::format::{Field, FieldKind, Natural};

    fn int(name: &str, size: usize, signed: bool, natural: Natural, display: Display) -> Show {
        Show::Int {
            field: Field {
                name: name.into(),
                type_text: String::new(),
                offset: 0,
                size,
                signed,
                kind: FieldKind::Int,
                natural,
            },
            display,
        }
    }

    fn agg(func: AggFunc, keys: Vec<(&str, Show)>, value: Option<Show>) -> Agg {
        Agg {
            probe: 0,
            event: "f0".into(),
            spec: "p vfs_read n=count".into(),
            plan: AggPlan {
                text: "hist(n)[comm]".into(),
                func,
                value: Some("n".into()),
                keys: keys.iter().map(|_| AggKey::Comm).collect(),
            },
            columns: keys.into_iter().map(|(l, s)| (l.to_string(), s)).collect(),
            value,
            key_fields: vec![],
            value_field: None,
            stack_top: None,
            size: 2048,
            saved: vec![],
        }
    }

    fn row(keys: Vec<KeyVal>, bucket: Option<u64>, count: u64, sum: u64) -> Row {
        Row {
            keys,
            bucket,
            count,
            sum,
            saved: vec![],
        }
    }

    #[test]
    fn units() {
        assert_eq!(fmt_unit(512, Unit::Count), "512");
        assert_eq!(fmt_unit(1024, Unit::Count), "1K");
        assert_eq!(fmt_unit(8192, Unit::Count), "8K");
        assert_eq!(fmt_unit(1 << 20, Unit::Count), "1M");
        assert_eq!(fmt_unit(1u128 << 64, Unit::Count), "16E");
        assert_eq!(fmt_unit(1500, Unit::Count), "1500");
        assert_eq!(fmt_unit(2_000_000, Unit::Nanos), "2ms");
        assert_eq!(fmt_unit(1500, Unit::Nanos), "1.500us");
        assert_eq!(fmt_unit(999, Unit::Nanos), "999ns");
        assert_eq!(fmt_unit(1 << 21, Unit::Nanos), "2.097ms");
    }

    #[test]
    fn histogram_by_comm() {
        let u64n = int("n", 8, false, Natural::Unsigned, Display::Default);
        let a = agg(AggFunc::Log2, vec![("comm", Show::Str)], Some(u64n));
        let dd = || vec![KeyVal::Str(b"dd".to_vec())];
        let t = Table {
            rows: vec![
                row(dd(), Some(0), 9, 0),
                row(dd(), Some(7), 3, 0),
                row(dd(), Some(13), 3, 0),
                row(vec![KeyVal::Str(b"sh".to_vec())], Some(10), 1, 0),
            ],
            hits: 16,
            ..Table::default()
        };
        let out = text(&a, &t, Unit::Count);
        let want = "\
f0: hist(n)[comm]: 16 events
comm=dd: 15
  [0, 1]     9 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
  (1, 2]     0 |                                        |
  (2, 4]     0 |                                        |
  (4, 8]     0 |                                        |
  (8, 16]    0 |                                        |
  (16, 32]   0 |                                        |
  (32, 64]   0 |                                        |
  (64, 128]  3 |@@@@@@@@@@@@@@                          |
  (128, 256] 0 |                                        |
  (256, 512] 0 |                                        |
  (512, 1K]  0 |                                        |
  (1K, 2K]   0 |                                        |
  (2K, 4K]   0 |                                        |
  (4K, 8K]   3 |@@@@@@@@@@@@@@                          |
comm=sh: 1
  (512, 1K] 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
";
        assert_eq!(out, want, "\n{out}");
        let j: serde_json::Value =
            serde_json::from_str(&json(&a, &t, super::super::Path::Kernel, None)).unwrap();
        assert_eq!(j["rows"][0]["key"]["comm"], "dd");
        assert_eq!(j["rows"][0]["count"], 15);
        assert_eq!(j["rows"][0]["buckets"][1]["min"], 65);
        assert_eq!(j["rows"][0]["buckets"][1]["max"], 128);
        assert_eq!(j["rows"][0]["buckets"][1]["count"], 3);
        assert_eq!(j["path"], "kernel");
    }

    #[test]
    fn tables_keep_displays() {
        let ip = int("ip_src", 4, false, Natural::Hex, Display::Ip);
        let ret = int("r", 8, true, Natural::Signed, Display::Default);
        let mut a = agg(AggFunc::Sum, vec![("ip_src", ip)], Some(ret));
        a.plan.text = "sum(r)[ip_src]".into();
        a.plan.value = Some("r".into());
        let lo = u32::from_ne_bytes([127, 0, 0, 1]) as u64;
        let other = u32::from_ne_bytes([10, 0, 0, 2]) as u64;
        let t = Table {
            rows: vec![
                row(vec![KeyVal::Int(lo)], None, 2, (-4i64) as u64),
                row(vec![KeyVal::Int(other)], None, 5, 100),
            ],
            hits: 7,
            dropped: 3,
            lost: 0,
        };
        let out = text(&a, &t, Unit::Count);
        assert_eq!(
            out,
            "f0: sum(r)[ip_src]: 7 events, DROPPED 3 (its table of 2048 entries was full; raise --agg-size)\n\
             ip_src     count  sum(r)\n\
             10.0.0.2       5     100\n\
             127.0.0.1      2      -4\n"
        );
        let j: serde_json::Value =
            serde_json::from_str(&json(&a, &t, super::super::Path::User, Some(1.5))).unwrap();
        assert_eq!(j["rows"][1]["key"]["ip_src"], "127.0.0.1");
        assert_eq!(j["rows"][1]["sum"], -4);
        assert_eq!(j["dropped"], 3);
        assert_eq!(j["elapsed"], 1.5);
    }

    #[test]
    fn signed_and_linear_labels() {
        let s = int("r", 8, true, Natural::Signed, Display::Default);
        let a = agg(AggFunc::Log2, vec![], Some(s.clone()));
        assert_eq!(bucket_label(&a, 0, Unit::Count), "(-inf, 1]");
        let l = agg(AggFunc::Linear { step: 100 }, vec![], Some(s));
        assert_eq!(bucket_label(&l, 200, Unit::Count), "[200, 300)");
        assert_eq!(bucket_bounds(&l, 200), (200, 299));
    }
}

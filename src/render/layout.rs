//! An event's values in order: each on its own (`n=7`), or a whole
//! struct as a C initializer (`sk={skc_family=AF_INET skc_num=22 ...}`,
//! JSON a nested object; README, "Whole structs"). The layout is decided
//! once per event from the plan's paths ([`plan`]); each event only walks
//! it ([`write`]).

use crate::compile::plan::{Display, FieldPlan, Names, PathPart};
use crate::tracefs::format::Field;

use super::named::{self, Spelled};
use super::names::Kallsyms;
use super::value;

/// One shown field and how.
pub(super) struct Shown {
    pub field: Field,
    pub display: Display,
    /// Names for its numbers (None with `--raw`).
    pub names: Option<Names>,
    /// `name=` for text.
    label_text: Vec<u8>,
    /// `"name":` for JSON (quoted once).
    label_json: Vec<u8>,
    /// The event's field name, JSON-quoted.
    name_json: Vec<u8>,
    /// Values of its struct left out after it.
    cut: usize,
    /// A signed bitfield's width, its bits sign-extended.
    signed_bits: Option<u32>,
}

/// A struct or an array opened: its text, JSON and `raw` openings.
pub(super) struct Group {
    text: Vec<u8>,
    json: Vec<u8>,
    raw: Vec<u8>,
    array: bool,
}

pub(super) enum Op {
    Field(Box<Shown>),
    Open(Group),
    Close,
}

fn quoted(s: &str) -> Vec<u8> {
    let mut b = Vec::new();
    value::push_json_str(&mut b, s.as_bytes());
    b
}

/// An event's ops, and whether they are flat: values each on its own,
/// none by name, no struct (the common case, written by a short path).
pub(super) struct Layout {
    ops: Vec<Op>,
    flat: bool,
}

/// The ops of an event's fields, in event order, with their plans (none
/// for a tracepoint field shown as its format says).
pub(super) fn plan(fields: Vec<(Field, Option<&FieldPlan>)>) -> Layout {
    let ops = ops(fields);
    let flat = ops.iter().all(|op| match op {
        Op::Field(sh) => sh.names.is_none() && sh.cut == 0 && sh.signed_bits.is_none(),
        Op::Open(_) | Op::Close => false,
    });
    Layout { ops, flat }
}

fn ops(fields: Vec<(Field, Option<&FieldPlan>)>) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut open: Vec<PathPart> = Vec::new();
    for (field, fp) in fields {
        let path = fp.map_or(&[][..], |fp| &fp.path[..]);
        let (groups, label) = match path.split_last() {
            Some((PathPart::Member(m), groups)) => (groups.to_vec(), m.clone()),
            // An element of an array of one-value structs (`atomic_t a[2]`).
            Some((PathPart::Index(i), groups)) => (groups.to_vec(), i.to_string()),
            None => (Vec::new(), field.name.clone()),
        };
        let common = open.iter().zip(&groups).take_while(|(a, b)| a == b).count();
        for _ in common..open.len() {
            ops.push(Op::Close);
        }
        open.truncate(common);
        for (j, g) in groups.iter().enumerate().skip(common) {
            // A group whose parts are indexes is an array.
            let array = matches!(path.get(j + 1), Some(PathPart::Index(_)));
            let (text, json, raw) = match g {
                PathPart::Member(m) => {
                    let q = quoted(m);
                    let mut json = q.clone();
                    json.extend_from_slice(if array { b":[" } else { b":{" });
                    let mut raw = q;
                    raw.extend_from_slice(b":{");
                    (format!("{m}={{").into_bytes(), json, raw)
                }
                PathPart::Index(i) => (
                    b"{".to_vec(),
                    b"{".to_vec(),
                    format!("\"{i}\":{{").into_bytes(),
                ),
            };
            ops.push(Op::Open(Group {
                text,
                json,
                raw,
                array,
            }));
            open.push(g.clone());
        }
        ops.push(Op::Field(Box::new(Shown {
            label_text: format!("{label}=").into_bytes(),
            label_json: {
                let mut q = quoted(&label);
                q.push(b':');
                q
            },
            name_json: quoted(&field.name),
            display: fp.map_or(Display::Default, |fp| fp.display),
            names: fp.and_then(|fp| fp.names.clone()),
            cut: fp.map_or(0, |fp| fp.cut),
            signed_bits: fp.and_then(|fp| fp.signed_bits),
            field,
        })));
    }
    for _ in 0..open.len() {
        ops.push(Op::Close);
    }
    ops
}

/// Per level being written: whether an item was written yet, whether it
/// is an array, whether it is open in `raw` yet.
#[derive(Clone, Copy, Default)]
pub(super) struct Level {
    any: bool,
    array: bool,
    raw_any: bool,
    raw_open: bool,
}

/// Buffers reused across events.
#[derive(Default)]
pub(super) struct Scratch {
    levels: Vec<Level>,
    /// The group openings of the levels, for `raw` (opened lazily).
    raw_keys: Vec<usize>,
    name: Vec<u8>,
    /// JSON: the numbers of the values shown by name.
    pub raw: Vec<u8>,
    /// JSON: `"sk":95` for each struct cut short.
    pub cut: Vec<u8>,
    /// JSON: the quoted field names of the values the kernel could not
    /// read (a string through a bad address), shown as `null`.
    pub faults: Vec<Vec<u8>>,
    /// Text: ` ...` is due where the struct cut short closes.
    cut_pending: bool,
}

/// Write the values of one event (`args`' contents in JSON).
pub(super) fn write(
    layout: &Layout,
    payload: &[u8],
    json: bool,
    b: &mut Vec<u8>,
    s: &mut Scratch,
    kallsyms: &mut Kallsyms,
) {
    if layout.flat {
        write_flat(&layout.ops, payload, json, b, s);
        return;
    }
    let ops = &layout.ops[..];
    s.levels.clear();
    s.levels.push(Level {
        raw_open: true,
        ..Level::default()
    });
    s.raw_keys.clear();
    s.raw.clear();
    s.cut.clear();
    s.faults.clear();
    s.cut_pending = false;
    let mut top_label: &[u8] = b"";
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Open(g) => {
                sep(b, &mut s.levels, json);
                b.extend_from_slice(if json { &g.json } else { &g.text });
                if s.levels.len() == 1 {
                    top_label = &g.raw[..g.raw.len() - 2];
                }
                s.levels.push(Level {
                    array: g.array,
                    ..Level::default()
                });
                s.raw_keys.push(i);
            }
            Op::Close => {
                let l = s.levels.pop().unwrap_or_default();
                // Values left out: said at the end of the whole struct.
                if s.cut_pending && s.levels.len() == 1 {
                    b.extend_from_slice(b" ...");
                    s.cut_pending = false;
                }
                b.push(if json && l.array { b']' } else { b'}' });
                s.raw_keys.pop();
                if l.raw_open {
                    s.raw.push(b'}');
                }
            }
            Op::Field(sh) => {
                sep(b, &mut s.levels, json);
                let in_array = s.levels.last().is_some_and(|l| l.array);
                if !in_array {
                    b.extend_from_slice(if json { &sh.label_json } else { &sh.label_text });
                }
                let f = &sh.field;
                let v = match (f.value(payload), sh.signed_bits) {
                    (Some(crate::ring::Value::Unsigned(u)), Some(n)) if (1..64).contains(&n) => {
                        let sh = 64 - n;
                        Some(crate::ring::Value::Signed(((u << sh) as i64) >> sh))
                    }
                    (v, _) => v,
                };
                if v == Some(crate::ring::Value::Fault) {
                    // By the event's field name: unique, also in a struct.
                    s.faults.push(sh.name_json.clone());
                }
                s.name.clear();
                let spelled = match (&sh.names, v) {
                    (Some(n), Some(v)) => named::spell(n, f, v, kallsyms, &mut s.name),
                    _ => None,
                };
                match (spelled, json) {
                    (None, true) => value::push_json(b, f, v, sh.display),
                    (None, false) => value::push_text(b, f, v, sh.display),
                    // A print format may spell a task's name: escaped like one.
                    (Some(_), false) => value::push_escaped(b, &s.name, 0),
                    (Some(Spelled::Bool), true) => b.extend_from_slice(&s.name),
                    (Some(Spelled::Text), true) => {
                        value::push_json_str(b, &s.name);
                        // The number beside the name (README, "Values by
                        // name"), in `raw` under the same groups.
                        open_raw(ops, s);
                        let l = s.levels.last_mut().expect("the top level");
                        if l.raw_any {
                            s.raw.push(b',');
                        }
                        l.raw_any = true;
                        s.raw.extend_from_slice(&sh.label_json);
                        value::push_json(&mut s.raw, f, v, sh.display);
                    }
                }
                if sh.cut > 0 {
                    if json {
                        if !s.cut.is_empty() {
                            s.cut.push(b',');
                        }
                        s.cut.extend_from_slice(top_label);
                        s.cut.push(b':');
                        value::push_u64(&mut s.cut, sh.cut as u64);
                    } else {
                        s.cut_pending = true;
                    }
                }
            }
        }
    }
}

/// [`write`] for flat layouts: each value after its label, no levels.
fn write_flat(ops: &[Op], payload: &[u8], json: bool, b: &mut Vec<u8>, s: &mut Scratch) {
    s.raw.clear();
    s.cut.clear();
    s.faults.clear();
    for (i, op) in ops.iter().enumerate() {
        let Op::Field(sh) = op else { continue };
        if i > 0 {
            b.push(if json { b',' } else { b' ' });
        }
        let f = &sh.field;
        let v = f.value(payload);
        if json {
            b.extend_from_slice(&sh.label_json);
            if v == Some(crate::ring::Value::Fault) {
                s.faults.push(sh.name_json.clone());
            }
            value::push_json(b, f, v, sh.display);
        } else {
            b.extend_from_slice(&sh.label_text);
            value::push_text(b, f, v, sh.display);
        }
    }
}

/// The separator before an item of the current level: `,` in JSON and
/// between array elements, a space between a struct's members.
fn sep(b: &mut Vec<u8>, levels: &mut [Level], json: bool) {
    let Some(l) = levels.last_mut() else { return };
    if l.any {
        b.push(if json || l.array { b',' } else { b' ' });
    }
    l.any = true;
}

/// Open in `raw` every group of the current path not opened there yet.
fn open_raw(ops: &[Op], s: &mut Scratch) {
    for (depth, &at) in s.raw_keys.iter().enumerate() {
        let level = depth + 1;
        if s.levels[level].raw_open {
            continue;
        }
        let parent = &mut s.levels[level - 1];
        if parent.raw_any {
            s.raw.push(b',');
        }
        parent.raw_any = true;
        if let Op::Open(g) = &ops[at] {
            s.raw.extend_from_slice(&g.raw);
        }
        s.levels[level].raw_open = true;
    }
}

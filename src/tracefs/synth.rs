//! A latency paired in the kernel (Documentation/trace/histogram.rst,
//! "Synthetic Events" and "'hist' trigger actions"): a hist trigger on the
//! start event saves the time and the start's values per key,
//!
//! ```text
//! hist:keys=common_pid:ckp0ts=common_timestamp:ckp0_fn=fn:clock=mono
//! ```
//!
//! and one on the end event, for the same key, computes the latency and
//! emits one synthetic event with the start's values, the end's and the
//! latency:
//!
//! ```text
//! hist:keys=common_pid:ckp0lat=common_timestamp-$ckp0ts:ckp0e_ret=ret:onmatch(g.f0_entry).trace(g_f0,$ckp0_fn,$ckp0e_ret,$ckp0lat):clock=mono
//! ```
//!
//! A variable is read once: an end whose start was not seen (or was
//! already used) emits nothing. The kernel keeps one pending start per
//! key, the latest: a nested call of the same thread overwrites its
//! caller's (the user-space path keeps a stack per thread).
//! `common_timestamp` is in nanoseconds of the instance's clock, which a
//! trigger with timestamps sets: to `global` unless it says `clock=`.
//! Both say `clock=mono`, the clock sleeps and timeouts are measured by
//! (under QEMU, Debian 6.1's `global` timed a 10 ms sleep at 9.45 ms).
//! The kernel refuses to remove a trigger whose variables another uses,
//! and a synthetic event a trigger uses: removal goes end trigger, start
//! trigger, synthetic event.

use crate::compile::plan::{CompiledProbe, FieldFrom, LatencyPlan};

use super::hist::Features;

/// The `synthetic_events` line defining the completed calls' event.
pub fn definition(l: &LatencyPlan, f: &Features) -> String {
    let fields: Vec<String> = l
        .fields
        .iter()
        .map(|x| x.ty.declare(&x.name, f.dyn_strings))
        .collect();
    format!("{} {}", l.synth, fields.join("; "))
}

/// The pairing key's field on both events.
fn key(l: &LatencyPlan) -> &str {
    l.key.as_deref().unwrap_or("common_pid")
}

/// Variables of the latency ending at probe `end`: `ckp<N>ts`, `ckp<N>_<name>`.
fn var(end: usize, name: &str) -> String {
    format!("ckp{end}_{name}")
}

fn ts_var(end: usize) -> String {
    format!("ckp{end}ts")
}

fn lat_var(end: usize) -> String {
    format!("ckp{end}lat")
}

/// The clock of both triggers' timestamps (see above).
const CLOCK: &str = ":clock=mono";

/// The start event's trigger: the time and the values to carry, per key;
/// the start probe's own filter as its `if`.
pub fn start_trigger(start: &CompiledProbe, end: &CompiledProbe, l: &LatencyPlan) -> String {
    let mut t = format!(
        "hist:keys={}:{}=common_timestamp",
        key(l),
        ts_var(end.index)
    );
    for f in l.fields.iter().filter(|f| f.from == FieldFrom::Start) {
        t.push_str(&format!(":{}={}", var(end.index, &f.name), f.name));
    }
    t.push_str(CLOCK);
    if let Some(filter) = &start.filter {
        t.push_str(" if ");
        t.push_str(filter);
    }
    t
}

/// The end event's trigger: for a key whose start was saved, the
/// synthetic event with every value of the completed call.
pub fn end_trigger(
    start: &CompiledProbe,
    end: &CompiledProbe,
    group: &str,
    l: &LatencyPlan,
) -> String {
    let (sys, ev) = start.event_path(group);
    // The end's own values go through variables too: an action takes no
    // parameter shorter than two characters (a field `r`).
    let end_var = |n: &str| format!("ckp{}e_{n}", end.index);
    let args: Vec<String> = l
        .fields
        .iter()
        .map(|f| match f.from {
            FieldFrom::Start => format!("${}", var(end.index, &f.name)),
            FieldFrom::End => format!("${}", end_var(&f.name)),
            FieldFrom::Latency => format!("${}", lat_var(end.index)),
        })
        .collect();
    let mut t = format!(
        "hist:keys={}:{}=common_timestamp-${}",
        key(l),
        lat_var(end.index),
        ts_var(end.index),
    );
    for f in l.fields.iter().filter(|f| f.from == FieldFrom::End) {
        t.push_str(&format!(":{}={}", end_var(&f.name), f.name));
    }
    t.push_str(&format!(
        ":onmatch({sys}.{ev}).trace({},{})",
        l.synth,
        args.join(",")
    ));
    t.push_str(CLOCK);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::plan::{FetchArg, Latency, SynthField, SynthType, Target};

    fn probe(index: usize, ret: bool, args: &[&str], latency: Option<Latency>) -> CompiledProbe {
        CompiledProbe {
            index,
            spec: String::new(),
            target: Target::Kprobe {
                ret,
                symbol: "do_sys_openat2".into(),
                offset: 0,
            },
            fetchargs: args.iter().map(|a| FetchArg::raw(*a, "%di")).collect(),
            filter: None,
            fields: vec![],
            aggs: vec![],
            latency,
        }
    }

    #[test]
    fn a_function_latency() {
        let l = LatencyPlan {
            start: 1,
            key: None,
            fields: vec![
                SynthField {
                    name: "fn".into(),
                    from: FieldFrom::Start,
                    ty: SynthType::Str,
                },
                SynthField {
                    name: "ret".into(),
                    from: FieldFrom::End,
                    ty: SynthType::Int {
                        bytes: 8,
                        signed: true,
                    },
                },
                SynthField {
                    name: "lat".into(),
                    from: FieldFrom::Latency,
                    ty: SynthType::Int {
                        bytes: 8,
                        signed: false,
                    },
                },
            ],
            synth: "coolkprobe_7_f0".into(),
        };
        let mut start = probe(
            1,
            false,
            &["fn"],
            Some(Latency::Start {
                end: 0,
                name: Some("f0_entry".into()),
            }),
        );
        start.filter = Some("fn ~ \"/tmp/*\"".into());
        let end = probe(0, true, &["ret"], Some(Latency::End(l.clone())));
        let f = Features::from_readme(
            "hist trigger synthetic_events trace(<synthetic_event>,param list) common_timestamp 'myevent u64 lat; char name[]'",
        );
        assert!(f.synth && f.dyn_strings && !f.onmax);
        assert_eq!(
            definition(&l, &f),
            "coolkprobe_7_f0 char fn[]; s64 ret; u64 lat"
        );
        let old = Features::from_readme("hist trigger synthetic_events");
        assert!(!old.synth);
        assert_eq!(
            definition(&l, &old),
            "coolkprobe_7_f0 char fn[64]; s64 ret; u64 lat"
        );
        assert_eq!(
            start_trigger(&start, &end, &l),
            "hist:keys=common_pid:ckp0ts=common_timestamp:ckp0_fn=fn:clock=mono if fn ~ \"/tmp/*\""
        );
        assert_eq!(
            end_trigger(&start, &end, "coolkprobe_7", &l),
            "hist:keys=common_pid:ckp0lat=common_timestamp-$ckp0ts:ckp0e_ret=ret:onmatch(coolkprobe_7.f0_entry).trace(coolkprobe_7_f0,$ckp0_fn,$ckp0e_ret,$ckp0lat):clock=mono"
        );
    }
}

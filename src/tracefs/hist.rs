//! An aggregation lowered to a hist trigger, for the kernel the target is.
//!
//! `count()[comm]` on a kprobe with `__comm=$comm` becomes
//! `hist:keys=__comm:vals=hitcount:sort=hitcount.descending`, `hist(n)`
//! becomes `hist:keys=n.log2:...`, the probe's filter becomes the
//! trigger's `if` (Documentation/trace/histogram.rst).

use crate::compile::plan::{AggFunc, AggKey, AggPlan, CompiledProbe, COMM_FIELD};

/// What the target kernel's hist triggers can do, from its tracefs README
/// (which lists the trigger syntax the kernel was built with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// CONFIG_HIST_TRIGGERS: the README has a `hist trigger` section.
    pub hist: bool,
    /// `.buckets=size` (Linux 5.19+).
    pub buckets: bool,
    /// The stack key: `common_stacktrace` since Linux 6.5, `stacktrace` before.
    pub stack_key: &'static str,
    /// The CPU key: `common_cpu`, or `cpu` on older kernels.
    pub cpu_key: &'static str,
    /// Synthetic events fed by hist triggers' `onmatch(...).trace(...)`
    /// (CONFIG_SYNTH_EVENTS, and the `trace()` action of Linux 5.6+):
    /// latencies paired in the kernel.
    pub synth: bool,
    /// `char name[]`: synthetic event strings of any length (Linux 5.10+).
    pub dyn_strings: bool,
    /// `onmax(var).save(field,...)`: `max(V)` in the kernel.
    pub onmax: bool,
    /// Where the features came from, for messages.
    pub source: &'static str,
}

impl Features {
    pub fn from_readme(readme: &str) -> Features {
        Features {
            hist: readme.contains("hist trigger"),
            buckets: readme.contains(".buckets="),
            stack_key: if readme.contains("'common_stacktrace'") {
                "common_stacktrace"
            } else {
                "stacktrace"
            },
            cpu_key: if readme.contains("common_cpu") {
                "common_cpu"
            } else {
                "cpu"
            },
            synth: readme.contains("synthetic_events")
                && readme.contains("trace(<synthetic_event>")
                && readme.contains("common_timestamp"),
            dyn_strings: readme.contains("char name[]"),
            onmax: readme.contains("onmax(var)") && readme.contains("save(field"),
            source: "the running kernel's tracefs README",
        }
    }

    /// For a target that cannot be asked (`-S` for another kernel): the
    /// spellings every kernel with hist triggers takes (`stacktrace` is
    /// still accepted where `common_stacktrace` is the name).
    pub fn assumed() -> Features {
        Features {
            hist: true,
            buckets: true,
            stack_key: "stacktrace",
            cpu_key: "common_cpu",
            synth: true,
            dyn_strings: true,
            onmax: true,
            source: "assumed for another kernel",
        }
    }
}

/// The `keys=` entry of one key.
fn key_text(k: &AggKey, probe: &CompiledProbe, f: &Features) -> String {
    match k {
        AggKey::Field(n) => n.clone(),
        AggKey::Comm if probe.fetchargs.iter().any(|a| a.name == COMM_FIELD) => {
            COMM_FIELD.to_string()
        }
        // A tracepoint has no field with the current task's name: key by
        // pid, which the kernel shows with its name; rows with the same
        // name are added up when read.
        AggKey::Comm => "common_pid.execname".into(),
        AggKey::Pid => "common_pid".into(),
        AggKey::Cpu => f.cpu_key.into(),
        AggKey::Stack => f.stack_key.into(),
    }
}

/// The values of an event that `max(V)` keeps with the largest V: its
/// named values (a completed call's fields), or V alone on a tracepoint.
pub fn saved_fields(agg: &AggPlan, probe: &CompiledProbe) -> Vec<String> {
    let named: Vec<String> = match probe.latency_end() {
        Some(l) => l.fields.iter().map(|f| f.name.clone()).collect(),
        None => probe
            .fetchargs
            .iter()
            .filter(|a| a.name != COMM_FIELD)
            .map(|a| a.name.clone())
            .collect(),
    };
    if named.is_empty() {
        agg.value.iter().cloned().collect()
    } else {
        named
    }
}

/// The trigger text, without `hist:` removal or the filter.
pub fn trigger(agg: &AggPlan, probe: &CompiledProbe, f: &Features, size: Option<usize>) -> String {
    let mut keys: Vec<String> = agg.keys.iter().map(|k| key_text(k, probe, f)).collect();
    let mut vals = "hitcount".to_string();
    let mut var = String::new();
    let mut action = String::new();
    match (&agg.func, &agg.value) {
        (AggFunc::Log2, Some(v)) => keys.push(format!("{v}.log2")),
        (AggFunc::Linear { step }, Some(v)) => keys.push(format!("{v}.buckets={step}")),
        (AggFunc::Sum, Some(v)) => vals = format!("hitcount,{v}"),
        (AggFunc::Max, Some(v)) => {
            // `onmax()` tracks a variable of this trigger; its name is
            // unique on the event (a variable name may not repeat).
            let n = probe.aggs.iter().position(|a| a == agg).unwrap_or(0);
            let name = format!("ckpmax{n}");
            var = format!(":{name}={v}");
            action = format!(
                ":onmax(${name}).save({})",
                saved_fields(agg, probe).join(",")
            );
        }
        _ => {}
    }
    if keys.is_empty() {
        // A trigger needs a key: one that is the same for every event.
        keys.push("common_type".into());
    }
    let mut t = format!(
        "hist:keys={}:vals={vals}{var}:sort=hitcount.descending",
        keys.join(",")
    );
    if let Some(n) = size {
        t.push_str(&format!(":size={n}"));
    }
    t.push_str(&action);
    if let Some(filter) = &probe.filter {
        t.push_str(" if ");
        t.push_str(filter);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::plan::{FetchArg, Target};

    fn probe(target: Target, comm: bool, filter: Option<&str>) -> CompiledProbe {
        CompiledProbe {
            index: 0,
            spec: String::new(),
            target,
            fetchargs: if comm {
                vec![FetchArg::new(COMM_FIELD, crate::fetch::Fetch::Comm, None)]
            } else {
                vec![]
            },
            filter: filter.map(String::from),
            fields: vec![],
            aggs: vec![],
            latency: None,
        }
    }

    fn agg(func: AggFunc, value: Option<&str>, keys: Vec<AggKey>) -> AggPlan {
        AggPlan {
            text: String::new(),
            func,
            value: value.map(String::from),
            keys,
        }
    }

    #[test]
    fn lowering() {
        let k = Target::Kprobe {
            ret: false,
            symbol: "vfs_read".into(),
            offset: 0,
        };
        let tp = Target::Tracepoint {
            system: "syscalls".into(),
            event: "sys_enter_read".into(),
        };
        let f612 =
            Features::from_readme("hist trigger ... 'common_stacktrace' .buckets=size common_cpu");
        let f = Features::from_readme("hist trigger ... 'stacktrace' common_cpu");
        assert!(f612.hist && f612.buckets && !f.buckets);
        let p = probe(k.clone(), true, Some("n>10"));
        assert_eq!(
            trigger(
                &agg(AggFunc::Log2, Some("n"), vec![AggKey::Comm]),
                &p,
                &f612,
                None
            ),
            "hist:keys=__comm,n.log2:vals=hitcount:sort=hitcount.descending if n>10"
        );
        let t = probe(tp, false, None);
        assert_eq!(
            trigger(
                &agg(AggFunc::Sum, Some("count"), vec![AggKey::Comm, AggKey::Cpu]),
                &t,
                &f,
                Some(128)
            ),
            "hist:keys=common_pid.execname,common_cpu:vals=hitcount,count:sort=hitcount.descending:size=128"
        );
        assert_eq!(
            trigger(
                &agg(AggFunc::Count, None, vec![AggKey::Stack]),
                &t,
                &f612,
                None
            ),
            "hist:keys=common_stacktrace:vals=hitcount:sort=hitcount.descending"
        );
        assert_eq!(
            trigger(&agg(AggFunc::Count, None, vec![]), &t, &f, None),
            "hist:keys=common_type:vals=hitcount:sort=hitcount.descending"
        );
        assert_eq!(
            trigger(
                &agg(AggFunc::Linear { step: 100 }, Some("n"), vec![AggKey::Pid]),
                &p,
                &f,
                None
            ),
            "hist:keys=common_pid,n.buckets=100:vals=hitcount:sort=hitcount.descending if n>10"
        );
    }
}

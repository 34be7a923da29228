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

/// The trigger text, without `hist:` removal or the filter.
pub fn trigger(agg: &AggPlan, probe: &CompiledProbe, f: &Features, size: Option<usize>) -> String {
    let mut keys: Vec<String> = agg.keys.iter().map(|k| key_text(k, probe, f)).collect();
    let mut vals = "hitcount".to_string();
    match (&agg.func, &agg.value) {
        (AggFunc::Log2, Some(v)) => keys.push(format!("{v}.log2")),
        (AggFunc::Linear { step }, Some(v)) => keys.push(format!("{v}.buckets={step}")),
        (AggFunc::Sum, Some(v)) => vals = format!("hitcount,{v}"),
        _ => {}
    }
    if keys.is_empty() {
        // A trigger needs a key: one that is the same for every event.
        keys.push("common_type".into());
    }
    let mut t = format!(
        "hist:keys={}:vals={vals}:sort=hitcount.descending",
        keys.join(",")
    );
    if let Some(n) = size {
        t.push_str(&format!(":size={n}"));
    }
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

//! Live mode for `t SYSTEM:EVENT [f:FILTER]` probes only, without the
//! spec compiler: for benchmarks and for trying the engine on its own.
//! Takes the same options as coolkprobe.

use clap::Parser;
use coolkprobe::compile::plan::{CompiledProbe, Plan, Target};

fn main() -> std::process::ExitCode {
    let args = coolkprobe::cli::Args::parse();
    let mut probes = Vec::new();
    for (index, spec) in args.probes.iter().enumerate() {
        let (head, filter) = match spec.split_once(" f:") {
            Some((h, f)) => (h, Some(f.trim().to_string())),
            None => (spec.as_str(), None),
        };
        let Some(("t", place)) = head.trim().split_once(' ') else {
            eprintln!("only `t SYSTEM:EVENT [f:FILTER]` here: {spec}");
            return std::process::ExitCode::FAILURE;
        };
        let Some((system, event)) = place.trim().split_once(':') else {
            eprintln!("bad tracepoint {place}");
            return std::process::ExitCode::FAILURE;
        };
        probes.push(CompiledProbe {
            index,
            spec: spec.clone(),
            target: Target::Tracepoint {
                system: system.into(),
                event: event.into(),
            },
            fetchargs: vec![],
            filter,
            fields: vec![],
            aggs: vec![],
        });
    }
    let plan = Plan {
        group: format!("coolkprobe_{}", std::process::id()),
        probes,
    };
    match coolkprobe::live::main(&args, &plan) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("coolkprobe: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

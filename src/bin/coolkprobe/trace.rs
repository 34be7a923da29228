//! A live run: the plan installed, its events streamed until a duration,
//! a count, a signal or a closed output ends it, then everything undone.

use coolkprobe::live::LiveOptions;

use crate::cli::Args;
use crate::exit::Failure;

pub fn run(args: &Args) -> Result<(), Failure> {
    crate::cli::one_kernel(args, "a live run")?;
    let crate::cli::Planned {
        built,
        agg,
        latency,
    } = crate::cli::plan(args, true)?;
    if let Some(l) = &latency {
        eprintln!("coolkprobe: {}", coolkprobe::pipeline::latency_why(l));
    }
    if let Some(a) = &agg {
        eprintln!("coolkprobe: {}", coolkprobe::pipeline::aggregation_why(a));
    }
    let opts = LiveOptions {
        agg,
        latency,
        ..args.live()
    };
    let summary = coolkprobe::live::run(&opts, &built.plan).map_err(anyhow::Error::from)?;
    coolkprobe::live::print_summary(&summary);
    Ok(())
}

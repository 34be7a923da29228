//! A live run: the plan installed, its events streamed until a duration,
//! a count, a signal or a closed output ends it, then everything undone.

use crate::cli::Args;
use crate::exit::Failure;

pub fn run(args: &Args) -> Result<(), Failure> {
    let built = crate::cli::plan(args, true)?;
    let summary = coolkprobe::live::run(&args.live(), &built.plan).map_err(anyhow::Error::from)?;
    coolkprobe::live::print_summary(&summary);
    Ok(())
}

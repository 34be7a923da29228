//! The CLI edge: turn options into a plan, then show it or run it.
//! anyhow lives here and nowhere deeper.

use std::process::ExitCode;

use crate::cli::Args;

pub fn main(args: Args) -> ExitCode {
    let _ = args;
    eprintln!("coolkprobe: not built yet");
    ExitCode::FAILURE
}

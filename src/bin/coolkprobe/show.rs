//! `-S`: the tracefs commands of the plan as a shell script on stdout;
//! nothing is applied, so neither root nor tracefs is needed.

use std::io::Write as _;

use coolkprobe::tracefs::commands::InstallOptions;
use coolkprobe::tracefs::script::show_script;

use crate::cli::Args;
use crate::exit::Failure;

pub fn run(args: &Args) -> Result<(), Failure> {
    let built = crate::cli::plan(args, false)?;
    let comments: Vec<String> = built
        .arg_access
        .iter()
        .map(|why| format!("%N is read from {why}"))
        .collect();
    let script = show_script(&built.plan, InstallOptions { stack: args.stack }, &comments);
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = out.write_all(script.as_bytes()).and_then(|_| out.flush());
    Ok(())
}

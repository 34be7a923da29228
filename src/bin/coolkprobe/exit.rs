//! How a command ended, and the exit code of each kind of ending: 0 done,
//! 2 bad input (a spec, an option, a name: whichever command found it),
//! 1 a failure while running (tracefs, a type source, I/O).

use std::process::ExitCode;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The input cannot be used; the diagnostics, rendered for the
    /// terminal.
    Input(String),
    /// Something failed while running.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Runtime(e)
    }
}

/// Exit code of bad input.
pub const INPUT: u8 = 2;
/// Exit code of a failure while running.
pub const RUNTIME: u8 = 1;

/// Print what the failure says, and give its exit code.
pub fn code(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(rendered)) => {
            eprint!("{rendered}");
            ExitCode::from(INPUT)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(RUNTIME)
        }
    }
}

//! How a command ended, and the exit code of each kind of ending: 0 done,
//! 2 bad input (a spec, an option, a name: whichever command found it),
//! 1 a failure while running (tracefs, a type source, I/O), or a check
//! whose answer is no.

use std::process::ExitCode;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The input cannot be used; the diagnostics, rendered for the
    /// terminal.
    Input(String),
    /// Something failed while running.
    Runtime(anyhow::Error),
    /// The command ran, and its answer is no (`--check`: a probe fails
    /// on some kernel); what it says, for stderr.
    Verdict(String),
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
            eprintln!("error: {}", causes(&e));
            ExitCode::from(RUNTIME)
        }
        Err(Failure::Verdict(text)) => {
            eprint!("{text}");
            ExitCode::from(RUNTIME)
        }
    }
}

/// An error and its causes, `a: b: c`, each said once: an error whose
/// message already quotes its cause (`cannot read x: Is a directory`)
/// is not followed by the cause again.
fn causes(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for c in e.chain() {
        let t = c.to_string();
        if out.contains(&t) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::causes;

    #[test]
    fn each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read /tmp: {source}")]
        struct Quoting {
            source: std::io::Error,
        }
        let io = || std::io::Error::from_raw_os_error(21);
        let e = anyhow::Error::new(Quoting { source: io() }).context("cannot load C types");
        assert_eq!(
            causes(&e),
            "cannot load C types: cannot read /tmp: Is a directory (os error 21)"
        );
        let e = anyhow::Error::new(io()).context("cannot read probe file /tmp");
        assert_eq!(
            causes(&e),
            "cannot read probe file /tmp: Is a directory (os error 21)"
        );
    }
}

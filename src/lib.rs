//! coolkprobe: C-typed probe specs → ftrace fetchargs → events.
//!
//! The library holds every stage; the `coolkprobe` binary only parses
//! options, runs one command and renders diagnostics. The pipeline, each
//! stage knowing only its neighbours:
//!
//! ```text
//! spec     text -> probe AST with spans          (no kernel knowledge)
//! types    BTF / DWARF -> one type model          (no tracefs knowledge)
//! compile  AST + types + arch -> plan: fetch IR, filter, display
//! tracefs  install, enable, tear down             (an RAII session)
//! ring     per-CPU pages -> decoded events        (format-file driven)
//! render   events + display plan -> text / JSON
//! ```
//!
//! Beside them: `diag` (the one diagnostic type every stage reports in),
//! `kernel` (what is read from the running kernel: its symbols and the
//! checks against them, syscall formats, features), `pipeline` (the
//! stages before tracefs, in order, for one run), `fleet` (the stages for
//! each kernel of several, and how the results compare) and `live` (a live run:
//! session, readers, merge, render; `agg`, aggregations in the kernel's
//! hist triggers or in user space; `latency`, entry-to-return latencies
//! paired in user space where the kernel's synthetic events are missing).

pub mod agg;
pub mod arch;
pub mod compile;
pub mod diag;
pub mod fetch;
pub mod fleet;
pub mod kernel;
pub mod latency;
pub mod live;
pub mod pipeline;
pub mod render;
pub mod ring;
pub mod spec;
pub mod tracefs;
pub mod types;

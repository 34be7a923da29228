//! coolkprobe: C-typed probe specs → ftrace fetchargs → events.
//!
//! The pipeline, each stage knowing only its neighbours:
//!
//! ```text
//! spec    text -> probe AST with spans          (no kernel knowledge)
//! types   BTF / DWARF -> one type model          (no tracefs knowledge)
//! compile AST + types + arch -> fetchargs, filter, display plan
//! tracefs install, enable, tear down             (an RAII session)
//! ring    per-CPU pages -> decoded events        (format-file driven)
//! render  events + display plan -> text / JSON
//! ```

pub mod agg;
pub mod app;
pub mod arch;
pub mod cli;
pub mod compile;
pub mod discover;
pub mod kallsyms;
pub mod live;
pub mod render;
pub mod ring;
pub mod spec;
pub mod tracefs;
pub mod types;
pub mod validate;

//! AST + types + arch → fetchargs, filter and display plan.

pub mod plan;

//! TODO(stage render)

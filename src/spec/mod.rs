//! TODO(stage spec)

//! TODO(stage ring)

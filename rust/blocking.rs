//! Placeholder replaced by the blocking implementation.

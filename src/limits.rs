//! Every capacity, size and age bound in postlens, in one place.
//!
//! Anything that grows with input is capped here; each cap names what happens
//! when it is reached (eviction rule) so memory stays flat on a small box.

/// Longest log line accepted. Longer lines are counted as malformed and
/// skipped (Postfix truncates its own lines well below this, at
/// `line_length_limit` = 2048 by default; headers and long replies stay under).
pub const MAX_LINE: usize = 16 * 1024;

/// Read buffer of the line reader.
pub const READ_BUF: usize = 64 * 1024;

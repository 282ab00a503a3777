//! Operation decoder shared by the `core_ops` fuzz target and the stable corpus replay test.
//!
//! Not part of the public API (hidden from docs). Filled in with the model checks.

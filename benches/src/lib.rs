//! Benchmarks for e7-core. (being written)

//! The `e7` command. (being written)
fn main() {}

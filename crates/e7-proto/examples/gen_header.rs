//! Prints the C header for the kernel shim (`crates/e7-kmod/e7_proto.h`).
//!
//! ```text
//! cargo run -q -p e7-proto --example gen_header > crates/e7-kmod/e7_proto.h
//! ```

fn main() {
    print!("{}", e7_proto::c_header());
}

//! Compiles `src/shim.c` (liburing's inline helpers as real symbols) and links the system
//! liburing (Debian: `liburing-dev`, 2.2 or later for `io_uring_sqe_set_data64`).

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    cc::Build::new()
        .file("src/shim.c")
        .warnings(true)
        .extra_warnings(true)
        .compile("uring_shim");
    // After the shim, which needs it: the linker resolves libraries left to right.
    println!("cargo:rustc-link-lib=uring");
}

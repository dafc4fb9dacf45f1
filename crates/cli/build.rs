//! Links `halo` as a position-dependent executable on Linux.
//!
//! A position-independent `halo` starts by applying about 145,000 relocations, which
//! copies 2.5 MB of its tables into private memory page by page: 3–4 ms of every run
//! spent before `main`, longer than `halo --help` itself and on the way to every index
//! build. A position-dependent executable has its addresses fixed when linked, and those
//! pages are shared from the page cache. The cost is that the executable's own code does
//! not move from run to run (libraries, heap and stack still do).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}

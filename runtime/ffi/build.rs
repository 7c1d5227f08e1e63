//! Generates the C header into OUT_DIR; a test checks the checked-in copy
//! (`include/wasmtel.h`, what cgo compiles against) is current.

fn main() {
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    // Every source file: cbindgen reads the modules lib.rs declares too.
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml")).expect("cbindgen.toml is valid");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("the C ABI in src/lib.rs is expressible in C")
        .write_to_file(format!("{out_dir}/wasmtel.h"));
}

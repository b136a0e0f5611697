//! Builds the vendored libzmq (zeromq-src) with CURVE enabled, linked against the
//! static libsodium that `libsodium-sys-stable` built from its bundled source.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build/main.rs");
    println!("cargo:rerun-if-env-changed=PROFILE");

    // Exported by libsodium-sys-stable's build script (`links = "sodium"`).
    let lib = env::var_os("DEP_SODIUM_LIB")
        .map(PathBuf::from)
        .expect("libsodium-sys-stable did not report DEP_SODIUM_LIB");
    let include = env::var_os("DEP_SODIUM_INCLUDE")
        .map(PathBuf::from)
        .expect("libsodium-sys-stable did not report DEP_SODIUM_INCLUDE");

    // libzmq's own compiler warnings are upstream's business; a path dependency would
    // otherwise print each of them on every rebuild.
    let flags = env::var("CXXFLAGS").unwrap_or_default();
    env::set_var("CXXFLAGS", format!("{flags} -w"));

    zeromq_src::Build::new()
        .with_libsodium(Some(zeromq_src::LibLocation::new(lib, include)))
        .build();
}

//! Exports `PGHARBOR_GIT_REVISION` (the commit being built, or `unknown`)
//! for `pgharbor --version`, and asks cargo to rebuild when HEAD moves.

#[path = "build/revision.rs"]
mod revision;

use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let workspace = Path::new(&manifest_dir).join("../..");
    println!(
        "cargo:rustc-env=PGHARBOR_GIT_REVISION={}",
        revision::describe(&workspace)
    );
    println!("cargo:rerun-if-changed=build/revision.rs");
    for file in revision::watched_files(&workspace) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}

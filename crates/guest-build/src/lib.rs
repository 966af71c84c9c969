//! What the build scripts of `stage-host` and `stage-runtime` share: building the built-in
//! step components (`steps/*`), the host's own sandboxes (`guests/*`, e.g. the template
//! sandbox), the test fixtures (`tests/fixtures/*`) and the example components
//! (`examples/*` crates) for `wasm32-wasip2`, placed in `OUT_DIR`
//! (`steps/<name>.wasm`, `guests/<name>.wasm`, `fixtures/<name>.wasm`,
//! `examples/<name>.wasm`) of the crate being built. Steps and guests are embedded in the
//! binary; fixtures and examples are only read by the tests. When both crates build, the
//! second finds every guest fresh.
//!
//! The guests are built by a nested cargo with its own target dir (`<target>/guests`) so it
//! never waits on the outer build's lock. A missing `wasm32-wasip2` target is added with
//! rustup; without rustup the build stops with a message saying what to install.

use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

/// Builds every guest crate of the workspace and copies the components into `OUT_DIR`;
/// call it from a build script.
pub fn build_all() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = workspace_root(&manifest_dir);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    for watched in [
        "steps",
        "guests",
        "crates/templates",
        "crates/formulas",
        "crates/classes",
        "tests/fixtures",
        "examples",
        "guest-sdk",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let guests: Vec<(&str, PathBuf)> = [
        ("steps", workspace.join("steps")),
        ("guests", workspace.join("guests")),
        ("fixtures", workspace.join("tests/fixtures")),
        ("examples", workspace.join("examples")),
    ]
    .into_iter()
    .flat_map(|(kind, dir)| crate_dirs(&dir).into_iter().map(move |d| (kind, d)))
    .collect();

    ensure_wasm_target();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| if dir.is_absolute() { dir } else { workspace.join(dir) })
        .unwrap_or_else(|| workspace.join("target"))
        .join("guests");

    // Step and backend guests are built by separate cargo runs: within one run cargo unifies
    // the SDK's features, and a component must carry exactly one world's bindings.
    let (backends, steps): (Vec<&PathBuf>, Vec<&PathBuf>) =
        guests.iter().map(|(_, dir)| dir).partition(|dir| is_backend(dir));
    for group in [steps, backends] {
        if !group.is_empty() {
            build_guests(&workspace, &target_dir, &group);
        }
    }

    for (kind, dir) in &guests {
        let artifact =
            target_dir.join(WASM_TARGET).join("release").join(format!("{}.wasm", package_name(dir).replace('-', "_")));
        let destination = out_dir.join(kind).join(format!("{}.wasm", dir_name(dir)));
        std::fs::create_dir_all(destination.parent().unwrap()).unwrap();
        std::fs::copy(&artifact, &destination)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", artifact.display(), destination.display()));
    }
}

/// The folder of the workspace's root `Cargo.toml`, above the crate in `dir`.
fn workspace_root(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|folder| {
            std::fs::read_to_string(folder.join("Cargo.toml")).is_ok_and(|manifest| manifest.contains("[workspace]"))
        })
        .expect("the crate sits in the Stage workspace")
        .to_owned()
}

/// Builds the guest crates in `dirs` for the wasm target in one cargo run.
fn build_guests(workspace: &Path, target_dir: &Path, dirs: &[&PathBuf]) {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.current_dir(workspace).args(["build", "--release", "--target", WASM_TARGET, "--target-dir"]).arg(target_dir);
    for dir in dirs {
        cargo.args(["-p", &package_name(dir)]);
    }
    // The outer build's flags and wrappers (clippy, coverage) are for the host target.
    for leaked in
        ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER", "CARGO_BUILD_TARGET"]
    {
        cargo.env_remove(leaked);
    }
    let status = cargo.status().expect("running cargo to build the wasm guests");
    assert!(
        status.success(),
        "building the wasm guests (steps/*, tests/fixtures/*, examples/*) failed; see the errors above"
    );
}

/// Whether a guest crate is an API backend (it enables the SDK's `backend` feature).
fn is_backend(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default().contains("features = [\"backend\"]")
}

/// Crate folders (those holding a Cargo.toml) directly under `dir`, sorted.
fn crate_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("Cargo.toml").is_file()).collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

fn dir_name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

/// Guest crates are named after their folder: `steps/pulse` is `stage-step-pulse`,
/// `guests/templates` is `stage-guest-templates`, `tests/fixtures/chaos` is
/// `stage-fixture-chaos`, `examples/backend-hello` is `backend-hello`.
fn package_name(dir: &Path) -> String {
    let parent = dir.parent().expect("guest crates sit in a folder");
    let name = if parent.ends_with("steps") {
        format!("stage-step-{}", dir_name(dir))
    } else if parent.ends_with("guests") {
        format!("stage-guest-{}", dir_name(dir))
    } else if parent.ends_with("examples") {
        dir_name(dir)
    } else {
        format!("stage-fixture-{}", dir_name(dir))
    };
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    assert!(
        manifest.contains(&format!("name = \"{name}\"")),
        "{} must declare `name = \"{name}\"` in its Cargo.toml",
        dir.display()
    );
    name
}

/// Adds the wasm target through rustup when it is missing.
fn ensure_wasm_target() {
    let sysroot = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if sysroot.is_some_and(|root| root.join("lib/rustlib").join(WASM_TARGET).is_dir()) {
        return;
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", WASM_TARGET]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
    }
    match rustup.status() {
        Ok(status) if status.success() => {}
        outcome => panic!(
            "the {WASM_TARGET} Rust target is missing and `rustup target add {WASM_TARGET}` did not work ({outcome:?}); \
             install it with rustup, or your distribution's rust-std package for {WASM_TARGET}"
        ),
    }
}

//! Builds the wasm guests (steps, the host's sandboxes, test fixtures, examples) into
//! `OUT_DIR`: see `stage-guest-build`.

fn main() {
    stage_guest_build::build_all();
}

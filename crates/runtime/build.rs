//! Builds the wasm guests into `OUT_DIR`, for the runtime's tests (the chaos fixture, the
//! response step): see `stage-guest-build`.

fn main() {
    stage_guest_build::build_all();
}

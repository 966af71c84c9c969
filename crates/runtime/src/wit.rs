//! The host side of the WIT package `stage:platform` (`guest-sdk/wit`): the wasmtime
//! bindings of the step world and of the backend world, generated once here and used by
//! the sandbox (log, types), steps (the `run` export) and backends (inference, compute,
//! utils). The two worlds share `stage:platform/{log,types}`, so a `step-error` is one type.

/// The `stage:platform/step` world: `run(ctx, input) -> result<string, step-error>`.
mod step {
    wasmtime::component::bindgen!({
        path: "../../guest-sdk/wit",
        world: "stage:platform/step",
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
        require_store_data_send: true,
    });
}

/// The `stage:platform/backend` world: a `wasi:http/proxy` with the platform's host
/// interfaces (its export is instantiated through wasmtime-wasi-http's `ProxyPre`).
mod backend {
    wasmtime::component::bindgen!({
        path: "../../guest-sdk/wit",
        world: "stage:platform/backend",
        imports: {
            "stage:platform/inference": async,
            "stage:platform/compute": async,
            "stage:platform/utils.fetch": async,
        },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
            "wasi:cli": wasmtime_wasi::p2::bindings::cli,
            "stage:platform/log": crate::wit::step::stage::platform::log,
            "stage:platform/types": crate::wit::step::stage::platform::types,
        },
        require_store_data_send: true,
    });
}

pub(crate) use self::backend::stage::platform::{compute, inference, utils};
pub(crate) use self::step::StepPre;
pub(crate) use self::step::stage::platform::{log, types};

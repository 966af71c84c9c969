//! Guest SDK for Stage steps and backends (filled in by the wasm runtime work).

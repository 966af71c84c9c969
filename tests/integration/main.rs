//! Integration tests: the real `stage` binary, over HTTP, on a temporary data folder.

mod common;

mod apps;
mod attacks_api;
mod attacks_caches;
mod attacks_convex;
mod attacks_outbound;
mod attacks_preview;
mod attacks_quotas;
mod attacks_secrets;
mod attacks_sheets;
mod attacks_templates;
mod auth;
mod backends;
mod bad_input;
mod billing;
mod cli;
mod communication;
mod convex;
mod durability;
mod preview;
mod preview_browser;
mod readme_snippets;
mod services;
mod sessions;
mod sheets;
mod sheets_fidelity;
mod workflows;

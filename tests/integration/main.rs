//! Integration tests: the real `stage` binary, over HTTP, on a temporary data folder.

mod common;

mod apps;
mod attacks_caches;
mod auth;
mod backends;
mod bad_input;
mod billing;
mod communication;
mod convex;
mod durability;
mod services;
mod sessions;
mod sheets;
mod workflows;

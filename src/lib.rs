//! mk8: run a fleet of Kubernetes clusters from one management cluster.
#![forbid(unsafe_code)]

// The admission test cases in `api/tests/` name the crate `mk8::` so that the end-to-end tests can
// include the same files and replay them against real API servers.
extern crate self as mk8;

pub mod api;
pub mod apiserver;
pub mod cli;
pub mod controller;
pub mod crdgen;
pub mod devfleet;
pub mod files;
pub mod fleet;
#[cfg(test)]
mod layers;
pub mod operator;
pub mod providers;
pub mod reconcile;
pub mod selector;

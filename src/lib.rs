//! mk8: run a fleet of Kubernetes clusters from one management cluster.
#![forbid(unsafe_code)]

pub mod api;
pub mod apiserver;
pub mod cli;
pub mod controller;
pub mod crdgen;
#[cfg(test)]
mod layers;
pub mod operator;
pub mod providers;
pub mod reconcile;
pub mod selector;

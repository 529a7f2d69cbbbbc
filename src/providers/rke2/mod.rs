//! RKE2 on SSH hosts: release artifacts, config.yaml, the install plan and its executor.

pub mod access;
pub mod artifacts;
pub mod config;
pub mod execute;
pub mod nodes;
pub mod plan;

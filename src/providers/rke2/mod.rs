//! RKE2 on SSH hosts: release artifacts, the install plan and its executor.

pub mod artifacts;

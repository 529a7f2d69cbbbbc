//! RKE2 on SSH hosts, end to end: real sshd nodes in network namespaces, a test-built release.

mod artifacts;
mod bench;
mod drain;
pub mod fleet;
mod install;
mod operator;
pub mod release;
mod ssh;

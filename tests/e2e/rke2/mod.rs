//! RKE2 on SSH hosts, end to end: real sshd nodes in network namespaces, a test-built release.

pub mod fleet;
mod ssh;

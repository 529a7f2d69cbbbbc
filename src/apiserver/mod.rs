//! Development Kubernetes API server (placeholder declaration written by the foundation work so the crate builds; the apiserver owner replaces this file).

pub mod selector;

//! Building blocks every reconcile stage shares, whichever controller or provider runs it:
//! conditions, the error and its retry category, status writing, Events, durations.
//!
//! This layer imports only `api`; `providers` and `controller` build on it.

pub mod conditions;
pub mod duration;
pub mod env;
pub mod error;
pub mod status;

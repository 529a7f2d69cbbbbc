//! Admission-time validation of the four kinds, as a user meets it: every CEL rule and every
//! OpenAPI constraint with an accepted and a rejected example, the CRDs' kubectl surface, the
//! generated `crds/` files and the samples in `config/samples/`.

mod cel;
pub mod cel_cases;
mod crds;
pub(crate) mod fixtures;
mod openapi;
pub mod openapi_cases;
mod samples;
mod schema_check;

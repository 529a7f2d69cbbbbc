//! The controllers' top-level error, its category, and the retry policy derived from it.

use std::time::Duration;

/// What kind of failure a reconcile hit; drives backoff, metrics labels and Event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// The input is wrong; retrying cannot help until the object changes.
    InvalidInput,
    /// Something outside failed for a while (network, API server, provider).
    Transient,
    /// A peer asked us to slow down (HTTP 429, provider throttling).
    Throttled,
}

impl Category {
    /// Label value for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::InvalidInput => "invalid_input",
            Category::Transient => "transient",
            Category::Throttled => "throttled",
        }
    }
}

/// Errors a reconcile can end with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    /// The finalizer machinery failed around the reconcile.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// An object could not be (de)serialized.
    #[error("serialization: {0}")]
    Serialization(#[from] serde_json::Error),
    /// A cleanup cannot proceed; the finalizer stays until it can.
    #[error("cleanup blocked: {0}")]
    CleanupBlocked(String),
    /// A provider's cloud API failed in a way worth retrying (throttling, 5xx, network).
    #[error("{message}")]
    Provider {
        /// Transient or Throttled.
        category: Category,
        /// What failed, without credentials.
        message: String,
    },
}

impl Error {
    /// The category of this error.
    pub fn category(&self) -> Category {
        match self {
            Error::Kube(kube::Error::Api(status)) if status.code == 429 => Category::Throttled,
            Error::Kube(kube::Error::Api(status)) if matches!(status.code, 400 | 422) => {
                Category::InvalidInput
            }
            Error::Kube(_) | Error::CleanupBlocked(_) => Category::Transient,
            Error::Serialization(_) => Category::InvalidInput,
            Error::Provider { category, .. } => *category,
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.category(),
                kube::runtime::finalizer::Error::AddFinalizer(e)
                | kube::runtime::finalizer::Error::RemoveFinalizer(e) => Error::kube_category(e),
                _ => Category::InvalidInput,
            },
        }
    }

    fn kube_category(e: &kube::Error) -> Category {
        match e {
            kube::Error::Api(status) if status.code == 429 => Category::Throttled,
            _ => Category::Transient,
        }
    }

    /// Wrap a finalizer error.
    pub fn finalizer(e: kube::runtime::finalizer::Error<Error>) -> Self {
        Error::Finalizer(Box::new(e))
    }

    /// Why a deletion waits, when this error is a blocked cleanup (directly or inside the
    /// finalizer's error).
    pub fn cleanup_blocked(&self) -> Option<&str> {
        match self {
            Error::CleanupBlocked(why) => Some(why),
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::CleanupFailed(e) => e.cleanup_blocked(),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Result of a reconcile.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exponential backoff with full jitter, capped: the delay before retry number `attempt` (1-based).
pub fn backoff_delay(category: Category, attempt: u32, jitter: f64) -> Option<Duration> {
    let (base, cap) = match category {
        Category::InvalidInput => return None,
        Category::Transient => (Duration::from_millis(500), Duration::from_secs(300)),
        Category::Throttled => (Duration::from_secs(5), Duration::from_secs(900)),
    };
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let ceiling = exp.min(cap);
    // Half fixed, half random: never zero, still spreads a thundering herd.
    let jitter = jitter.clamp(0.0, 1.0);
    Some(ceiling.mul_f64(0.5 + 0.5 * jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_waits_for_a_change() {
        assert_eq!(backoff_delay(Category::InvalidInput, 3, 0.5), None);
    }

    #[test]
    fn transient_backoff_grows_and_caps() {
        let d1 = backoff_delay(Category::Transient, 1, 1.0).unwrap();
        let d4 = backoff_delay(Category::Transient, 4, 1.0).unwrap();
        let d40 = backoff_delay(Category::Transient, 40, 1.0).unwrap();
        assert_eq!(d1, Duration::from_millis(500));
        assert_eq!(d4, Duration::from_secs(4));
        assert_eq!(d40, Duration::from_secs(300));
    }

    #[test]
    fn jitter_spreads_between_half_and_full() {
        let low = backoff_delay(Category::Transient, 3, 0.0).unwrap();
        let high = backoff_delay(Category::Transient, 3, 1.0).unwrap();
        assert_eq!(low, Duration::from_secs(1));
        assert_eq!(high, Duration::from_secs(2));
    }

    #[test]
    fn throttling_backs_off_longer_than_transient() {
        let t = backoff_delay(Category::Transient, 2, 1.0).unwrap();
        let th = backoff_delay(Category::Throttled, 2, 1.0).unwrap();
        assert!(th > t * 5, "{th:?} vs {t:?}");
    }

    #[test]
    fn categories_of_api_errors() {
        let api = |code| {
            Error::Kube(kube::Error::Api(
                kube::core::Status::failure("x", "y")
                    .with_code(code)
                    .boxed(),
            ))
        };
        assert_eq!(api(429).category(), Category::Throttled);
        assert_eq!(api(422).category(), Category::InvalidInput);
        assert_eq!(api(503).category(), Category::Transient);
    }
}

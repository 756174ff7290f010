//! [`Clock`]: where the runner reads the time and how it waits.
//!
//! [`Clock::System`] is the wall clock. [`Clock::Manual`] is a virtual
//! clock that jumps instead of sleeping, so tests (and simulations) run
//! days of schedule in milliseconds without timing assertions.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// The longest single sleep on the system clock: waking up this often
/// follows wall clock jumps (NTP corrections, a suspended host) instead of
/// trusting one long monotonic sleep.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// The runner's source of time.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system's wall clock; sleeps really wait.
    #[default]
    System,
    /// A virtual clock: sleeping moves it forward at once.
    Manual(ManualClock),
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Manual(m) => m.now(),
        }
    }

    /// Waits until the clock reads `at` or later.
    pub(crate) async fn sleep_until(&self, at: Timestamp) {
        match self {
            Clock::System => loop {
                let left = at.duration_since(Timestamp::now());
                if left <= SignedDuration::ZERO {
                    return;
                }
                let left = Duration::try_from(left).unwrap_or(MAX_SLEEP);
                tokio::time::sleep(left.min(MAX_SLEEP)).await;
            },
            Clock::Manual(m) => {
                m.set_at_least(at);
                tokio::task::yield_now().await;
            }
        }
    }
}

/// A virtual clock shared by its clones: it reads what it was set to and
/// moves only when told or when the runner sleeps on it.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// The time it reads.
    pub fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the clock forward by `by` (a job "taking" that long).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        *now = now.saturating_add(by).unwrap_or(Timestamp::MAX);
    }

    fn set_at_least(&self, at: Timestamp) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = (*now).max(at);
    }
}

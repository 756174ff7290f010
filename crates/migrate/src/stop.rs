//! Stopping work on the server at once, when a run is cancelled or one of
//! its workers fails.
//!
//! Dropping a statement's future stops nothing on the server: PostgreSQL
//! runs a `CREATE INDEX`, a `COPY` or a verification query to its end before
//! it looks at its client again, and a clean-up's `DROP` then waits for it.
//! So a worker that stops drops its step and sends the server a cancel
//! request for its connection ([`Canceller`]), again every [`RESEND`] until
//! the server has answered everything the connection sent (a request that
//! arrives between two statements, or before the statement, is ignored by
//! the server). When it returns, the connection runs nothing.
//!
//! [`Crew`] runs workers that stop together: the first error (or the
//! caller's cancellation) stops the others' statements at once, and that
//! first error is the one reported — not the cancellations it caused.
//!
//! A run's own connections, used between the crews' phases, are stopped the
//! same way: each step on them runs [`unless_cancelled`], and once the run
//! ends interrupted, [`Canceller::cancel_pending`] cancels what the dropped
//! step left running on the server.
//!
//! The clean-up after a failure runs on a connection of its own
//! ([`CleanUpConnection`]); a caller that gives up waiting for it and exits
//! (a second Ctrl-C) first calls [`abandon_clean_ups`], so that no clean-up
//! statement is left on the server waiting for a lock — and queued ahead of
//! the applications' own queries on that table — after the process is gone.

use crate::error::{MigrateError, MigrateErrorKind};
use pgharbor_conn::{ConnConfig, ConnectionTask};
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::{CancelToken, Client};
use tokio_util::sync::CancellationToken;

/// How often a cancel request is sent again while a stopped connection
/// has not answered.
const RESEND: Duration = Duration::from_millis(200);

/// The error of a run its caller cancelled, before the caller says where.
pub(crate) fn interrupted() -> MigrateError {
    MigrateError::new(MigrateErrorKind::Interrupted, "interrupted")
}

/// What cancels one connection's statements: its cancel key, and how to
/// reach its server (as the connection was made).
#[derive(Clone)]
pub(crate) struct Canceller {
    config: ConnConfig,
    token: CancelToken,
}

impl Canceller {
    /// The canceller of `client`, connected with `config`.
    pub(crate) fn new(client: &Client, config: &ConnConfig) -> Self {
        Canceller {
            config: config.clone(),
            token: client.cancel_token(),
        }
    }

    /// Cancel what the connection runs until `settled` is done (it ends
    /// once the server answered everything sent before it). Gives up when a
    /// cancel request cannot be sent: the connection then ends on its own.
    pub(crate) async fn cancel_until(&self, settled: impl Future<Output = ()>) {
        tokio::pin!(settled);
        loop {
            if let Err(e) = pgharbor_conn::cancel_query(&self.config, &self.token).await {
                tracing::debug!(error = %pgharbor_conn::conn_text(&e), "a cancel request could not be sent");
                return;
            }
            tokio::select! {
                () = &mut settled => return,
                () = tokio::time::sleep(RESEND) => {}
            }
        }
    }

    /// Cancel what `client` (this canceller's connection) runs until the
    /// server answered everything sent on it so far: a trivial request sent
    /// after them is answered last.
    pub(crate) async fn cancel_pending(&self, client: &Client) {
        self.cancel_until(async {
            let _ = client.simple_query("").await;
        })
        .await;
    }

    /// Cancel what the connection runs until it has ended: its client is
    /// gone and the server answered what was sent (`ended`, the
    /// connection's task).
    pub(crate) async fn cancel_until_ended(&self, ended: ConnectionTask) {
        self.cancel_until(async {
            let _ = ended.await;
        })
        .await;
    }
}

/// `work`, unless `cancel` fires first (or has): `work` is then dropped and
/// the run's interruption returned. A statement it sent runs on in the
/// server until cancelled there ([`Canceller::cancel_pending`]).
pub(crate) async fn unless_cancelled<T>(
    cancel: &CancellationToken,
    work: impl Future<Output = Result<T, MigrateError>>,
) -> Result<T, MigrateError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(interrupted()),
        outcome = work => outcome,
    }
}

/// Open a connection whose work a [`Crew`] can stop: the client, and what
/// stops it once the client is dropped.
pub(crate) async fn connect(
    config: &ConnConfig,
) -> Result<(Client, Stoppable), pgharbor_conn::ConnError> {
    let (client, task) = pgharbor_conn::connect(config).await?;
    let canceller = Canceller::new(&client, config);
    Ok((client, Stoppable { canceller, task }))
}

/// A connection a worker owns, seen from outside: cancelled until it ends
/// when the worker is stopped.
pub(crate) struct Stoppable {
    canceller: Canceller,
    task: ConnectionTask,
}

/// Workers that stop together: when one fails, or the caller cancels, the
/// others are stopped at once — their work dropped, their connections'
/// statements cancelled until the server answered — and the first error is
/// the one [`Crew::join`] returns.
pub(crate) struct Crew {
    stop: CancellationToken,
    first_error: Arc<Mutex<Option<MigrateError>>>,
    workers: tokio::task::JoinSet<()>,
}

impl Crew {
    /// A crew stopped by `cancel` too.
    pub(crate) fn new(cancel: &CancellationToken) -> Self {
        Crew {
            stop: cancel.child_token(),
            first_error: Arc::default(),
            workers: tokio::task::JoinSet::new(),
        }
    }

    /// A crew of its own (its first error its own) that stops when this
    /// one does, and stops it.
    pub(crate) fn sibling(&self) -> Self {
        Crew {
            stop: self.stop.clone(),
            first_error: Arc::default(),
            workers: tokio::task::JoinSet::new(),
        }
    }

    /// Run `work` on the connections `connections` (owned by `work`).
    pub(crate) fn spawn(
        &mut self,
        connections: Vec<Stoppable>,
        work: impl Future<Output = Result<(), MigrateError>> + Send + 'static,
    ) {
        let stop = self.stop.clone();
        let first_error = self.first_error.clone();
        self.workers.spawn(async move {
            let error = tokio::select! {
                outcome = work => match outcome {
                    Ok(()) => return,
                    Err(e) => e,
                },
                () = stop.cancelled() => interrupted(),
            };
            first_error
                .lock()
                .expect("first error")
                .get_or_insert(error);
            stop.cancel();
            for connection in connections {
                connection
                    .canceller
                    .cancel_until_ended(connection.task)
                    .await;
            }
        });
    }

    /// Wait for every worker; the first error wins (the caller's
    /// cancellation is one; a crashed worker is reported as `kind`, naming
    /// the `workers`).
    pub(crate) async fn join(
        mut self,
        kind: MigrateErrorKind,
        workers: &str,
    ) -> Result<(), MigrateError> {
        while let Some(joined) = self.workers.join_next().await {
            if let Err(e) = joined {
                let crash = MigrateError::new(kind, format!("a {workers} worker crashed: {e}"));
                self.first_error
                    .lock()
                    .expect("first error")
                    .get_or_insert(crash);
                self.stop.cancel();
            }
        }
        match self.first_error.lock().expect("first error").take() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// The clean-ups in progress: each one's number and canceller.
static CLEAN_UPS: Mutex<Vec<(u64, Canceller)>> = Mutex::new(Vec::new());
static NEXT_CLEAN_UP: AtomicU64 = AtomicU64::new(0);

/// The connection a clean-up after a failure runs on: a client that
/// [`abandon_clean_ups`] can stop while it lives.
pub(crate) struct CleanUpConnection {
    client: Client,
    number: u64,
}

impl CleanUpConnection {
    /// `client`, connected with `config`, as a clean-up's connection.
    pub(crate) fn new(client: Client, config: &ConnConfig) -> Self {
        let number = NEXT_CLEAN_UP.fetch_add(1, Ordering::Relaxed);
        let canceller = Canceller::new(&client, config);
        clean_ups().push((number, canceller));
        CleanUpConnection { client, number }
    }
}

impl Deref for CleanUpConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for CleanUpConnection {
    fn drop(&mut self) {
        clean_ups().retain(|(number, _)| *number != self.number);
    }
}

fn clean_ups() -> std::sync::MutexGuard<'static, Vec<(u64, Canceller)>> {
    CLEAN_UPS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// For a caller about to exit while a clean-up runs: cancel on the server
/// the statement each clean-up in progress is running (a `DROP` waiting for
/// a lock, a `DELETE`). One cancel request per connection, none waited for
/// beyond its sending; the clean-ups' transactions end with the process.
pub async fn abandon_clean_ups() {
    let cancellers: Vec<Canceller> = clean_ups().iter().map(|(_, c)| c.clone()).collect();
    for canceller in cancellers {
        if let Err(e) = pgharbor_conn::cancel_query(&canceller.config, &canceller.token).await {
            tracing::debug!(error = %pgharbor_conn::conn_text(&e), "a clean-up's cancel request could not be sent");
        }
    }
}

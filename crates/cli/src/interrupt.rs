//! Ctrl-C, turned into the cancellation the libraries are handed: they never
//! listen for signals themselves.

use pgharbor_migrate::CancellationToken;

/// A token cancelled when the user presses Ctrl-C (from now on).
pub fn on_ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    token
}

//! Cancelling the statement a connection is running, from outside it: the
//! server's cancel request, sent over a new connection made as the original
//! one was (the same TLS configuration, for a server that insists on it).

use crate::config::ConnConfig;
use crate::error::ConnError;
use crate::sslmode::SslMode;
use crate::tls;
use tokio_postgres::{CancelToken, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Ask the server to cancel the statement running on the connection
/// `token` came from (made with `config`). The server says nothing back: a
/// connection running nothing is left alone, and a statement that ends
/// before the request arrives ends as it would have. An error means the
/// request could not be sent.
pub async fn cancel_query(config: &ConnConfig, token: &CancelToken) -> Result<(), ConnError> {
    let sent = if config.is_unix_socket() || config.sslmode() == SslMode::Disable {
        token.cancel_query(NoTls).await
    } else {
        // A connection that fell back to plain text (`prefer`) cancels in
        // plain text too: the token remembers how its connection was made.
        let setup = tls::setup(config)?;
        token
            .cancel_query(MakeRustlsConnect::new(setup.config))
            .await
    };
    sent.map_err(|e| ConnError::from_postgres(e, config))
}

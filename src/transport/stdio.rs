//! MCP over stdin/stdout: one client, one session, ended by stdin EOF or a signal.

use rmcp::ServiceExt;
use rmcp::service::ServerInitializeError;

use crate::server::IvcapMcp;

/// Serves `server` on stdio until stdin closes or `signal` resolves. A client that goes away
/// (stdin EOF) or a signal before the handshake is a normal end, not an error: launchers probe
/// servers that way, and a user who started us at a terminal ends us with Ctrl-D or Ctrl-C.
pub(super) async fn serve(server: IvcapMcp, signal: impl Future<Output = ()> + Send + 'static) -> Result<(), String> {
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("signal received; exiting");
        on_signal.cancel();
    });
    let running = match server.serve_with_ct(rmcp::transport::stdio(), cancel).await {
        Ok(running) => running,
        Err(ServerInitializeError::ConnectionClosed(_) | ServerInitializeError::Cancelled) => {
            tracing::info!("no MCP client before stdin closed or a signal arrived; exiting");
            return Ok(());
        }
        Err(e) => return Err(format!("MCP handshake failed: {e}")),
    };
    running.waiting().await.map_err(|e| format!("server stopped: {e}"))?;
    Ok(())
}

//! MCP over stdin/stdout: one client, one session, ended by stdin EOF or a signal.

use rmcp::ServiceExt;

use crate::server::IvcapMcp;

/// Serves `server` on stdio until stdin closes or `signal` resolves.
pub(super) async fn serve(server: IvcapMcp, signal: impl Future<Output = ()> + Send + 'static) -> Result<(), String> {
    let running = server.serve(rmcp::transport::stdio()).await.map_err(|e| format!("MCP handshake failed: {e}"))?;
    let cancel = running.cancellation_token();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("signal received; exiting");
        cancel.cancel();
    });
    running.waiting().await.map_err(|e| format!("server stopped: {e}"))?;
    Ok(())
}

//! Progress of long work — job waits and transfers. Backends report it here; the tools turn
//! it into MCP `notifications/progress` (see `tools::McpProgress`).

/// Receives progress: `progress` grows with the work (seconds waited, bytes moved), `total`
/// when known.
#[async_trait::async_trait]
pub trait Progress: Send + Sync {
    async fn report(&self, progress: f64, total: Option<f64>, message: &str);
}

/// Progress nobody listens to.
pub struct NoProgress;

#[async_trait::async_trait]
impl Progress for NoProgress {
    async fn report(&self, _progress: f64, _total: Option<f64>, _message: &str) {}
}

/// Reports `done` of `total` bytes.
pub async fn report_bytes(progress: &dyn Progress, done: u64, total: u64) {
    progress.report(done as f64, Some(total as f64), &format!("{done} of {total} bytes")).await;
}

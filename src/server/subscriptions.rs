//! Job subscriptions: a client that subscribes to a job URN is sent
//! `notifications/resources/updated` each time the job's status changes, and watching stops
//! when the job is finished. Handshake-era clients use `resources/subscribe` /
//! `resources/unsubscribe`; 2026-07-28 clients name the jobs in `subscriptions/listen`.
//!
//! A watch is the same wait loop as `get_job` ([`jobs::get_job`], with its polling schedule
//! and `retry-later`), run for `--max-wait` at a time until the job is finished; status
//! changes arrive through its progress reports. At most [`MAX_WATCHED_JOBS`] jobs are
//! watched per session (or per listen stream).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::service::{SubscriptionContext, SubscriptionSink};
use rmcp::{ErrorData as McpError, Peer, RoleServer};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::protocol_error::{Request, not_found, protocol_error};
use crate::backend::Backend;
use crate::backend::jobs::{self, Wait, WaitEnd};
use crate::backend::progress::Progress;
use crate::error::Error;
use crate::urn::{EntityKind, JOB_PREFIX, is_urn};

/// Most jobs one session (or one `subscriptions/listen` stream) watches at once.
pub const MAX_WATCHED_JOBS: usize = 16;
/// Pause before watching again after the platform could not be asked.
const RETRY_PAUSE: Duration = Duration::from_secs(5);

/// The jobs one session watches, each stopped when its entry is dropped.
///
/// Each session is served by its own clone of the server (stdio has one; HTTP sessions and
/// SSE streams clone the template handler), so a clone starts with no watches: one
/// session never sees, counts or cancels another's.
#[derive(Default)]
pub struct SessionWatches(Arc<Mutex<HashMap<String, DropGuard>>>);

impl Clone for SessionWatches {
    fn clone(&self) -> Self {
        SessionWatches::default()
    }
}

impl std::fmt::Debug for SessionWatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SessionWatches").field(&self.lock().len()).finish()
    }
}

impl SessionWatches {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, DropGuard>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `resources/subscribe`: starts watching `uri` for `peer`.
    pub(super) async fn subscribe(
        &self,
        backend: Arc<dyn Backend>,
        uri: &str,
        budget: Duration,
        peer: Peer<RoleServer>,
    ) -> Result<(), McpError> {
        let uri = uri.trim();
        let status = current_status(&*backend, uri).await?;
        let cancel = CancellationToken::new();
        {
            let mut watches = self.lock();
            if watches.contains_key(uri) {
                return Ok(());
            }
            if watches.len() >= MAX_WATCHED_JOBS {
                return Err(McpError::invalid_params(
                    format!(
                        "this session already watches {MAX_WATCHED_JOBS} jobs, the most it may; call \
                         resources/unsubscribe for one of them first (finished jobs are dropped by themselves)"
                    ),
                    Some(serde_json::json!({ "uri": uri, "limit": MAX_WATCHED_JOBS })),
                ));
            }
            if status.is_none() {
                // Already finished: nothing will change, so there is nothing to watch.
                return Ok(());
            }
            watches.insert(uri.to_string(), cancel.clone().drop_guard());
        }
        let done = Arc::downgrade(&self.0);
        let job = uri.to_string();
        tokio::spawn(async move {
            watch(&*backend, &job, status, budget, cancel, &Notifier::Session(peer)).await;
            forget(&done, &job);
        });
        Ok(())
    }

    /// `resources/unsubscribe`: stops watching `uri` (a no-op if it was not watched).
    pub(super) fn unsubscribe(&self, uri: &str) {
        self.lock().remove(uri.trim());
    }
}

fn forget(watches: &Weak<Mutex<HashMap<String, DropGuard>>>, job: &str) {
    if let Some(w) = watches.upgrade() {
        // Defused: the watch is over, so there is nothing left to cancel.
        if let Some(guard) = w.lock().unwrap_or_else(|p| p.into_inner()).remove(job) {
            guard.disarm();
        }
    }
}

/// `resources/subscribe` on a `--stateless` server, which has no channel to send updates on.
pub(super) fn no_channel(uri: &str) -> McpError {
    McpError::invalid_request(
        "this server runs --stateless, so it has no channel to send resource updates on; use \
         subscriptions/listen (protocol 2026-07-28), a session-mode server, or poll the job with get_job",
        Some(serde_json::json!({ "uri": uri })),
    )
}

/// The URIs of a `subscriptions/listen` filter this server watches: job URNs, at most
/// [`MAX_WATCHED_JOBS`]; the acknowledgment tells the client which were accepted.
pub(super) fn accepted_jobs(requested: Option<&Vec<String>>) -> Option<Vec<String>> {
    let jobs: Vec<String> = requested?.iter().filter(|u| is_job_urn(u)).take(MAX_WATCHED_JOBS).cloned().collect();
    (!jobs.is_empty()).then_some(jobs)
}

/// `subscriptions/listen`: watches the accepted jobs until the client closes the stream.
pub(super) async fn listen(backend: Arc<dyn Backend>, budget: Duration, cx: &SubscriptionContext) {
    let stop = CancellationToken::new();
    let _stop_on_return = stop.clone().drop_guard();
    for job in cx.accepted().resource_subscriptions.clone().unwrap_or_default() {
        let (backend, cancel, sink) = (backend.clone(), stop.child_token(), cx.sink().clone());
        tokio::spawn(async move {
            match current_status(&*backend, &job).await {
                Ok(Some(status)) => watch(&*backend, &job, Some(status), budget, cancel, &Notifier::Stream(sink)).await,
                Ok(None) => {}
                Err(e) => tracing::debug!(job, error = %e.message, "not watching a job the client listed"),
            }
        });
    }
    cx.cancelled().await;
}

fn is_job_urn(uri: &str) -> bool {
    uri.starts_with(JOB_PREFIX) && is_urn(uri)
}

/// The job's status message now, `None` when it is already finished; unknown jobs and
/// URIs that are not jobs are errors for the client.
async fn current_status(backend: &dyn Backend, uri: &str) -> Result<Option<String>, McpError> {
    if !is_job_urn(uri) {
        return Err(match EntityKind::of(uri) {
            Some(_) => McpError::invalid_params(
                format!(
                    "only jobs change, so only job URNs (urn:ivcap:job:…) can be subscribed to; {uri} is not one. \
                     Read it again with resources/read to see it now"
                ),
                Some(serde_json::json!({ "uri": uri })),
            ),
            None => not_found(uri, format!("no such resource: {uri}; subscribe to a job URN (urn:ivcap:job:…)")),
        });
    }
    let job = jobs::job_now(backend, uri).await.map_err(|e| protocol_error(Request::Read(uri), e))?.job;
    Ok((!job.status.is_terminal()).then(|| jobs::status_message(&job)))
}

/// Where a watch sends its updates.
enum Notifier {
    /// A handshake-era session (`resources/subscribe`).
    Session(Peer<RoleServer>),
    /// A 2026-07-28 `subscriptions/listen` stream.
    Stream(SubscriptionSink),
}

impl Notifier {
    /// Sends `notifications/resources/updated`; false once the client is gone.
    async fn updated(&self, uri: &str) -> bool {
        let sent = match self {
            Notifier::Session(peer) => peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                .await
                .map_err(|e| e.to_string()),
            Notifier::Stream(sink) => sink.notify_resource_updated(uri).await.map_err(|e| e.to_string()),
        };
        sent.map_err(|e| tracing::debug!(uri, error = %e, "cannot send a resource update; watch ends")).is_ok()
    }
}

/// Turns the wait loop's progress reports into updates: a report whose status message
/// differs from the last is a status change.
struct StatusChanges<'a> {
    uri: &'a str,
    last: tokio::sync::Mutex<Option<String>>,
    notifier: &'a Notifier,
    cancel: &'a CancellationToken,
}

#[async_trait::async_trait]
impl Progress for StatusChanges<'_> {
    async fn report(&self, _progress: f64, _total: Option<f64>, message: &str) {
        let mut last = self.last.lock().await;
        if last.as_deref() == Some(message) {
            return;
        }
        *last = Some(message.to_string());
        if !self.notifier.updated(self.uri).await {
            self.cancel.cancel();
        }
    }
}

/// Runs `get_job`'s wait loop on `uri` for `budget` at a time until the job finishes, the
/// watch is cancelled or the client is gone. `status` is the status message last seen.
async fn watch(
    backend: &dyn Backend,
    uri: &str,
    status: Option<String>,
    budget: Duration,
    cancel: CancellationToken,
    notifier: &Notifier,
) {
    let changes = StatusChanges { uri, last: tokio::sync::Mutex::new(status), notifier, cancel: &cancel };
    loop {
        let wait = Wait { budget, cancel: cancel.clone(), progress: &changes };
        match jobs::get_job(backend, uri, None, &wait).await {
            Ok(waited) if waited.end == WaitEnd::StillRunning => {}
            Ok(waited) => {
                // A job found finished at the first read of a wait is not reported by the loop.
                if waited.end == WaitEnd::Done {
                    changes.report(0.0, None, &jobs::status_message(&waited.job)).await;
                }
                return;
            }
            Err(e) if e.is_transient() || matches!(e, Error::Busy { .. }) => {
                tracing::debug!(uri, error = %e, "cannot read a watched job; trying again");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(RETRY_PAUSE) => {}
                }
            }
            Err(e) => {
                tracing::warn!(uri, error = %e, "stopped watching a job");
                return;
            }
        }
    }
}

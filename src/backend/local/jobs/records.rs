//! The job record store: `<store>/jobs/<uuid>.json`, one file per job, each write atomic; a
//! record left unfinished by a server that stopped is read (and saved) as `error`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{LocalBackend, lock};
use crate::backend::jobs::JOB_PREFIX;
use crate::backend::{Job, JobStatus, JobSummary};
use crate::error::{Error, Missing, Result};
use crate::files::{self, blocking};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// `<store>/jobs/<uuid>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobRecord {
    pub id: String,
    pub service_id: String,
    #[serde(with = "status_text")]
    pub status: JobStatus,
    pub requested_at: DateTime<Utc>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(super) error_message: Option<String>,
    #[serde(default)]
    pub(super) result_content_type: Option<String>,
    #[serde(default)]
    pub result: Option<Value>,
}

/// A job status in a record, as its wire text (`"succeeded"`, …).
mod status_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::backend::JobStatus;

    pub fn serialize<S: Serializer>(status: &JobStatus, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(status.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<JobStatus, D::Error> {
        String::deserialize(d).map(|text| JobStatus::parse(&text))
    }
}

impl From<JobRecord> for Job {
    fn from(r: JobRecord) -> Self {
        Job {
            id: r.id,
            service_id: r.service_id,
            status: r.status,
            result: r.result,
            result_content_type: r.result_content_type,
            error_message: r.error_message,
            requested_at: Some(r.requested_at),
            started_at: r.started_at,
            finished_at: r.finished_at,
            products: Vec::new(),
        }
    }
}

pub(super) fn save(path: &Path, record: &JobRecord) -> Result<()> {
    let bytes =
        serde_json::to_vec_pretty(record).map_err(|e| Error::Internal(format!("cannot encode a job record: {e}")))?;
    files::write_atomic(path, &bytes)
}

/// [`save`] on the blocking pool, for the job runner; a failure is logged.
pub(super) async fn save_in_background(path: &Path, record: &JobRecord) {
    let (path, copy) = (path.to_path_buf(), record.clone());
    if let Err(e) = blocking(move || save(&path, &copy)).await {
        tracing::warn!(job = %record.id, error = %e, "cannot record a local job");
    }
}

fn load(path: &Path) -> Result<JobRecord> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::io(format!("cannot parse {}", path.display()), std::io::Error::other(e)))
}

/// What reading job records needs, cloneable onto the blocking pool: the store and the
/// jobs this process runs.
#[derive(Clone)]
pub(super) struct Records {
    root: PathBuf,
    running: Arc<Mutex<HashSet<String>>>,
}

impl Records {
    /// The record file of `job_id` in the store (see [`job_file`]).
    pub(super) fn path(&self, job_id: &str) -> Result<PathBuf> {
        files::under_root(&self.root, &job_file(job_id)?, "job")
    }

    /// The record at `path`, with a job that no running server owns marked as `error`.
    /// Check the running set before reading, so a job finishing in between is read finished.
    fn current(&self, path: &Path, persist: bool) -> Result<JobRecord> {
        let running = lock(&self.running).clone();
        let mut record = load(path)?;
        if !record.status.is_terminal() && !running.contains(&record.id) {
            record.status = JobStatus::Error;
            record.finished_at.get_or_insert_with(Utc::now);
            record.error_message =
                Some("the ivcap-mcp server that ran this job stopped before it finished; submit the job again".into());
            if persist {
                save(path, &record)?;
            }
        }
        Ok(record)
    }

    /// Every record in the store, each file read once; unreadable ones are skipped with a warning.
    fn all(&self) -> Result<Vec<JobRecord>> {
        let mut records = Vec::new();
        for path in files::files_with_extension(&self.root.join("jobs"), "json")? {
            match self.current(&path, false) {
                Ok(r) => records.push(r),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipping a local job record"),
            }
        }
        Ok(records)
    }
}

/// `jobs/<uuid>.json` of `job_id` (relative to the store), or `NotFound` for anything that is
/// not a local job URN.
fn job_file(job_id: &str) -> Result<PathBuf> {
    let not_found = || Error::not_found(Missing::Job, job_id);
    let uuid = job_id.strip_prefix(JOB_PREFIX).ok_or_else(not_found)?;
    let uuid = uuid::Uuid::parse_str(uuid).map_err(|_| not_found())?;
    Ok(Path::new("jobs").join(format!("{}.json", uuid.hyphenated())))
}

impl LocalBackend {
    /// The job of a record; a succeeded job's products are the stored artifacts its result
    /// names, as a platform job lists its products.
    pub(super) async fn job_of(&self, record: JobRecord) -> Result<Job> {
        let mut job: Job = record.into();
        if job.status == JobStatus::Succeeded
            && let Some(result) = &job.result
        {
            job.products = self.artifacts_named_in(result).await?;
        }
        Ok(job)
    }

    pub(super) fn records(&self) -> Records {
        Records { root: self.root().to_path_buf(), running: self.jobs.running.clone() }
    }

    /// The current record of `job_id` (see [`Records::current`]), saved when it changed.
    pub(super) async fn current_record(&self, job_id: &str) -> Result<JobRecord> {
        let (records, id) = (self.records(), job_id.to_string());
        blocking(move || {
            let path = records.path(&id)?;
            if !path.is_file() {
                return Ok(None);
            }
            records.current(&path, true).map(Some)
        })
        .await?
        .ok_or_else(|| Error::not_found(Missing::Job, job_id))
    }

    /// Every local job record, newest first, each file read once.
    pub(crate) async fn job_records(&self) -> Result<Vec<JobRecord>> {
        let records = self.records();
        let mut all = blocking(move || records.all()).await?;
        all.sort_by(|a, b| b.requested_at.cmp(&a.requested_at).then(b.id.cmp(&a.id)));
        Ok(all)
    }
}

impl JobRecord {
    pub(crate) fn summary(self) -> JobSummary {
        JobSummary {
            status: self.status,
            requested_at: Some(self.requested_at),
            started_at: self.started_at,
            finished_at: self.finished_at,
            id: self.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_paths_need_a_job_urn_with_a_uuid() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBackend::new(dir.path()).unwrap();
        assert!(store.records().path("urn:ivcap:job:../../etc").is_err());
        assert!(store.records().path("urn:ivcap:service:x").is_err());
        let id = format!("{JOB_PREFIX}{}", uuid::Uuid::new_v4());
        assert!(store.records().path(&id).unwrap().starts_with(dir.path()));
    }
}

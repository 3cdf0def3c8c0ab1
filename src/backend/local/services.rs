//! Local services: definitions kept in `<store>/services/<name>.json` (and `--local-service
//! NAME=URL`), so an agent can discover them, read their request schema and (in the jobs
//! module) run them, exactly as on the platform. The service URN is
//! `urn:ivcap:service:<name>` with `<name>` the file stem (or the flag's NAME).
//!
//! ```json
//! {"name": "echo", "description": "Echoes its input", "fn_schema": {"type": "object"},
//!  "command": ["python3", "echo.py"], "timeout_seconds": 60}
//! ```
//! or `"url": "http://127.0.0.1:8090/"` instead of `command`: a service written with
//! ivcap-lambda running on this machine (docs/ivcap-wire.md, "A service on a developer's
//! machine"). For those, whatever the file leaves out of name, description and `fn_schema` is
//! read from the service's `GET /` tool definition, kept for [`DISCOVERY_FRESH`] (so a
//! restarted service's new definition shows within that), and at once re-read when the file
//! changes. A definition may give `parameters` (the platform's `ParameterDefT` list) instead
//! of an `fn_schema`; the request schema is then built from them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use serde_json::Value;

use super::LocalBackend;
use crate::backend::listing::{ListOptions, page_from, resume};
use crate::backend::services::{fn_schema, request_schema_of, schema_from_parameters};
use crate::backend::{
    Page, PageRequest, ServiceDetail, ServiceParameter, ServiceStatus, ServiceSummary, ServicesBackend, ToolService,
};
use crate::error::{Error, Missing, Result};
use crate::files::{blocking, files_with_extension};
use crate::urn::{SERVICE_PREFIX, is_plain_name};

/// A local service definition file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalServiceDef {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub fn_schema: Option<Value>,
    /// Program and arguments; the job input JSON goes to its stdin.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// A locally running service to POST the job input to.
    #[serde(default)]
    pub url: Option<String>,
    /// Longest run of one job (default 300 s).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// The platform's `ParameterDefT` list, for a service described by parameters.
    #[serde(default)]
    pub parameters: Vec<ServiceParameter>,
}

/// How a local service runs a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Runner {
    /// Program and arguments (never a shell); the job input JSON goes to its stdin.
    Command(Vec<String>),
    /// A locally running service the job input JSON is POSTed to.
    Url(url::Url),
}

impl LocalServiceDef {
    /// The runner the definition names, or why jobs cannot run on it.
    fn runner(&self) -> std::result::Result<Runner, String> {
        match (&self.command, &self.url) {
            (Some(cmd), None) if !cmd.is_empty() => Ok(Runner::Command(cmd.clone())),
            (Some(_), Some(_)) => Err("has both 'command' and 'url'; keep one".into()),
            (None, Some(url)) => {
                url::Url::parse(url).map(Runner::Url).map_err(|_| format!("its url '{url}' does not parse"))
            }
            _ => Err("has neither 'command' (a non-empty argv list) nor 'url', so jobs cannot run".into()),
        }
    }
}

/// A loaded local service.
#[derive(Debug, Clone)]
pub struct LocalService {
    pub id: String,
    /// The definition's name, else the discovered one, else the file stem.
    pub name: String,
    pub def: LocalServiceDef,
    /// How its jobs run, or why they cannot.
    pub runner: std::result::Result<Runner, String>,
    /// Where it is defined: `services/<name>.json`, or `None` for `--local-service`.
    file: Option<PathBuf>,
    /// The definition file's size and modification time when read (what discovery is
    /// keyed by, so a changed file is re-read at once).
    stamp: (u64, Option<SystemTime>),
    /// What the service's `GET /` answered, for a `url` service whose file leaves something out.
    discovered: Option<Discovery>,
}

/// What a `url` service's `GET /` told.
#[derive(Debug, Clone, PartialEq)]
enum Discovery {
    /// Its tool definition.
    Found { name: Option<String>, description: Option<String>, fn_schema: Option<Value> },
    /// Nothing answers: why, and how to start it.
    Down(String),
}

impl LocalService {
    /// Why jobs cannot run on it, if they cannot.
    pub(crate) fn problem(&self) -> Option<&str> {
        self.runner.as_ref().err().map(String::as_str)
    }

    /// Why a `url` service is not available now (not running).
    pub(crate) fn down(&self) -> Option<&str> {
        match &self.discovered {
            Some(Discovery::Down(why)) => Some(why),
            _ => None,
        }
    }

    /// The file's description, else the discovered one.
    fn description(&self) -> Option<String> {
        self.def.description.clone().or_else(|| match &self.discovered {
            Some(Discovery::Found { description, .. }) => description.clone(),
            _ => None,
        })
    }

    /// The tool definition's schema: the file's, else the discovered one.
    fn fn_schema(&self) -> Option<Value> {
        self.def.fn_schema.clone().or_else(|| match &self.discovered {
            Some(Discovery::Found { fn_schema, .. }) => fn_schema.clone(),
            _ => None,
        })
    }

    /// The request schema: the tool definition's, else one built from `parameters`.
    fn request_schema(&self) -> Option<Value> {
        self.fn_schema().or_else(|| schema_from_parameters(&self.def.parameters))
    }

    /// A `url` service discovers what its definition leaves out.
    fn wants_discovery(&self) -> bool {
        matches!(self.runner, Ok(Runner::Url(_)))
            && (self.def.name.is_none() || self.def.description.is_none() || self.def.fn_schema.is_none())
    }

    fn summary(&self) -> ServiceSummary {
        ServiceSummary {
            id: self.id.clone(),
            name: Some(self.name.clone()),
            description: self.description(),
            note: self.down().map(str::to_string),
        }
    }
}

/// How long the definition files, once read, answer lookups before `services/` is read again
/// (a name that is not found reads it again at once). Reading them on every call put a
/// blocking-pool hop and a directory scan into each `get_service`; under 16 concurrent
/// sessions that halved the calls per second (measured: the commit that made the copy has the numbers).
const DEFINITIONS_FRESH: Duration = Duration::from_millis(250);

/// How long a discovered tool definition is used before `GET /` is asked again.
const DISCOVERY_FRESH: Duration = Duration::from_secs(2);
/// Longest a `GET /` for a tool definition may take.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The tool definitions of `url` services, by service URN, with the URL and file stamp they
/// were read for.
#[derive(Debug, Default)]
pub(crate) struct DiscoveryCache(Mutex<HashMap<String, CachedDiscovery>>);

#[derive(Debug, Clone)]
struct CachedDiscovery {
    url: String,
    stamp: (u64, Option<SystemTime>),
    at: Instant,
    found: Discovery,
}

impl DiscoveryCache {
    fn fresh(&self, service: &LocalService, url: &str) -> Option<Discovery> {
        let cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let hit = cache.get(&service.id)?;
        (hit.url == url && hit.stamp == service.stamp && hit.at.elapsed() < DISCOVERY_FRESH).then(|| hit.found.clone())
    }

    fn store(&self, service: &LocalService, url: &str, found: &Discovery) {
        let entry =
            CachedDiscovery { url: url.to_string(), stamp: service.stamp, at: Instant::now(), found: found.clone() };
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(service.id.clone(), entry);
    }

    /// Forgets what is known of `service_id`, so the next read asks the service again.
    pub(crate) fn forget(&self, service_id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(service_id);
    }
}

/// How to start a service that is not running, for its notes.
fn how_to_start(service: &LocalService, url: &url::Url) -> String {
    let port = url.port_or_known_default().map_or_else(String::new, |p| format!(" --port {p}"));
    let defined = match &service.file {
        Some(file) => format!("defined in {}", file.display()),
        None => "added with --local-service".to_string(),
    };
    format!(
        "start it (an ivcap-lambda service starts with `python <service>.py{port}`) and call get_service again; it is {defined}"
    )
}

/// Asks `url` for its tool definition (`GET /` of an ivcap-lambda service). A service that
/// answers with something else is running but undescribed: nothing is found, nothing is down.
async fn discover(http: &reqwest::Client, service: &LocalService, url: &url::Url) -> Discovery {
    let nothing = Discovery::Found { name: None, description: None, fn_schema: None };
    let resp = match http.get(url.as_str()).timeout(DISCOVERY_TIMEOUT).send().await {
        Ok(resp) => resp,
        Err(e) => {
            let why = if e.is_connect() { "nothing answers".to_string() } else { e.without_url().to_string() };
            return Discovery::Down(format!("not running at {url} ({why}): {}", how_to_start(service, url)));
        }
    };
    if !resp.status().is_success() {
        tracing::debug!(service = %service.id, status = %resp.status(), "GET of a url service gave no tool definition");
        return nothing;
    }
    match resp.json::<Value>().await {
        Ok(definition) => {
            let text = |key: &str| {
                definition.get(key).and_then(Value::as_str).map(str::to_string).filter(|t| !t.trim().is_empty())
            };
            Discovery::Found { name: text("name"), description: text("description"), fn_schema: fn_schema(&definition) }
        }
        Err(e) => {
            tracing::debug!(service = %service.id, error = %e.without_url(), "GET of a url service is not a JSON tool definition");
            nothing
        }
    }
}

/// How often `services/` is looked at for changes while service tools are on.
const SERVICES_WATCH: std::time::Duration = std::time::Duration::from_secs(1);

/// What `services/` holds, cheaply: each definition file's path, size and modification time.
pub(crate) type ServicesStamp = Vec<(std::path::PathBuf, u64, Option<std::time::SystemTime>)>;

fn services_stamp(dir: &Path) -> Result<ServicesStamp> {
    Ok(files_with_extension(dir, "json")?
        .into_iter()
        .map(|path| {
            let (len, modified) = file_stamp(&path);
            (path, len, modified)
        })
        .collect())
}

/// A file's size and modification time (zero and `None` when unreadable).
fn file_stamp(path: &Path) -> (u64, Option<SystemTime>) {
    let meta = std::fs::metadata(path).ok();
    (meta.as_ref().map_or(0, std::fs::Metadata::len), meta.and_then(|m| m.modified().ok()))
}

impl LocalBackend {
    /// Every readable service definition, sorted by file name; broken files are skipped
    /// with a warning.
    /// `--local-service` ones come first and win over a file of the same name. `url` services
    /// have what their file leaves out filled in from the running service (see the module).
    pub(crate) async fn local_services(&self) -> Result<Arc<Vec<LocalService>>> {
        self.services_read(false).await
    }

    /// The definition files as read at most [`DEFINITIONS_FRESH`] ago, or read now when
    /// `reread` or older.
    async fn service_files(&self, reread: bool) -> Result<Arc<Vec<LocalService>>> {
        if !reread
            && let Some((at, files)) = self.service_files.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && at.elapsed() < DEFINITIONS_FRESH
        {
            return Ok(files.clone());
        }
        let dir = self.root().join("services");
        let files = blocking(move || {
            let mut out = Vec::new();
            for path in files_with_extension(&dir, "json")? {
                match load_service(&path) {
                    Ok(service) => out.push(service),
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipping local service definition"),
                }
            }
            Ok(Arc::new(out))
        })
        .await?;
        *self.service_files.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), files.clone()));
        Ok(files)
    }

    /// [`Self::local_services`], with the definition files read again when `reread`.
    async fn services_read(&self, reread: bool) -> Result<Arc<Vec<LocalService>>> {
        let files = self.service_files(reread).await?;
        if self.flag_services.is_empty() && !files.iter().any(LocalService::wants_discovery) {
            // The definitions as read, shared rather than copied for every call; and no HTTP
            // client (building one reads the system's CA certificates, ≈ 10 ms).
            return Ok(files);
        }
        let mut services: Vec<LocalService> =
            self.flag_services.iter().map(|(name, url)| flag_service(name, url)).collect();
        let flagged: Vec<String> = services.iter().map(|s| s.id.clone()).collect();
        services.extend(files.iter().filter(|s| !flagged.contains(&s.id)).cloned());
        let http = self.http()?;
        let cache = &self.discovery;
        futures::future::join_all(services.iter_mut().filter(|s| s.wants_discovery()).map(|service| {
            let http = http.clone();
            async move {
                let Ok(Runner::Url(url)) = &service.runner else { return };
                let found = match cache.fresh(service, url.as_str()) {
                    Some(found) => found,
                    None => {
                        let found = discover(&http, service, url).await;
                        cache.store(service, url.as_str(), &found);
                        found
                    }
                };
                if let (None, Discovery::Found { name: Some(name), .. }) = (&service.def.name, &found) {
                    service.name = name.clone();
                }
                service.discovered = Some(found);
            }
        }))
        .await;
        Ok(Arc::new(services))
    }

    /// The local service with this URN or exact name.
    pub(crate) async fn find_local_service(&self, service: &str) -> Result<LocalService> {
        let service = service.trim();
        let matching = |all: &[LocalService]| -> Vec<LocalService> {
            all.iter().filter(|s| s.id == service || s.name == service).cloned().collect()
        };
        let mut all = self.local_services().await?;
        let mut hits = matching(&all);
        if hits.is_empty() {
            // A definition added within the last DEFINITIONS_FRESH is found at once.
            all = self.services_read(true).await?;
            hits = matching(&all);
        }
        match hits.len() {
            1 => Ok(hits.remove(0)),
            0 => {
                let needle = service.rsplit(':').next().unwrap_or(service).to_lowercase();
                // As on the platform (`name~='%name%'`): only names that contain it are similar.
                let similar: Vec<ServiceSummary> = all
                    .iter()
                    .filter(|s| s.name.to_lowercase().contains(&needle))
                    .take(5)
                    .map(LocalService::summary)
                    .collect();
                Err(Error::NotFound {
                    kind: Missing::Service,
                    id: crate::backend::services::with_candidates(service, &similar),
                })
            }
            _ => Err(Error::Ambiguous {
                kind: Missing::Service,
                name: service.to_string(),
                candidates: crate::backend::services::describe(
                    &hits.iter().map(LocalService::summary).collect::<Vec<_>>(),
                ),
            }),
        }
    }
}

fn load_service(path: &Path) -> Result<LocalService> {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if !is_plain_name(&stem) {
        return Err(Error::invalid("file name", "use only letters, digits, '-', '_' and '.'"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let def: LocalServiceDef =
        serde_json::from_str(&text).map_err(|e| Error::invalid("service definition", e.to_string()))?;
    if def.fn_schema.as_ref().is_some_and(|s| !s.is_object()) {
        return Err(Error::invalid("fn_schema", "must be a JSON Schema object"));
    }
    let name = def.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| stem.clone());
    let runner = def.runner();
    Ok(LocalService {
        id: format!("{SERVICE_PREFIX}{stem}"),
        name,
        def,
        runner,
        file: Some(path.to_path_buf()),
        stamp: file_stamp(path),
        discovered: None,
    })
}

/// A `--local-service NAME=URL`: as a file `{"name": NAME, "url": URL}` would be.
fn flag_service(name: &str, url: &url::Url) -> LocalService {
    let def = LocalServiceDef {
        name: Some(name.to_string()),
        description: None,
        fn_schema: None,
        command: None,
        url: Some(url.to_string()),
        timeout_seconds: None,
        parameters: Vec::new(),
    };
    LocalService {
        id: format!("{SERVICE_PREFIX}{name}"),
        name: name.to_string(),
        def,
        runner: Ok(Runner::Url(url.clone())),
        file: None,
        stamp: (0, None),
        discovered: None,
    }
}

#[async_trait::async_trait]
impl ServicesBackend for LocalBackend {
    async fn list_services(
        &self,
        search: Option<&str>,
        options: &ListOptions,
        page: &PageRequest,
    ) -> Result<Page<ServiceSummary>> {
        if options.at_time.is_some() {
            return Err(Error::invalid(
                "at_time",
                "the local store keeps no history of service definitions; omit at_time in local mode",
            ));
        }
        let (options, offset) = resume(page, &options.with_name_search(search))?;
        let services = self.local_services().await?;
        let mut sorted: Vec<&LocalService> = services.iter().collect();
        sorted.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.id.cmp(&b.id)));
        let summaries: Vec<ServiceSummary> = sorted.into_iter().map(LocalService::summary).collect();
        let matching = options.select(summaries, ServiceSummary::field)?;
        let mut page = page_from(matching, page, offset, &options)?;
        if page.items.is_empty() && page.next_page.is_none() && services.is_empty() {
            page.note = Some(format!(
                "no local services yet: add definitions as {}/services/<name>.json with name, description, fn_schema and command, \
                 or just {{\"url\": \"http://127.0.0.1:8090/\"}} for a running ivcap-lambda service",
                self.root().display()
            ));
        }
        Ok(page)
    }

    /// Services with a request schema that can run. Without `url` services that discover
    /// their definition, re-read only when a file in `services/` was added, removed or changed
    /// (names, sizes and modification times); with them, as often as discovery refreshes.
    async fn tool_services(&self) -> Result<Vec<ToolService>> {
        let dir = self.root().join("services");
        let stamp = blocking(move || services_stamp(&dir)).await?;
        if let Some((seen, tools)) = self.tool_services_cache.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && *seen == stamp
        {
            return Ok(tools.clone());
        }
        // `services/` changed: read it now, not from the last few milliseconds' copy.
        let services = self.services_read(true).await?;
        let discovering = services.iter().any(LocalService::wants_discovery);
        let mut tools = Vec::new();
        for service in services.iter() {
            if service.down().is_some() {
                continue;
            }
            let Some(schema) = service.request_schema() else { continue };
            if let Some(problem) = service.problem() {
                tracing::warn!(service = %service.id, "local service {problem}; not offered as a tool");
                continue;
            }
            let description = service.description();
            tools.push(ToolService {
                id: service.id.clone(),
                name: service.name.clone(),
                description,
                request_schema: schema,
            });
        }
        tools.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        if !discovering {
            *self.tool_services_cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((stamp, tools.clone()));
        }
        Ok(tools)
    }

    fn tool_services_watch(&self) -> Option<std::time::Duration> {
        Some(SERVICES_WATCH)
    }

    async fn get_service(&self, service: &str) -> Result<ServiceDetail> {
        let found = self.find_local_service(service).await?;
        let (request_schema, schema_note) = request_schema_of(found.fn_schema(), &found.def.parameters);
        let (status, note) = match (found.problem(), found.down()) {
            (Some(p), _) => (ServiceStatus::Error, Some(format!("this local service {p}"))),
            (None, Some(down)) => (ServiceStatus::Inactive, Some(format!("this local service is {down}"))),
            (None, None) => (ServiceStatus::Active, schema_note),
        };
        Ok(ServiceDetail {
            id: found.id.clone(),
            name: Some(found.name.clone()),
            description: found.description(),
            status,
            request_schema,
            parameters: found.def.parameters,
            note,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_definition_is_found_at_once_and_a_changed_one_within_the_freshness() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("services")).unwrap();
        let store = LocalBackend::new(dir.path()).unwrap();
        let write = |name: &str, description: &str| {
            let text = format!(r#"{{"description": "{description}", "command": ["cat"]}}"#);
            std::fs::write(dir.path().join(format!("services/{name}.json")), text).unwrap();
        };
        let description = |d: ServiceDetail| d.description.unwrap_or_default();
        write("a", "one");
        assert_eq!(description(store.get_service("a").await.unwrap()), "one");
        write("b", "two");
        assert_eq!(description(store.get_service("b").await.unwrap()), "two", "a new definition, at once");
        write("a", "changed");
        tokio::time::sleep(DEFINITIONS_FRESH).await;
        assert_eq!(description(store.get_service("a").await.unwrap()), "changed");
    }
}

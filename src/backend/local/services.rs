//! Local services: definitions kept in `<store>/services/<name>.json`, so an agent can
//! discover them, read their request schema and (in the jobs module) run them, exactly as
//! on the platform. The service URN is `urn:ivcap:service:<name>` with `<name>` the file stem.
//!
//! ```json
//! {"name": "echo", "description": "Echoes its input", "fn_schema": {"type": "object"},
//!  "command": ["python3", "echo.py"], "timeout_seconds": 60}
//! ```
//! or `"url": "http://127.0.0.1:8090/"` instead of `command`.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::LocalBackend;
use crate::backend::listing::{ListOptions, page_from, resume};
use crate::backend::{Page, PageRequest, ServiceDetail, ServiceStatus, ServiceSummary, ServicesBackend, ToolService};
use crate::error::{Error, Missing, Result};
use crate::files::{blocking, files_with_extension};

/// URN prefix of local services.
pub(crate) const LOCAL_SERVICE_PREFIX: &str = "urn:ivcap:service:";

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
    pub name: String,
    pub def: LocalServiceDef,
    /// How its jobs run, or why they cannot.
    pub runner: std::result::Result<Runner, String>,
}

impl LocalService {
    /// Why jobs cannot run on it, if they cannot.
    pub(crate) fn problem(&self) -> Option<&str> {
        self.runner.as_ref().err().map(String::as_str)
    }

    fn summary(&self) -> ServiceSummary {
        ServiceSummary { id: self.id.clone(), name: Some(self.name.clone()), description: self.def.description.clone() }
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
            let meta = std::fs::metadata(&path).ok();
            let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
            let modified = meta.and_then(|m| m.modified().ok());
            (path, len, modified)
        })
        .collect())
}

/// Is a file stem usable inside a URN?
fn valid_stem(stem: &str) -> bool {
    !stem.is_empty() && stem.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl LocalBackend {
    /// Every readable service definition, sorted by file name; broken files are skipped
    /// with a warning.
    pub(crate) async fn local_services(&self) -> Result<Vec<LocalService>> {
        let dir = self.root().join("services");
        blocking(move || {
            let mut out = Vec::new();
            for path in files_with_extension(&dir, "json")? {
                match load_service(&path) {
                    Ok(service) => out.push(service),
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipping local service definition"),
                }
            }
            Ok(out)
        })
        .await
    }

    /// The local service with this URN or exact name.
    pub(crate) async fn find_local_service(&self, service: &str) -> Result<LocalService> {
        let service = service.trim();
        let all = self.local_services().await?;
        let mut hits: Vec<LocalService> =
            all.iter().filter(|s| s.id == service || s.name == service).cloned().collect();
        match hits.len() {
            1 => Ok(hits.remove(0)),
            0 => {
                let needle = service.rsplit(':').next().unwrap_or(service).to_lowercase();
                let similar: Vec<ServiceSummary> = all
                    .iter()
                    .filter(|s| s.name.to_lowercase().contains(&needle))
                    .take(5)
                    .map(LocalService::summary)
                    .collect();
                let similar =
                    if similar.is_empty() { all.iter().take(5).map(LocalService::summary).collect() } else { similar };
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
    if !valid_stem(&stem) {
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
    Ok(LocalService { id: format!("{LOCAL_SERVICE_PREFIX}{stem}"), name, def, runner })
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
        let mut services = self.local_services().await?;
        services.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.id.cmp(&b.id)));
        let summaries: Vec<ServiceSummary> = services.iter().map(LocalService::summary).collect();
        let matching = options.select(summaries, ServiceSummary::field)?;
        let mut page = page_from(matching, page, offset, &options)?;
        if page.items.is_empty() && page.next_page.is_none() && services.is_empty() {
            page.note = Some(format!(
                "no local services yet: add definitions as {}/services/<name>.json with name, description, fn_schema and command or url",
                self.root().display()
            ));
        }
        Ok(page)
    }

    /// Services whose definition has an `fn_schema` and can run; re-read only when a file in
    /// `services/` was added, removed or changed (names, sizes and modification times).
    async fn tool_services(&self) -> Result<Vec<ToolService>> {
        let dir = self.root().join("services");
        let stamp = blocking(move || services_stamp(&dir)).await?;
        if let Some((seen, tools)) = self.tool_services_cache.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
            && *seen == stamp
        {
            return Ok(tools.clone());
        }
        let mut tools = Vec::new();
        for service in self.local_services().await? {
            let Some(schema) = service.def.fn_schema.clone() else { continue };
            if let Some(problem) = service.problem() {
                tracing::warn!(service = %service.id, "local service {problem}; not offered as a tool");
                continue;
            }
            tools.push(ToolService {
                id: service.id,
                name: service.name,
                description: service.def.description,
                request_schema: schema,
            });
        }
        tools.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        *self.tool_services_cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((stamp, tools.clone()));
        Ok(tools)
    }

    fn tool_services_watch(&self) -> Option<std::time::Duration> {
        Some(SERVICES_WATCH)
    }

    async fn get_service(&self, service: &str) -> Result<ServiceDetail> {
        let found = self.find_local_service(service).await?;
        let problem = found.problem().map(str::to_string);
        let note = match (&problem, &found.def.fn_schema) {
            (Some(p), _) => Some(format!("this local service {p}")),
            (None, None) => Some(crate::backend::services::NO_TOOL_DEFINITION.to_string()),
            (None, Some(_)) => None,
        };
        Ok(ServiceDetail {
            id: found.id,
            name: Some(found.name),
            description: found.def.description,
            status: if problem.is_some() { ServiceStatus::Error } else { ServiceStatus::Active },
            request_schema: found.def.fn_schema,
            note,
        })
    }
}

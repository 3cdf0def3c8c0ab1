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

use super::{LocalBackend, page_of};
use crate::backend::{Page, PageRequest, ServiceDetail, ServiceSummary, ServicesBackend, ToolService, like_match};
use crate::error::{Error, Result};

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

/// A loaded local service.
#[derive(Debug, Clone)]
pub struct LocalService {
    pub id: String,
    pub name: String,
    pub def: LocalServiceDef,
}

impl LocalService {
    /// Why jobs cannot run on it, if they cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        match (&self.def.command, &self.def.url) {
            (Some(cmd), None) if !cmd.is_empty() => None,
            (None, Some(url)) if url::Url::parse(url).is_ok() => None,
            (Some(_), Some(_)) => Some("has both 'command' and 'url'; keep one".into()),
            (None, Some(url)) => Some(format!("its url '{url}' does not parse")),
            _ => Some("has neither 'command' (a non-empty argv list) nor 'url', so jobs cannot run".into()),
        }
    }

    fn summary(&self) -> ServiceSummary {
        ServiceSummary { id: self.id.clone(), name: Some(self.name.clone()), description: self.def.description.clone() }
    }
}

/// How often `services/` is looked at for changes while service tools are on.
const SERVICES_WATCH: std::time::Duration = std::time::Duration::from_secs(1);

/// What `services/` holds, cheaply: each definition file's path, size and modification time.
pub(crate) type ServicesStamp = Vec<(std::path::PathBuf, u64, Option<std::time::SystemTime>)>;

/// Is a file stem usable inside a URN?
fn valid_stem(stem: &str) -> bool {
    !stem.is_empty() && stem.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl LocalBackend {
    /// Every readable service definition, sorted by file name; broken files are skipped
    /// with a warning.
    pub(crate) fn local_services(&self) -> Result<Vec<LocalService>> {
        let mut out = Vec::new();
        for path in self.json_files("services")? {
            match load_service(&path) {
                Ok(service) => out.push(service),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipping local service definition"),
            }
        }
        Ok(out)
    }

    fn services_stamp(&self) -> Result<ServicesStamp> {
        Ok(self
            .json_files("services")?
            .into_iter()
            .map(|path| {
                let meta = std::fs::metadata(&path).ok();
                let len = meta.as_ref().map_or(0, std::fs::Metadata::len);
                let modified = meta.and_then(|m| m.modified().ok());
                (path, len, modified)
            })
            .collect())
    }

    /// The local service with this URN or exact name.
    pub(crate) fn find_local_service(&self, service: &str) -> Result<LocalService> {
        let service = service.trim();
        let all = self.local_services()?;
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
                    kind: "service",
                    id: crate::backend::services::with_candidates(service, &similar),
                })
            }
            _ => Err(Error::Ambiguous {
                kind: "service",
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
    Ok(LocalService { id: format!("{LOCAL_SERVICE_PREFIX}{stem}"), name, def })
}

#[async_trait::async_trait]
impl ServicesBackend for LocalBackend {
    async fn list_services(&self, search: Option<&str>, page: &PageRequest) -> Result<Page<ServiceSummary>> {
        let pattern = search
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| if s.contains('%') { s.to_string() } else { format!("%{s}%") });
        let mut services = self.local_services()?;
        services.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.id.cmp(&b.id)));
        let matching: Vec<ServiceSummary> = services
            .iter()
            .filter(|s| pattern.as_deref().is_none_or(|p| like_match(p, &s.name, true)))
            .map(LocalService::summary)
            .collect();
        let mut page = page_of(matching, page)?;
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
        let stamp = self.services_stamp()?;
        let mut cache = self.tool_services_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, tools)) = cache.as_ref()
            && *seen == stamp
        {
            return Ok(tools.clone());
        }
        let mut tools = Vec::new();
        for service in self.local_services()? {
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
        *cache = Some((stamp, tools.clone()));
        Ok(tools)
    }

    fn tool_services_watch(&self) -> Option<std::time::Duration> {
        Some(SERVICES_WATCH)
    }

    async fn get_service(&self, service: &str) -> Result<ServiceDetail> {
        let found = self.find_local_service(service)?;
        let problem = found.problem();
        let note = match (&problem, &found.def.fn_schema) {
            (Some(p), _) => Some(format!("this local service {p}")),
            (None, None) => Some(crate::backend::services::NO_TOOL_DEFINITION.to_string()),
            (None, Some(_)) => None,
        };
        Ok(ServiceDetail {
            id: found.id,
            name: Some(found.name),
            description: found.def.description,
            status: if problem.is_some() { "error".into() } else { "active".into() },
            request_schema: found.def.fn_schema,
            note,
        })
    }
}

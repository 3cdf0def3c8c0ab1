//! Which local files `path` arguments may name. An MCP server that uploads any readable
//! file is an exfiltration path, so uploads from and downloads to a `path` are allowed only
//! under the working directory, the local store and folders named with `--allow-path`.
//! A security rule of its own, used by the tools that take a `path`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::files::resolve_lenient;

/// Which local folders `path` arguments may point into.
#[derive(Debug, Clone)]
pub struct PathPolicy {
    /// Resolved allowed folders: the working directory, the local store, `--allow-path`s.
    roots: Vec<PathBuf>,
}

impl PathPolicy {
    /// The policy for the current working directory, the backend's local store (if any)
    /// and the `--allow-path` folders, which must exist.
    pub fn new(allow: &[PathBuf], store: Option<&Path>) -> Result<Self> {
        let cwd =
            std::env::current_dir().map_err(|e| Error::Config(format!("cannot read the working directory: {e}")))?;
        let mut roots = vec![resolve_lenient(&cwd)];
        if let Some(store) = store {
            roots.push(resolve_lenient(&cwd.join(store)));
        }
        for dir in allow {
            let resolved = cwd.join(dir).canonicalize().ok().filter(|p| p.is_dir()).ok_or_else(|| {
                Error::Config(format!(
                    "--allow-path {}: not an existing folder; create it or fix the path",
                    dir.display()
                ))
            })?;
            roots.push(resolved);
        }
        Ok(PathPolicy { roots })
    }

    /// [`check`](Self::check) on the blocking pool, as every request path runs file system
    /// calls (it resolves symlinks).
    pub async fn check_blocking(&self, path: String, arg: &'static str, existing: bool) -> Result<PathBuf> {
        let policy = self.clone();
        crate::files::blocking(move || policy.check(&path, arg, existing)).await
    }

    /// `path` resolved (symlinks followed) if it lies under an allowed folder. `existing`:
    /// the file must exist (uploads); else it is a download target, whose missing folders
    /// the download creates.
    pub fn check(&self, path: &str, arg: &str, existing: bool) -> Result<PathBuf> {
        if path.trim().is_empty() {
            return Err(Error::invalid(arg, "is empty; pass a file path"));
        }
        let cwd = std::env::current_dir().map_err(|e| Error::io("cannot read the working directory", e))?;
        let joined = cwd.join(path);
        let resolved = if existing {
            joined.canonicalize().map_err(|_| {
                Error::invalid(arg, format!("{} does not exist; pass the path of a readable file", joined.display()))
            })?
        } else {
            resolve_lenient(&joined)
        };
        if !self.roots.iter().any(|root| resolved.starts_with(root)) {
            let roots = self.roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ");
            return Err(Error::invalid(
                arg,
                format!(
                    "{} is outside the folders this server may read and write ({roots}); use a path under one of \
                     them, or restart the server with --allow-path <folder>",
                    joined.display()
                ),
            ));
        }
        if existing && !resolved.is_file() {
            return Err(Error::invalid(arg, format!("{} is not a file; pass the path of a file", joined.display())));
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_allowed_folders_are_refused() {
        let allowed = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(allowed.path().join("in.txt"), b"x").unwrap();
        std::fs::write(outside.path().join("out.txt"), b"x").unwrap();
        let policy = PathPolicy::new(&[allowed.path().to_path_buf()], None).unwrap();
        assert!(policy.check(allowed.path().join("in.txt").to_str().unwrap(), "path", true).is_ok());
        assert!(policy.check(allowed.path().join("new/x.txt").to_str().unwrap(), "path", false).is_ok());
        let err = policy.check(outside.path().join("out.txt").to_str().unwrap(), "path", true).unwrap_err();
        assert!(err.to_string().contains("--allow-path"), "{err}");
        // A symlink inside an allowed folder that points out is judged by its target.
        std::os::unix::fs::symlink(outside.path(), allowed.path().join("link")).unwrap();
        let err = policy.check(allowed.path().join("link/out.txt").to_str().unwrap(), "path", true).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        let err = policy.check(allowed.path().join("link/new.txt").to_str().unwrap(), "path", false).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        let err = policy.check(allowed.path().join("link/a/b/new.txt").to_str().unwrap(), "path", false).unwrap_err();
        assert!(err.to_string().contains("outside"), "missing folders under a symlink out: {err}");
        // Folders that don't exist yet cannot climb out with `..`.
        let climb = allowed.path().join("new/../../escape/x.txt");
        let err = policy.check(climb.to_str().unwrap(), "path", false).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        let inside = policy.check(allowed.path().join("new/../kept/./x.txt").to_str().unwrap(), "path", false).unwrap();
        assert_eq!(inside, allowed.path().canonicalize().unwrap().join("kept/x.txt"));
        assert!(PathPolicy::new(&[allowed.path().join("missing")], None).is_err());
    }
}

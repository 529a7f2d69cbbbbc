//! A person's kubeconfig file (I/O): where it is, locked as kubectl locks it, backed up, and
//! replaced atomically with mode 0600.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_yaml::Value;

use super::merge;

/// The file kubectl writes new entries to: the first path of `$KUBECONFIG`, else
/// `~/.kube/config`.
pub fn default_path() -> anyhow::Result<PathBuf> {
    if let Some(list) = std::env::var_os("KUBECONFIG")
        && let Some(first) = std::env::split_paths(&list).find(|p| !p.as_os_str().is_empty())
    {
        return Ok(first);
    }
    let home = std::env::var_os("HOME")
        .context("neither KUBECONFIG nor HOME is set: pass --kubeconfig FILE")?;
    Ok(PathBuf::from(home).join(".kube").join("config"))
}

/// An exclusive lock on a kubeconfig: `<file>.lock`, the lock file client-go (kubectl) takes.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

impl Lock {
    /// Take the lock, waiting up to `wait` for another writer to finish.
    pub fn take(file: &Path, wait: Duration) -> anyhow::Result<Lock> {
        let path = lock_path(file);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let deadline = Instant::now() + wait;
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(_) => return Ok(Lock { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if Instant::now() >= deadline {
                        bail!(
                            "{} is locked by another writer (kubectl or mk8); if none is running, delete the stale lock file {}",
                            file.display(),
                            path.display()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("creating the lock file {}", path.display()));
                }
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn lock_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The document in `file` (an empty kubeconfig when the file does not exist or is empty).
pub fn read(file: &Path) -> anyhow::Result<Value> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(merge::empty()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    if text.trim().is_empty() {
        return Ok(merge::empty());
    }
    serde_yaml::from_str(&text).with_context(|| {
        format!(
            "{} is not valid YAML; fix or move it, mk8 changes nothing",
            file.display()
        )
    })
}

/// Replace `file` with `doc`: the previous content is copied to a timestamped backup beside
/// it (returned), the new one written to a temporary file, synced and renamed over it, 0600.
pub fn write(file: &Path, doc: &Value) -> anyhow::Result<Option<PathBuf>> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let backup = if file.exists() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let mut name = file.as_os_str().to_owned();
        name.push(format!(".mk8-backup-{stamp}"));
        let backup = PathBuf::from(name);
        fs::copy(file, &backup)
            .with_context(|| format!("backing up {} to {}", file.display(), backup.display()))?;
        fs::set_permissions(&backup, fs::Permissions::from_mode(0o600))?;
        Some(backup)
    } else {
        None
    };
    let text = serde_yaml::to_string(doc)?;
    crate::files::write_private(file, text.as_bytes())
        .with_context(|| format!("replacing {}", file.display()))?;
    Ok(backup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_makes_the_next_writer_wait_then_explain() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        let held = Lock::take(&file, Duration::ZERO).unwrap();
        assert!(
            dir.path().join("config.lock").exists(),
            "client-go's lock file name"
        );
        let err = Lock::take(&file, Duration::from_millis(120)).unwrap_err();
        assert!(err.to_string().contains("config.lock"), "{err}");
        drop(held);
        assert!(!dir.path().join("config.lock").exists());
        Lock::take(&file, Duration::ZERO).unwrap();
    }

    #[test]
    fn write_backs_up_the_old_file_and_leaves_0600() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kube").join("config");
        assert_eq!(
            write(&file, &merge::empty()).unwrap(),
            None,
            "nothing to back up"
        );
        fs::write(
            &file,
            "apiVersion: v1\nkind: Config\ncurrent-context: old\n",
        )
        .unwrap();
        let backup = write(&file, &merge::empty()).unwrap().expect("a backup");
        assert!(
            fs::read_to_string(&backup)
                .unwrap()
                .contains("current-context: old")
        );
        for path in [&file, &backup] {
            let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        assert_eq!(read(&file).unwrap(), merge::empty());
        let leftovers: Vec<_> = fs::read_dir(file.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".mk8-kubeconfig-")
            })
            .collect();
        assert!(leftovers.is_empty(), "no temporary file left behind");
    }

    #[test]
    fn invalid_yaml_is_reported_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        assert_eq!(read(&file).unwrap(), merge::empty());
        fs::write(&file, "clusters: [").unwrap();
        let err = read(&file).unwrap_err();
        assert!(err.to_string().contains("mk8 changes nothing"), "{err}");
    }
}

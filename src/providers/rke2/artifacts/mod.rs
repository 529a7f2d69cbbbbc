//! RKE2 release artifacts (I/O): fetched from a mirror URL or a directory, every file verified
//! against the release checksum file before use, kept in a content-addressed local cache.
//!
//! Kept whole (just over 500 lines): fetch, verify and cache are one pipeline per file, and the
//! last hundred lines are its tests.

mod checksums;
mod http;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

pub use checksums::Checksums;

/// The server/agent tarball.
pub const TARBALL: &str = "rke2.linux-amd64.tar.gz";
/// The all-in-one image tarball.
pub const IMAGES: &str = "rke2-images.linux-amd64.tar.zst";
/// The checksum file of the release.
pub const CHECKSUMS: &str = "sha256sum-amd64.txt";
/// The install script (published beside the release by mirrors; listed in their checksum file).
pub const INSTALL_SCRIPT: &str = "install.sh";

/// Failures of fetching or verifying artifacts; each names the file or URL involved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    /// The mirror could not be reached.
    #[error("cannot fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
    /// The mirror answered with an error status.
    #[error("{url} answered HTTP {status}")]
    Http { url: String, status: u16 },
    /// The checksum file is malformed.
    #[error("the checksum file {CHECKSUMS} is malformed: {reason}")]
    BadChecksumFile { reason: String },
    /// A needed file has no line in the checksum file.
    #[error("{file} is not listed in {CHECKSUMS}: it cannot be verified, so it is not used")]
    NotListed { file: String },
    /// A file's content does not match the checksum file.
    #[error(
        "checksum mismatch for {file}: {CHECKSUMS} lists sha256 {expected}, the file has {actual}; the file is not used"
    )]
    ChecksumMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    /// A local file or directory failed.
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

impl ArtifactError {
    /// What the user can do about it, in a few words.
    pub fn fix(&self) -> &'static str {
        match self {
            ArtifactError::Fetch { .. } | ArtifactError::Http { .. } => {
                "check that the mirror is reachable from the operator and serves this release"
            }
            ArtifactError::BadChecksumFile { .. } => {
                "regenerate it with `sha256sum` over the release files (or prepare the files with `mk8 artifacts fetch`)"
            }
            ArtifactError::NotListed { .. } => {
                "add its line to the checksum file, or prepare the files with `mk8 artifacts fetch`"
            }
            ArtifactError::ChecksumMismatch { .. } => {
                "replace the file with the release's own, or fix its line in the checksum file (`mk8 artifacts verify` checks a directory)"
            }
            ArtifactError::Io { .. } => {
                "check that spec.rke2.artifacts.path is mounted into the operator and holds the release files (`mk8 artifacts fetch` prepares them)"
            }
        }
    }

    /// The sentence a NodePool reports: the Cluster field the files come from, what went
    /// wrong, and the fix.
    pub fn explain(&self, cluster: &str, source: &Source) -> String {
        let field = match source {
            Source::Mirror(_) => "spec.rke2.artifacts.baseURL",
            Source::Directory(_) => "spec.rke2.artifacts.path",
        };
        format!(
            "the release files of {field} of Cluster {cluster} ({}) cannot be used: {self}; {}",
            source.locate(""),
            self.fix()
        )
    }
}

/// Where release files come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An HTTP(S) base URL holding the release files.
    Mirror(String),
    /// A local directory (a mounted volume) holding the release files.
    Directory(PathBuf),
}

impl Source {
    /// The URL or path of `file` in this source.
    pub fn locate(&self, file: &str) -> String {
        match self {
            Source::Mirror(base) => format!("{}/{file}", base.trim_end_matches('/')),
            Source::Directory(dir) => dir.join(file).display().to_string(),
        }
    }

    async fn read_text(&self, file: &str) -> Result<String, ArtifactError> {
        match self {
            Source::Mirror(_) => http::text(&self.locate(file)).await,
            Source::Directory(dir) => {
                let path = dir.join(file);
                tokio::fs::read_to_string(&path)
                    .await
                    .map_err(|e| io_error(&path, e))
            }
        }
    }
}

/// One verified file of a release, held in the cache under its sha256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedFile {
    /// Release file name, such as `rke2.linux-amd64.tar.gz`.
    pub name: String,
    /// Path of the verified copy in the cache.
    pub path: PathBuf,
    /// Lowercase hex sha256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The verified files a node install needs, in upload order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRelease {
    /// Checksum file, tarball, image tarball(s), install script.
    pub files: Vec<VerifiedFile>,
}

/// The files of a release needed for one install (pure): the tarball, the install script, and
/// the all-in-one image tarball, or the core images plus those of the chosen CNI.
pub fn needed_files(checksums: &Checksums, cni: &str) -> Result<Vec<String>, ArtifactError> {
    let mut files = vec![TARBALL.to_string()];
    if checksums.get(IMAGES).is_some() {
        files.push(IMAGES.to_string());
    } else {
        files.push("rke2-images-core.linux-amd64.tar.zst".to_string());
        if cni != "none" {
            files.push(format!("rke2-images-{cni}.linux-amd64.tar.zst"));
        }
    }
    files.push(INSTALL_SCRIPT.to_string());
    for file in &files {
        if checksums.get(file).is_none() {
            return Err(ArtifactError::NotListed { file: file.clone() });
        }
    }
    Ok(files)
}

/// A content-addressed store of verified files: `<dir>/sha256/<hex>`.
#[derive(Clone, Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    /// A cache rooted at `dir` (created when needed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Fetch (or find in the cache) and verify every file a node install needs.
    pub async fn release(
        &self,
        source: &Source,
        cni: &str,
    ) -> Result<VerifiedRelease, ArtifactError> {
        let text = source.read_text(CHECKSUMS).await?;
        let checksums = Checksums::parse(&text)?;
        let mut files = vec![self.store_bytes(CHECKSUMS, text.as_bytes()).await?];
        for name in needed_files(&checksums, cni)? {
            let expected = checksums.get(&name).expect("needed files are listed");
            files.push(self.obtain(source, &name, expected).await?);
        }
        Ok(VerifiedRelease { files })
    }

    /// The verified copy of `name`, downloading it when the cache does not hold `expected` yet.
    pub async fn obtain(
        &self,
        source: &Source,
        name: &str,
        expected: &str,
    ) -> Result<VerifiedFile, ArtifactError> {
        let expected = expected.to_ascii_lowercase();
        let path = self.path_of(&expected);
        if let Ok(meta) = tokio::fs::metadata(&path).await {
            return Ok(VerifiedFile {
                name: name.to_string(),
                path,
                sha256: expected,
                size: meta.len(),
            });
        }
        let partial = self.partial_path(name);
        let (actual, size) = match source {
            Source::Mirror(_) => download(&source.locate(name), &partial).await?,
            Source::Directory(dir) => copy_hashing(&dir.join(name), &partial).await?,
        };
        self.admit(name, &partial, &expected, &actual, size).await
    }

    async fn store_bytes(&self, name: &str, bytes: &[u8]) -> Result<VerifiedFile, ArtifactError> {
        let digest = hex::encode(Sha256::digest(bytes));
        let partial = self.partial_path(name);
        tokio::fs::write(&partial, bytes)
            .await
            .map_err(|e| io_error(&partial, e))?;
        self.admit(name, &partial, &digest, &digest, bytes.len() as u64)
            .await
    }

    /// Give a downloaded file its content address, or delete it when it is not what was listed.
    async fn admit(
        &self,
        name: &str,
        partial: &Path,
        expected: &str,
        actual: &str,
        size: u64,
    ) -> Result<VerifiedFile, ArtifactError> {
        if actual != expected {
            let _ = tokio::fs::remove_file(partial).await;
            return Err(ArtifactError::ChecksumMismatch {
                file: name.to_string(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        let path = self.path_of(expected);
        tokio::fs::rename(partial, &path)
            .await
            .map_err(|e| io_error(&path, e))?;
        Ok(VerifiedFile {
            name: name.to_string(),
            path,
            sha256: expected.to_string(),
            size,
        })
    }

    fn path_of(&self, sha256: &str) -> PathBuf {
        self.dir.join("sha256").join(sha256)
    }

    fn partial_path(&self, name: &str) -> PathBuf {
        let _ = std::fs::create_dir_all(self.dir.join("sha256"));
        self.dir
            .join("sha256")
            .join(format!(".partial-{}-{name}", uuid::Uuid::new_v4().simple()))
    }
}

/// What `fetch_to_dir` did with one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// File name.
    pub file: String,
    /// Bytes written.
    pub size: u64,
    /// Lowercase hex sha256.
    pub sha256: String,
    /// Whether the checksum was listed upstream (false: recorded on first download).
    pub listed_upstream: bool,
}

/// Prepare a mirror directory on a connected machine: download the checksum file and the files an
/// install needs from `base_url`, verify each, and write them into `dir` under their real names.
/// `install.sh` comes from `install_script_url` (default: beside the release); when the upstream
/// checksum file does not list it, its sha256 is appended so that later use is verified.
pub async fn fetch_to_dir(
    base_url: &str,
    install_script_url: Option<&str>,
    dir: &Path,
    cni: &str,
    progress: impl Fn(&str),
) -> Result<Vec<Fetched>, ArtifactError> {
    let base = Source::Mirror(base_url.to_string());
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io_error(dir, e))?;
    progress(&format!("fetching {}", base.locate(CHECKSUMS)));
    let mut text = http::text(&base.locate(CHECKSUMS)).await?;
    let mut checksums = Checksums::parse(&text)?;
    let install_listed = checksums.get(INSTALL_SCRIPT).is_some();
    if !install_listed {
        checksums.insert(INSTALL_SCRIPT, &"0".repeat(64));
    }
    let mut fetched = Vec::new();
    for name in needed_files(&checksums, cni)? {
        let url = match (name.as_str(), install_script_url) {
            (INSTALL_SCRIPT, Some(url)) => url.to_string(),
            _ => base.locate(&name),
        };
        progress(&format!("fetching {url}"));
        let partial = dir.join(format!("{name}.partial"));
        let (actual, size) = download(&url, &partial).await?;
        let listed = name != INSTALL_SCRIPT || install_listed;
        if listed {
            let expected = checksums.get(&name).unwrap_or_default().to_string();
            if actual != expected {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(ArtifactError::ChecksumMismatch {
                    file: name,
                    expected,
                    actual,
                });
            }
        } else {
            if !text.ends_with('\n') && !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!("{actual}  {INSTALL_SCRIPT}\n"));
        }
        let path = dir.join(&name);
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| io_error(&path, e))?;
        progress(&format!("verified {name} ({size} bytes, sha256 {actual})"));
        fetched.push(Fetched {
            file: name,
            size,
            sha256: actual,
            listed_upstream: listed,
        });
    }
    let path = dir.join(CHECKSUMS);
    tokio::fs::write(&path, text)
        .await
        .map_err(|e| io_error(&path, e))?;
    Ok(fetched)
}

/// The upstream download URL of a release: GitHub releases, `+` encoded as `%2B`.
pub fn upstream_base_url(version: &str) -> String {
    format!(
        "https://github.com/rancher/rke2/releases/download/{}",
        version.replace('+', "%2B")
    )
}

/// Where the upstream install script is published.
pub const UPSTREAM_INSTALL_SCRIPT: &str = "https://get.rke2.io";

/// Result of checking one file of a directory against its checksum file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FileCheck {
    /// File name.
    pub file: String,
    /// `ok`, `mismatch` or `missing`.
    pub state: String,
    /// Listed sha256.
    pub expected: String,
    /// Computed sha256 (empty when missing).
    pub actual: String,
}

/// Check every file listed in `dir`'s checksum file that is present, and that the files an
/// install needs are there (the all-in-one images or the core images).
pub async fn verify_dir(dir: &Path) -> Result<Vec<FileCheck>, ArtifactError> {
    let path = dir.join(CHECKSUMS);
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|e| io_error(&path, e))?;
    let checksums = Checksums::parse(&text)?;
    let needed = needed_files(&checksums, "none")?;
    let mut checks = Vec::new();
    for file in checksums.files() {
        let expected = checksums.get(file).unwrap_or_default().to_string();
        let local = dir.join(file);
        let (state, actual) = if local.exists() {
            let actual = sha256_file(&local).await?;
            let state = if actual == expected { "ok" } else { "mismatch" };
            (state, actual)
        } else if needed.iter().any(|n| n == file) {
            ("missing", String::new())
        } else {
            continue;
        };
        checks.push(FileCheck {
            file: file.to_string(),
            state: state.into(),
            expected,
            actual,
        });
    }
    Ok(checks)
}

/// The sha256 of a local file, streamed.
pub async fn sha256_file(path: &Path) -> Result<String, ArtifactError> {
    let (digest, _) = copy_hashing(path, Path::new("")).await?;
    Ok(digest)
}

/// Download `url` into `dest` (created), hashing as it streams; returns (sha256, bytes).
pub async fn download(url: &str, dest: &Path) -> Result<(String, u64), ArtifactError> {
    let response = http::get(url).await?;
    let mut body = response.into_body().into_data_stream();
    let mut out = tokio::fs::File::create(dest)
        .await
        .map_err(|e| io_error(dest, e))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ArtifactError::Fetch {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        out.write_all(&chunk).await.map_err(|e| io_error(dest, e))?;
    }
    out.flush().await.map_err(|e| io_error(dest, e))?;
    Ok((hex::encode(hasher.finalize()), size))
}

/// Copy `from` to `to` (skipped when `to` is empty), hashing; returns (sha256, bytes).
async fn copy_hashing(from: &Path, to: &Path) -> Result<(String, u64), ArtifactError> {
    use tokio::io::AsyncReadExt;
    let mut input = tokio::fs::File::open(from)
        .await
        .map_err(|e| io_error(from, e))?;
    let mut output = if to.as_os_str().is_empty() {
        None
    } else {
        Some(
            tokio::fs::File::create(to)
                .await
                .map_err(|e| io_error(to, e))?,
        )
    };
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = input
            .read(&mut buffer)
            .await
            .map_err(|e| io_error(from, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
        if let Some(out) = output.as_mut() {
            out.write_all(&buffer[..n])
                .await
                .map_err(|e| io_error(to, e))?;
        }
    }
    if let Some(mut out) = output {
        out.flush().await.map_err(|e| io_error(to, e))?;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

fn io_error(path: &Path, e: std::io::Error) -> ArtifactError {
    ArtifactError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Index of a verified release by file name.
pub fn by_name(release: &VerifiedRelease) -> BTreeMap<&str, &VerifiedFile> {
    release.files.iter().map(|f| (f.name.as_str(), f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(names: &[&str]) -> Checksums {
        let mut c = Checksums::default();
        for n in names {
            c.insert(n, &"a".repeat(64));
        }
        c
    }

    #[test]
    fn an_explanation_names_the_cluster_field_and_the_fix() {
        let dir = Source::Directory("/srv/rke2".into());
        let e = ArtifactError::NotListed {
            file: TARBALL.into(),
        };
        assert_eq!(
            e.explain("edge", &dir),
            "the release files of spec.rke2.artifacts.path of Cluster edge (/srv/rke2/) cannot be used: \
             rke2.linux-amd64.tar.gz is not listed in sha256sum-amd64.txt: it cannot be verified, so it is not used; \
             add its line to the checksum file, or prepare the files with `mk8 artifacts fetch`"
        );
        let mirror = Source::Mirror("https://mirror.example/rke2".into());
        let e = ArtifactError::Http {
            url: mirror.locate(CHECKSUMS),
            status: 404,
        };
        assert!(
            e.explain("edge", &mirror)
                .starts_with("the release files of spec.rke2.artifacts.baseURL of Cluster edge (https://mirror.example/rke2/)"),
            "{}",
            e.explain("edge", &mirror)
        );
    }

    #[test]
    fn upstream_urls_encode_the_plus() {
        assert_eq!(
            upstream_base_url("v1.33.1+rke2r1"),
            "https://github.com/rancher/rke2/releases/download/v1.33.1%2Brke2r1"
        );
    }

    #[test]
    fn the_all_in_one_images_are_preferred() {
        let c = listed(&[
            TARBALL,
            IMAGES,
            INSTALL_SCRIPT,
            "rke2-images-core.linux-amd64.tar.zst",
        ]);
        assert_eq!(
            needed_files(&c, "canal").unwrap(),
            vec![TARBALL, IMAGES, INSTALL_SCRIPT]
        );
    }

    #[test]
    fn core_images_come_with_the_cni_images() {
        let c = listed(&[
            TARBALL,
            INSTALL_SCRIPT,
            "rke2-images-core.linux-amd64.tar.zst",
            "rke2-images-cilium.linux-amd64.tar.zst",
        ]);
        assert_eq!(
            needed_files(&c, "cilium").unwrap(),
            vec![
                TARBALL,
                "rke2-images-core.linux-amd64.tar.zst",
                "rke2-images-cilium.linux-amd64.tar.zst",
                INSTALL_SCRIPT
            ]
        );
        assert_eq!(
            needed_files(&c, "canal").unwrap_err(),
            ArtifactError::NotListed {
                file: "rke2-images-canal.linux-amd64.tar.zst".into()
            }
        );
    }

    #[tokio::test]
    async fn a_corrupted_file_is_refused_by_name_and_never_cached() {
        let src = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let files = [
            (TARBALL, "tarball"),
            (IMAGES, "images"),
            (INSTALL_SCRIPT, "#!/bin/sh\n"),
        ];
        let mut sums = Checksums::default();
        for (name, content) in files {
            std::fs::write(src.path().join(name), content).unwrap();
            sums.insert(name, &hex::encode(Sha256::digest(content)));
        }
        std::fs::write(src.path().join(CHECKSUMS), sums.render()).unwrap();
        let cache = ArtifactCache::new(cache_dir.path());
        let source = Source::Directory(src.path().to_path_buf());
        let release = cache.release(&source, "canal").await.unwrap();
        assert_eq!(release.files.len(), 4);
        for f in &release.files {
            assert_eq!(sha256_file(&f.path).await.unwrap(), f.sha256);
        }
        // Tamper with the images: the cache already holds the verified copy, so a second
        // cache is needed to see the refusal.
        std::fs::write(src.path().join(IMAGES), "tampered").unwrap();
        let other = tempfile::tempdir().unwrap();
        let err = ArtifactCache::new(other.path())
            .release(&source, "canal")
            .await
            .unwrap_err();
        match &err {
            ArtifactError::ChecksumMismatch {
                file,
                expected,
                actual,
            } => {
                assert_eq!(file, IMAGES);
                assert_eq!(expected, &hex::encode(Sha256::digest("images")));
                assert_eq!(actual, &hex::encode(Sha256::digest("tampered")));
            }
            other => panic!("expected a checksum mismatch, got {other}"),
        }
        assert!(err.to_string().contains(IMAGES));
        let cached: Vec<_> = std::fs::read_dir(other.path().join("sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !cached.iter().any(|n| n == &hex::encode(Sha256::digest("tampered")) || n.starts_with(".partial")),
            "{cached:?}"
        );
        let checks = verify_dir(src.path()).await.unwrap();
        let images = checks.iter().find(|c| c.file == IMAGES).unwrap();
        assert_eq!(images.state, "mismatch");
    }
}

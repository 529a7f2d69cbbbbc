//! Release artifacts: the cache over a real HTTP mirror, and `mk8 artifacts fetch|verify`.

use std::process::Command;
use std::sync::atomic::Ordering;

use mk8::providers::rke2::artifacts::{
    ArtifactCache, ArtifactError, CHECKSUMS, IMAGES, INSTALL_SCRIPT, Source, TARBALL,
};

use super::release::{Mirror, Release, VERSION};

#[tokio::test]
async fn the_cache_verifies_mirror_files_and_downloads_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let release = Release::build(dir.path(), 200_000);
    let mirror = Mirror::serve(&release.dir).await;
    let cache = ArtifactCache::new(dir.path().join("cache"));
    let source = Source::Mirror(mirror.url.clone());
    let first = cache.release(&source, "canal").await.unwrap();
    let names: Vec<&str> = first.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, [CHECKSUMS, TARBALL, IMAGES, INSTALL_SCRIPT]);
    assert_eq!(first.files[2].sha256, release.sha256(IMAGES));
    assert_eq!(mirror.requests.load(Ordering::SeqCst), 4);
    let again = cache.release(&source, "canal").await.unwrap();
    assert_eq!(again, first);
    // Only the checksum file was fetched again.
    assert_eq!(mirror.requests.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_corrupted_mirror_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let release = Release::build(dir.path(), 10_000);
    release.corrupt(TARBALL);
    let mirror = Mirror::serve(&release.dir).await;
    let cache = ArtifactCache::new(dir.path().join("cache"));
    let err = cache
        .release(&Source::Mirror(mirror.url.clone()), "canal")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ArtifactError::ChecksumMismatch { file, actual, .. } if file == TARBALL && actual == &release.sha256(TARBALL)),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("checksum mismatch for rke2.linux-amd64.tar.gz")
    );
}

fn mk8(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mk8"))
        .args(args)
        .output()
        .expect("mk8 runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mk8_artifacts_fetch_prepares_a_mirror_that_verify_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let release = Release::build(dir.path(), 50_000);
    // Like upstream: install.sh is published elsewhere and not in the checksum file.
    let upstream = dir.path().join("upstream");
    std::fs::create_dir_all(&upstream).unwrap();
    for f in [TARBALL, IMAGES] {
        std::fs::copy(release.dir.join(f), upstream.join(f)).unwrap();
    }
    let sums = std::fs::read_to_string(release.dir.join(CHECKSUMS)).unwrap();
    let without_script: String = sums
        .lines()
        .filter(|l| !l.ends_with(INSTALL_SCRIPT))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(upstream.join(CHECKSUMS), without_script).unwrap();
    let scripts = dir.path().join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::copy(
        release.dir.join(INSTALL_SCRIPT),
        scripts.join(INSTALL_SCRIPT),
    )
    .unwrap();
    let mirror = Mirror::serve(&upstream).await;
    let script_server = Mirror::serve(&scripts).await;
    let to = dir.path().join("airgap");
    let (url, script_url) = (
        mirror.url.clone(),
        format!("{}/install.sh", script_server.url),
    );
    let out = tokio::task::spawn_blocking({
        let to = to.clone();
        move || {
            mk8(&[
                "artifacts",
                "fetch",
                "--version",
                VERSION,
                "--to",
                to.to_str().unwrap(),
                "--base-url",
                &url,
                "--install-script-url",
                &script_url,
            ])
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("verified rke2.linux-amd64.tar.gz"),
        "{stderr}"
    );
    assert!(
        stderr.contains("install.sh is not listed in the upstream checksum file"),
        "{stderr}"
    );
    let verify = mk8(&["artifacts", "verify", to.to_str().unwrap(), "-o", "json"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let checks: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(checks.as_array().unwrap().len(), 3, "{checks}");
    assert!(
        checks
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["state"] == "ok")
    );

    // A file damaged on the way to the air-gapped side is named, and verify fails.
    let mut bytes = std::fs::read(to.join(IMAGES)).unwrap();
    bytes[0] ^= 1;
    std::fs::write(to.join(IMAGES), bytes).unwrap();
    let verify = mk8(&["artifacts", "verify", to.to_str().unwrap()]);
    assert!(!verify.status.success());
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(
        stderr.contains("rke2-images.linux-amd64.tar.zst does not match sha256sum-amd64.txt"),
        "{stderr}"
    );
    let table = String::from_utf8_lossy(&verify.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(IMAGES) && l.contains("mismatch")),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mk8_artifacts_fetch_refuses_a_corrupted_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let release = Release::build(dir.path(), 10_000);
    release.corrupt(IMAGES);
    let mirror = Mirror::serve(&release.dir).await;
    let to = dir.path().join("airgap");
    let url = mirror.url.clone();
    let to_arg = to.clone();
    let out = tokio::task::spawn_blocking(move || {
        mk8(&[
            "artifacts",
            "fetch",
            "--version",
            VERSION,
            "--to",
            to_arg.to_str().unwrap(),
            "--base-url",
            &url,
        ])
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("checksum mismatch for rke2-images.linux-amd64.tar.zst"),
        "{stderr}"
    );
    assert!(!to.join(IMAGES).exists());
}

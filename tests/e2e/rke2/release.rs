//! Test-built RKE2 release: the real file names, a real checksum file, the install contract; its
//! `rke2` binary is the TEST FIXTURE stand-in of `fixture/rke2`. Also a tiny HTTP mirror.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mk8::providers::rke2::artifacts::{CHECKSUMS, Checksums, IMAGES, INSTALL_SCRIPT, TARBALL};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::fleet::run;

/// The version the test release claims to be.
pub const VERSION: &str = "v1.33.1+rke2r1";

const INSTALL_SH: &str = include_str!("fixture/install.sh");
const RKE2_STAND_IN: &str = include_str!("fixture/rke2");
const UNINSTALL_STAND_IN: &str = include_str!("fixture/rke2-uninstall.sh");

/// A release directory laid out like an RKE2 mirror.
pub struct Release {
    /// The directory holding the release files.
    pub dir: PathBuf,
}

impl Release {
    /// Build the release under `parent/release` with an image tarball of `image_bytes` bytes.
    pub fn build(parent: &Path, image_bytes: usize) -> Release {
        let dir = parent.join("release");
        let stage = parent.join("release-stage");
        for sub in ["bin", "lib/systemd/system", "share/rke2"] {
            std::fs::create_dir_all(stage.join(sub)).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        let stand_in = RKE2_STAND_IN
            .replace(
                "@MK8_BIN@",
                &visible_to_nodes(parent, Path::new(env!("CARGO_BIN_EXE_mk8"))),
            )
            .replace("@KUBECTL_BIN@", &visible_to_nodes(parent, &kubectl()));
        write_exec(&stage.join("bin/rke2"), &stand_in);
        write_exec(&stage.join("bin/rke2-uninstall.sh"), UNINSTALL_STAND_IN);
        write_exec(
            &stage.join("bin/rke2-killall.sh"),
            "#!/bin/sh\n# TEST FIXTURE: stops this node's rke2 stand-in and its API server.\ncd /var/lib/rancher/rke2/mk8-fixture && kill $(cat pid apiserver.pid supervisor.pid 2>/dev/null) 2>/dev/null || true\n",
        );
        for role in ["server", "agent"] {
            std::fs::write(
                stage.join(format!("lib/systemd/system/rke2-{role}.service")),
                format!("[Unit]\nDescription=rke2 {role} (TEST FIXTURE)\n[Service]\nExecStart=/usr/local/bin/rke2 {role}\n"),
            )
            .unwrap();
        }
        std::fs::write(stage.join("share/rke2/VERSION"), VERSION).unwrap();
        run(&[
            "tar",
            "czf",
            dir.join(TARBALL).to_str().unwrap(),
            "-C",
            stage.to_str().unwrap(),
            "bin",
            "lib",
            "share",
        ]);
        let images: Vec<u8> = (0..image_bytes)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(dir.join(IMAGES), images).unwrap();
        std::fs::write(dir.join(INSTALL_SCRIPT), INSTALL_SH).unwrap();
        let release = Release { dir };
        release.write_checksums();
        release
    }

    /// (Re)write `sha256sum-amd64.txt` from the files as they are now.
    pub fn write_checksums(&self) {
        let mut sums = Checksums::default();
        for name in [TARBALL, IMAGES, INSTALL_SCRIPT] {
            sums.insert(name, &self.sha256(name));
        }
        std::fs::write(self.dir.join(CHECKSUMS), sums.render()).unwrap();
    }

    /// The sha256 of one release file.
    pub fn sha256(&self, name: &str) -> String {
        hex::encode(Sha256::digest(std::fs::read(self.dir.join(name)).unwrap()))
    }

    /// Change one byte of `name` after the checksum file was written.
    pub fn corrupt(&self, name: &str) {
        let path = self.dir.join(name);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        std::fs::write(path, bytes).unwrap();
    }
}

/// The real kubectl of this machine (the fixture's nodes probe readiness with it).
fn kubectl() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
        .expect("kubectl must be installed: the rke2 test fixture probes readiness with it")
}

/// A path to `binary` the test nodes can see: nodes mount their own /usr/local and /root, so a
/// binary under those is copied beside the release first.
fn visible_to_nodes(parent: &Path, binary: &Path) -> String {
    let binary = binary.canonicalize().unwrap();
    if !["/usr/local", "/root"]
        .iter()
        .any(|d| binary.starts_with(d))
    {
        return binary.display().to_string();
    }
    let copy = parent.join(binary.file_name().unwrap());
    std::fs::copy(&binary, &copy).unwrap();
    copy.display().to_string()
}

fn write_exec(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A plain HTTP/1.1 file server on loopback: the "mirror" of the tests.
pub struct Mirror {
    /// Base URL, such as `http://127.0.0.1:PORT`.
    pub url: String,
    /// Requests answered so far.
    pub requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Mirror {
    /// Serve the files of `dir`.
    pub async fn serve(dir: &Path) -> Mirror {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let (dir, counter) = (dir.to_path_buf(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (dir, counter) = (dir.clone(), counter.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n")
                        && stream.read(&mut byte).await.unwrap_or(0) == 1
                    {
                        head.push(byte[0]);
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let line = String::from_utf8_lossy(&head)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let path = line.split_whitespace().nth(1).unwrap_or("/");
                    let name = path.trim_start_matches('/').replace("%2B", "+");
                    let response = match std::fs::read(dir.join(&name)) {
                        Ok(body) if !name.contains("..") => {
                            let mut r = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            r.extend_from_slice(&body);
                            r
                        }
                        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                    };
                    let _ = stream.write_all(&response).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Mirror {
            url,
            requests,
            task,
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.task.abort();
    }
}

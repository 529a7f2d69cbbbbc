//! One authenticated SSH connection (I/O): exec with timeouts and streamed, verified uploads.
//!
//! Kept whole (over 500 lines): connection, exec and upload share the session's channel and
//! timeout handling, and the remote receive script it runs is tested next to it.

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate, decode_secret_key};
use russh::{ChannelMsg, ChannelWriteHalf, Disconnect, Preferred, cipher};
use tokio::sync::OnceCell;

use super::hostkey::{self, KeyVerdict};
use super::quote::{Cmd, Script};
use super::{ExecOutput, NodeAccess, SshError, Uploaded};

/// Most bytes kept of a command's stdout or stderr.
const OUTPUT_CAP: usize = 8 << 20;

/// Bytes an upload reads from disk at a time, handed to russh whole (it cuts them into packets).
const UPLOAD_CHUNK: usize = 1 << 20;

/// Chunks read ahead of the network, so disk reads overlap with encryption and sending.
const UPLOAD_READ_AHEAD: usize = 4;

/// Ciphers in order of preference: AES-GCM first, which ring runs on AES-NI and OpenSSH on
/// OpenSSL's AES-NI code, so both ends of an upload spend less CPU than with chacha20-poly1305
/// (russh's first choice); the rest keep hosts without AES-GCM reachable.
const CIPHERS: &[cipher::Name] = &[
    cipher::AES_256_GCM,
    cipher::AES_128_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_CTR,
    cipher::AES_192_CTR,
    cipher::AES_128_CTR,
];

/// What a remote command reads on its standard input.
pub enum Stdin<'a> {
    /// Nothing: the input is closed at once.
    Empty,
    /// These bytes.
    Bytes(&'a [u8]),
    /// A local file, streamed in large chunks.
    File {
        /// The open file.
        file: std::fs::File,
        /// Its path, for messages.
        path: &'a Path,
    },
}

/// SHA-256 on the node, printed as `<hex> <name>`: OpenSSL when installed (SHA extensions make
/// it several times faster than coreutils' `sha256sum`), else `sha256sum`.
const HASH: &str = "hash() { if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r \"$@\"; else sha256sum \"$@\"; fi; }";

/// Receives an upload on the node: `$1` directory, `$2` partial path, `$3` final path, `$4`
/// expected sha256, `$5` mode, `$6` size. The stream is written and hashed at once (`tee`); a
/// short write shows in the size. A mismatch removes the partial file and prints
/// `mk8-mismatch <sha256> <size>`.
const RECEIVE: &str = r#"set -e
mkdir -p -- "$1"
actual=$(tee -- "$2" | hash | cut -d ' ' -f 1)
size=$(wc -c < "$2" | tr -d ' ')
if [ "$actual" != "$4" ] || [ "$size" != "$6" ]; then
  rm -f -- "$2"
  echo "mk8-mismatch $actual $size"
  exit 3
fi
chmod -- "$5" "$2"
mv -f -- "$2" "$3"
"#;

/// Prints the sha256 of `$1`; fails when it cannot be read.
const SHA256_OF: &str = r#"[ -f "$1" ] && hash "$1""#;

/// An authenticated connection to one node.
pub struct Session {
    handle: Handle<Verifier>,
    host: String,
    user: String,
    /// How the host key was accepted.
    pub verdict: KeyVerdict,
    /// Set once passwordless sudo worked for a non-root user (failures are checked again).
    sudo_works: OnceCell<()>,
}

/// The russh handler: checks the host key and remembers the verdict.
struct Verifier {
    host: String,
    port: u16,
    policy: super::HostKeyPolicy,
    verdict: Arc<Mutex<Option<KeyVerdict>>>,
}

/// Error type of the handler: russh's own, or our refusal of the host key.
#[derive(Debug)]
enum HandlerError {
    Ssh(russh::Error),
    Refused(SshError),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

impl client::Handler for Verifier {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_key else {
            return Err(HandlerError::Refused(SshError::Session {
                host: hostkey::display_host(&self.host, self.port),
                reason: "host certificates are not supported; offer a plain host key".into(),
            }));
        };
        let verdict = hostkey::verify(&self.host, self.port, key, &self.policy)
            .map_err(HandlerError::Refused)?;
        *self.verdict.lock().expect("verdict lock") = Some(verdict);
        Ok(true)
    }
}

impl Session {
    /// Connect, verify the host key and authenticate, all within `timeout`.
    pub async fn connect(node: &NodeAccess, timeout: Duration) -> Result<Self, SshError> {
        let host = node.endpoint();
        let key = decode_secret_key(
            &node.credentials.private_key,
            node.credentials.passphrase.as_deref(),
        )
        .map_err(|e| SshError::Key(e.to_string()))?;
        let verdict = Arc::new(Mutex::new(None));
        let verifier = Verifier {
            host: node.address.clone(),
            port: node.port,
            policy: node.host_keys.clone(),
            verdict: verdict.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(Duration::from_secs(300)),
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 4,
            window_size: 8 << 20,
            maximum_packet_size: 65535,
            nodelay: true,
            preferred: Preferred {
                cipher: Cow::Borrowed(CIPHERS),
                ..Preferred::DEFAULT
            },
            ..Default::default()
        });
        let connect = async {
            let mut handle = client::connect(config, (node.address.as_str(), node.port), verifier)
                .await
                .map_err(|e| match e {
                    HandlerError::Refused(e) => e,
                    HandlerError::Ssh(russh::Error::IO(io)) => SshError::Connect {
                        host: host.clone(),
                        reason: io.to_string(),
                    },
                    HandlerError::Ssh(e) => SshError::Session {
                        host: host.clone(),
                        reason: e.to_string(),
                    },
                })?;
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| session_error(&host, e))?
                .flatten();
            let auth = handle
                .authenticate_publickey(
                    node.user.clone(),
                    PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await
                .map_err(|e| session_error(&host, e))?;
            if !auth.success() {
                return Err(SshError::Auth {
                    host: host.clone(),
                    user: node.user.clone(),
                });
            }
            Ok(handle)
        };
        let handle =
            tokio::time::timeout(timeout, connect)
                .await
                .map_err(|_| SshError::Timeout {
                    host: host.clone(),
                    what: "connecting".into(),
                    after: timeout,
                })??;
        let verdict = verdict
            .lock()
            .expect("verdict lock")
            .clone()
            .unwrap_or(KeyVerdict::Trusted);
        Ok(Self {
            handle,
            host,
            user: node.user.clone(),
            verdict,
            sudo_works: OnceCell::new(),
        })
    }

    /// Whether the connection is gone (the pool then opens a new one).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// The login user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Run `command` (a complete, quoted command line) as the login user, feeding it `stdin`.
    pub async fn exec(
        &self,
        command: &str,
        stdin: Stdin<'_>,
        timeout: Duration,
        what: &str,
    ) -> Result<ExecOutput, SshError> {
        let run = async {
            let channel = self
                .handle
                .channel_open_session()
                .await
                .map_err(|e| session_error(&self.host, e))?;
            channel
                .exec(true, command)
                .await
                .map_err(|e| session_error(&self.host, e))?;
            let (mut reader, writer) = channel.split();
            let send = async {
                let fed = feed(&writer, stdin).await;
                if fed.is_ok() {
                    let _ = writer.eof().await;
                } else {
                    // Closing without EOF: the command must not take a truncated input for all.
                    let _ = writer.close().await;
                }
                fed
            };
            let collect = async {
                let mut out = ExecOutput::default();
                while let Some(msg) = reader.wait().await {
                    match msg {
                        ChannelMsg::Data { data } => append(&mut out.stdout, &data),
                        ChannelMsg::ExtendedData { data, ext: 1 } => append(&mut out.stderr, &data),
                        ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
                        _ => {}
                    }
                }
                out
            };
            let (fed, out) = tokio::join!(send, collect);
            fed.map(|()| out)
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| SshError::Timeout {
                host: self.host.clone(),
                what: what.to_string(),
                after: timeout,
            })?
    }

    /// Run `script` as root: as it is for root, through `sudo -n sh -c` for other users once
    /// passwordless sudo is known to work for them.
    pub async fn exec_as_root(
        &self,
        script: &Script,
        stdin: Stdin<'_>,
        timeout: Duration,
        what: &str,
    ) -> Result<ExecOutput, SshError> {
        self.check_sudo(timeout).await?;
        self.exec(&script.clone().as_root(&self.user), stdin, timeout, what)
            .await
    }

    /// Run a script as root (through `sudo -n` for other users).
    pub async fn run(
        &self,
        script: &Script,
        timeout: Duration,
        what: &str,
    ) -> Result<ExecOutput, SshError> {
        self.exec_as_root(script, Stdin::Empty, timeout, what).await
    }

    /// For a non-root user, make sure `sudo -n sh -c` works, so that a missing sudoers rule is
    /// reported as such rather than as the failure of whichever command came first.
    async fn check_sudo(&self, timeout: Duration) -> Result<(), SshError> {
        if self.user == "root" {
            return Ok(());
        }
        self.sudo_works
            .get_or_try_init(|| async {
                let probe = Script::of(Cmd::new("true")).as_root(&self.user);
                let out = self
                    .exec(&probe, Stdin::Empty, timeout, "checking sudo")
                    .await?;
                if out.success() {
                    return Ok(());
                }
                Err(SshError::SudoUnavailable {
                    host: self.host.clone(),
                    user: self.user.clone(),
                    detail: if out.status == Some(127) {
                        "sudo is not installed".into()
                    } else {
                        format!("sudo said: {}", out.stderr_tail().trim())
                    },
                })
            })
            .await
            .map(|_| ())
    }

    /// The sha256 of a remote file, or `None` when it does not exist.
    pub async fn remote_sha256(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<Option<String>, SshError> {
        let script = Script::of(Cmd::new("sh").args([
            "-c",
            &format!("{HASH}\n{SHA256_OF}"),
            "mk8-sha256",
            path,
        ]))
        .quiet();
        let out = self.run(&script, timeout, "sha256").await?;
        if !out.success() {
            return Ok(None);
        }
        Ok(out
            .stdout_text()
            .split_whitespace()
            .next()
            .map(|s| s.trim_start_matches('\\').to_ascii_lowercase()))
    }

    /// Upload `local` to `remote` with `mode`, unless the node already holds that sha256. The
    /// node hashes the bytes as they arrive (one pass, overlapping the transfer) and checks the
    /// size written; only a file that matches takes its final name.
    pub async fn upload(
        &self,
        local: &Path,
        remote: &str,
        sha256: &str,
        mode: &str,
        timeout: Duration,
    ) -> Result<Uploaded, SshError> {
        let expected = sha256.to_ascii_lowercase();
        if self.remote_sha256(remote, timeout).await?.as_deref() == Some(expected.as_str()) {
            return Ok(Uploaded::AlreadyPresent);
        }
        let local_error = |e: std::io::Error| SshError::LocalFile {
            path: local.display().to_string(),
            reason: e.to_string(),
        };
        let file = std::fs::File::open(local).map_err(local_error)?;
        let bytes = file.metadata().map_err(local_error)?.len();
        let dir = Path::new(remote)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        let partial = format!("{remote}.mk8-partial");
        let receive = Script::of(Cmd::new("sh").args([
            "-c",
            &format!("{HASH}\n{RECEIVE}"),
            "mk8-upload",
            &dir,
            &partial,
            remote,
            &expected,
            mode,
            &bytes.to_string(),
        ]));
        let input = Stdin::File { file, path: local };
        let out = self
            .exec_as_root(&receive, input, timeout, "upload")
            .await?;
        let text = out.stdout_text();
        if let Some(found) = text.lines().find_map(|l| l.strip_prefix("mk8-mismatch ")) {
            let mut found = found.split_whitespace();
            let (actual, size) = (found.next().unwrap_or_default(), found.next());
            return Err(SshError::ChecksumMismatch {
                host: self.host.clone(),
                path: remote.to_string(),
                expected,
                actual: match size {
                    Some(size) if size != bytes.to_string() => {
                        format!("{actual} ({size} of {bytes} bytes written)")
                    }
                    _ => actual.to_string(),
                },
            });
        }
        if !out.success() {
            return Err(self.remote_error("receiving a file", &out));
        }
        Ok(Uploaded::Transferred { bytes })
    }

    /// Close the connection politely.
    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }

    fn remote_error(&self, what: &str, out: &ExecOutput) -> SshError {
        SshError::Remote {
            host: self.host.clone(),
            what: what.to_string(),
            status: out.status,
            stderr: out.stderr_tail(),
        }
    }
}

/// Send `stdin` down the channel. A local read failure is returned; a closed channel is not (a
/// command that exits early closes it, and its exit status says why).
async fn feed(writer: &ChannelWriteHalf<client::Msg>, stdin: Stdin<'_>) -> Result<(), SshError> {
    match stdin {
        Stdin::Empty => Ok(()),
        Stdin::Bytes(bytes) => {
            let _ = writer.data_bytes(Bytes::copy_from_slice(bytes)).await;
            Ok(())
        }
        Stdin::File { file, path } => {
            let (chunks, mut received) = tokio::sync::mpsc::channel(UPLOAD_READ_AHEAD);
            let reading = tokio::task::spawn_blocking(move || read_chunks(file, chunks));
            let mut result = Ok(());
            while let Some(chunk) = received.recv().await {
                match chunk {
                    Ok(chunk) => {
                        if writer.data_bytes(chunk).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        result = Err(SshError::LocalFile {
                            path: path.display().to_string(),
                            reason: e.to_string(),
                        });
                        break;
                    }
                }
            }
            // Dropping the receiver stops the reader when the channel closed early.
            drop(received);
            let _ = reading.await;
            result
        }
    }
}

/// Read `file` in [`UPLOAD_CHUNK`]s into `chunks` until its end, a read error or a closed receiver.
fn read_chunks(mut file: std::fs::File, chunks: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>) {
    loop {
        let mut chunk = Vec::with_capacity(UPLOAD_CHUNK);
        let item = match (&mut file)
            .take(UPLOAD_CHUNK as u64)
            .read_to_end(&mut chunk)
        {
            Ok(0) => return,
            Ok(_) => Ok(Bytes::from(chunk)),
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if chunks.blocking_send(item).is_err() || failed {
            return;
        }
    }
}

fn append(buffer: &mut Vec<u8>, data: &[u8]) {
    let room = OUTPUT_CAP.saturating_sub(buffer.len());
    buffer.extend_from_slice(&data[..data.len().min(room)]);
}

fn session_error(host: &str, e: russh::Error) -> SshError {
    SshError::Session {
        host: host.to_string(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use sha2::{Digest, Sha256};

    use super::{HASH, RECEIVE, SHA256_OF};

    /// A directory of links to the tools the node scripts use, with or without `openssl`.
    fn tools(dir: &std::path::Path, openssl: bool) -> std::path::PathBuf {
        let bin = dir.join(if openssl {
            "bin-openssl"
        } else {
            "bin-coreutils"
        });
        std::fs::create_dir_all(&bin).unwrap();
        let mut names = vec![
            "sh",
            "tee",
            "sha256sum",
            "cut",
            "wc",
            "tr",
            "mkdir",
            "rm",
            "chmod",
            "mv",
        ];
        if openssl {
            names.push("openssl");
        }
        for name in names {
            let found = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| std::path::Path::new(d).join(name))
                .find(|p| p.exists())
                .unwrap_or_else(|| panic!("{name} is not installed"));
            std::os::unix::fs::symlink(found, bin.join(name)).unwrap();
        }
        bin
    }

    /// Run RECEIVE locally with `data` on stdin, expecting `expected`.
    fn receive(
        bin: &std::path::Path,
        dir: &std::path::Path,
        data: &[u8],
        expected: &str,
    ) -> (bool, String) {
        let target = dir.join("sub/file");
        let partial = dir.join("sub/file.mk8-partial");
        let mut child = Command::new(bin.join("sh"))
            .env_clear()
            .env("PATH", bin)
            .args(["-c", &format!("{HASH}\n{RECEIVE}"), "mk8-upload"])
            .arg(dir.join("sub"))
            .arg(&partial)
            .arg(&target)
            .args([expected, "0640", &data.len().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(data).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!partial.exists(), "the partial file is always gone");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    #[test]
    fn the_node_hashes_what_it_receives_with_openssl_or_sha256sum() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
        let digest = hex::encode(Sha256::digest(&data));
        for openssl in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let bin = tools(dir.path(), openssl);
            let (ok, out) = receive(&bin, dir.path(), &data, &digest);
            assert!(ok, "{out}");
            let landed = dir.path().join("sub/file");
            assert_eq!(std::fs::read(&landed).unwrap(), data);
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&landed).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o640);
            // The same tool reads a file's digest back; a missing file prints nothing and fails.
            let sha = |path: &std::path::Path| {
                Command::new(bin.join("sh"))
                    .env_clear()
                    .env("PATH", &bin)
                    .args(["-c", &format!("{HASH}\n{SHA256_OF}"), "mk8-sha256"])
                    .arg(path)
                    .output()
                    .unwrap()
            };
            let read_back = sha(&landed);
            assert!(String::from_utf8_lossy(&read_back.stdout).starts_with(&digest));
            assert!(!sha(&dir.path().join("absent")).status.success());

            // A wrong digest: refused with what the node computed, nothing left behind.
            std::fs::remove_file(&landed).unwrap();
            let (ok, out) = receive(&bin, dir.path(), &data, &"0".repeat(64));
            assert!(!ok);
            assert_eq!(
                out.trim(),
                format!("mk8-mismatch {digest} {}", data.len()),
                "openssl: {openssl}"
            );
            assert!(!landed.exists());
        }
    }
}

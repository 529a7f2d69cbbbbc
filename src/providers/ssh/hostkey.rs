//! Host key verification (pure): pinned fingerprints, known_hosts content, explicit learning.

use russh::keys::HashAlg;
pub use russh::keys::PublicKey;

use super::SshError;

/// How a host's key is to be checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostKeyPolicy {
    /// A pinned `SHA256:...` fingerprint; when set, known_hosts is not consulted.
    pub pinned: Option<String>,
    /// known_hosts content (OpenSSH format; hashed entries are not supported).
    pub known_hosts: String,
    /// Accept a key for a host that has no entry at all, and report it as learned.
    pub accept_new: bool,
}

/// What verification concluded about an acceptable key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    /// The key matched a pinned fingerprint or a known_hosts entry.
    Trusted,
    /// The host was unknown and learning was enabled: record this fingerprint.
    Learned(String),
}

/// The `SHA256:...` fingerprint of a public key, as `ssh-keygen -lf` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Check `presented`, the key `host:port` offered, against `policy`.
pub fn verify(
    host: &str,
    port: u16,
    presented: &PublicKey,
    policy: &HostKeyPolicy,
) -> Result<KeyVerdict, SshError> {
    let actual = fingerprint(presented);
    if let Some(pinned) = &policy.pinned {
        return if pinned.trim_end_matches('=') == actual.trim_end_matches('=') {
            Ok(KeyVerdict::Trusted)
        } else {
            Err(SshError::HostKeyMismatch {
                host: display_host(host, port),
                expected: pinned.clone(),
                actual,
            })
        };
    }
    let known = known_keys(&policy.known_hosts, host, port);
    if known.iter().any(|k| k.key_data() == presented.key_data()) {
        return Ok(KeyVerdict::Trusted);
    }
    if let Some(first) = known
        .iter()
        .find(|k| k.algorithm() == presented.algorithm())
        .or(known.first())
    {
        return Err(SshError::HostKeyMismatch {
            host: display_host(host, port),
            expected: fingerprint(first),
            actual,
        });
    }
    if policy.accept_new {
        Ok(KeyVerdict::Learned(actual))
    } else {
        Err(SshError::UnknownHostKey {
            host: display_host(host, port),
            fingerprint: actual,
        })
    }
}

/// `host` or `[host]:port`, the way known_hosts names a host.
pub fn display_host(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// A known_hosts line for `key` of `host:port` (what the harness and learned keys write).
pub fn known_hosts_line(host: &str, port: u16, key: &PublicKey) -> String {
    format!(
        "{} {}",
        display_host(host, port),
        key.to_openssh().unwrap_or_default()
    )
}

/// Keys recorded for `host:port` in known_hosts `content`; `@revoked` and hashed lines are skipped.
fn known_keys(content: &str, host: &str, port: u16) -> Vec<PublicKey> {
    let wanted = display_host(host, port);
    content
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('@'))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let hosts = fields.next()?;
            let algorithm = fields.next()?;
            let blob = fields.next()?;
            let matches = hosts
                .split(',')
                .any(|pattern| pattern.eq_ignore_ascii_case(&wanted));
            if !matches {
                return None;
            }
            PublicKey::from_openssh(&format!("{algorithm} {blob}")).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two real ed25519 public keys (generated with ssh-keygen for these tests).
    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIw+jBvrLRkBQR9sJyZExcSU2rXYQ1ZUYkOJOphjbnEY";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMj3cDPZH33C+2Q5zsP2eVCBKULnSY6d85QuJt9dbaT3";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn policy(known_hosts: &str) -> HostKeyPolicy {
        HostKeyPolicy {
            known_hosts: known_hosts.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_listed_key_is_trusted() {
        let p = policy(&format!("# fleet\n10.77.0.2,node-1 {KEY_A}\n"));
        assert_eq!(
            verify("10.77.0.2", 22, &key(KEY_A), &p),
            Ok(KeyVerdict::Trusted)
        );
        assert_eq!(
            verify("node-1", 22, &key(KEY_A), &p),
            Ok(KeyVerdict::Trusted)
        );
    }

    #[test]
    fn non_default_ports_use_bracket_form() {
        let p = policy(&format!("[10.77.0.2]:2222 {KEY_A}\n10.77.0.2 {KEY_B}\n"));
        assert_eq!(
            verify("10.77.0.2", 2222, &key(KEY_A), &p),
            Ok(KeyVerdict::Trusted)
        );
        assert!(verify("10.77.0.2", 2222, &key(KEY_B), &p).is_err());
    }

    #[test]
    fn a_different_key_is_a_mismatch_naming_host_and_both_fingerprints() {
        let p = policy(&format!("10.77.0.2 {KEY_A}\n"));
        let err = verify("10.77.0.2", 22, &key(KEY_B), &p).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("10.77.0.2"), "{msg}");
        assert!(msg.contains(&fingerprint(&key(KEY_A))), "{msg}");
        assert!(msg.contains(&fingerprint(&key(KEY_B))), "{msg}");
        // Learning never overrides a recorded key.
        let learning = HostKeyPolicy {
            accept_new: true,
            ..p
        };
        assert!(verify("10.77.0.2", 22, &key(KEY_B), &learning).is_err());
    }

    #[test]
    fn unknown_hosts_are_refused_unless_learning_is_enabled() {
        let p = policy(&format!("10.77.0.9 {KEY_A}\n"));
        let err = verify("10.77.0.2", 22, &key(KEY_B), &p).unwrap_err();
        assert!(matches!(err, SshError::UnknownHostKey { .. }));
        let learning = HostKeyPolicy {
            accept_new: true,
            ..p
        };
        assert_eq!(
            verify("10.77.0.2", 22, &key(KEY_B), &learning),
            Ok(KeyVerdict::Learned(fingerprint(&key(KEY_B))))
        );
    }

    #[test]
    fn a_pinned_fingerprint_wins_over_known_hosts() {
        let p = HostKeyPolicy {
            pinned: Some(fingerprint(&key(KEY_B))),
            known_hosts: format!("10.77.0.2 {KEY_A}\n"),
            accept_new: false,
        };
        assert_eq!(
            verify("10.77.0.2", 22, &key(KEY_B), &p),
            Ok(KeyVerdict::Trusted)
        );
        let err = verify("10.77.0.2", 22, &key(KEY_A), &p).unwrap_err();
        assert!(matches!(err, SshError::HostKeyMismatch { .. }));
    }

    #[test]
    fn fingerprints_look_like_ssh_keygen_output() {
        // `ssh-keygen -lf` printed this for KEY_A.
        assert_eq!(
            fingerprint(&key(KEY_A)),
            "SHA256:F3de4hUzrAoI/1B6pNjZlND/w6DdK3kuH9p9U64RiP4"
        );
    }
}

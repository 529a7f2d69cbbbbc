//! Host key verification (pure): pinned fingerprints, known_hosts content, explicit learning.

use russh::keys::HashAlg;
pub use russh::keys::PublicKey;

use super::SshError;
use super::known_hosts::{self, Entry, Marker};

/// How a host's key is to be checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostKeyPolicy {
    /// A pinned `SHA256:...` fingerprint; when set, known_hosts is consulted only for `@revoked`.
    pub pinned: Option<String>,
    /// known_hosts content (OpenSSH format: plain, wildcard and hashed names, `@revoked`).
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
///
/// A key known_hosts marks `@revoked` for the host is refused first, even when it is pinned or
/// learning is on: a revocation is the one statement no other setting overrides.
pub fn verify(
    host: &str,
    port: u16,
    presented: &PublicKey,
    policy: &HostKeyPolicy,
) -> Result<KeyVerdict, SshError> {
    let actual = fingerprint(presented);
    let entries = known_hosts::entries_for(&policy.known_hosts, &display_host(host, port));
    let (revoked, known): (Vec<Entry>, Vec<Entry>) = entries
        .into_iter()
        .partition(|e| e.marker == Marker::Revoked);
    if revoked
        .iter()
        .any(|e| e.key.key_data() == presented.key_data())
    {
        return Err(SshError::HostKeyRevoked {
            host: display_host(host, port),
            fingerprint: actual,
        });
    }
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
    if known
        .iter()
        .any(|e| e.key.key_data() == presented.key_data())
    {
        return Ok(KeyVerdict::Trusted);
    }
    if let Some(first) = known
        .iter()
        .find(|e| e.key.algorithm() == presented.algorithm())
        .or(known.first())
    {
        return Err(SshError::HostKeyMismatch {
            host: display_host(host, port),
            expected: fingerprint(&first.key),
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

    /// What `ssh-keygen -H` made of `10.77.0.2 KEY_A`, `[10.77.0.2]:2222 KEY_B` and
    /// `node-1,10.77.0.9 KEY_B` (OpenSSH 9.2; it writes one line per name of a list).
    const HASHED: &str = "\
|1|jw/55yrYjFdQDkebBI/Z30jEDLo=|ylrduskIBIlW++aPgJmvemdZbPk= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIw+jBvrLRkBQR9sJyZExcSU2rXYQ1ZUYkOJOphjbnEY
|1|6+jH2XC5A2F9gRlf5/E1f2iHGZg=|kWLHTFNh+N2/Ad0QhNYDmNVUD0o= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMj3cDPZH33C+2Q5zsP2eVCBKULnSY6d85QuJt9dbaT3
|1|6OrLAtGA0JLVI9VrCpyBiLtQfBw=|0Cvwh/rm3tFKmwh/FAOMQbxGjjA= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMj3cDPZH33C+2Q5zsP2eVCBKULnSY6d85QuJt9dbaT3
|1|VHm4qjQ8LUlk6LEb/RcEyRpyd4A=|MA6w0vPnNGhZn/PUppc5yg4YAB0= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMj3cDPZH33C+2Q5zsP2eVCBKULnSY6d85QuJt9dbaT3
";

    #[test]
    fn hashed_entries_written_by_ssh_keygen_are_trusted() {
        let p = policy(HASHED);
        for (host, port, k) in [
            ("10.77.0.2", 22, KEY_A),
            ("10.77.0.2", 2222, KEY_B),
            ("node-1", 22, KEY_B),
            ("NODE-1", 22, KEY_B),
            ("10.77.0.9", 22, KEY_B),
        ] {
            assert_eq!(
                verify(host, port, &key(k), &p),
                Ok(KeyVerdict::Trusted),
                "{host}:{port}"
            );
        }
        // A host whose name hashes to no entry is unknown, not trusted.
        assert!(matches!(
            verify("10.77.0.3", 22, &key(KEY_A), &p),
            Err(SshError::UnknownHostKey { .. })
        ));
    }

    #[test]
    fn a_hashed_entry_holding_another_key_is_a_mismatch_naming_both_fingerprints() {
        let err = verify("10.77.0.2", 22, &key(KEY_B), &policy(HASHED)).unwrap_err();
        assert_eq!(
            err,
            SshError::HostKeyMismatch {
                host: "10.77.0.2".into(),
                expected: fingerprint(&key(KEY_A)),
                actual: fingerprint(&key(KEY_B)),
            }
        );
    }

    #[test]
    fn comma_separated_and_wildcard_patterns_name_hosts() {
        let p = policy(&format!("node-1,10.77.*,!10.77.0.66 {KEY_A}\n"));
        for host in ["node-1", "10.77.0.2", "10.77.12.2"] {
            assert_eq!(verify(host, 22, &key(KEY_A), &p), Ok(KeyVerdict::Trusted));
        }
        assert!(matches!(
            verify("10.77.0.66", 22, &key(KEY_A), &p),
            Err(SshError::UnknownHostKey { .. })
        ));
    }

    #[test]
    fn a_revoked_key_is_refused_whatever_else_trusts_it() {
        let known = format!("10.77.0.2 {KEY_A}\n@revoked 10.77.* {KEY_A}\n");
        let err = verify("10.77.0.2", 22, &key(KEY_A), &policy(&known)).unwrap_err();
        assert_eq!(
            err,
            SshError::HostKeyRevoked {
                host: "10.77.0.2".into(),
                fingerprint: fingerprint(&key(KEY_A)),
            }
        );
        assert!(err.to_string().contains("10.77.0.2") && err.to_string().contains("@revoked"));
        // Neither a pin nor learning overrides the revocation.
        let pinned = HostKeyPolicy {
            pinned: Some(fingerprint(&key(KEY_A))),
            known_hosts: known.clone(),
            accept_new: true,
        };
        assert!(matches!(
            verify("10.77.0.2", 22, &key(KEY_A), &pinned),
            Err(SshError::HostKeyRevoked { .. })
        ));
        let learning = HostKeyPolicy {
            known_hosts: format!("@revoked * {KEY_A}\n"),
            accept_new: true,
            ..Default::default()
        };
        assert!(matches!(
            verify("10.77.0.5", 22, &key(KEY_A), &learning),
            Err(SshError::HostKeyRevoked { .. })
        ));
        // A revocation names a key, not a host: another key of the host is still checked as usual.
        assert_eq!(
            verify("10.77.0.5", 22, &key(KEY_B), &learning),
            Ok(KeyVerdict::Learned(fingerprint(&key(KEY_B))))
        );
        // It applies only to the hosts its patterns name.
        let elsewhere = policy(&format!("10.77.0.2 {KEY_A}\n@revoked 10.99.* {KEY_A}\n"));
        assert_eq!(
            verify("10.77.0.2", 22, &key(KEY_A), &elsewhere),
            Ok(KeyVerdict::Trusted)
        );
    }

    #[test]
    fn cert_authority_lines_trust_no_plain_key() {
        let p = policy(&format!("@cert-authority * {KEY_A}\n"));
        assert!(matches!(
            verify("10.77.0.2", 22, &key(KEY_A), &p),
            Err(SshError::UnknownHostKey { .. })
        ));
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

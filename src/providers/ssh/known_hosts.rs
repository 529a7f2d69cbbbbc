//! known_hosts content (pure): OpenSSH's line format, host patterns and hashed host names.
//!
//! A line is `[@marker] patterns algorithm base64-key [comment]`. `patterns` is a comma-separated
//! list of names (`host` for port 22, `[host]:port` otherwise) with `*` and `?` wildcards and `!`
//! negation, or one hashed name `|1|<base64 salt>|<base64 HMAC-SHA1(salt, name)>` as written by
//! `ssh-keygen -H` and `HashKnownHosts yes`. Names compare case-insensitively, as in OpenSSH.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use russh::keys::PublicKey;

/// What a line says about its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// A plain line: the key is the host's.
    Trusted,
    /// `@revoked`: the key must never be accepted for the matching hosts.
    Revoked,
}

/// A line of known_hosts that applies to the host being checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Whether the key is trusted or revoked.
    pub marker: Marker,
    /// The key on the line.
    pub key: PublicKey,
}

/// The entries of known_hosts `content` whose patterns match `name` (`host` or `[host]:port`).
///
/// Lines that cannot be parsed, and `@cert-authority` lines, are skipped: mk8 refuses host
/// certificates (see `session.rs`), so a certificate authority can never vouch for a plain host
/// key and its lines have nothing to say about one.
pub fn entries_for(content: &str, name: &str) -> Vec<Entry> {
    let name = name.to_ascii_lowercase();
    content
        .lines()
        .filter_map(|line| parse_line(line, &name))
        .collect()
}

/// The first line of known_hosts `content` that OpenSSH could not use, said as a sentence
/// (`line 2 ...`): `[@revoked|@cert-authority] host-patterns key-type base64-key [comment]`,
/// with a key that decodes. `entries_for` skips such lines, so without this check a typo
/// silently leaves a host without a trusted key.
pub fn check(content: &str) -> Result<(), String> {
    for (i, line) in content.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = i + 1;
        let mut fields: Vec<&str> = line.split_whitespace().collect();
        if let Some(marker) = fields.first().filter(|f| f.starts_with('@')) {
            if !matches!(*marker, "@revoked" | "@cert-authority") {
                return Err(format!(
                    "line {n} starts with the unknown marker {marker}; OpenSSH knows @revoked and @cert-authority"
                ));
            }
            fields.remove(0);
        }
        let [patterns, algorithm, blob, ..] = fields[..] else {
            return Err(format!(
                "line {n} is not `host-patterns key-type base64-key` (as ssh-keyscan prints it): {line:?}"
            ));
        };
        if patterns.is_empty() {
            return Err(format!("line {n} names no host: {line:?}"));
        }
        if let Err(e) = PublicKey::from_openssh(&format!("{algorithm} {blob}")) {
            return Err(format!(
                "the {algorithm} key on line {n} (host {patterns}) does not decode ({e}): copy the line again from ssh-keyscan or the host's /etc/ssh/ssh_host_*_key.pub"
            ));
        }
    }
    Ok(())
}

fn parse_line(line: &str, name: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace().peekable();
    let marker = match fields.peek().copied() {
        Some("@revoked") => Marker::Revoked,
        // Unknown markers make the whole line invalid in OpenSSH too.
        Some(m) if m.starts_with('@') => return None,
        _ => Marker::Trusted,
    };
    if marker == Marker::Revoked {
        fields.next();
    }
    let patterns = fields.next()?;
    let algorithm = fields.next()?;
    let blob = fields.next()?;
    if !host_matches(patterns, name) {
        return None;
    }
    let key = PublicKey::from_openssh(&format!("{algorithm} {blob}")).ok()?;
    Some(Entry { marker, key })
}

/// Whether `patterns` (a known_hosts host field) names `name` (already lowercase).
fn host_matches(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',').filter(|p| !p.is_empty()) {
        if pattern.starts_with("|1|") {
            matched |= hashed_name_matches(pattern, name);
        } else if let Some(negated) = pattern.strip_prefix('!') {
            // A matching negation excludes the host whatever else the line lists.
            if crate::selector::glob(&negated.to_ascii_lowercase(), name) {
                return false;
            }
        } else {
            matched |= crate::selector::glob(&pattern.to_ascii_lowercase(), name);
        }
    }
    matched
}

/// Whether a hashed name `|1|salt|hash` is the hash of `name`. Malformed ones match nothing.
fn hashed_name_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern["|1|".len()..].split('|');
    let (Some(salt), Some(hash), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    // OpenSSH fixed this format to HMAC-SHA1; it only hides names, it protects nothing.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, name.as_bytes(), &hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIw+jBvrLRkBQR9sJyZExcSU2rXYQ1ZUYkOJOphjbnEY";

    fn matches(patterns: &str, name: &str) -> bool {
        !entries_for(&format!("{patterns} {KEY_A}\n"), name).is_empty()
    }

    #[test]
    fn a_line_openssh_cannot_use_is_named() {
        let good = format!(
            "# a comment\n10.0.0.1,[10.0.0.1]:2222 {KEY_A} root@host\n@revoked * {KEY_A}\n\n"
        );
        assert_eq!(check(&good), Ok(()));
        let err = check(&format!("{good}10.0.0.2 ssh-ed25519\n")).unwrap_err();
        assert!(
            err.starts_with("line 5 is not `host-patterns key-type base64-key`"),
            "{err}"
        );
        let err = check("10.0.0.2 ssh-ed25519 FAKE-PLACEHOLDER\n").unwrap_err();
        assert!(
            err.starts_with("the ssh-ed25519 key on line 1 (host 10.0.0.2) does not decode"),
            "{err}"
        );
        let err = check(&format!("@trusted 10.0.0.2 {KEY_A}\n")).unwrap_err();
        assert!(err.contains("unknown marker @trusted"), "{err}");
    }

    #[test]
    fn the_samples_known_hosts_placeholders_are_well_formed() {
        // Read at run time: a test's include_str! would make the image build need the samples.
        let samples = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/samples/01-secrets.yaml"
        ))
        .expect("the samples are readable");
        let samples = samples.as_str();
        let ssh = serde_yaml::Deserializer::from_str(samples)
            .map(|d| serde_yaml::Value::deserialize(d).expect("a sample document"))
            .find(|d| d["metadata"]["name"] == "fleet-ssh")
            .expect("the fleet-ssh sample Secret");
        let known_hosts = ssh["stringData"]["known_hosts"].as_str().unwrap();
        assert_eq!(check(known_hosts), Ok(()));
        assert_eq!(entries_for(known_hosts, "10.0.0.11").len(), 1);
    }

    #[test]
    fn wildcards_and_negations_follow_openssh() {
        assert!(matches("10.77.*", "10.77.3.2"));
        assert!(matches("node-?.fleet", "node-1.fleet"));
        assert!(!matches("node-?.fleet", "node-10.fleet"));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("[10.77.*]:2222", "[10.77.0.2]:2222"));
        assert!(!matches("[10.77.*]:2222", "10.77.0.2"));
        // A negation wins over any positive pattern of the same line.
        assert!(!matches("10.77.*,!10.77.0.9", "10.77.0.9"));
        assert!(matches("10.77.*,!10.77.0.9", "10.77.0.2"));
        assert!(
            !matches("!10.77.0.9", "10.77.0.2"),
            "a negation alone names nobody"
        );
        assert!(matches("Node-1", "node-1"));
    }

    #[test]
    fn markers_and_malformed_lines() {
        let content = format!(
            "@revoked * {KEY_A}\n@cert-authority * {KEY_A}\n@bogus * {KEY_A}\n\
             node-1 ssh-ed25519 not-base64\nnode-1\n  # node-1 {KEY_A}\n"
        );
        let entries = entries_for(&content, "node-1");
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].marker, Marker::Revoked);
    }

    #[test]
    fn hashed_names_match_only_their_host() {
        // HMAC-SHA1 under the salt 0x00..0x13 of "10.77.0.2", computed with Python's hmac module.
        let hashed = "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|ocwzSg7I2QfOSRlhaOmSUvhIKFY=";
        assert!(matches(hashed, "10.77.0.2"));
        assert!(!matches(hashed, "10.77.0.3"));
        assert!(!matches(hashed, "[10.77.0.2]:2222"));
        assert!(!matches("|1|AAEC|not base64!", "10.77.0.2"));
        assert!(!matches("|1|AAECAwQFBgcICQoLDA0ODxAREhM=", "10.77.0.2"));
    }
}

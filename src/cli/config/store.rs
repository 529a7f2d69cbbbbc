//! Stored AWS credentials of `mk8 config aws` (pure parsing and rendering, plus the file path).
//!
//! The file is `config_dir()/aws-credentials`, mode 0600, in the INI form of `~/.aws/credentials`
//! with one section `[mk8]`: `aws_access_key_id`, `aws_secret_access_key`, optional
//! `aws_session_token` and `region`.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Static AWS keys and an optional region.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsKeys {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials.
    pub session_token: Option<String>,
    /// Default region.
    pub region: Option<String>,
}

impl std::fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Where `mk8 config aws` keeps its credentials.
pub fn path() -> PathBuf {
    crate::fleet::config_dir().join("aws-credentials")
}

/// Sections of an INI file: name → key → value (comments and blank lines skipped).
pub fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
            sections.entry(current.clone()).or_default();
        } else if let Some((key, value)) = line.split_once('=') {
            sections
                .entry(current.clone())
                .or_default()
                .insert(key.trim().to_lowercase(), value.trim().to_string());
        }
    }
    sections
}

impl AwsKeys {
    /// Keys from one INI section, or why there are none.
    pub fn from_section(section: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| section.get(k).filter(|v| !v.is_empty()).cloned();
        match (get("aws_access_key_id"), get("aws_secret_access_key")) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(Self {
                access_key_id,
                secret_access_key,
                session_token: get("aws_session_token"),
                region: get("region"),
            }),
            _ => Err("has no aws_access_key_id and aws_secret_access_key".into()),
        }
    }

    /// Keys of profile `name` from the texts of ~/.aws/credentials and ~/.aws/config (the
    /// config file names its sections `[profile NAME]`, except `[default]`).
    pub fn from_profile(name: &str, credentials: &str, config: &str) -> Result<Self, String> {
        let creds = parse_ini(credentials);
        let conf = parse_ini(config);
        let conf_section = conf
            .get(&format!("profile {name}"))
            .or_else(|| (name == "default").then(|| conf.get("default")).flatten());
        let mut merged = conf_section.cloned().unwrap_or_default();
        if let Some(c) = creds.get(name) {
            merged.extend(c.clone());
        }
        if !creds.contains_key(name) && conf_section.is_none() {
            return Err(format!(
                "AWS profile {name:?} is not in ~/.aws/credentials or ~/.aws/config"
            ));
        }
        Self::from_section(&merged).map_err(|_| {
            format!(
                "AWS profile {name:?} has no static keys (SSO, role or process credentials?): run `aws configure export-credentials --profile {name} --format env`, then `mk8 config aws --from-env`"
            )
        })
    }

    /// The stored file's text.
    pub fn to_ini(&self) -> String {
        let mut out = format!(
            "# AWS credentials stored by `mk8 config aws` (remove with `mk8 config aws remove`)\n[mk8]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            self.access_key_id, self.secret_access_key
        );
        if let Some(token) = &self.session_token {
            out.push_str(&format!("aws_session_token = {token}\n"));
        }
        if let Some(region) = &self.region {
            out.push_str(&format!("region = {region}\n"));
        }
        out
    }

    /// Parse the stored file.
    pub fn from_ini(text: &str) -> Result<Self, String> {
        let sections = parse_ini(text);
        let section = sections.get("mk8").ok_or("has no [mk8] section")?;
        Self::from_section(section)
    }

    /// A description without the secret: `access key AKIA…WXYZ, session token: set, region …`.
    pub fn redacted(&self) -> String {
        format!(
            "access key: {}\nsecret key: (hidden)\nsession token: {}\nregion: {}",
            redact(&self.access_key_id),
            if self.session_token.is_some() {
                "set"
            } else {
                "not set"
            },
            self.region.as_deref().unwrap_or("(none)")
        )
    }
}

/// First 4 and last 4 characters; short values are hidden entirely.
pub fn redact(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 12 {
        return "…".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_keys_round_trip_and_redact_without_the_secret() {
        let keys = AwsKeys {
            access_key_id: "AKIAABCDEFGHWXYZ".into(),
            secret_access_key: "canary-secret".into(),
            session_token: Some("tok".into()),
            region: Some("eu-west-1".into()),
        };
        assert_eq!(AwsKeys::from_ini(&keys.to_ini()).unwrap(), keys);
        let shown = keys.redacted();
        assert!(shown.contains("AKIA…WXYZ"), "{shown}");
        assert!(shown.contains("session token: set"), "{shown}");
        assert!(!shown.contains("canary-secret"));
        assert!(!format!("{keys:?}").contains("canary-secret"));
        assert_eq!(redact("short"), "…");
    }

    #[test]
    fn profiles_merge_credentials_and_config_and_explain_sso_profiles() {
        let creds = "[default]\naws_access_key_id = A1\naws_secret_access_key = S1\n[dev]\naws_access_key_id=A2\naws_secret_access_key=S2\n";
        let config = "[default]\nregion = us-east-1\n[profile dev]\nregion = eu-west-1\n[profile sso]\nsso_start_url = https://x\n";
        let dev = AwsKeys::from_profile("dev", creds, config).unwrap();
        assert_eq!(
            (dev.access_key_id.as_str(), dev.region.as_deref()),
            ("A2", Some("eu-west-1"))
        );
        let default = AwsKeys::from_profile("default", creds, config).unwrap();
        assert_eq!(default.region.as_deref(), Some("us-east-1"));
        let sso = AwsKeys::from_profile("sso", creds, config).unwrap_err();
        assert!(sso.contains("export-credentials"), "{sso}");
        let missing = AwsKeys::from_profile("nope", creds, config).unwrap_err();
        assert!(missing.contains("not in ~/.aws"), "{missing}");
    }
}

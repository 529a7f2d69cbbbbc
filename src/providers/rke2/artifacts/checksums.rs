//! The release checksum file (pure): `sha256sum` output, `<hex>  <file name>` per line.

use std::collections::BTreeMap;

use super::ArtifactError;

/// File name → lowercase hex sha256, as listed in `sha256sum-<arch>.txt`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checksums(BTreeMap<String, String>);

impl Checksums {
    /// Parse `sha256sum` output; binary-mode markers (`*name`) and blank lines are accepted.
    pub fn parse(text: &str) -> Result<Self, ArtifactError> {
        let mut map = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || ArtifactError::BadChecksumFile {
                reason: format!("line {} is not `<sha256>  <file name>`: {line:?}", i + 1),
            };
            let (digest, name) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
            let name = name.trim_start().trim_start_matches('*');
            if digest.len() != 64
                || !digest.bytes().all(|b| b.is_ascii_hexdigit())
                || name.is_empty()
            {
                return Err(bad());
            }
            let name = name.rsplit('/').next().unwrap_or(name);
            map.insert(name.to_string(), digest.to_ascii_lowercase());
        }
        Ok(Self(map))
    }

    /// The expected sha256 of `file`.
    pub fn get(&self, file: &str) -> Option<&str> {
        self.0.get(file).map(String::as_str)
    }

    /// Add or replace an entry.
    pub fn insert(&mut self, file: &str, sha256: &str) {
        self.0.insert(file.to_string(), sha256.to_ascii_lowercase());
    }

    /// Render in `sha256sum` format.
    pub fn render(&self) -> String {
        self.0
            .iter()
            .map(|(name, digest)| format!("{digest}  {name}\n"))
            .collect()
    }

    /// The listed file names.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4";

    #[test]
    fn parses_sha256sum_output() {
        let c = Checksums::parse(&format!(
            "{A}  rke2.linux-amd64.tar.gz\n\n{}  *rke2-images.linux-amd64.tar.zst\n",
            A.to_uppercase()
        ))
        .unwrap();
        assert_eq!(c.get("rke2.linux-amd64.tar.gz"), Some(A));
        assert_eq!(c.get("rke2-images.linux-amd64.tar.zst"), Some(A));
        assert_eq!(c.get("install.sh"), None);
        assert_eq!(Checksums::parse(&c.render()).unwrap(), c);
    }

    #[test]
    fn malformed_lines_are_named() {
        let err = Checksums::parse(&format!("{A}  ok\nnot-a-digest  file\n")).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}

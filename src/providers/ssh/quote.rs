//! POSIX shell quoting (pure): every remote command mk8 runs is assembled from these pieces.
//!
//! A value is either passed through unchanged (when it holds only characters no shell treats
//! specially) or wrapped in single quotes, with each embedded `'` written as `'\''`. Inside single
//! quotes a POSIX shell interprets nothing — not `$`, `` ` ``, `;`, `\` nor newlines — so a quoted
//! value is always exactly one word.

/// Quote one value as a single shell word.
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:,+@%".contains(&b));
    if plain {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A simple command: a program and its arguments, each quoted when rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    words: Vec<String>,
}

impl Cmd {
    /// Start a command running `program`.
    pub fn new(program: &str) -> Self {
        Self {
            words: vec![program.to_string()],
        }
    }

    /// Append one argument.
    pub fn arg(mut self, value: impl AsRef<str>) -> Self {
        self.words.push(value.as_ref().to_string());
        self
    }

    /// Append several arguments.
    pub fn args<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.words
            .extend(values.into_iter().map(|v| v.as_ref().to_string()));
        self
    }

    /// The command line, every word quoted.
    pub fn render(&self) -> String {
        self.words
            .iter()
            .map(|w| quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A shell script assembled from quoted commands joined by fixed operators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    text: String,
}

impl Script {
    /// A script made of one command.
    pub fn of(cmd: Cmd) -> Self {
        Self { text: cmd.render() }
    }

    /// Run `cmd` only when everything before succeeded.
    pub fn and(mut self, cmd: Cmd) -> Self {
        self.push(" && ", &cmd.render());
        self
    }

    /// Run `cmd` only when what comes before failed.
    pub fn or(mut self, cmd: Cmd) -> Self {
        self.push(" || ", &cmd.render());
        self
    }

    /// Run `cmd` after what comes before, whatever its outcome.
    pub fn then(mut self, cmd: Cmd) -> Self {
        self.push("; ", &cmd.render());
        self
    }

    /// Redirect the standard output of the last command into `path` (quoted).
    pub fn stdout_to(mut self, path: &str) -> Self {
        self.text.push_str(" > ");
        self.text.push_str(&quote(path));
        self
    }

    /// Discard the standard error of the last command.
    pub fn quiet(mut self) -> Self {
        self.text.push_str(" 2>/dev/null");
        self
    }

    /// Run the script through `sudo -n sh -c` (for non-root users), or as it is for root.
    pub fn as_root(self, user: &str) -> String {
        if user == "root" {
            self.text
        } else {
            Cmd::new("sudo")
                .args(["-n", "sh", "-c", &self.text])
                .render()
        }
    }

    /// The script text.
    pub fn render(&self) -> &str {
        &self.text
    }

    fn push(&mut self, op: &str, rendered: &str) {
        if !self.text.is_empty() {
            self.text.push_str(op);
        }
        self.text.push_str(rendered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// What `sh` makes of a rendered command line: its words, as `printf` prints them.
    fn words_seen_by_sh(line: &str) -> Vec<String> {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {line}"))
            .output()
            .expect("sh runs");
        assert!(out.status.success(), "sh failed on {line:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(str::to_string)
            .collect()
    }

    const HOSTILE: &[&str] = &[
        "x; touch /tmp/pwned",
        "it's",
        "'",
        "''",
        "$(id)",
        "`id`",
        "a\nb",
        "a b\tc",
        "\\",
        "$HOME",
        "*",
        "-n",
        "",
        "\"quoted\"",
        "a'b'c';rm -rf /;'",
        "ünïcödé",
        "&& false ||",
        "> /tmp/x",
    ];

    #[test]
    fn plain_values_stay_readable() {
        assert_eq!(quote("node-1.example"), "node-1.example");
        assert_eq!(quote("/var/lib/rancher/rke2"), "/var/lib/rancher/rke2");
        assert_eq!(quote("INSTALL_RKE2_TYPE=agent"), "INSTALL_RKE2_TYPE=agent");
    }

    #[test]
    fn hostile_values_are_single_quoted() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("x; touch /tmp/pwned"), "'x; touch /tmp/pwned'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(id)"), "'$(id)'");
    }

    #[test]
    fn the_shell_sees_each_hostile_value_as_exactly_one_word() {
        for value in HOSTILE {
            let seen = words_seen_by_sh(&quote(value));
            assert_eq!(seen, vec![value.to_string()], "value {value:?}");
        }
        let line = Cmd::new("x").args(HOSTILE).render();
        let seen = words_seen_by_sh(&line);
        assert_eq!(
            seen[1..],
            HOSTILE.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..]
        );
    }

    #[test]
    fn sudo_wrapping_keeps_every_word_intact() {
        let script = Script::of(Cmd::new("printf").arg("%s\\0").args(HOSTILE));
        // Simulate `sudo -n sh -c SCRIPT` by dropping `sudo -n` and letting sh run the rest.
        let wrapped = script.as_root("ubuntu");
        let without_sudo = wrapped.strip_prefix("sudo -n ").expect("sudo prefix");
        let out = Command::new("sh")
            .arg("-c")
            .arg(without_sudo)
            .output()
            .unwrap();
        let seen: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(str::to_string)
            .collect();
        assert_eq!(
            seen,
            HOSTILE.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        );
        assert_eq!(Script::of(Cmd::new("id")).as_root("root"), "id");
    }

    #[test]
    fn scripts_join_commands_with_fixed_operators() {
        let s = Script::of(Cmd::new("mkdir").args(["-p", "/a b"]))
            .and(Cmd::new("cat"))
            .stdout_to("/a b/f;x")
            .or(Cmd::new("true"))
            .then(Cmd::new("echo").arg("done"));
        assert_eq!(
            s.render(),
            "mkdir -p '/a b' && cat > '/a b/f;x' || true; echo done"
        );
    }
}

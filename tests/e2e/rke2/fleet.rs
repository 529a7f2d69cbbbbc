//! Test fleet: OpenSSH sshd nodes, each in its own network namespace and private mount namespace.
//!
//! Node `k` lives in netns `mk8n<k>`, reached from the host over a veth pair (`mk8h<k>` on the host
//! with 10.77.k.1/24, `mk8e<k>` in the node with 10.77.k.2/24). Inside, `/etc/rancher`,
//! `/var/lib/rancher`, `/usr/local` and `/root` are bind mounts of per-node temp directories, so every node
//! sees only its own files while the test reads them through [`Node::host_path`].
//!
//! Opt-in ([`Fleet::start_with_users`]): non-root login users. The node then also sees its own
//! copies of `/etc/passwd`, `/etc/shadow`, `/etc/group` and `/etc/sudoers`, bound over the host's
//! inside its mount namespace, so the host's accounts and sudo rules are never changed.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mk8::providers::ssh::{Credentials, HostKeyPolicy, NodeAccess};

/// Where this process looks for a free subnet octet next (tests run in parallel threads).
static NEXT_SUBNET: AtomicU32 = AtomicU32::new(0);

/// The directories a node keeps private, bound from its temp dir.
const PRIVATE_DIRS: &[(&str, &str)] = &[
    ("/etc/rancher", "etc-rancher"),
    ("/var/lib/rancher", "var-lib-rancher"),
    ("/usr/local", "usr-local"),
    // An empty home: bash started by sshd sources ~/.bashrc, and the host's may block (a stale
    // pyenv rehash lock was seen to hang every command).
    ("/root", "root-home"),
];

/// The files that define accounts and sudo rights; a node with login users binds its own copies.
const ACCOUNT_FILES: &[&str] = &["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/sudoers"];

/// User and group id of the first login user; the others follow.
const FIRST_LOGIN_UID: u32 = 47001;

/// A non-root login user added to every node of a fleet (see [`Fleet::start_with_users`]).
#[derive(Clone, Copy, Debug)]
pub struct LoginUser {
    /// Login name; the host must not have a user of that name.
    pub name: &'static str,
    /// Whether a sudoers rule lets the user run anything as root without a password.
    pub passwordless_sudo: bool,
}

/// One sshd test node.
pub struct Node {
    /// Subnet octet: the node is 10.77.<k>.2.
    pub k: u32,
    /// Network namespace name.
    pub netns: String,
    /// Address reachable from the host namespace.
    pub address: String,
    /// The node's private directory on the host.
    pub root: PathBuf,
    /// The node's host public key (OpenSSH format).
    pub host_public_key: String,
}

impl Node {
    /// Where a path inside the node's private directories lives on the host.
    pub fn host_path(&self, inside: &str) -> PathBuf {
        for (mount, dir) in PRIVATE_DIRS {
            if let Some(rest) = inside.strip_prefix(mount) {
                return self.root.join(dir).join(rest.trim_start_matches('/'));
            }
        }
        panic!("{inside} is not inside a private directory of the test node");
    }

    /// Stop the node's sshd and wait until it is gone and connections to it are refused: a
    /// signal sent is not a process stopped.
    pub fn stop_sshd(&self) {
        let Ok(pid) = std::fs::read_to_string(self.root.join("sshd.pid")) else {
            return;
        };
        let pid = pid.trim().to_string();
        let _ = Command::new("kill").arg(&pid).status();
        let addr: SocketAddr = format!("{}:22", self.address).parse().unwrap();
        let started = Instant::now();
        while process_alive(&pid)
            || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "sshd {pid} of {} still runs or accepts connections 10 s after SIGTERM",
                self.netns
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start (or restart) the node's sshd inside its namespaces and wait until it accepts.
    pub fn start_sshd(&self) {
        let mut mounts: Vec<String> = PRIVATE_DIRS
            .iter()
            .map(|(mount, dir)| {
                format!(
                    "mkdir -p {mount} && mount --bind {} {mount}",
                    self.root.join(dir).display()
                )
            })
            .collect();
        let accounts = self.root.join("accounts");
        if accounts.is_dir() {
            mounts.extend(ACCOUNT_FILES.iter().map(|file| {
                let copy = accounts.join(Path::new(file).file_name().unwrap());
                format!("mount --bind {} {file}", copy.display())
            }));
        }
        let script = format!(
            "{} && exec /usr/sbin/sshd -f {} -E {}",
            mounts.join(" && "),
            self.root.join("sshd_config").display(),
            self.root.join("sshd.log").display()
        );
        run(&[
            "ip",
            "netns",
            "exec",
            &self.netns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ]);
        let addr: SocketAddr = format!("{}:22", self.address).parse().unwrap();
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "sshd of {} did not come up; log: {}",
                self.netns,
                std::fs::read_to_string(self.root.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Read a file of the node, by its path inside the node.
    pub fn read(&self, inside: &str) -> Option<String> {
        std::fs::read_to_string(self.host_path(inside)).ok()
    }
}

/// N test nodes plus the client key and known_hosts that reach them; torn down on drop.
pub struct Fleet {
    /// The nodes.
    pub nodes: Vec<Node>,
    /// Client private key (OpenSSH format), authorised on every node as root.
    pub client_key: String,
    /// known_hosts content listing every node's host key.
    pub known_hosts: String,
    dir: tempfile::TempDir,
}

impl Fleet {
    /// Start `n` nodes, or `None` (with a loud message) when the tests do not run as root.
    pub fn start(test: &str, n: usize) -> Option<Fleet> {
        Self::start_with_users(test, n, &[])
    }

    /// Start `n` nodes that also have the non-root login `users` (authorised with the fleet's
    /// client key), or `None` when the tests do not run as root. Panics when sudo is not
    /// installed and users are asked for: those tests are about sudo.
    pub fn start_with_users(test: &str, n: usize, users: &[LoginUser]) -> Option<Fleet> {
        if !is_root() {
            eprintln!(
                "\n!!! SKIPPING {test}: the SSH fleet needs root (network namespaces, mounts); run the tests as root\n"
            );
            return None;
        }
        std::fs::create_dir_all("/run/sshd").expect("sshd privilege separation dir");
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").expect("enabling IPv4 forwarding");
        let dir = tempfile::Builder::new()
            .prefix("mk8-fleet-")
            .tempdir()
            .expect("fleet dir");
        let client = dir.path().join("client_key");
        keygen(&client, "mk8-test-client");
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(client.with_extension("pub"), &authorized).unwrap();
        let mut fleet = Fleet {
            nodes: Vec::new(),
            client_key: std::fs::read_to_string(&client).unwrap(),
            known_hosts: String::new(),
            dir,
        };
        for i in 0..n {
            let k = allocate_subnet();
            let node = fleet.create_node(k, i, &authorized);
            fleet
                .known_hosts
                .push_str(&format!("{} {}\n", node.address, node.host_public_key));
            fleet.nodes.push(node);
        }
        fleet.add_login_users(users);
        for node in &fleet.nodes {
            node.start_sshd();
        }
        Some(fleet)
    }

    /// How mk8 reaches `node` as root with the fleet's key and known_hosts.
    pub fn access(&self, node: &Node) -> NodeAccess {
        NodeAccess {
            address: node.address.clone(),
            port: 22,
            user: "root".into(),
            credentials: Credentials {
                private_key: self.client_key.clone(),
                passphrase: None,
            },
            host_keys: HostKeyPolicy {
                known_hosts: self.known_hosts.clone(),
                ..Default::default()
            },
        }
    }

    /// How mk8 reaches `node` as `user` (root or one of the fleet's login users).
    pub fn access_as(&self, node: &Node, user: &str) -> NodeAccess {
        NodeAccess {
            user: user.into(),
            ..self.access(node)
        }
    }

    /// The fleet's scratch directory (for artifacts and such).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Give every node its own account files with `users` added, and their home directories.
    fn add_login_users(&self, users: &[LoginUser]) {
        if users.is_empty() {
            return;
        }
        assert!(
            Path::new("/usr/bin/sudo").exists() && Path::new("/etc/sudoers").exists(),
            "\n!!! sudo is not installed, and the non-root user tests are about sudo: \
             apt-get install sudo (.ci/run installs it)\n"
        );
        // sshd reads the fleet's authorized_keys and enters the home directory as the user.
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let host = |file: &str| {
            let mut text = std::fs::read_to_string(file).unwrap();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text
        };
        for node in &self.nodes {
            let (mut passwd, mut shadow, mut group) =
                (host("/etc/passwd"), host("/etc/shadow"), host("/etc/group"));
            let mut sudoers = String::from(
                "Defaults env_reset\n\
                 Defaults secure_path=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\n\
                 root ALL=(ALL:ALL) ALL\n",
            );
            for (uid, user) in (FIRST_LOGIN_UID..).zip(users) {
                let name = user.name;
                assert!(
                    !passwd.lines().any(|l| l.split(':').next() == Some(name)),
                    "the host already has a user {name}: pick another name for the test"
                );
                let home = node.root.join(format!("home-{name}"));
                std::fs::create_dir_all(&home).unwrap();
                std::os::unix::fs::chown(&home, Some(uid), Some(uid)).unwrap();
                passwd.push_str(&format!(
                    "{name}:x:{uid}:{uid}:mk8 test user:{}:/bin/sh\n",
                    home.display()
                ));
                // `*`: no password, but not locked (`!`), which sshd refuses even for keys.
                shadow.push_str(&format!("{name}:*:20000:0:99999:7:::\n"));
                group.push_str(&format!("{name}:x:{uid}:\n"));
                if user.passwordless_sudo {
                    sudoers.push_str(&format!("{name} ALL=(ALL:ALL) NOPASSWD: ALL\n"));
                }
            }
            let accounts = node.root.join("accounts");
            std::fs::create_dir_all(&accounts).unwrap();
            for (file, text, mode) in [
                ("passwd", passwd, 0o644),
                ("shadow", shadow, 0o640),
                ("group", group, 0o644),
                // sudo refuses a sudoers file that anyone but root may write.
                ("sudoers", sudoers, 0o440),
            ] {
                let path = accounts.join(file);
                std::fs::write(&path, text).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
    }

    fn create_node(&self, k: u32, i: usize, authorized: &Path) -> Node {
        let netns = format!("mk8n{k}");
        let host_if = format!("mk8h{k}");
        let node_if = format!("mk8e{k}");
        remove_namespace(&netns, &host_if);
        run(&["ip", "netns", "add", &netns]);
        run(&[
            "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &node_if,
        ]);
        run(&["ip", "link", "set", &node_if, "netns", &netns]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("10.77.{k}.1/24"),
            "dev",
            &host_if,
        ]);
        run(&["ip", "link", "set", &host_if, "up"]);
        let in_ns = |args: &[&str]| {
            let mut full = vec!["ip", "netns", "exec", netns.as_str()];
            full.extend_from_slice(args);
            run(&full);
        };
        in_ns(&[
            "ip",
            "addr",
            "add",
            &format!("10.77.{k}.2/24"),
            "dev",
            &node_if,
        ]);
        in_ns(&["ip", "link", "set", &node_if, "up"]);
        in_ns(&["ip", "link", "set", "lo", "up"]);
        // Nodes reach each other (agents join through a server) routed by the host.
        in_ns(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &format!("10.77.{k}.1"),
        ]);
        let root = self.dir.path().join(format!("node{i}"));
        for (_, dir) in PRIVATE_DIRS {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let host_key = root.join("ssh_host_ed25519_key");
        keygen(&host_key, &netns);
        let address = format!("10.77.{k}.2");
        let config = format!(
            "Port 22\nListenAddress {address}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
             PermitRootLogin yes\nStrictModes no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nMaxSessions 64\nMaxStartups 64\n\
             LogLevel VERBOSE\n",
            host_key.display(),
            root.join("sshd.pid").display(),
            authorized.display()
        );
        std::fs::write(root.join("sshd_config"), config).unwrap();
        let public = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
        let host_public_key = public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        Node {
            k,
            netns,
            address,
            root,
            host_public_key,
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for node in &self.nodes {
            remove_namespace(&node.netns, &format!("mk8h{}", node.k));
            let _ = std::fs::remove_file(Path::new(CLAIMS).join(node.k.to_string()));
        }
    }
}

/// Kill every process of a namespace (sshd, stand-ins it started), then delete it and its veth.
fn remove_namespace(netns: &str, host_if: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", netns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).output();
        }
    }
    let _ = Command::new("ip").args(["netns", "del", netns]).output();
    let _ = Command::new("ip").args(["link", "del", host_if]).output();
}

/// Claims of subnet octets, shared by every test process on the machine.
const CLAIMS: &str = "/run/mk8-test-fleet";

/// A subnet octet no live test process uses: claimed by a file holding our pid. A claim whose
/// process is gone is a leftover of a crashed run: its namespace and veth are removed and reused.
fn allocate_subnet() -> u32 {
    std::fs::create_dir_all(CLAIMS).expect("claims dir");
    let me = std::process::id();
    let start = NEXT_SUBNET.fetch_add(1, Ordering::SeqCst);
    for offset in 0..250 {
        let k = (start + offset) % 250 + 1;
        let claim = Path::new(CLAIMS).join(k.to_string());
        let owner = std::fs::read_to_string(&claim)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        match owner {
            Some(pid) if pid == me || Path::new(&format!("/proc/{pid}")).exists() => continue,
            Some(_) => {
                let _ = std::fs::remove_file(&claim);
            }
            None => {}
        }
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&claim);
        if let Ok(mut file) = created {
            use std::io::Write;
            let _ = write!(file, "{me}");
            NEXT_SUBNET.store(k, Ordering::SeqCst);
            return k;
        }
    }
    panic!("the test fleet ran out of 10.77.x.0/24 subnets ({CLAIMS} has 250 live claims)");
}

/// Whether a process exists and is not a zombie waiting to be reaped.
fn process_alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name: `pid (comm) S ...`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn keygen(path: &Path, comment: &str) {
    let _ = std::fs::remove_file(path);
    run(&[
        "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        comment,
        "-f",
        path.to_str().unwrap(),
    ]);
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Run a setup command; panics with its output when it fails.
pub fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{} cannot run: {e}", args[0]));
    assert!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

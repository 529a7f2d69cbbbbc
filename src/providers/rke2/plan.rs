//! The install plan (pure): desired nodes + the markers observed on them → ordered steps.
//!
//! Every step leaves a marker `/var/lib/rancher/rke2/.mk8/<step>` holding a digest of its inputs;
//! a step whose marker already holds the digest it would write is finished and is not planned
//! again. Order: all nodes prepare (preflight, upload, config, install) concurrently; then the
//! first server starts and must be ready; then the other servers, one at a time; then the agents,
//! `maxParallel` at a time.
//!
//! A node that already ran (it holds a `ready` marker) and must start again (new version, new
//! config) is drained through the cluster's API before its `start` and uncordoned after its
//! `ready`, in its own turn of the joining order: servers one at a time, agents `maxParallel` at a
//! time. A fresh install drains nothing. The `drain` and `uncordon` markers hold the start digest
//! they belong to, so a run interrupted after the drain still uncordons the node.
//!
//! Kept whole (just over 500 lines): the step list is one ordered table, read top to bottom.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::artifacts::{INSTALL_SCRIPT, VerifiedRelease};
use crate::providers::Upload;
use crate::providers::ssh::{Cmd, Script};

/// Where markers live on a node (removed with RKE2's data dir by `rke2-uninstall.sh`).
pub const MARKER_DIR: &str = "/var/lib/rancher/rke2/.mk8";
/// Where release files are placed on a node, per version.
pub const ARTIFACT_DIR: &str = "/var/lib/rancher/mk8/artifacts";
/// RKE2's config file.
pub const CONFIG_PATH: &str = "/etc/rancher/rke2/config.yaml";
/// RKE2's install prefix used by mk8.
pub const PREFIX: &str = "/usr/local";
/// Least free space (KiB) under /var/lib/rancher before installing.
pub const MIN_FREE_KIB: u64 = 1 << 20;

/// RKE2 node roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Control plane and etcd.
    Server,
    /// Worker.
    Agent,
}

impl Role {
    /// `server` or `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Agent => "agent",
        }
    }
}

/// The steps of a node install, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StepKind {
    /// OS, architecture, free disk, ports.
    Preflight,
    /// Release files placed on the node.
    Upload,
    /// `/etc/rancher/rke2/config.yaml` written.
    Config,
    /// `install.sh` ran.
    Install,
    /// The running node was cordoned and its pods evicted (only before a restart).
    Drain,
    /// The service was started.
    Start,
    /// The node answered its readiness probe.
    Ready,
    /// The drained node was made schedulable again.
    Uncordon,
}

impl StepKind {
    /// All steps in order.
    pub const ALL: [StepKind; 8] = [
        StepKind::Preflight,
        StepKind::Upload,
        StepKind::Config,
        StepKind::Install,
        StepKind::Drain,
        StepKind::Start,
        StepKind::Ready,
        StepKind::Uncordon,
    ];

    /// The marker file name and status label.
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Preflight => "preflight",
            StepKind::Upload => "upload",
            StepKind::Config => "config",
            StepKind::Install => "install",
            StepKind::Drain => "drain",
            StepKind::Start => "start",
            StepKind::Ready => "ready",
            StepKind::Uncordon => "uncordon",
        }
    }

    /// Whether the step belongs to preparation (done for all nodes at once) or to joining (done
    /// in the node's turn: drain, start, ready, uncordon).
    pub fn prepares(self) -> bool {
        self < StepKind::Drain
    }
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run a script; non-zero exit fails the step.
    Run(Script),
    /// Run a script with this content on its standard input (config.yaml holds the token).
    RunWithInput(Script, Vec<u8>),
    /// Upload files (skipped per file when the node holds the same sha256).
    Upload(Vec<Upload>),
    /// Poll until the node is ready or the step times out: through the cluster's API when
    /// `api_check` is set and the API can be reached (one request, no process on the node),
    /// otherwise with `probe` over SSH.
    WaitReady {
        /// The readiness probe run on the node.
        probe: Script,
        /// The Node and kubelet version to check through the cluster's API instead (agents: a
        /// server's readiness is its own API answering, which only the probe on it shows).
        api_check: Option<ApiCheck>,
    },
    /// Cordon the node and evict its pods through the cluster's API (not over SSH).
    Drain,
    /// Make the node schedulable again through the cluster's API (not over SSH).
    Uncordon,
}

/// A readiness check through the cluster's API: Node `node` Ready with `kubelet_version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiCheck {
    /// The Node's name.
    pub node: String,
    /// The kubelet version it must report.
    pub kubelet_version: String,
}

/// One planned step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Which step.
    pub kind: StepKind,
    /// Digest of its inputs, written to its marker when it succeeds.
    pub digest: String,
    /// What to do.
    pub action: Action,
}

impl Step {
    /// The script that records this step as finished.
    pub fn marker_script(&self) -> Script {
        Script::of(Cmd::new("mkdir").args(["-p", MARKER_DIR]))
            .and(Cmd::new("printf").args(["%s", &self.digest]))
            .stdout_to(&format!("{MARKER_DIR}/{}", self.kind.name()))
    }
}

/// A node as the spec wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredNode {
    /// Kubernetes node name (unique in the plan).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Rendered config.yaml.
    pub config_yaml: String,
    /// Whether the node needs the registration address reachable (joiners).
    pub registration: Option<String>,
}

/// The steps of one node still to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePlan {
    /// Node name.
    pub name: String,
    /// Preflight, upload, config, install — whichever are not finished.
    pub prepare: Vec<Step>,
    /// Drain, start, ready and uncordon — whichever are not finished (drain and uncordon only
    /// when a running node restarts).
    pub join: Vec<Step>,
}

impl NodePlan {
    /// Whether nothing is left to do.
    pub fn is_done(&self) -> bool {
        self.prepare.is_empty() && self.join.is_empty()
    }
}

/// A group of nodes that join together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wave {
    /// Node names.
    pub nodes: Vec<String>,
    /// How many join at once.
    pub parallel: usize,
    /// Servers block every later wave until they are ready.
    pub role: Role,
}

/// The whole plan: per-node steps and the order of joining.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Per-node steps, servers first.
    pub nodes: Vec<NodePlan>,
    /// Joining order: first server, every other server alone, then the agents.
    pub waves: Vec<Wave>,
}

/// Markers observed on each node: node name → step name → digest.
pub type Observed = BTreeMap<String, BTreeMap<String, String>>;

/// Build the plan. `nodes` lists servers in joining order (the first one bootstraps the
/// cluster), then agents; `release` holds the verified files; `version` is the RKE2 version.
pub fn build(
    nodes: &[DesiredNode],
    observed: &Observed,
    release: &VerifiedRelease,
    version: &str,
    max_parallel: usize,
) -> Plan {
    let dir = format!("{ARTIFACT_DIR}/{version}");
    let uploads: Vec<Upload> = release
        .files
        .iter()
        .map(|f| Upload {
            local: f.path.clone(),
            remote: format!("{dir}/{}", f.name),
            sha256: f.sha256.clone(),
            mode: if f.name == INSTALL_SCRIPT {
                "0755"
            } else {
                "0644"
            }
            .into(),
        })
        .collect();
    let upload_digest = digest(
        uploads
            .iter()
            .flat_map(|u| [u.remote.as_str(), u.sha256.as_str()]),
    );
    // Joiners check the registration address in preflight when it should answer already (the
    // node it registers through is not part of this plan), else right before they start.
    let bootstrap_in_plan = nodes.iter().any(|n| n.registration.is_none());
    let mut plans = Vec::new();
    for node in nodes {
        let role = node.role.as_str();
        let config_digest = digest([node.config_yaml.as_str()]);
        let install_digest = digest([version, role, &upload_digest]);
        let start_digest = digest([install_digest.as_str(), &config_digest]);
        let steps = [
            (
                StepKind::Preflight,
                digest([role]),
                Action::Run(preflight(
                    node.role,
                    node.registration.as_deref().filter(|_| !bootstrap_in_plan),
                )),
            ),
            (
                StepKind::Upload,
                upload_digest.clone(),
                Action::Upload(uploads.clone()),
            ),
            (
                StepKind::Config,
                config_digest,
                Action::RunWithInput(write_config(), node.config_yaml.clone().into_bytes()),
            ),
            (
                StepKind::Install,
                install_digest,
                Action::Run(install(&dir, node.role, version)),
            ),
            (
                StepKind::Start,
                start_digest.clone(),
                Action::Run(start(node.role, node.registration.as_deref())),
            ),
            (
                StepKind::Ready,
                start_digest.clone(),
                Action::WaitReady {
                    probe: readiness(node.role, &node.name, version),
                    api_check: (node.role == Role::Agent).then(|| ApiCheck {
                        node: node.name.clone(),
                        kubelet_version: version.to_string(),
                    }),
                },
            ),
        ];
        let markers = observed.get(&node.name);
        let mut prepare = Vec::new();
        let mut join = Vec::new();
        let mut redo = false;
        for (kind, digest, action) in steps {
            // Once a step is redone, everything after it is redone too.
            let done = !redo && markers.and_then(|m| m.get(kind.name())) == Some(&digest);
            if done {
                continue;
            }
            redo = true;
            let step = Step {
                kind,
                digest,
                action,
            };
            if kind.prepares() {
                prepare.push(step);
            } else {
                join.push(step);
            }
        }
        drain_around_restart(markers, &mut join, &start_digest);
        plans.push(NodePlan {
            name: node.name.clone(),
            prepare,
            join,
        });
    }
    let mut waves = Vec::new();
    for node in nodes.iter().filter(|n| n.role == Role::Server) {
        waves.push(Wave {
            nodes: vec![node.name.clone()],
            parallel: 1,
            role: Role::Server,
        });
    }
    let agents: Vec<String> = nodes
        .iter()
        .filter(|n| n.role == Role::Agent)
        .map(|n| n.name.clone())
        .collect();
    if !agents.is_empty() {
        waves.push(Wave {
            nodes: agents,
            parallel: max_parallel.max(1),
            role: Role::Agent,
        });
    }
    Plan {
        nodes: plans,
        waves,
    }
}

/// A node that has been ready runs workloads: restarting it drains it first and uncordons it
/// once it is ready again. A drain already done for this start digest is not repeated (the run
/// was interrupted after it), but its uncordon is still owed.
fn drain_around_restart(
    markers: Option<&BTreeMap<String, String>>,
    join: &mut Vec<Step>,
    start_digest: &str,
) {
    let marker = |kind: StepKind| markers.and_then(|m| m.get(kind.name())).map(String::as_str);
    let restarts = join.iter().any(|s| s.kind == StepKind::Start);
    let drained = marker(StepKind::Drain) == Some(start_digest);
    let drain = restarts && !drained && marker(StepKind::Ready).is_some();
    if drain {
        join.insert(
            0,
            Step {
                kind: StepKind::Drain,
                digest: start_digest.to_string(),
                action: Action::Drain,
            },
        );
    }
    if drain || (drained && marker(StepKind::Uncordon) != Some(start_digest)) {
        join.push(Step {
            kind: StepKind::Uncordon,
            digest: start_digest.to_string(),
            action: Action::Uncordon,
        });
    }
}

/// The script that lists a node's markers as `<step> <digest>` lines.
pub fn observe_script() -> Script {
    Script::of(Cmd::new("sh").args([
        "-c",
        r#"for f in "$1"/*; do [ -f "$f" ] && printf '%s %s\n' "${f##*/}" "$(cat "$f")"; done; true"#,
        "mk8-observe",
        MARKER_DIR,
    ]))
}

/// Parse the output of [`observe_script`].
pub fn parse_markers(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// RKE2's supervisor port, through which nodes register.
pub const SUPERVISOR_PORT: u16 = 9345;

/// A shell function `reach HOST PORT HOSTPORT`: whether this node can open a TCP connection to
/// the registration address (curl, else bash's /dev/tcp, else nc; assumed reachable when the
/// node has none of them), with a message naming the address when it cannot.
const REACH: &str = r#"
reach() {
  if command -v curl >/dev/null 2>&1; then
    curl -sk --max-time 5 -o /dev/null "https://$3/ping"
    case $? in 6) why="cannot resolve $1" ;; 7) why="cannot connect (refused or no route)" ;; 28) why="timed out" ;; *) return 0 ;; esac
  elif command -v bash >/dev/null 2>&1; then
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null && return 0
    why="cannot connect"
  elif command -v nc >/dev/null 2>&1; then
    nc -z -w 5 "$1" "$2" && return 0
    why="cannot connect"
  else
    return 0
  fi
  echo "$(hostname) cannot reach the registration address $3 (RKE2's supervisor port): $why; check spec.rke2.registrationAddress and the firewalls between the nodes" >&2
  return 1
}
"#;

/// OS, architecture, free disk, the role's ports free, and — given — the registration address
/// reachable.
fn preflight(role: Role, registration: Option<&str>) -> Script {
    let ports: &[&str] = match role {
        Role::Server => &["6443", "9345", "10250"],
        Role::Agent => &["10250"],
    };
    let check = r#"
[ "$(uname -s)" = Linux ] || { echo "preflight: not Linux but $(uname -s)" >&2; exit 1; }
case "$(uname -m)" in x86_64|amd64) ;; *) echo "preflight: architecture $(uname -m) is not amd64" >&2; exit 1 ;; esac
mkdir -p /var/lib/rancher
free=$(df -Pk /var/lib/rancher | awk 'NR==2 {print $4}')
[ "${free:-0}" -ge "$1" ] || { echo "preflight: only ${free}KiB free under /var/lib/rancher, need $1KiB" >&2; exit 1; }
if [ -n "$2" ]; then reach "$2" "$3" "$4" || exit 1; fi
shift 4
[ -f /var/lib/rancher/rke2/.mk8/install ] && exit 0
for port in "$@"; do
  hex=$(printf '%04X' "$port")
  if awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
    echo "preflight: port $port is already in use" >&2; exit 1
  fi
done
"#;
    let (host, hostport) = registration_args(registration);
    let mut args = vec![
        "-c".to_string(),
        format!("{REACH}{check}"),
        "mk8-preflight".to_string(),
        MIN_FREE_KIB.to_string(),
        host,
        SUPERVISOR_PORT.to_string(),
        hostport,
    ];
    args.extend(ports.iter().map(|p| p.to_string()));
    Script::of(Cmd::new("sh").args(args))
}

/// The host and `host:port` of the registration address, or two empty strings.
fn registration_args(registration: Option<&str>) -> (String, String) {
    match registration {
        Some(host) => (
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            super::config::join_host_port(host, SUPERVISOR_PORT),
        ),
        None => (String::new(), String::new()),
    }
}

/// Write config.yaml (from standard input: it holds the token) atomically with mode 0600.
fn write_config() -> Script {
    let partial = format!("{CONFIG_PATH}.mk8-partial");
    Script::of(Cmd::new("umask").arg("077"))
        .and(Cmd::new("mkdir").args(["-p", "/etc/rancher/rke2"]))
        .and(Cmd::new("cat"))
        .stdout_to(&partial)
        .and(Cmd::new("mv").args(["-f", &partial, CONFIG_PATH]))
}

/// Run install.sh from the uploaded files, offline. RKE2's installer ends with `systemctl
/// daemon-reload` unless `INSTALL_RKE2_SKIP_RELOAD` is set, and that call fails (exit 1) on a host
/// where systemd does not run, so the variable is set there — the same test as [`start`] makes.
fn install(dir: &str, role: Role, version: &str) -> Script {
    let script = r#"
if ! { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }; then
  INSTALL_RKE2_SKIP_RELOAD=true; export INSTALL_RKE2_SKIP_RELOAD
fi
exec "$@"
"#;
    Script::of(Cmd::new("sh").args([
        "-c".to_string(),
        script.to_string(),
        "mk8-install".into(),
        "env".into(),
        format!("INSTALL_RKE2_ARTIFACT_PATH={dir}"),
        format!("INSTALL_RKE2_TYPE={}", role.as_str()),
        format!("INSTALL_RKE2_VERSION={version}"),
        format!("INSTALL_RKE2_TAR_PREFIX={PREFIX}"),
        "INSTALL_RKE2_METHOD=tar".into(),
        "sh".into(),
        format!("{dir}/{INSTALL_SCRIPT}"),
    ]))
}

/// Enable and (re)start the service: this step only runs when its inputs changed (new config,
/// new version), so a running service is restarted to pick them up. With systemd running,
/// through `systemctl`; without it (test nodes in network namespaces, minimal containers),
/// `<prefix>/bin/rke2 <role>` runs detached under nohup with its pid in the marker directory.
fn start(role: Role, registration: Option<&str>) -> Script {
    let script = r#"
role="$1"; prefix="$2"; state="$3"
# A joiner registers through the registration address: say so plainly when it cannot reach it.
if [ -n "$4" ]; then reach "$4" "$5" "$6" || exit 1; fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl enable "rke2-$role.service" && exec systemctl restart "rke2-$role.service"
fi
mkdir -p "$state"
if [ -f "$state/rke2.pid" ]; then
  pid="$(cat "$state/rke2.pid")"
  if kill "$pid" 2>/dev/null; then
    i=0
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  fi
fi
nohup "$prefix/bin/rke2" "$role" > "$state/rke2-$role.log" 2>&1 < /dev/null &
echo $! > "$state/rke2.pid"
"#;
    let (host, hostport) = registration_args(registration);
    Script::of(Cmd::new("sh").args([
        "-c".to_string(),
        format!("{REACH}{script}"),
        "mk8-start".into(),
        role.as_str().into(),
        PREFIX.into(),
        MARKER_DIR.into(),
        host,
        SUPERVISOR_PORT.to_string(),
        hostport,
    ]))
}

/// Readiness: the API answers (a server's own, through `rke2.yaml`; an agent's through the
/// kubelet's kubeconfig and its local load balancer) and the node's Node object is `Ready` with
/// the kubelet of `version` — after a restart the Node still shows its old state until the new
/// kubelet reports. One request, through the kubectl RKE2 places in its data directory.
pub fn readiness(role: Role, node: &str, version: &str) -> Script {
    let kubeconfig = match role {
        Role::Server => "/etc/rancher/rke2/rke2.yaml",
        Role::Agent => "/var/lib/rancher/rke2/agent/kubelet.kubeconfig",
    };
    let script = r#"
state=$(/var/lib/rancher/rke2/bin/kubectl --kubeconfig "$1" --request-timeout=8s get node "$2" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.nodeInfo.kubeletVersion}') || exit 1
[ "$state" = "True $3" ] || { echo "node $2 is not Ready with $3 yet (Ready, kubelet: ${state:-unknown})" >&2; exit 1; }
"#;
    Script::of(Cmd::new("sh").args(["-c", script, "mk8-ready", kubeconfig, node, version]))
}

fn digest<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

#[cfg(test)]
mod tests;

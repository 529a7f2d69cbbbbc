//! ArgoCD health checks of mk8's kinds, tested the way ArgoCD tests its built-in ones: for every
//! `health_test.yaml` under `config/argocd/resource_customizations/`, each case's testdata object
//! goes through the directory's `health.lua`, which must return the case's `healthStatus`.
//!
//! The scripts run in `lua5.1` inside a sandbox holding what ArgoCD's Lua VM opens: base (without
//! the loaders or environment access), table, coroutine, package (a `require` that sees only
//! these) and a safe os (`time`, `clock`, `date`). No string or math library, and strings have no
//! methods (`s:find` fails), as in ArgoCD.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_yaml::Value;

use crate::support::repo_root;

/// The directory ArgoCD's layout puts health checks in: `<group>/<Kind>/health.lua`.
const CUSTOMIZATIONS: &str = "config/argocd/resource_customizations";
/// mk8's kinds, each of which must have a health check.
const KINDS: [&str; 4] = ["Cluster", "NodePool", "Stack", "ClusterProfileView"];
/// The statuses ArgoCD accepts from a health script.
const STATUSES: [&str; 6] = [
    "Healthy",
    "Progressing",
    "Degraded",
    "Suspended",
    "Missing",
    "Unknown",
];
/// Fewest cases a kind's `health_test.yaml` may have (one per branch of the scripts, at least).
const MIN_CASES: usize = 4;

/// Runs after `script_path` and `obj` are defined: builds the sandbox, runs the script in it and
/// prints its status, a newline and its message. Exit status 2: the script does not compile; 1:
/// it failed or returned no table.
const SANDBOX: &str = r#"
local function copy(library, names)
  local copied = {}
  for _, name in ipairs(names) do
    copied[name] = library[name]
  end
  return copied
end
local env = copy(_G, {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal", "rawget",
  "rawset", "select", "getmetatable", "setmetatable", "tonumber", "tostring", "type",
  "unpack", "xpcall", "_VERSION",
})
env.table = copy(table, { "concat", "insert", "maxn", "remove", "sort" })
env.coroutine = copy(coroutine, { "create", "resume", "running", "status", "wrap", "yield" })
env.os = copy(os, { "time", "clock", "date" })
env.package = {
  loaded = { table = env.table, coroutine = env.coroutine, os = env.os },
  preload = {},
}
env.require = function(name)
  local module = env.package.loaded[name]
  if module == nil then
    error("module '" .. tostring(name) .. "' is not in the ArgoCD sandbox", 2)
  end
  return module
end
env._G = env
env.obj = obj

local health, syntax = loadfile(script_path)
if health == nil then
  io.stderr:write(syntax, "\n")
  os.exit(2)
end
setfenv(health, env)
-- Strings keep their metatable, but without __index a method call such as s:find fails, as in
-- ArgoCD, which never opens the string library. debug stays out of the sandbox.
debug.getmetatable("").__index = nil
local ok, hs = pcall(health)
if not ok then
  io.stderr:write(tostring(hs), "\n")
  os.exit(1)
end
if type(hs) ~= "table" then
  io.stderr:write("the script returned a ", type(hs), ", not a table\n")
  os.exit(1)
end
io.write(tostring(hs.status), "\n")
if hs.message ~= nil then
  io.write(tostring(hs.message))
end
"#;

#[derive(Debug, Deserialize)]
struct HealthTests {
    tests: Vec<HealthCase>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthCase {
    health_status: HealthStatus,
    input_path: String,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
struct HealthStatus {
    status: String,
    #[serde(default)]
    message: String,
}

/// Whether `lua5.1` can run here. Missing outside CI: the test prints why and passes; missing
/// under CI (`CI` set): the test fails.
fn lua_available() -> bool {
    let found = Command::new("lua5.1")
        .arg("-v")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "lua5.1 is not installed and CI is set: install it (apt-get install lua5.1; .ci/run does)"
        );
        eprintln!(
            "SKIPPED: lua5.1 is not installed (apt-get install lua5.1); outside CI this test passes without running"
        );
    }
    found
}

/// A Lua string literal holding exactly the bytes of `text`: printable ASCII as is, every other
/// byte (and `"`, `\`) as a decimal escape, which Lua 5.1 reads back byte for byte.
fn lua_string(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('"');
    for byte in text.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'"' && byte != b'\\' {
            literal.push(char::from(byte));
        } else {
            write!(literal, "\\{byte:03}").expect("writing to a String");
        }
    }
    literal.push('"');
    literal
}

/// A Lua table constructor for a YAML value, shaped as ArgoCD hands objects to scripts: mappings
/// keyed by strings, sequences as 1-based arrays, null as nil.
fn lua_value(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) if f.is_nan() => "(0/0)".into(),
            (None, None, Some(f)) if f.is_infinite() => {
                String::from(if f > 0.0 { "(1/0)" } else { "(-1/0)" })
            }
            (None, None, Some(f)) => format!("{f:?}"),
            (None, None, None) => unreachable!("a YAML number is an integer or a float"),
        },
        Value::String(s) => lua_string(s),
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(lua_value).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Mapping(entries) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(key, value)| format!("[{}] = {}", lua_key(key), lua_value(value)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Tagged(tagged) => lua_value(&tagged.value),
    }
}

/// Keys become strings, as in the JSON ArgoCD converts.
fn lua_key(key: &Value) -> String {
    match key {
        Value::String(s) => lua_string(s),
        Value::Bool(b) => lua_string(&b.to_string()),
        Value::Number(n) => lua_string(&n.to_string()),
        other => panic!("a mapping key must be a scalar, not {other:?}"),
    }
}

/// Run `script` on `obj` in the sandbox: `(status, message)`, or the interpreter's error output.
fn run_health(script: &Path, obj: &Value) -> Result<(String, String), String> {
    let chunk = format!(
        "local script_path = {}\nlocal obj = {}\n{SANDBOX}",
        lua_string(&script.to_string_lossy()),
        lua_value(obj)
    );
    let mut child = Command::new("lua5.1")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run lua5.1: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(chunk.as_bytes())
        .map_err(|e| format!("cannot write to lua5.1: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("lua5.1 did not finish: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "lua5.1 exited with {}: {}{stdout}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    let (status, message) = stdout
        .split_once('\n')
        .ok_or_else(|| format!("the runner printed no status line: {stdout:?}"))?;
    Ok((status.to_owned(), message.to_owned()))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every directory holding a `health_test.yaml`, sorted.
fn check_dirs(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n == "health_test.yaml") {
                found.push(dir.clone());
            }
        }
    }
    found.sort();
    found
}

/// Problems of one check directory: layout, unused testdata, and every case whose result differs.
fn check_directory(dir: &Path, root: &Path) -> (usize, Vec<String>) {
    let name = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
    let script = dir.join("health.lua");
    let mut problems = Vec::new();
    if !script.is_file() {
        return (
            0,
            vec![format!("{name}: health_test.yaml without health.lua")],
        );
    }
    let tests_file = dir.join("health_test.yaml");
    let tests: HealthTests = serde_yaml::from_str(&read(&tests_file))
        .unwrap_or_else(|e| panic!("{}: {e}", tests_file.display()));
    if tests.tests.len() < MIN_CASES {
        problems.push(format!(
            "{name}/health_test.yaml has {} cases; cover every branch of health.lua (at least {MIN_CASES})",
            tests.tests.len()
        ));
    }
    let mut unused: Vec<String> = std::fs::read_dir(dir.join("testdata"))
        .map(|entries| {
            entries
                .map(|e| {
                    format!(
                        "testdata/{}",
                        e.expect("entry").file_name().to_string_lossy()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    for case in &tests.tests {
        unused.retain(|path| path != &case.input_path);
        let want = &case.health_status;
        let input = dir.join(&case.input_path);
        let label = format!("{name}/health.lua on {name}/{}", case.input_path);
        if !STATUSES.contains(&want.status.as_str()) {
            problems.push(format!(
                "{label}: health_test.yaml expects {:?}, which is no ArgoCD health status",
                want.status
            ));
        }
        let obj: Value = serde_yaml::from_str(&read(&input))
            .unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        match run_health(&script, &obj) {
            Ok((status, message)) if status == want.status && message == want.message => {}
            Ok((status, message)) => problems.push(format!(
                "{label}: got {status} {message:?}, health_test.yaml expects {} {:?}",
                want.status, want.message
            )),
            Err(error) => problems.push(format!("{label}: {error}")),
        }
    }
    for path in unused {
        problems.push(format!(
            "{name}/{path} is not the inputPath of any case in health_test.yaml"
        ));
    }
    (tests.tests.len(), problems)
}

#[test]
fn each_health_check_returns_the_expected_status_for_every_testdata_object() {
    if !lua_available() {
        return;
    }
    let root = repo_root().join(CUSTOMIZATIONS);
    let dirs = check_dirs(&root);
    let mut problems = Vec::new();
    for kind in KINDS {
        let dir = root.join("mk8.io").join(kind);
        if !dirs.contains(&dir) {
            problems.push(format!(
                "mk8.io/{kind} has no health_test.yaml under {CUSTOMIZATIONS}"
            ));
        }
    }
    let mut cases = 0;
    for dir in &dirs {
        let (run, found) = check_directory(dir, &root);
        cases += run;
        problems.extend(found);
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with the ArgoCD health checks in {CUSTOMIZATIONS}:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    eprintln!(
        "{cases} cases of {} health checks returned what health_test.yaml expects",
        dirs.len()
    );
}

/// Run a script body written to a temp file on `obj`.
fn run_body(body: &str, obj: &Value) -> Result<(String, String), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("health.lua");
    std::fs::write(&script, body).expect("write the script");
    run_health(&script, obj)
}

#[test]
fn the_sandbox_has_only_what_argocd_offers_and_passes_objects_intact() {
    if !lua_available() {
        return;
    }
    // Strings that need escaping survive the trip into Lua byte for byte, sequences are 1-based,
    // and what ArgoCD offers works: table, safe os, require("os"), numbers in concatenation.
    let tricky = "quote \" backslash \\ newline\n tab\t arrow → ]] end";
    let obj: Value = serde_yaml::from_str(&format!(
        "metadata: {{generation: 7}}\nitems: [first, second]\nnote: {}\n",
        serde_json::to_string(tricky).expect("JSON string")
    ))
    .expect("YAML object");
    let allowed = r#"
local clock = require("os")
local parts = { obj.items[1], obj.items[2], "g" .. obj.metadata.generation }
table.insert(parts, type(clock.time()))
table.insert(parts, type(os.date("%Y")))
return { status = "Healthy", message = table.concat(parts, ",") .. "|" .. obj.note }
"#;
    assert_eq!(
        run_body(allowed, &obj),
        Ok((
            "Healthy".to_owned(),
            format!("first,second,g7,number,string|{tricky}")
        ))
    );

    // Everything ArgoCD does not offer fails, each for its own reason.
    let refused = [
        ("string.find(\"ab\", \"b\")", "global 'string'"),
        ("math.floor(1.5)", "global 'math'"),
        ("(\"ab\"):upper()", "attempt to index a string value"),
        (
            "obj.note:find(\"end\")",
            "attempt to index field 'note' (a string value)",
        ),
        ("io.write(\"x\")", "global 'io'"),
        ("debug.getinfo(1)", "global 'debug'"),
        ("getfenv(0).string.upper(\"x\")", "global 'getfenv'"),
        ("loadstring(\"return 1\")", "global 'loadstring'"),
        (
            "require(\"string\")",
            "module 'string' is not in the ArgoCD sandbox",
        ),
        ("os.getenv(\"HOME\")", "field 'getenv'"),
    ];
    for (expression, reason) in refused {
        let body =
            format!("local x = {expression}\nreturn {{ status = \"Healthy\", message = \"\" }}");
        match run_body(&body, &obj) {
            Ok(result) => panic!("{expression} ran in the sandbox and returned {result:?}"),
            Err(error) => assert!(
                error.contains(reason),
                "{expression} failed, but not because of {reason:?}: {error}"
            ),
        }
    }
}

//! What the Modal tests stand on without Modal's cloud: a `modal` stand-in on `PATH` that records
//! its argv and environment and keeps apps and secrets in a folder (its `deploy` imports the
//! generated module with the real `modal` package, as the real CLI does), and an HTTPS endpoint on
//! loopback posing as a deployment — the probe processor behind a TLS proxy that demands Modal's
//! proxy auth headers.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Project, binaries};

/// The digest the test deployments run (`THEORY_IMAGE_DIGEST` of the posing endpoint).
pub(crate) const DIGEST: &str =
    "sha256:5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
/// The proxy auth token the endpoint accepts.
pub(crate) const TOKEN: (&str, &str) = ("wk-test-key", "ws-test-secret");

/// The pin of the test deployments.
pub(crate) fn pin() -> String {
    format!("127.0.0.1:5000/theory/probe@{DIGEST}")
}

/// The Python with the real `modal` package (`THEORY_TEST_PYTHON`, else `python3`).
pub(crate) fn python() -> String {
    std::env::var("THEORY_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

const STANDIN: &str = r#"
import json, os, sys

state = os.environ["MODAL_STANDIN_STATE"]
argv = sys.argv[1:]
KEEP = ["PROCESSOR_REF", "IMAGE_REF", "TIMEOUT_S", "CPU", "MEMORY_MIB", "GPU", "TOOL_SECRETS",
        "MODAL_APP_NAME", "PROCESSOR_ENTRYPOINT", "PROCESSOR_PORT", "REGISTRY_SECRET", "PROXY_AUTH",
        "PYTHONPATH", "MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"]
with open(os.path.join(state, "calls.jsonl"), "a") as log:
    log.write(json.dumps({"argv": argv, "cwd": os.getcwd(),
                          "env": {k: os.environ[k] for k in KEEP if k in os.environ}}) + "\n")

def load(name):
    path = os.path.join(state, name)
    return json.load(open(path)) if os.path.exists(path) else {}

def save(name, value):
    json.dump(value, open(os.path.join(state, name), "w"))

WITH_VALUE = {"--env", "-e", "--from-json", "--tail", "-n"}
def option(name):
    return argv[argv.index(name) + 1] if name in argv else None
def positionals():
    words, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word in WITH_VALUE:
            skip = True
        elif not word.startswith("-"):
            words.append(word)
    return words

def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)

env = option("--env") or "main"
words = positionals()
apps = load("apps.json")
if words[:1] == ["deploy"]:
    # The real CLI imports the module to find the app; so does the stand-in, with the real package.
    sys.path.insert(0, os.getcwd())
    import modal_app
    name = modal_app.app.name
    apps[env + "/" + name] = "deployed"
    save("apps.json", apps)
    print("✓ Created objects.")
    print("└── 🔨 Created web function serve => " + os.environ["MODAL_STANDIN_URL"])
    print("✓ App deployed in 1.2s! 🎉\n\nView Deployment: https://modal.com/apps/acme/%s/deployed/%s" % (env, name))
elif words[:2] == ["app", "list"] and "--json" in argv:
    rows = [{"app_id": "ap-%d" % i, "description": key.split("/", 1)[1], "state": value,
             "tasks": "0", "created_at": "2026-11-22 10:00:00+00:00", "stopped_at": None}
            for i, (key, value) in enumerate(sorted(apps.items())) if key.startswith(env + "/")]
    print(json.dumps(rows))
elif words[:2] == ["app", "stop"] and "--yes" in argv:
    key = env + "/" + words[2]
    if key not in apps:
        fail("Could not find a deployed app named '%s'" % words[2])
    apps[key] = "stopped"
    save("apps.json", apps)
elif words[:2] == ["app", "logs"]:
    if env + "/" + words[2] not in apps:
        fail("Could not find a deployed app named '%s'" % words[2])
    for line in ["container started", "processor listening on 0.0.0.0:8000", "run finished"]:
        print(line)
elif words[:2] == ["secret", "list"] and "--json" in argv:
    secrets = load("secrets.json")
    print(json.dumps([{"name": key.split("/", 1)[1], "created_at": "2026-11-22 10:00:00+00:00",
                       "created_by": "me", "last_used_at": None}
                      for key in sorted(secrets) if key.startswith(env + "/")]))
elif words[:2] == ["secret", "create"]:
    path = option("--from-json")
    secrets = load("secrets.json")
    key = env + "/" + words[2]
    if key in secrets and "--force" not in argv:
        fail("Secret '%s' already exists" % words[2])
    secrets[key] = {"values": json.load(open(path)), "mode": oct(os.stat(path).st_mode & 0o777)}
    save("secrets.json", secrets)
    print("Created a new secret '%s'" % words[2])
else:
    print("Usage: modal [OPTIONS] COMMAND [ARGS]...\nError: No such command.", file=sys.stderr)
    sys.exit(2)
"#;

/// The stand-in's folder: `bin/modal` and its state.
pub(crate) struct Standin {
    /// Holds `modal`.
    pub(crate) bin: PathBuf,
    /// Its calls, apps and secrets.
    pub(crate) state: PathBuf,
}

impl Standin {
    /// Installs the stand-in under `folder`.
    pub(crate) fn install(folder: &Path) -> Standin {
        let bin = folder.join("standin-bin");
        let state = folder.join("standin-state");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        let program = bin.join("modal");
        std::fs::write(&program, format!("#!{}\n{STANDIN}", which(&python()))).unwrap();
        std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        Standin { bin, state }
    }

    /// Every call so far: `{argv, cwd, env}`.
    pub(crate) fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state.join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// The argv of every call, joined by spaces.
    pub(crate) fn commands(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|call| {
                call["argv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|word| word.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// A state file of the stand-in (`apps.json`, `secrets.json`).
    pub(crate) fn read(&self, name: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.state.join(name)).unwrap()).unwrap()
    }

    /// Writes a state file, for what exists before a test.
    pub(crate) fn write(&self, name: &str, value: &Value) {
        std::fs::write(self.state.join(name), value.to_string()).unwrap();
    }
}

/// The absolute path of a program on `PATH` (for the stand-in's `#!` line).
fn which(program: &str) -> String {
    if program.contains('/') {
        return program.to_owned();
    }
    let output =
        Command::new("sh").arg("-c").arg(format!("command -v {program}")).output().unwrap();
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(!path.is_empty(), "{program} is not on PATH: set THEORY_TEST_PYTHON");
    path
}

/// A project whose registry holds `theory/probe@5`: the probe pinned for amd64 to [`pin`], with
/// `edit` applied to its spec; the stand-in is first on `PATH` and Modal's token is set.
pub(crate) fn modal_project(edit: impl Fn(&str) -> String) -> (Project, Standin) {
    let project = Project::new();
    project.probe_variant("theory/probe@5", "probe5.yaml", |spec| {
        edit(&spec.replace("image:\n", &format!("image:\n  platforms: {{amd64: \"{}\"}}\n", pin())))
    });
    let standin = Standin::install(project.path());
    let path = format!("{}:{}", standin.bin.display(), std::env::var("PATH").unwrap_or_default());
    let project = project
        .env("PATH", &path)
        .env("HOME", &project_home(&standin))
        .env("MODAL_STANDIN_STATE", &standin.state.display().to_string())
        .env("MODAL_ENABLED", "True")
        .env("MODAL_TOKEN_ID", "ak-standin")
        .env("MODAL_TOKEN_SECRET", "as-standin");
    (project, standin)
}

/// A home folder without `~/.modal.toml`.
fn project_home(standin: &Standin) -> String {
    let home = standin.state.join("home");
    std::fs::create_dir_all(&home).unwrap();
    home.display().to_string()
}

/// One request the endpoint saw: its request line and whether it carried the token.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) line: String,
    pub(crate) authorized: bool,
}

/// The probe on loopback behind a TLS proxy that checks `Modal-Key`/`Modal-Secret`: what a
/// deployment looks like from the orchestrator.
pub(crate) struct Endpoint {
    /// `https://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// The CA that signed the endpoint's certificate (for `SSL_CERT_FILE`).
    pub(crate) ca_file: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
    probe: Child,
    _runtime: tokio::runtime::Runtime,
    _folder: tempfile::TempDir,
}

impl Endpoint {
    /// Starts the probe (reporting `digest` as its image) and the proxy in front of it.
    pub(crate) fn start(digest: &str) -> Endpoint {
        let folder = tempfile::tempdir().unwrap();
        let mut probe = Command::new(binaries().join("theory-probe"))
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("RUST_LOG", "warn")
            .env("THEORY_IMAGE_DIGEST", digest)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the probe starts");
        let mut line = String::new();
        BufReader::new(probe.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let listening: Value = serde_json::from_str(line.trim()).expect("the listening line");
        let backend: SocketAddr = listening["listening"].as_str().unwrap().parse().unwrap();
        let (acceptor, ca_pem) = tls_acceptor();
        let ca_file = folder.path().join("ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        runtime.spawn(proxy(listener, acceptor, backend, Arc::clone(&seen)));
        Endpoint { url, ca_file, seen, probe, _runtime: runtime, _folder: folder }
    }

    /// The requests seen so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.probe.kill();
        let _ = self.probe.wait();
    }
}

/// A CA and a certificate it signed for 127.0.0.1, as an acceptor and the CA's PEM.
pub(crate) fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    theory_conformance::tls::tls_acceptor()
}

async fn proxy(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    backend: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, seen) = (acceptor.clone(), Arc::clone(&seen));
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(tcp).await {
                forward(tls, backend, &seen).await;
            }
        });
    }
}

/// Reads one request head, records it, refuses it without the token (401, as Modal's proxy
/// does) and otherwise passes the connection through. Plain requests get `Connection: close` so
/// that every request is seen.
async fn forward(
    mut client: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    backend: SocketAddr,
    seen: &Mutex<Vec<Seen>>,
) {
    let mut head = Vec::new();
    let mut buffer = [0_u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match client.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(count) => head.extend_from_slice(&buffer[..count]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let header = |name: &str| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    };
    let authorized = header("modal-key").as_deref() == Some(TOKEN.0)
        && header("modal-secret").as_deref() == Some(TOKEN.1);
    let line = text.lines().next().unwrap_or_default().to_owned();
    seen.lock().unwrap().push(Seen { line, authorized });
    if !authorized {
        let refusal = "HTTP/1.1 401 Unauthorized\r\ncontent-length: 12\r\nconnection: close\r\n\r\nunauthorized";
        let _ = client.write_all(refusal.as_bytes()).await;
        let _ = client.shutdown().await;
        return;
    }
    if header("upgrade").is_none() {
        let end = text.find("\r\n\r\n").unwrap();
        let kept: Vec<&str> = text[..end]
            .split("\r\n")
            .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
            .collect();
        head = format!("{}\r\nConnection: close\r\n\r\n{}", kept.join("\r\n"), &text[end + 4..])
            .into_bytes();
    }
    let Ok(mut upstream) = tokio::net::TcpStream::connect(backend).await else { return };
    if upstream.write_all(&head).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

//! Starting and stopping the real server, and small helpers.

use incidentd_proto::v1::incident_service_client::IncidentServiceClient;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

/// An org config in the shape of CONFIG.md, used by the end-to-end tests.
pub const TEST_CONFIG: &str = r#"
[org]
name = "Test Corp"
default_team = "platform"
unclear_severity = "SEV1"
status_page_title = "Test Corp Status"

[[teams]]
id = "platform"
name = "Platform"

[[teams]]
id = "payments"
name = "Payments"

[[people]]
id = "alice"
name = "Alice Moreau"
email = "alice@example.com"
chat = "@alice"
teams = ["payments"]

[[people]]
id = "bob"
name = "Bob Okafor"
email = "bob@example.com"
chat = "@bob"
teams = ["payments"]

[[people]]
id = "carol"
name = "Carol Jensen"
email = "carol@example.com"
chat = "@carol"
teams = ["platform"]

[[people]]
id = "dave"
name = "Dave Li"
email = "dave@example.com"
chat = "@dave"
teams = ["payments"]

[[services]]
id = "payments-api"
name = "Payments API"
team = "payments"
tier = "core"
status_page = true
group = "Checkout"

[contacts]
engineering_leadership = ["carol"]
executives = ["ceo@example.com"]
legal = ["legal@example.com"]
"#;

/// Path of a binary built by this workspace, next to the test executable.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/it-<hash> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} not built: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

pub struct Server {
    child: Child,
    /// The server's process id (signals).
    pub pid: Option<u32>,
    pub grpc: String,
    /// HTTP address (health, readiness, metrics).
    pub http: String,
    /// The server's stdout lines after `ready` (e.g. reload reports).
    stdout: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Server {
    /// Starts `incidentd` on loopback ephemeral ports and waits until it reports ready.
    pub async fn start(data_dir: &Path, config: &Path) -> Server {
        Self::start_with_env(data_dir, config, &[]).await
    }

    /// Like `start`, with extra environment variables for the server.
    pub async fn start_with_env(data_dir: &Path, config: &Path, env: &[(&str, &str)]) -> Server {
        Self::spawn(data_dir, config, env, true).await
    }

    /// Starts `incidentd` without `--dev`: every call needs a token of the config.
    pub async fn start_secured(data_dir: &Path, config: &Path) -> Server {
        Self::spawn(data_dir, config, &[], false).await
    }

    async fn spawn(data_dir: &Path, config: &Path, env: &[(&str, &str)], dev: bool) -> Server {
        let mut child = Command::new(workspace_bin("incidentd"))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--config")
            .arg(config)
            .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .args(dev.then_some("--dev"))
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn incidentd");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut grpc, mut http) = (String::new(), String::new());
        let ready = async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(a) = line.strip_prefix("incidentd grpc listening on ") {
                    grpc = a.to_string();
                } else if let Some(a) = line.strip_prefix("incidentd http listening on ") {
                    http = a.to_string();
                } else if line.starts_with("incidentd ready") {
                    return true;
                }
            }
            false
        };
        let ok = tokio::time::timeout(Duration::from_secs(60), ready)
            .await
            .expect("incidentd did not become ready in 60 s");
        assert!(ok, "incidentd exited before it was ready");
        // Keep draining stdout so the server never blocks on a full pipe;
        // the lines go to `next_line` (unread ones are simply dropped with the server).
        let (tx, stdout) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(line);
            }
        });
        let pid = child.id();
        Server {
            child,
            pid,
            grpc,
            http,
            stdout,
        }
    }

    pub async fn client(&self) -> IncidentServiceClient<Channel> {
        IncidentServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .expect("connect")
    }

    /// The next stdout line starting with `prefix` (earlier ones are skipped);
    /// fails the test after 30 s or when the server's stdout closes.
    pub async fn next_line(&mut self, prefix: &str) -> String {
        let wait = async {
            while let Some(line) = self.stdout.recv().await {
                if line.starts_with(prefix) {
                    return Some(line);
                }
            }
            None
        };
        match tokio::time::timeout(Duration::from_secs(30), wait).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("incidentd's stdout closed before a line starting with {prefix:?}"),
            Err(_) => panic!("no line starting with {prefix:?} from incidentd in 30 s"),
        }
    }

    /// `kill -9`: no shutdown path runs.
    pub async fn kill9(mut self) {
        self.child.start_kill().expect("kill");
        let _ = self.child.wait().await;
    }

    /// SIGTERM and wait for a clean exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        self.child.wait().await.expect("wait")
    }
}

pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("org.toml");
    std::fs::write(&p, text).expect("write config");
    p
}

/// Asserts a gRPC error's code and that its message names `field`.
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: tonic::Code, field: &str) {
    match r {
        Ok(v) => panic!("expected {code:?} naming {field:?}, got Ok({v:?})"),
        Err(s) => {
            assert_eq!(s.code(), code, "code for {field:?}: message {:?}", s.message());
            assert!(
                s.message().contains(field),
                "message {:?} should name {field:?}",
                s.message()
            );
        }
    }
}

/// A minimal HTTP/1.1 GET over a raw socket: status code and body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_request("GET", addr, path, &[], b"").await.expect("http get")
}

/// A minimal HTTP/1.1 request over a raw socket (JSON body): status code and body.
pub async fn http_request(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    s.write_all(body).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

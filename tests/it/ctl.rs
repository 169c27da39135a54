//! `incidentctl` against the real server: the playbook story in human and
//! `--json` output, the exit codes (1 server said no, 2 usage, 3
//! unreachable), and the interactive `update` prompt driven through tmux.
//! Operations (metrics, backup) and the deployment files are in `ctl/`,
//! as are reviews, action items, reports, deliveries (`ctl/review.rs`) and
//! drills (`ctl/drill.rs`) through `incidentctl`; tokens, the audit log
//! and config reload against a server without `--dev` in `ctl/admin.rs`.

mod admin;
mod deploy;
mod drill;
mod ops;
mod review;

use crate::support::{Server, TEST_CONFIG, workspace_bin, write_config};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A command's exit code and output.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `incidentctl` against one server, as one user, with its own config dir.
pub struct Ctl {
    pub addr: String,
    /// `XDG_CONFIG_HOME`: `incidentctl/config.toml` below it is the config file.
    pub home: PathBuf,
    pub user: String,
    /// `INCIDENTD_TOKEN` (none: the variable is removed).
    pub token: Option<String>,
}

impl Ctl {
    pub fn new(addr: &str, home: &Path) -> Ctl {
        Ctl {
            addr: addr.to_string(),
            home: home.to_path_buf(),
            user: "alice".into(),
            token: None,
        }
    }

    /// As `user`, calling with the token `secret`.
    pub fn with_token(addr: &str, home: &Path, user: &str, secret: &str) -> Ctl {
        Ctl {
            user: user.into(),
            token: Some(secret.into()),
            ..Ctl::new(addr, home)
        }
    }

    pub async fn run(&self, args: &[&str]) -> Outcome {
        let mut cmd = tokio::process::Command::new(workspace_bin("incidentctl"));
        match &self.token {
            Some(t) => cmd.env("INCIDENTD_TOKEN", t),
            None => cmd.env_remove("INCIDENTD_TOKEN"),
        };
        let out = cmd
            .args(args)
            .env("INCIDENTD_ADDR", &self.addr)
            .env("INCIDENTD_USER", &self.user)
            .env("XDG_CONFIG_HOME", &self.home)
            .env_remove("INCIDENTD_TEAM")
            .env_remove("INCIDENTCTL_CONFIG")
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(60), out)
            .await
            .expect("incidentctl took over 60 s")
            .expect("run incidentctl");
        Outcome {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and expects exit 0; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args).await;
        assert_eq!(o.code, Some(0), "incidentctl {args:?} failed: {}", o.stderr);
        o.stdout
    }

    /// Runs with `--json`, expects exit 0, parses stdout.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("incidentctl {args:?}: not JSON ({e}): {out}"))
    }

    /// Runs, expects `code` and one stderr line containing `needle`.
    pub async fn fails(&self, args: &[&str], code: i32, needle: &str) {
        let o = self.run(args).await;
        assert_eq!(o.code, Some(code), "incidentctl {args:?}: {o:?}");
        let line = o.stderr.trim_end();
        assert!(
            line.contains(needle),
            "incidentctl {args:?}: {line:?} should name {needle:?}"
        );
        if code != 2 || !line.starts_with("error:") {
            // Our own failures are one line; clap's usage errors add a usage hint.
            assert_eq!(line.lines().count(), 1, "one line: {line:?}");
        }
        assert!(o.stdout.is_empty(), "nothing on stdout on failure: {:?}", o.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playbook_story_through_incidentctl() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let server = Server::start(&tmp.path().join("data"), &config).await;
    let ctl = Ctl::new(&server.grpc, tmp.path());

    // Only a title: the org's default team, and SEV-1 because severity is unclear.
    let odd = ctl.json(&["declare", "Something is odd"]).await;
    assert_eq!(odd["team"], "platform");
    assert_eq!(odd["severity"], "SEV1");

    // The config file names the team; the title is still all that is typed.
    std::fs::create_dir_all(tmp.path().join("incidentctl")).unwrap();
    std::fs::write(tmp.path().join("incidentctl/config.toml"), "team = \"payments\"\n").unwrap();
    let human = ctl.ok(&["declare", "Payments down", "--service", "payments-api"]).await;
    assert!(human.starts_with("INC-2  Payments down"), "{human}");
    for want in ["SEV-1", "investigating", "payments-api", "acknowledged  not yet"] {
        assert!(human.contains(want), "{want:?} in\n{human}");
    }
    let inc = ctl.json(&["show", "INC-2"]).await;
    assert_eq!(inc["team"], "payments");
    assert_eq!(inc["status"], "INVESTIGATING");
    let id = inc["id"].as_str().unwrap().to_string();
    // Number, reference and id all name it.
    assert_eq!(ctl.json(&["show", "2"]).await["id"], id.as_str());
    assert_eq!(ctl.json(&["show", &id]).await["reference"], "INC-2");
    let tl = ctl.ok(&["timeline", "INC-2"]).await;
    assert!(tl.contains("unclear") && tl.contains("SEV-1"), "{tl}");

    let ack = ctl.json(&["ack", "INC-2"]).await;
    assert_eq!(ack["acknowledged_by"], "alice");
    assert!(ack["acknowledged_at"].is_string());

    ctl.ok(&["assign", "INC-2", "commander", "alice"]).await;
    ctl.ok(&["assign", "INC-2", "comms", "bob"]).await;
    ctl.ok(&["assign", "INC-2", "sme", "carol", "--track", "database failover"])
        .await;
    let shown = ctl
        .ok(&["assign", "INC-2", "sme", "dave", "--track", "payment gateway network"])
        .await;
    assert!(shown.contains("commander     alice"), "{shown}");
    assert!(shown.contains("comms lead    bob"), "{shown}");
    assert!(shown.contains("carol — database failover"), "{shown}");
    let roster = &ctl.json(&["show", "INC-2"]).await["roster"];
    assert_eq!(roster["commander"], "alice");
    assert_eq!(roster["comms_lead"], "bob");
    assert_eq!(roster["smes"].as_array().unwrap().len(), 2);
    let after = ctl.json(&["unassign", "INC-2", "sme", "dave"]).await;
    assert_eq!(after["roster"]["smes"].as_array().unwrap().len(), 1);

    // The three updates, from flags (no terminal here, so no prompts).
    let internal = ctl
        .ok(&[
            "update",
            "internal",
            "INC-2",
            "--theory",
            "ledger deploy exhausted DB connections",
            "--next-steps",
            "roll back the ledger deploy",
            "--next-update-in",
            "20m",
        ])
        .await;
    assert!(
        internal.contains("Current theory: ledger deploy exhausted DB connections"),
        "{internal}"
    );
    assert!(internal.contains("Commander: alice"), "{internal}");
    assert!(internal.contains("in 20 min"), "{internal}");
    let customer = ctl
        .json(&["update", "customer", "INC-2", "--symptom", "card payments time out"])
        .await;
    assert_eq!(customer["kind"], "CUSTOMER");
    let text = customer["rendered"].as_str().unwrap();
    assert!(
        text.contains("card payments time out") && !text.contains("ledger"),
        "{text}"
    );
    let exec = ctl
        .ok(&[
            "--as",
            "bob",
            "update",
            "executive",
            "INC-2",
            "--business-impact",
            "checkout revenue stopped in EU",
            "--eta",
            "30 minutes",
        ])
        .await;
    assert!(
        exec.contains("Business impact: checkout revenue stopped in EU"),
        "{exec}"
    );
    assert!(exec.contains("Estimated resolution: 30 minutes"), "{exec}");

    let finding = ctl
        .ok(&[
            "--as",
            "carol",
            "finding",
            "INC-2",
            "connection pool at 100% since 14:02",
        ])
        .await;
    assert!(finding.contains("finding") && finding.contains("carol"), "{finding}");
    assert!(finding.contains("connection pool at 100% since 14:02"), "{finding}");
    let note = ctl
        .json(&["note", "INC-2", "paged", "the", "DBA", "--request-id", "n-1"])
        .await;
    assert_eq!(note["kind"], "NOTE");
    assert_eq!(note["text"], "paged the DBA");
    // A retry with the same request id is the same entry, not a second one.
    let again = ctl
        .json(&["note", "INC-2", "paged the DBA", "--request-id", "n-1"])
        .await;
    assert_eq!(again["seq"], note["seq"]);

    let down = ctl
        .json(&["sev", "INC-2", "sev-2", "--reason", "workaround: retries succeed"])
        .await;
    assert_eq!(down["severity"], "SEV2");
    let entries = ctl.json(&["timeline", "INC-2"]).await;
    assert!(
        entries.as_array().unwrap().iter().any(|e| {
            let t = e["text"].as_str().unwrap_or_default();
            t.contains("SEV-1 to SEV-2") && t.contains("workaround: retries succeed")
        }),
        "{entries}"
    );

    assert_eq!(
        ctl.json(&["status", "INC-2", "identified"]).await["status"],
        "IDENTIFIED"
    );
    let mitigating = ctl
        .ok(&["status", "INC-2", "mitigating", "--note", "ledger rolled back"])
        .await;
    assert!(mitigating.contains("mitigating"), "{mitigating}");
    let resolved = ctl
        .json(&["status", "INC-2", "resolved", "--note", "payments flowing"])
        .await;
    assert_eq!(resolved["status"], "RESOLVED");
    assert!(resolved["resolved_at"].is_string());

    // Lists: the resolved incident only with --all.
    let active = ctl.ok(&["list"]).await;
    assert!(active.starts_with("INCIDENT"), "{active}");
    assert!(active.contains("INC-1") && !active.contains("INC-2"), "{active}");
    let all = ctl.json(&["list", "--all"]).await;
    let refs: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["reference"].as_str())
        .collect();
    assert_eq!(refs, ["INC-2", "INC-1"], "newest first");

    // Replay of the first events, one JSON object per line.
    let out = ctl
        .ok(&["--json", "watch", "INC-2", "--from-version", "0", "--count", "3"])
        .await;
    let events: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let versions: Vec<u64> = events.iter().map(|e| e["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(events[0]["type"], "declared");
    // SEV-1 (unclear): stakeholders are due at once, before the caller hears back.
    assert_eq!(events[1]["type"], "stakeholder_notice_due");
    assert_eq!(events[2]["type"], "acknowledged");
    let human = ctl.ok(&["watch", "INC-2", "--from-version", "3", "--count", "1"]).await;
    assert!(human.contains("INC-2 v4") && human.contains("role_assigned"), "{human}");

    // The server says no: exit 1, one line naming the field.
    ctl.fails(&["resolve", "INC-2"], 1, "already resolved").await;
    ctl.fails(&["show", "01ARZ3NDEKTSV4RRFFQ69G5FAV"], 1, "NotFound").await;
    ctl.fails(&["show", "INC-99"], 1, "INC-99").await;
    ctl.fails(&["declare", "x", "--team", "nope"], 1, "team").await;
    ctl.fails(&["declare", "x", "--service", "nope"], 1, "services").await;
    ctl.fails(&["declare", "  "], 1, "title").await;
    ctl.fails(&["assign", "INC-1", "sme", "carol"], 1, "--track").await;
    ctl.fails(&["--as", "mallory", "ack", "INC-1"], 1, "--as").await;
    // Usage: exit 2.
    ctl.fails(&["sev", "INC-1", "9"], 2, "severity").await;
    ctl.fails(&["status", "INC-1", "fixed"], 2, "fixed").await;
    ctl.fails(&["update", "customer", "INC-1"], 2, "--symptom").await;
    ctl.fails(&["update", "internal", "INC-1"], 2, "--theory or --next-steps")
        .await;
    ctl.fails(&["show", "not-an-incident"], 2, "incident").await;
    // Unreachable: exit 3.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ctl.fails(
        &["--addr", &format!("127.0.0.1:{port}"), "list"],
        3,
        "cannot reach incidentd",
    )
    .await;
    server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_live_events() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let server = Server::start(&tmp.path().join("data"), &config).await;
    let ctl = Ctl::new(&server.grpc, tmp.path());
    ctl.ok(&["declare", "Login slow", "--team", "payments", "--sev", "3"])
        .await;

    // Live only (no --from-version): the next event, not the declaration.
    let mut watcher = tokio::process::Command::new(workspace_bin("incidentctl"))
        .args(["--json", "watch", "INC-1", "--count", "1"])
        .env("INCIDENTD_ADDR", &server.grpc)
        .env("XDG_CONFIG_HOME", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // It says so on stderr once its stream is open.
    let mut stderr = BufReader::new(watcher.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), stderr.next_line())
        .await
        .expect("watch did not start in 30 s")
        .unwrap()
        .unwrap_or_default();
    assert!(line.starts_with("watching INC-1"), "{line}");
    ctl.ok(&["note", "INC-1", "looking at the login pods"]).await;
    let done = tokio::time::timeout(Duration::from_secs(30), watcher.wait_with_output())
        .await
        .expect("watch did not see the note in 30 s")
        .unwrap();
    assert!(done.status.success());
    let out = String::from_utf8(done.stdout).unwrap();
    let e: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(e["type"], "entry_added");
    assert_eq!(e["event"]["text"], "looking at the login pods");
    server.terminate().await;
}

/// A tmux server on a private socket, killed on drop.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `incidentctl ARGS` for `user` (with `ctl`'s server and config
    /// dir) in a detached session; the pane then shows `exit=<code>`.
    pub fn incidentctl(name: &str, ctl: &Ctl, user: &str, args: &str) -> Tmux {
        let script = format!(
            "env INCIDENTD_ADDR={} INCIDENTD_USER={user} XDG_CONFIG_HOME={} {} --color never {args}; echo \"exit=$?\"; read done",
            sh_quote(&ctl.addr),
            sh_quote(&ctl.home.display().to_string()),
            sh_quote(&workspace_bin("incidentctl").display().to_string()),
        );
        let tmux = Tmux {
            socket: format!("incidentctl-{name}-{}", std::process::id()),
        };
        let started = tmux.cmd(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "160",
            "-y",
            "80",
            &script,
        ]);
        assert!(started.status.success(), "tmux new-session: {started:?}");
        tmux
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux (apt-get install tmux)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-J", "-t", "t"]).stdout).into_owned()
    }

    /// Polls the pane until `done` holds for what it shows, for at most 30 s.
    async fn wait_until(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{what} never appeared; the pane shows:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for(&self, text: &str) -> String {
        self.wait_until(text, |s| s.contains(text)).await
    }

    fn send(&self, keys: &str) {
        let out = self.cmd(&["send-keys", "-t", "t", "-l", keys]);
        assert!(out.status.success(), "send-keys: {out:?}");
        let out = self.cmd(&["send-keys", "-t", "t", "Enter"]);
        assert!(out.status.success(), "send-keys: {out:?}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_prompts_for_missing_fields_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let server = Server::start(&tmp.path().join("data"), &config).await;
    let ctl = Ctl::new(&server.grpc, tmp.path());
    ctl.ok(&["declare", "Search broken", "--team", "payments"]).await;

    let tmux = Tmux::incidentctl("update", &ctl, "bob", "update internal INC-1");

    tmux.wait_for("Current theory (Enter to skip):").await;
    tmux.send("index shards lost their replicas");
    tmux.wait_for("Next steps (Enter to skip):").await;
    tmux.send("");
    tmux.wait_for("Impact (optional):").await;
    tmux.send("search returns nothing for 30% of queries");
    tmux.wait_for("Next update in").await;
    tmux.send("soon");
    // A bad duration is explained and asked again.
    tmux.wait_until("a second duration prompt", |s| s.matches("Next update in").count() == 2)
        .await;
    tmux.send("45m");
    let screen = tmux.wait_for("exit=").await;
    assert!(screen.contains("exit=0"), "{screen}");
    assert!(
        screen.contains("Current theory: index shards lost their replicas"),
        "{screen}"
    );
    assert!(
        screen.contains("Impact: search returns nothing for 30% of queries"),
        "{screen}"
    );
    assert!(screen.contains("(in 45 min)"), "{screen}");

    // What was posted is what was typed, by the user of the environment.
    let out = ctl
        .ok(&["--json", "watch", "INC-1", "--from-version", "2", "--count", "1"])
        .await;
    let e: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(e["type"], "update_posted");
    assert_eq!(e["by"], "bob");
    assert_eq!(
        e["event"]["fields"]["current_theory"],
        "index shards lost their replicas"
    );
    assert!(e["event"]["fields"].get("next_steps").is_none_or(Value::is_null), "{e}");
    server.terminate().await;
}

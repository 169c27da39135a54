//! What `incidentctl` answers without a server: help with the exit codes,
//! completions, the man page, usage errors (2) and an unreachable address (3).
//! (Having an integration test here also makes `cargo test --workspace`
//! build the binary that the end-to-end tests in `tests/` run.)

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_incidentctl");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("INCIDENTD_ADDR")
        .env_remove("INCIDENTD_TOKEN")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_documents_the_exit_codes() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for line in ["0  ok", "1  the server said no", "2  usage", "3  incidentd unreachable"] {
        assert!(help.contains(line), "{line:?} missing from\n{help}");
    }
}

#[test]
fn completions_and_man_page_are_generated() {
    let bash = run(&["completions", "bash"]);
    assert!(bash.status.success());
    assert!(text(&bash.stdout).contains("incidentctl"));
    let zsh = run(&["completions", "zsh"]);
    assert!(text(&zsh.stdout).contains("#compdef incidentctl"));
    let man = run(&["man"]);
    assert!(man.status.success());
    let page = text(&man.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH incidentctl"), "{page}");
    assert!(page.contains("declare"));
    for cmd in [
        "review",
        "action",
        "report",
        "drill",
        "deliveries",
        "token",
        "audit",
        "reload",
    ] {
        assert!(page.contains(cmd), "{cmd} missing from the man page");
    }
    let bash = text(&bash.stdout);
    for word in [
        "scenarios",
        "rotation",
        "--overdue",
        "--markdown",
        "--what-happened",
        "revoke",
        "--integration",
        "--denied",
        "--token-id",
    ] {
        assert!(bash.contains(word), "{word} missing from the bash completions");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["bogus"][..],
        &["sev", "INC-1", "7"],
        &["assign", "INC-1", "chef", "alice"],
        &["declare"],
        &["action", "add", "INC-1", "x", "--owner", "carol", "--due", "soon"],
        &["action", "add", "INC-1", "x", "--due", "7d"],
        &["action", "drop", "INC-1/1"],
        &["drill", "start", "sev1-payments-outage", "--sme", "dave"],
        &["report", "--since", "last tuesday"],
        &["deliveries", "INC-1", "--state", "gone"],
        &["review", "show"],
        &["token", "create", "x", "--scope", "read", "--team", "payments"],
        &[
            "token", "create", "x", "--person", "bob", "--scope", "root", "--team", "*",
        ],
        &[
            "token",
            "create",
            "x",
            "--person",
            "bob",
            "--integration",
            "am",
            "--scope",
            "read",
            "--team",
            "*",
        ],
        &["token", "revoke"],
        &["audit", "--since", "yesterday"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn a_bad_config_file_exits_2_naming_key_and_line() {
    let dir = std::env::temp_dir().join(format!("incidentctl-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, "addr = \"127.0.0.1:1\"\n\nuesr = \"alice\"\n").unwrap();
    let out = run(&["--config", path.to_str().unwrap(), "list"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("uesr") && err.contains("line 3"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn an_unreachable_server_exits_3() {
    // Bind and drop a listener: nothing listens on that port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(&["--addr", &format!("127.0.0.1:{port}"), "list"]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(err.starts_with("incidentctl: cannot reach incidentd at"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

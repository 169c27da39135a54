//! The binary's command line: `demo-config` prints a valid org, and a bad
//! config is refused before any port is bound, with the key and line named.
//! (Having an integration test here also makes `cargo test --workspace`
//! build the `incidentd` binary that `tests/` starts.)

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_incidentd");

#[test]
fn demo_config_is_a_valid_org() {
    let out = Command::new(BIN).arg("demo-config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let org = incidentd_config::OrgConfig::from_toml_str(&text).unwrap();
    assert!(org.team("payments").is_some());
}

#[test]
fn bad_config_is_refused_with_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("org.toml");
    std::fs::write(
        &path,
        "[org]\nname = \"X\"\ndefault_team = \"a\"\n\n[[teams]]\nid = \"a\"\nnaem = \"typo\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .args(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("naem") && err.contains("line 7"), "{err}");
    assert!(!tmp.path().join("data").exists(), "nothing was started");
}

#[test]
fn dev_mode_refuses_non_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["--dev", "--grpc-listen", "0.0.0.0:0", "--http-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

//! The files in `deploy/`: YAML and JSON parse, the manifests have what
//! `deploy/README.md` promises, rules and dashboard use only documented
//! series, and the systemd unit passes `systemd-analyze verify` (and the
//! rules `promtool check rules`) where those tools are installed.

use super::ops::documented_series;
use crate::support::workspace_bin;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(rel)
}

fn yaml_docs(rel: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(deploy(rel)).unwrap_or_else(|e| panic!("read deploy/{rel}: {e}"));
    let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("deploy/{rel} is not YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Follows a path of mapping keys and sequence indexes ("spec.template.0").
fn at<'a>(y: &'a Yaml, path: &str) -> &'a Yaml {
    let mut cur = y;
    for part in path.split('.') {
        cur = match part.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => &cur[part],
        };
    }
    cur
}

fn str_at<'a>(y: &'a Yaml, path: &str) -> &'a str {
    at(y, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string in {y:?}"))
}

/// `incidentd_*` metric families named in a PromQL expression.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("incidentd_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.insert(family.to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn kubernetes_manifests_have_the_promised_parts() {
    let docs = yaml_docs("kubernetes/incidentd.yaml");
    let kinds: Vec<&str> = docs.iter().map(|d| str_at(d, "kind")).collect();
    for d in &docs {
        assert!(!str_at(d, "apiVersion").is_empty());
        assert!(!str_at(d, "metadata.name").is_empty());
    }
    for want in ["StatefulSet", "Service", "PodDisruptionBudget"] {
        assert!(kinds.contains(&want), "no {want} in {kinds:?}");
    }
    let sts = docs.iter().find(|d| str_at(d, "kind") == "StatefulSet").unwrap();
    assert_eq!(at(sts, "spec.replicas").as_i64(), Some(1), "one writer per data dir");
    let claim = at(sts, "spec.volumeClaimTemplates.0");
    assert!(!str_at(claim, "spec.resources.requests.storage").is_empty());
    let c = at(sts, "spec.template.spec.containers.0");
    assert_eq!(str_at(c, "readinessProbe.httpGet.path"), "/readyz");
    assert_eq!(str_at(c, "livenessProbe.httpGet.path"), "/healthz");
    let mount = at(c, "volumeMounts")
        .as_vec()
        .unwrap()
        .iter()
        .find(|m| str_at(m, "name") == str_at(claim, "metadata.name"))
        .expect("the claim is mounted");
    assert_eq!(str_at(mount, "mountPath"), "/var/lib/incidentd");
    let env_dir = at(c, "env")
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| str_at(e, "name") == "INCIDENTD_DATA_DIR")
        .expect("INCIDENTD_DATA_DIR set");
    assert_eq!(str_at(env_dir, "value"), "/var/lib/incidentd");
    // The probes and Services use ports the container declares.
    let ports: Vec<&str> = at(c, "ports")
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| str_at(p, "name"))
        .collect();
    assert_eq!(str_at(c, "readinessProbe.httpGet.port"), "http");
    assert!(ports.contains(&"http") && ports.contains(&"grpc"), "{ports:?}");
    let pdb = docs
        .iter()
        .find(|d| str_at(d, "kind") == "PodDisruptionBudget")
        .unwrap();
    assert_eq!(
        at(pdb, "spec.selector.matchLabels"),
        at(sts, "spec.template.metadata.labels"),
        "the PDB selects the pods"
    );
}

#[test]
fn compose_runs_incidentd_alertmanager_prometheus_and_an_smtp_catcher() {
    let compose = &yaml_docs("compose/compose.yaml")[0];
    let services = at(compose, "services").as_hash().unwrap();
    let names: BTreeSet<&str> = services.keys().filter_map(Yaml::as_str).collect();
    for want in ["incidentd", "alertmanager", "prometheus", "mailpit"] {
        assert!(names.contains(want), "no {want} in {names:?}");
    }
    assert_eq!(
        str_at(compose, "services.incidentd.build.dockerfile"),
        "deploy/Dockerfile"
    );
    // Prometheus scrapes incidentd and loads its rules; Alertmanager posts to its webhook.
    let prom = &yaml_docs("compose/prometheus.yml")[0];
    let targets = at(prom, "scrape_configs.0.static_configs.0.targets.0");
    assert_eq!(targets.as_str(), Some("incidentd:8080"));
    let am = &yaml_docs("compose/alertmanager.yml")[0];
    let url = str_at(am, "receivers.0.webhook_configs.0.url");
    assert!(url.ends_with("/v1/integrations/alertmanager"), "{url}");
    assert!(
        std::fs::read_to_string(deploy("Dockerfile"))
            .unwrap()
            .contains(" AS build")
    );
}

#[test]
fn alert_rules_and_dashboard_use_documented_series() {
    let documented = documented_series();
    let rules = &yaml_docs("prometheus/incidentd-rules.yml")[0];
    let mut used = BTreeSet::new();
    for group in at(rules, "groups").as_vec().unwrap() {
        for rule in at(group, "rules").as_vec().unwrap() {
            let name = str_at(rule, "alert");
            assert_eq!(str_at(rule, "labels.component"), "incidentd", "{name}");
            assert!(!str_at(rule, "annotations.summary").is_empty(), "{name}");
            used.extend(metrics_in(str_at(rule, "expr")));
        }
    }
    let text = std::fs::read_to_string(deploy("grafana/incidentd-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6);
    let mut shown = BTreeSet::new();
    for p in panels {
        for t in p["targets"].as_array().expect("targets") {
            shown.extend(metrics_in(t["expr"].as_str().expect("expr")));
        }
    }
    let unknown: Vec<_> = used.union(&shown).filter(|m| !documented.contains(*m)).collect();
    assert!(unknown.is_empty(), "undocumented series used: {unknown:?}");
    let missing: Vec<_> = documented.difference(&shown).collect();
    assert!(
        missing.is_empty(),
        "documented series not on the dashboard: {missing:?}"
    );
}

fn have(tool: &str) -> bool {
    std::process::Command::new(tool).arg("--version").output().is_ok()
}

#[test]
fn systemd_unit_verifies_where_systemd_analyze_exists() {
    let unit = std::fs::read_to_string(deploy("systemd/incidentd.service")).unwrap();
    for want in [
        "DynamicUser=yes",
        "StateDirectory=incidentd",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.contains(want), "{want} missing");
    }
    if !have("systemd-analyze") {
        eprintln!("systemd-analyze not installed: unit checked by text only");
        return;
    }
    // verify wants ExecStart's binary to exist: point it at the one built here.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("incidentd.service");
    let bin = workspace_bin("incidentd");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/incidentd", &bin.display().to_string()),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "systemd-analyze verify: {err}"
    );
}

#[test]
fn alert_rules_pass_promtool_where_installed() {
    if !have("promtool") {
        eprintln!("promtool not installed: rules checked by the YAML test only");
        return;
    }
    let out = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(deploy("prometheus/incidentd-rules.yml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

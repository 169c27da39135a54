//! The audit log (issue 8): every mutating call and every denial — who,
//! which token, what, which incident, the result, when — in `audit.log`
//! beside the event log (CRC-framed records, one group-commit writer with
//! `fdatasync`). Records older than `[access] audit_retention` are dropped
//! when the server starts. Queries read the file from disk, so the log's
//! size never sits in memory.
//!
//! An audit record is queued when its call finishes and synced within
//! `SYNC_EVERY` (20 ms); the reply does not wait for it. A
//! crash in that window can lose the audit record of an acknowledged change,
//! never the change: its events carry the acting person.

use incidentd_store::StoreError;
use incidentd_store::outbox::OutboxLog;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

const FILE: &str = "audit.log";
/// The audit writer gathers records this long before one `fdatasync`: at
/// most ~50 syncs a second, not one per group of calls beside the event
/// log's (a busy server's audit otherwise doubles the disk's sync load).
const SYNC_EVERY: Duration = Duration::from_millis(20);

/// Wall-clock time in ms since the Unix epoch (audit and token records).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the call finished, ms since the Unix epoch.
    pub at_ms: i64,
    /// The token's id (empty: none presented, or `--dev`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// The person (or integration) the token acts as.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub actor: String,
    /// gRPC path or HTTP path.
    pub method: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub incident: String,
    /// gRPC code name (`OK`, `PERMISSION_DENIED`, ...).
    pub code: String,
    /// The error message (denials and failures).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Which records a query wants (empty fields match everything).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub actor: String,
    pub token: String,
    pub incident: String,
    /// Matches the end of the method path (`ResolveIncident`) or all of it.
    pub method: String,
    pub denied_only: bool,
    /// Records after this position (from a previous page).
    pub after: usize,
    pub limit: usize,
}

impl AuditQuery {
    fn matches(&self, r: &AuditRecord) -> bool {
        self.since_ms.is_none_or(|t| r.at_ms >= t)
            && self.until_ms.is_none_or(|t| r.at_ms < t)
            && (self.actor.is_empty() || r.actor == self.actor)
            && (self.token.is_empty() || r.token == self.token)
            && (self.incident.is_empty() || r.incident == self.incident)
            && (self.method.is_empty() || r.method == self.method || r.method.ends_with(&format!("/{}", self.method)))
            && (!self.denied_only || matches!(r.code.as_str(), "UNAUTHENTICATED" | "PERMISSION_DENIED"))
    }
}

/// A page of records and the position to continue after (`None`: the end).
#[derive(Debug, Default)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    pub next: Option<usize>,
}

#[derive(Clone)]
pub struct Audit {
    log: Option<(OutboxLog, PathBuf)>,
}

impl Audit {
    /// Opens `dir/audit.log`, dropping records older than `retention`. Blocking.
    pub fn open(dir: &Path, retention: Duration) -> Result<Audit, StoreError> {
        let horizon = now_ms() - retention.as_millis() as i64;
        let (log, _) = OutboxLog::open_lingering(
            dir,
            FILE,
            |records| {
                records
                    .iter()
                    .filter(|r| {
                        serde_json::from_slice::<AuditRecord>(r)
                            .map(|a| a.at_ms >= horizon)
                            .unwrap_or(false)
                    })
                    .cloned()
                    .collect()
            },
            incidentd_store::outbox::Linger::Gather(SYNC_EVERY),
        )?;
        Ok(Audit {
            log: Some((log, dir.to_path_buf())),
        })
    }

    /// No file: records are dropped (tests of the layer alone).
    pub fn disabled() -> Audit {
        Audit { log: None }
    }

    /// Queues a record; the log's group commit syncs it.
    pub fn append(&self, record: AuditRecord) {
        if let Some((log, _)) = &self.log {
            match serde_json::to_vec(&record) {
                Ok(bytes) => {
                    // Not awaited: the reply does not wait for its audit record.
                    drop(log.append(vec![bytes]));
                }
                Err(e) => tracing::error!(error = %e, "cannot encode an audit record"),
            }
        }
    }

    /// Reads matching records, oldest first, from disk.
    pub async fn query(&self, q: AuditQuery) -> Result<AuditPage, StoreError> {
        let Some((_, dir)) = &self.log else {
            return Ok(AuditPage::default());
        };
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let records = OutboxLog::read_named(&dir, FILE)?;
            let mut page = AuditPage::default();
            for (pos, bytes) in records.iter().enumerate().skip(q.after) {
                let Ok(r) = serde_json::from_slice::<AuditRecord>(bytes) else {
                    continue;
                };
                if !q.matches(&r) {
                    continue;
                }
                if page.records.len() == q.limit {
                    page.next = Some(pos);
                    break;
                }
                page.records.push(r);
            }
            Ok(page)
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    pub fn close(&self) {
        if let Some((log, _)) = &self.log {
            log.close();
        }
    }
}

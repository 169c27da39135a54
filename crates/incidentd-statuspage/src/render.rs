//! A rendered page: every document the HTTP side serves, built once per
//! change of the public view (never per request), each with its ETag.

use crate::view::PageModel;
use axum::body::Bytes;
use incidentd_domain::Timestamp;
use std::hash::{Hash, Hasher};

/// The documents of the page, in [`Rendered::docs`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Html,
    Summary,
    Status,
    Components,
    Incidents,
    Unresolved,
    Maintenances,
    Atom,
}

impl DocKind {
    pub const ALL: [DocKind; 8] = [
        DocKind::Html,
        DocKind::Summary,
        DocKind::Status,
        DocKind::Components,
        DocKind::Incidents,
        DocKind::Unresolved,
        DocKind::Maintenances,
        DocKind::Atom,
    ];

    pub fn content_type(self) -> &'static str {
        match self {
            DocKind::Html => "text/html; charset=utf-8",
            DocKind::Atom => "application/atom+xml; charset=utf-8",
            _ => "application/json",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Doc {
    pub body: Bytes,
    /// Strong validator, quoted: `"<16 hex digits>"`.
    pub etag: String,
}

/// Everything served, for one state of the public view.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Identifies the public state (the page's live refresh compares it).
    pub rev: String,
    /// When the public view last changed, as an HTTP date.
    pub last_modified: String,
    pub updated_at: Timestamp,
    pub docs: Vec<Doc>,
}

impl Rendered {
    pub fn doc(&self, kind: DocKind) -> &Doc {
        // `docs` always holds one document per kind, in `DocKind::ALL` order.
        &self.docs[kind as usize]
    }

    /// Served before the view has loaded: an empty page.
    pub fn empty() -> Rendered {
        Rendered {
            rev: String::new(),
            last_modified: http_date(Timestamp(0)),
            updated_at: Timestamp(0),
            docs: DocKind::ALL
                .iter()
                .map(|_| Doc {
                    body: Bytes::new(),
                    etag: "\"0\"".into(),
                })
                .collect(),
        }
    }

    pub fn build(m: &PageModel<'_>, started: Timestamp) -> Rendered {
        let j = crate::json::Json::new(m, started);
        let json = |v: serde_json::Value| Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
        let summary = json(j.summary());
        let incidents = json(j.incidents_doc());
        let maintenances = json(j.maintenances_doc());
        let components = json(j.components_doc());
        // The public state: what summary, history and maintenance show.
        let rev = hex(hash_all(&[&summary, &incidents, &maintenances, &components]));
        let html = Bytes::from(crate::html::page(m, &rev));
        let docs_by_kind = |k: DocKind| match k {
            DocKind::Html => html.clone(),
            DocKind::Summary => summary.clone(),
            DocKind::Status => json(j.status_doc()),
            DocKind::Components => components.clone(),
            DocKind::Incidents => incidents.clone(),
            DocKind::Unresolved => json(j.unresolved_doc()),
            DocKind::Maintenances => maintenances.clone(),
            DocKind::Atom => Bytes::from(crate::atom::feed(m)),
        };
        let docs = DocKind::ALL
            .iter()
            .map(|k| {
                let body = docs_by_kind(*k);
                let etag = format!("\"{}\"", hex(hash_all(&[&body])));
                Doc { body, etag }
            })
            .collect();
        Rendered {
            rev,
            last_modified: http_date(m.updated_at),
            updated_at: m.updated_at,
            docs,
        }
    }
}

fn hash_all(parts: &[&Bytes]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in parts {
        p.as_ref().hash(&mut h);
    }
    h.finish()
}

fn hex(v: u64) -> String {
    format!("{v:016x}")
}

pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// IMF-fixdate (RFC 9110): `Fri, 27 Nov 2026 04:26:01 GMT`.
pub fn http_date(t: Timestamp) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let secs = t.0.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let s = secs.rem_euclid(86_400);
    let (y, m, d) = incidentd_domain::time::civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let wd = DAYS[(days + 4).rem_euclid(7) as usize];
    format!(
        "{wd}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        MONTHS[(m - 1) as usize],
        s / 3600,
        (s % 3600) / 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(Timestamp(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(Timestamp(1_795_729_200_000)), "Thu, 26 Nov 2026 21:40:00 GMT");
    }
}

//! The Atom feed (RFC 4287) of customer-facing updates and maintenance
//! notes: one entry per update, newest first. Every entry has the required
//! `id` (a tag URI, RFC 4151, stable across restarts), `title` and
//! `updated`; the feed has `author`, a `self` link and the page as its
//! `alternate`. Links are relative to the page (`xml:base` is not needed:
//! readers resolve them against the feed's own URL).

use crate::html::escape;
use crate::json::iso;
use crate::view::PageModel;
use incidentd_domain::Timestamp;
use std::fmt::Write;

/// Entries in the feed.
const ENTRIES_MAX: usize = 100;

struct Entry {
    id: String,
    title: String,
    at: Timestamp,
    link: String,
    body: String,
}

pub fn feed(m: &PageModel<'_>) -> String {
    let page = m.catalog.page_id();
    let mut entries: Vec<Entry> = Vec::new();
    for i in m.active.iter().chain(m.past.iter()) {
        let name = i.name(m.catalog);
        for u in &i.updates {
            entries.push(Entry {
                id: format!("tag:incidentd,2026:{page}/incident/{}/update/{}", i.id, u.seq),
                title: format!("{name}: {}", u.status.label()),
                at: u.at,
                link: format!("/status#incident-{}", i.id),
                body: u.body.clone(),
            });
        }
    }
    for w in &m.maintenances {
        let id = w.id.map(|i| i.to_string()).unwrap_or_default();
        for n in &w.notes {
            entries.push(Entry {
                id: format!("tag:incidentd,2026:{page}/maintenance/{id}/note/{}", n.seq),
                title: format!(
                    "Maintenance: {} ({} to {})",
                    w.title,
                    crate::html::human_time(w.starts_at),
                    crate::html::human_time(w.ends_at)
                ),
                at: n.at,
                link: format!("/status#maintenance-{id}"),
                body: n.body.clone(),
            });
        }
    }
    entries.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    entries.truncate(ENTRIES_MAX);
    let updated = entries.first().map(|e| e.at).unwrap_or(m.updated_at).max(m.updated_at);
    let title = escape(&m.catalog.title);
    let mut o = String::with_capacity(4096 + entries.len() * 512);
    let _ = write!(
        o,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
<id>tag:incidentd,2026:{page}/feed</id><title>{title}</title>\
<subtitle>Incident updates and scheduled maintenance</subtitle><updated>{}</updated>\
<author><name>{title}</name></author>\
<link rel=\"self\" type=\"application/atom+xml\" href=\"/status/feed.atom\"/>\
<link rel=\"alternate\" type=\"text/html\" href=\"/status\"/>",
        iso(updated)
    );
    for e in entries {
        let _ = write!(
            o,
            "<entry><id>{}</id><title>{}</title><updated>{at}</updated><published>{at}</published>\
<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/><content type=\"text\">{}</content></entry>",
            escape(&e.id),
            escape(&e.title),
            escape(&e.link),
            escape(&e.body),
            at = iso(e.at)
        );
    }
    o.push_str("</feed>\n");
    o
}

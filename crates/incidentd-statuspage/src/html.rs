//! The status page as one server-rendered HTML document: readable without
//! JavaScript, landmarks and a heading outline for screen readers, text
//! labels beside every colour (colours meet WCAG AA contrast on white), one
//! column that fits a phone. A few lines of script refresh `<main>` in
//! place when the server says the page changed (SSE), revalidating with
//! the ETag.

use crate::maintenance::MaintenanceStatus;
use crate::render::MONTHS;
use crate::view::{ComponentState, Day, PageModel, PublicIncident, minutes_text, uptime_percent};
use incidentd_domain::{ComponentStatus, Timestamp};
use std::fmt::Write;

/// Escapes text for HTML and XML (attributes included) and drops the
/// control characters XML 1.0 forbids.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// `27 Nov 2026, 04:26 UTC`.
pub fn human_time(t: Timestamp) -> String {
    let secs = t.0.div_euclid(1000);
    let (y, m, d) = incidentd_domain::time::civil_from_days(secs.div_euclid(86_400));
    format!("{d} {} {y}, {}", MONTHS[(m - 1) as usize], t.hhmm_utc())
}

/// `27 Nov`.
fn short_day(t: Timestamp) -> String {
    let (_, m, d) = incidentd_domain::time::civil_from_days(t.0.div_euclid(86_400_000));
    format!("{d} {}", MONTHS[(m - 1) as usize])
}

fn time_tag(t: Timestamp) -> String {
    format!("<time datetime=\"{t}\">{}</time>", human_time(t))
}

const STYLE: &str = "\
:root{--ok:#1b6e2e;--minor:#7a5200;--major:#a33b00;--critical:#a1221b;--maint:#1d4f9c;--fg:#1a1a1a;--muted:#4d4d4d;--line:#d0d0d0}\
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fg);background:#fff}\
.wrap{max-width:56rem;margin:0 auto;padding:1rem}header{border-bottom:1px solid var(--line)}h1{font-size:1.6rem;margin:.5rem 0}\
h2{font-size:1.25rem;margin:1.5rem 0 .5rem}h3{font-size:1.05rem;margin:1rem 0 .25rem}\
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:1}\
.banner{color:#fff;padding:.75rem 1rem;border-radius:.4rem;font-size:1.15rem;margin:1rem 0}\
.b-none{background:var(--ok)}.b-minor{background:var(--minor)}.b-major{background:var(--major)}.b-critical{background:var(--critical)}.b-maintenance{background:var(--maint)}\
ul.components{list-style:none;padding:0;margin:0}ul.components>li{border:1px solid var(--line);border-radius:.4rem;padding:.6rem .8rem;margin:.5rem 0}\
.row{display:flex;justify-content:space-between;gap:1rem;flex-wrap:wrap}.name{font-weight:600}.desc{color:var(--muted);margin:0;font-size:.9rem}\
.st{font-weight:600}.s-operational{color:var(--ok)}.s-degraded_performance{color:var(--minor)}.s-partial_outage{color:var(--major)}.s-major_outage{color:var(--critical)}.s-under_maintenance{color:var(--maint)}\
.bars{display:flex;gap:1px;height:2rem;margin:.4rem 0 .1rem}.bars span{flex:1;border-radius:1px;background:var(--ok)}\
.bars .d-degraded_performance{background:#c99a00}.bars .d-partial_outage{background:#e06a00}.bars .d-major_outage{background:var(--critical)}\
.uptime{font-size:.85rem;color:var(--muted);margin:0;display:flex;justify-content:space-between}\
article{border-left:4px solid var(--line);padding:.1rem 0 .1rem .9rem;margin:1rem 0}.i-critical{border-color:var(--critical)}.i-major{border-color:var(--major)}.i-minor{border-color:var(--minor)}.i-maintenance{border-color:var(--maint)}\
ol.updates{list-style:none;padding:0;margin:.25rem 0}ol.updates li{margin:.5rem 0}ol.updates p{margin:0;white-space:pre-line}.meta{color:var(--muted);font-size:.85rem}\
footer{border-top:1px solid var(--line);color:var(--muted);font-size:.9rem;margin-top:2rem}a{color:#0b57d0}\
@media (max-width:30rem){.bars{height:1.5rem}h1{font-size:1.35rem}}";

const SCRIPT: &str = "(function(){var m=document.getElementById('main');if(!m||!window.fetch||!window.DOMParser)return;\
function load(){fetch('/status',{cache:'no-cache',headers:{Accept:'text/html'}}).then(function(r){return r.ok?r.text():null})\
.then(function(t){if(!t)return;var n=new DOMParser().parseFromString(t,'text/html').getElementById('main');\
if(n&&n.getAttribute('data-rev')!==m.getAttribute('data-rev')){m.replaceWith(n);m=n;}}).catch(function(){})}\
if(window.EventSource){var es=new EventSource('/status/events');es.onmessage=function(e){if(e.data!==m.getAttribute('data-rev'))load()}}\
else{setInterval(load,30000)}})();";

/// The whole document. `rev` identifies the public state (live refresh compares it).
pub fn page(m: &PageModel<'_>, rev: &str) -> String {
    let mut o = String::with_capacity(32 * 1024);
    let title = escape(&m.catalog.title);
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
<link rel=\"alternate\" type=\"application/atom+xml\" title=\"{title}: incidents and maintenance\" href=\"/status/feed.atom\">\
<style>{STYLE}</style></head><body><a class=\"skip\" href=\"#main\">Skip to content</a>\
<header><div class=\"wrap\"><h1>{title}</h1></div></header>"
    );
    let (indicator, description) = m.indicator();
    let _ = write!(
        o,
        "<main id=\"main\" class=\"wrap\" data-rev=\"{}\" aria-live=\"polite\">\
<section aria-labelledby=\"overall\"><h2 id=\"overall\" class=\"banner b-{indicator}\" data-indicator=\"{indicator}\">{description}</h2></section>",
        escape(rev)
    );
    incidents(
        &mut o,
        m,
        ("active-h", "Active incidents"),
        &m.active,
        "No incidents are open.",
    );
    maintenance(&mut o, m);
    components(&mut o, m);
    incidents(
        &mut o,
        m,
        ("past-h", "Past incidents (90 days)"),
        &m.past,
        "No incidents in the last 90 days.",
    );
    let _ = write!(
        o,
        "<p class=\"meta\">Last updated {}.</p></main>\
<footer><div class=\"wrap\"><p>Subscribe: <a href=\"/status/feed.atom\">Atom feed</a>. \
Machine-readable: <a href=\"/status/api/v2/summary.json\">summary.json</a>.</p></div></footer>\
<script>{SCRIPT}</script></body></html>",
        time_tag(m.updated_at)
    );
    o
}

fn incident(o: &mut String, m: &PageModel<'_>, i: &PublicIncident, heading: &str) {
    let id = i.id;
    let impact = i.impact().as_str();
    let _ = write!(
        o,
        "<article id=\"incident-{id}\" class=\"incident i-{impact}\" data-status=\"{}\" aria-labelledby=\"h-{id}\">\
<{heading} id=\"h-{id}\">{}</{heading}><p class=\"meta\">{} · impact: {impact} · started {}",
        i.status.as_str(),
        escape(&i.name(m.catalog)),
        i.status.label(),
        time_tag(i.declared_at)
    );
    if let Some(r) = i.resolved_at {
        let _ = write!(o, " · resolved {}", time_tag(r));
    }
    o.push_str("</p>");
    if i.updates.is_empty() {
        o.push_str("<p>We are aware of an issue and will post an update shortly.</p>");
    } else {
        o.push_str("<ol class=\"updates\" reversed>");
        for u in i.updates.iter().rev() {
            let _ = write!(
                o,
                "<li class=\"update\"><p><strong>{}</strong> — {}</p><p class=\"meta\">{}</p></li>",
                u.status.label(),
                escape(&u.body),
                time_tag(u.at)
            );
        }
        o.push_str("</ol>");
    }
    o.push_str("</article>");
}

/// A section of incidents (active or past), with a sentence when it is empty.
fn incidents(o: &mut String, m: &PageModel<'_>, (id, title): (&str, &str), list: &[&PublicIncident], empty: &str) {
    let _ = write!(o, "<section aria-labelledby=\"{id}\"><h2 id=\"{id}\">{title}</h2>");
    if list.is_empty() {
        let _ = write!(o, "<p>{empty}</p>");
    }
    for i in list {
        incident(o, m, i, "h3");
    }
    o.push_str("</section>");
}

fn maintenance(o: &mut String, m: &PageModel<'_>) {
    o.push_str("<section aria-labelledby=\"maint-h\"><h2 id=\"maint-h\">Scheduled maintenance</h2>");
    let open: Vec<_> = m
        .maintenances
        .iter()
        .filter(|w| w.status_at(m.now) != MaintenanceStatus::Completed)
        .collect();
    if open.is_empty() {
        o.push_str("<p>No maintenance is scheduled.</p>");
    }
    for w in open {
        let id = w.id.map(|i| i.to_string()).unwrap_or_default();
        let names: Vec<String> = w
            .services
            .iter()
            .filter_map(|s| m.catalog.component(s).map(|c| escape(&c.name)))
            .collect();
        let status = w.status_at(m.now);
        let _ = write!(
            o,
            "<article id=\"maintenance-{id}\" class=\"maintenance i-maintenance\" data-status=\"{}\" aria-labelledby=\"h-{id}\">\
<h3 id=\"h-{id}\">{}</h3><p class=\"meta\">{} · {} to {} · affects {}</p>",
            status.as_str(),
            escape(&w.title),
            status.label(),
            time_tag(w.starts_at),
            time_tag(w.ends_at),
            names.join(", ")
        );
        if !w.notes.is_empty() {
            o.push_str("<ol class=\"updates\" reversed>");
            for n in w.notes.iter().rev() {
                let _ = write!(
                    o,
                    "<li><p>{}</p><p class=\"meta\">{}</p></li>",
                    escape(&n.body),
                    time_tag(n.at)
                );
            }
            o.push_str("</ol>");
        }
        o.push_str("</article>");
    }
    o.push_str("</section>");
}

fn components(o: &mut String, m: &PageModel<'_>) {
    o.push_str("<section aria-labelledby=\"components-h\"><h2 id=\"components-h\">Components</h2>");
    let mut group: Option<&str> = None;
    let mut open = false;
    for (c, bars) in m.components.iter().zip(&m.bars) {
        let g = c.def.group.as_deref();
        if !open || g != group {
            if open {
                o.push_str("</ul>");
            }
            if let Some(name) = g {
                let _ = write!(o, "<h3>{}</h3>", escape(name));
            }
            o.push_str("<ul class=\"components\">");
            group = g;
            open = true;
        }
        component(o, m, c, bars);
    }
    if open {
        o.push_str("</ul>");
    }
    o.push_str("</section>");
}

fn component(o: &mut String, m: &PageModel<'_>, c: &ComponentState, days: &[Day]) {
    let status = c.status_str();
    let uptime = uptime_percent(days, m.now);
    let name = escape(&c.def.name);
    let _ = write!(
        o,
        "<li class=\"component\" data-component=\"{}\" data-status=\"{status}\"><div class=\"row\">\
<span class=\"name\">{name}</span><span class=\"st s-{status}\">{}</span></div>",
        escape(&c.def.id),
        c.label()
    );
    if let Some(d) = &c.def.description {
        let _ = write!(o, "<p class=\"desc\">{}</p>", escape(d));
    }
    let _ = write!(
        o,
        "<div class=\"bars\" role=\"img\" aria-label=\"{name}: {uptime:.2}% uptime over the last {} days\">",
        days.len()
    );
    for d in days {
        let what = match d.worst {
            ComponentStatus::Operational => "no incidents".to_string(),
            _ => {
                let mut parts = Vec::new();
                for (min, label) in [
                    (d.major_min, "major outage"),
                    (d.partial_min, "partial outage"),
                    (d.degraded_min, "degraded performance"),
                ] {
                    if min > 0 {
                        parts.push(format!("{} {label}", minutes_text(min)));
                    }
                }
                parts.join(", ")
            }
        };
        let _ = write!(
            o,
            "<span class=\"d-{}\" title=\"{}: {what}\"></span>",
            d.worst.as_str(),
            short_day(d.start)
        );
    }
    let _ = write!(
        o,
        "</div><p class=\"uptime\" aria-hidden=\"true\"><span>{} days ago</span><span>{uptime:.2}% uptime</span><span>Today</span></p></li>",
        days.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG 2 relative luminance of `#rrggbb`.
    fn luminance(hex: &str) -> f64 {
        let c = |i: usize| {
            let v = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)) / 255.0;
            if v <= 0.039_28 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * c(1) + 0.7152 * c(3) + 0.0722 * c(5)
    }

    /// Every colour used for text (and, reversed, for banners under white
    /// text) meets WCAG AA (4.5:1) against white.
    #[test]
    fn text_colours_meet_wcag_aa_on_white() {
        let vars = STYLE
            .split_once(":root{")
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(v, _)| v)
            .unwrap_or_default();
        let mut checked = 0;
        for decl in vars.split(';') {
            let Some((name, value)) = decl.split_once(':') else {
                continue;
            };
            if name == "--line" {
                continue; // borders, not text
            }
            let ratio = (1.05) / (luminance(value) + 0.05);
            assert!(ratio >= 4.5, "{name} {value}: contrast {ratio:.2} on white");
            checked += 1;
        }
        assert!(checked >= 7, "colour variables found: {checked}");
    }

    #[test]
    fn escapes_markup_and_drops_xml_control_characters() {
        assert_eq!(
            escape("<b a=\"1\">&'\u{1}</b>"),
            "&lt;b a=&quot;1&quot;&gt;&amp;&#39;&lt;/b&gt;"
        );
    }
}

//! After the incident: the blameless review (sections, action items), its
//! generated timeline and Markdown export, and the blameless wording check.
//!
//! The review is part of the incident aggregate: its changes are incident
//! events in the same log, so they are durable, replayable and watchable
//! like everything else. It exists from resolution.

use crate::model::{EntryKind, Incident};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The written parts of a review. In commands and events, `None` leaves a
/// section as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReviewSections {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what_happened: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_causes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributing_factors: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub went_well: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_improve: Option<String>,
}

impl ReviewSections {
    /// (name, text) of every section, in document order.
    pub fn named(&self) -> [(&'static str, Option<&str>); 5] {
        [
            ("what_happened", self.what_happened.as_deref()),
            ("root_causes", self.root_causes.as_deref()),
            ("contributing_factors", self.contributing_factors.as_deref()),
            ("went_well", self.went_well.as_deref()),
            ("to_improve", self.to_improve.as_deref()),
        ]
    }

    pub fn is_empty(&self) -> bool {
        self.named().iter().all(|(_, t)| t.is_none())
    }

    /// Overwrites the sections `other` sets.
    pub fn merge(&mut self, other: &ReviewSections) {
        let take = |mine: &mut Option<String>, theirs: &Option<String>| {
            if let Some(t) = theirs {
                *mine = Some(t.clone());
            }
        };
        take(&mut self.what_happened, &other.what_happened);
        take(&mut self.root_causes, &other.root_causes);
        take(&mut self.contributing_factors, &other.contributing_factors);
        take(&mut self.went_well, &other.went_well);
        take(&mut self.to_improve, &other.to_improve);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ActionItemState {
    Open,
    Done { at: Timestamp },
    Dropped { at: Timestamp, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionItem {
    /// 1-based number within the incident (`<incident id>/<n>` outside it).
    pub number: u32,
    pub description: String,
    /// A person of the org.
    pub owner: String,
    pub due_at: Timestamp,
    pub created_at: Timestamp,
    pub state: ActionItemState,
    /// When the owner was reminded that it is overdue (once).
    pub reminded_at: Option<Timestamp>,
}

impl ActionItem {
    pub fn is_open(&self) -> bool {
        self.state == ActionItemState::Open
    }

    pub fn is_overdue(&self, now: Timestamp) -> bool {
        self.is_open() && self.due_at < now
    }

    pub fn closed_at(&self) -> Option<Timestamp> {
        match &self.state {
            ActionItemState::Open => None,
            ActionItemState::Done { at } | ActionItemState::Dropped { at, .. } => Some(*at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Review {
    pub sections: ReviewSections,
    pub updated_at: Option<Timestamp>,
    pub updated_by: Option<String>,
    pub action_items: Vec<ActionItem>,
}

impl Review {
    /// Written far enough that reminders stop: the root causes are in.
    pub fn is_written(&self) -> bool {
        self.sections
            .root_causes
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty())
    }
}

/// One line of the generated timeline: a milestone, and how long after the
/// previous milestone and after declaration it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Milestone {
    pub at: Timestamp,
    pub text: String,
    pub since_previous: std::time::Duration,
    pub since_declared: std::time::Duration,
}

/// What the review's timeline shows: declaration, acknowledgement, severity
/// changes, roles, status changes, updates, findings, escalations — the
/// system entries and findings, not every note.
pub fn generated_timeline(s: &Incident) -> Vec<Milestone> {
    let mut out: Vec<Milestone> = Vec::new();
    // The incident up to its resolution, not what was done about the review afterwards.
    let resolution = s.resolved_at.and_then(|t| {
        s.timeline
            .iter()
            .position(|e| e.at == t && e.text.starts_with("Resolved"))
    });
    let end = resolution.map_or(s.timeline.len(), |i| i + 1);
    for e in &s.timeline[..end] {
        let keep = match e.kind {
            EntryKind::Finding | EntryKind::Decision => true,
            EntryKind::System => !e.text.starts_with("Impact updated") || e.text.contains("data loss"),
            EntryKind::Note | EntryKind::Action => false,
        };
        if !keep {
            continue;
        }
        let previous = out.last().map_or(s.declared_at, |m| m.at);
        let text = match e.kind {
            EntryKind::Finding => format!("Finding by {}: {}", e.author.as_deref().unwrap_or("someone"), e.text),
            EntryKind::Decision => format!("Decision: {}", e.text),
            _ => e.text.clone(),
        };
        out.push(Milestone {
            at: e.at,
            text,
            since_previous: e.at.since(previous),
            since_declared: e.at.since(s.declared_at),
        });
    }
    out
}

/// A blameful sentence and how to say it about the system instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlameFinding {
    /// Which section it is in.
    pub section: String,
    pub sentence: String,
    pub rule: String,
    pub suggestion: String,
}

/// A wording rule: a phrase (lower-case; `{person}` stands for a responder's
/// name or id) and the systems framing to suggest instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlameRule {
    pub id: String,
    pub phrases: Vec<String>,
    pub suggestion: String,
}

/// The default rule list (data: the org config may replace it).
pub fn default_blame_rules() -> Vec<BlameRule> {
    let rule = |id: &str, phrases: &[&str], suggestion: &str| BlameRule {
        id: id.into(),
        phrases: phrases.iter().map(|p| p.to_string()).collect(),
        suggestion: suggestion.into(),
    };
    vec![
        rule(
            "person-failed",
            &[
                "{person} failed",
                "{person} forgot",
                "{person} broke",
                "{person} missed",
                "{person} messed up",
                "{person} caused",
                "{person} didn't",
                "{person} did not",
                "{person} neglected",
                "{person} ignored",
                "because of {person}",
            ],
            "Describe what the system allowed: which check, guard rail or signal was missing, rather than who acted.",
        ),
        rule(
            "fault",
            &["fault of", "'s fault", "at fault", "to blame", "blame "],
            "Name the conditions that made the failure possible instead of assigning fault.",
        ),
        rule(
            "should-have-known",
            &[
                "should have known",
                "should've known",
                "should have noticed",
                "should have caught",
            ],
            "Ask what information was missing or hard to see at the time, and how to surface it.",
        ),
        rule(
            "careless",
            &[
                "careless",
                "negligent",
                "sloppy",
                "lazy",
                "incompetent",
                "stupid mistake",
            ],
            "Describe the work conditions (load, tooling, time pressure) that made the slip likely.",
        ),
        rule(
            "human-error",
            &["human error", "operator error", "user error", "pilot error"],
            "Human error is a symptom, not a root cause: what in the process or tooling let the error through?",
        ),
    ]
}

/// Checks every section for blameful wording. `people` are the names and
/// ids of the org's people (a responder as the subject of a failure).
pub fn blame_findings(sections: &ReviewSections, people: &[String], rules: &[BlameRule]) -> Vec<BlameFinding> {
    let people: Vec<String> = people
        .iter()
        .map(|p| p.to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    let mut out = Vec::new();
    for (section, text) in sections.named() {
        let Some(text) = text else { continue };
        for sentence in sentences(text) {
            let lower = sentence.to_lowercase();
            if let Some(rule) = rules
                .iter()
                .find(|r| r.phrases.iter().any(|p| matches(&lower, p, &people)))
            {
                out.push(BlameFinding {
                    section: section.to_string(),
                    sentence: sentence.to_string(),
                    rule: rule.id.clone(),
                    suggestion: rule.suggestion.clone(),
                });
            }
        }
    }
    out
}

fn matches(sentence: &str, phrase: &str, people: &[String]) -> bool {
    if phrase.contains("{person}") {
        people
            .iter()
            .any(|p| contains_words(sentence, &phrase.replace("{person}", p)))
    } else {
        contains_words(sentence, phrase)
    }
}

/// `needle` occurs in `hay` starting at a word boundary.
fn contains_words(hay: &str, needle: &str) -> bool {
    let needle = needle.trim_end();
    hay.match_indices(needle).any(|(i, _)| {
        i == 0 || !hay[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric()) || needle.starts_with('\'')
    })
}

/// Splits text into sentences (at `.`, `!`, `?` followed by space or end, and at line breaks).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let end = match c {
            '\n' => Some(i),
            '.' | '!' | '?' => {
                let next = bytes.get(i + 1).copied();
                (next.is_none() || next == Some(b' ') || next == Some(b'\n')).then_some(i + 1)
            }
            _ => None,
        };
        if let Some(end) = end {
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let s = text[start..].trim();
    if !s.is_empty() {
        out.push(s);
    }
    out
}

/// The review as a Markdown document.
pub fn markdown(s: &Incident, review_due: Option<Timestamp>, findings: &[BlameFinding]) -> String {
    use std::fmt::Write;
    let mut md = String::new();
    let _ = writeln!(md, "# Post-incident review: {} {}", s.reference(), s.title);
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "- Severity: {}\n- Team: {}\n- Declared: {}\n- Resolved: {}",
        s.severity,
        s.team,
        s.declared_at,
        s.resolved_at.map_or("not yet".to_string(), |t| t.to_string())
    );
    if let Some(due) = review_due {
        let _ = writeln!(md, "- Review due: {due}");
    }
    if s.drill {
        let _ = writeln!(md, "- Drill: yes (this review is the drill's debrief)");
    }
    let _ = writeln!(md, "\n## Timeline\n");
    let _ = writeln!(md, "| time (UTC) | since declared | since previous | what |");
    let _ = writeln!(md, "| --- | --- | --- | --- |");
    for m in generated_timeline(s) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            m.at,
            crate::time::human_duration(m.since_declared),
            crate::time::human_duration(m.since_previous),
            m.text.replace('|', "\\|").replace('\n', " ")
        );
    }
    let titles = [
        ("what_happened", "What happened"),
        ("root_causes", "Root causes"),
        ("contributing_factors", "Contributing factors"),
        ("went_well", "What went well"),
        ("to_improve", "What to improve"),
    ];
    for ((_, text), (_, title)) in s.review.sections.named().iter().zip(titles) {
        let _ = writeln!(md, "\n## {title}\n\n{}", text.unwrap_or("_Not written yet._"));
    }
    let _ = writeln!(md, "\n## Action items\n");
    if s.review.action_items.is_empty() {
        let _ = writeln!(md, "_None yet._");
    }
    for a in &s.review.action_items {
        let state = match &a.state {
            ActionItemState::Open => "open".to_string(),
            ActionItemState::Done { at } => format!("done {at}"),
            ActionItemState::Dropped { reason, .. } => format!("dropped: {reason}"),
        };
        let tick = if matches!(a.state, ActionItemState::Done { .. }) {
            "x"
        } else {
            " "
        };
        let _ = writeln!(
            md,
            "- [{tick}] {} — owner {}, due {} ({state})",
            a.description, a.owner, a.due_at
        );
    }
    if !findings.is_empty() {
        let _ = writeln!(md, "\n## Blameless check\n");
        for f in findings {
            let _ = writeln!(md, "- \"{}\" ({}): {}", f.sentence, f.rule, f.suggestion);
        }
    }
    md
}

//! Who may do what (issue 8): scopes, team grants and the rules that need
//! the incident's state. The gateway authenticates a token and turns it into
//! an `Access`; the incident actor checks it against the state it owns, in
//! the same step as `decide`, so a check and the change it guards cannot be
//! separated by another command (e.g. a commander hand-over before a resolve).

use crate::command::Action;
use crate::error::DomainError;
use crate::model::Incident;
use std::fmt;
use std::sync::Arc;

/// One permission of a token (CONFIG.md `[[tokens]] scopes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Get, list, watch, reports.
    Read,
    /// Timeline entries, updates, findings, reviews, action items, declaring.
    Respond,
    /// Severity, roles, status, impact, resolve, drills.
    Command,
    /// Tokens, audit, config reload; resolves without being the commander.
    Admin,
    /// Alert ingestion (integrations, paging systems).
    Ingest,
}

impl Scope {
    pub const ALL: [Scope; 5] = [Scope::Read, Scope::Respond, Scope::Command, Scope::Admin, Scope::Ingest];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Respond => "respond",
            Scope::Command => "command",
            Scope::Admin => "admin",
            Scope::Ingest => "ingest",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes (exact: no scope implies another).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn of(scopes: impl IntoIterator<Item = Scope>) -> Scopes {
        Scopes(scopes.into_iter().fold(0, |acc, s| acc | s.bit()))
    }
    pub fn all() -> Scopes {
        Scopes::of(Scope::ALL)
    }
    pub fn has(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.has(*s))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(","))
    }
}

/// The teams whose incidents a token may touch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Teams {
    All,
    Only(Vec<String>),
}

impl Teams {
    pub fn contains(&self, team: &str) -> bool {
        match self {
            Teams::All => true,
            Teams::Only(ts) => ts.iter().any(|t| t == team),
        }
    }
}

/// What an authenticated caller holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    /// The token's id (audit).
    pub token: String,
    /// The person the token acts as (`None`: an integration).
    pub person: Option<String>,
    pub scopes: Scopes,
    pub teams: Teams,
}

/// What a command may do. `Unrestricted` is for the service itself (timers,
/// alert routing, drills it runs) and for `--dev`; every authenticated
/// request carries a `Limited` grant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Access {
    #[default]
    Unrestricted,
    Limited(Arc<Grant>),
}

/// A refusal, with the reason the caller is told (and the audit records).
pub fn denied(message: impl Into<String>) -> DomainError {
    DomainError::permission_denied(message)
}

impl Grant {
    /// The scope is held.
    pub fn require(&self, scope: Scope) -> Result<(), DomainError> {
        if self.scopes.has(scope) {
            Ok(())
        } else {
            Err(denied(format!(
                "token {} lacks the {scope} scope (it has: {})",
                self.token, self.scopes
            )))
        }
    }

    /// The team's incidents are within the token's teams.
    pub fn require_team(&self, team: &str) -> Result<(), DomainError> {
        if self.teams.contains(team) {
            Ok(())
        } else {
            Err(denied(format!("token {} is not granted team {team}", self.token)))
        }
    }

    /// Reading a team's incidents: own teams always; others when the org
    /// allows reading across teams (the default, for visibility).
    pub fn may_read(&self, team: &str, across_teams: bool) -> Result<(), DomainError> {
        self.require(Scope::Read)?;
        if across_teams { Ok(()) } else { self.require_team(team) }
    }
}

/// The scope an action needs (the gateway checks the RPC's scope first;
/// this keeps the rule next to the action for callers that are not RPCs).
pub fn scope_of(action: &Action) -> Scope {
    match action {
        Action::Declare { .. }
        | Action::Acknowledge
        | Action::AddEntry { .. }
        | Action::PostUpdate { .. }
        | Action::UpdateReview { .. }
        | Action::AddActionItem { .. }
        | Action::CompleteActionItem { .. }
        | Action::DropActionItem { .. } => Scope::Respond,
        Action::SetSeverity { .. }
        | Action::AssignRole { .. }
        | Action::UnassignRole { .. }
        | Action::SetStatus { .. }
        | Action::SetImpact { .. }
        | Action::Resolve { .. }
        | Action::SetComponentStatus { .. }
        | Action::StartScript { .. } => Scope::Command,
        Action::Alert(_) => Scope::Ingest,
        Action::Tick => Scope::Admin,
    }
}

/// Checks `access` for `action` on `state` (the incident as it is now; for
/// a declaration, the team comes from the action). Resolving needs the
/// `command` scope and being the incident's commander, or `admin`.
pub fn check(access: &Access, state: &Incident, action: &Action) -> Result<(), DomainError> {
    let grant = match access {
        Access::Unrestricted => return Ok(()),
        Access::Limited(g) => g,
    };
    let team = match action {
        Action::Declare { team, .. } => team.as_str(),
        _ => state.team.as_str(),
    };
    let is_admin = grant.scopes.has(Scope::Admin);
    if !is_admin {
        grant.require(scope_of(action))?;
    }
    grant.require_team(team)?;
    if let Action::Resolve { .. } = action
        && !is_admin
    {
        let commander = state.roster.commander.as_deref();
        if grant.person.is_none() || commander != grant.person.as_deref() {
            return Err(denied(format!(
                "resolving needs the incident commander ({}) or an admin token",
                commander.unwrap_or("none assigned")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn grant(person: &str, scopes: &[Scope], teams: Teams) -> Access {
        Access::Limited(Arc::new(Grant {
            token: "t".into(),
            person: Some(person.into()),
            scopes: Scopes::of(scopes.iter().copied()),
            teams,
        }))
    }

    fn incident(team: &str, commander: Option<&str>) -> Incident {
        let mut s = Incident {
            team: team.into(),
            ..Default::default()
        };
        s.roster.commander = commander.map(String::from);
        s
    }

    fn denied(r: Result<(), DomainError>) -> bool {
        matches!(r, Err(e) if e.kind == ErrorKind::PermissionDenied)
    }

    #[test]
    fn scopes_and_teams_gate_actions() {
        let payments = Teams::Only(vec!["payments".into()]);
        let responder = grant("bob", &[Scope::Read, Scope::Respond], payments.clone());
        let s = incident("payments", Some("alice"));
        let entry = Action::AddEntry {
            kind: crate::model::EntryKind::Note,
            text: "x".into(),
        };
        let severity = Action::SetSeverity {
            severity: crate::model::Severity::Sev2,
            reason: "r".into(),
        };
        assert!(check(&responder, &s, &entry).is_ok());
        assert!(denied(check(&responder, &s, &severity)), "respond is not command");
        assert!(
            denied(check(&responder, &incident("identity", None), &entry)),
            "other team"
        );
        assert!(check(&Access::Unrestricted, &incident("identity", None), &severity).is_ok());
    }

    #[test]
    fn resolving_needs_the_commander_or_an_admin() {
        let all = Teams::All;
        let resolve = Action::Resolve { note: String::new() };
        let s = incident("payments", Some("alice"));
        assert!(check(&grant("alice", &[Scope::Command], all.clone()), &s, &resolve).is_ok());
        let bob = check(&grant("bob", &[Scope::Command], all.clone()), &s, &resolve);
        assert!(denied(bob.clone()), "{bob:?}");
        assert!(bob.err().is_some_and(|e| e.message.contains("alice")));
        assert!(check(&grant("bob", &[Scope::Admin], all.clone()), &s, &resolve).is_ok());
        assert!(
            denied(check(&grant("alice", &[Scope::Respond], all), &s, &resolve)),
            "the commander still needs command"
        );
    }

    #[test]
    fn a_declaration_is_checked_against_the_team_it_names() {
        let declare = |team: &str| Action::Declare {
            id: Default::default(),
            number: 0,
            title: "t".into(),
            team: team.into(),
            services: vec![],
            severity: None,
            summary: String::new(),
            commander: None,
            drill: false,
        };
        let g = grant("bob", &[Scope::Respond], Teams::Only(vec!["payments".into()]));
        let fresh = Incident::default();
        assert!(check(&g, &fresh, &declare("payments")).is_ok());
        assert!(denied(check(&g, &fresh, &declare("identity"))));
    }
}

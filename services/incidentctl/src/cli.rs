//! The command line as clap types. Every flag that names a request field
//! says so in its help, so a server error naming the field maps back to it.

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use incidentd_proto::v1 as pb;
use std::path::PathBuf;

pub use crate::when::When;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  ok
  1  the server said no (not found, invalid argument, illegal transition, ...)
  2  usage: bad flags or arguments, a missing field, a bad config file
  3  incidentd unreachable (connection refused, timed out, shutting down)

Settings come from flags, then the environment (INCIDENTD_ADDR, INCIDENTD_TOKEN,
INCIDENTD_USER, INCIDENTD_TEAM), then the config file
($XDG_CONFIG_HOME/incidentctl/config.toml or ~/.config/incidentctl/config.toml):
  addr = \"http://127.0.0.1:50051\"
  token = \"...\"        # sent as `authorization: Bearer <token>`
  user = \"alice\"       # who you are (the `by` of every change)
  team = \"payments\"    # team for `declare` without --team

An incident is named by its reference (INC-42), its number (42) or its id (ULID).";

#[derive(Debug, Parser)]
#[command(
    name = "incidentctl",
    version,
    about = "Run an incident from the terminal: declare, acknowledge, assign roles, post updates, resolve; then review it, track its action items, read reports and run drills.",
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten, next_help_heading = "Global options")]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, Args)]
pub struct Global {
    /// incidentd gRPC address [default: http://127.0.0.1:50051]
    #[arg(long, env = "INCIDENTD_ADDR", global = true, value_name = "URL")]
    pub addr: Option<String>,
    /// API token, sent as `authorization: Bearer <token>`.
    #[arg(long, env = "INCIDENTD_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// You: the person recorded as making each change.
    #[arg(long = "as", env = "INCIDENTD_USER", global = true, value_name = "PERSON")]
    pub user: Option<String>,
    /// Config file [default: ~/.config/incidentctl/config.toml]
    #[arg(long, env = "INCIDENTCTL_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON (one object, or one object per line for `watch`).
    #[arg(long, global = true)]
    pub json: bool,
    /// Colours in human output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Idempotency key: repeating a change with the same key returns the first answer.
    #[arg(long, global = true, value_name = "KEY")]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Declare an incident. Without --sev it is SEV-1 (unclear severity defaults up).
    Declare(Declare),
    /// List incidents (unresolved ones unless --all).
    #[command(visible_alias = "ls")]
    List(List),
    /// Show one incident: severity, status, roster, deadlines.
    Show(Target),
    /// Acknowledge an incident.
    Ack(Target),
    /// Set the severity, e.g. `sev INC-4 3 --reason "workaround exists"`.
    Sev(Sev),
    /// Give someone a role: commander, comms or sme (with --track).
    Assign(Assign),
    /// Take a role away from someone.
    Unassign(Unassign),
    /// Set the status: investigating, identified, mitigating, resolved.
    Status(SetStatus),
    /// Post an update from the playbook's templates (prompts for missing fields on a terminal).
    #[command(subcommand)]
    Update(UpdateCmd),
    /// Add a note to the timeline.
    Note(Entry),
    /// Record a finding on the timeline.
    Finding(Entry),
    /// Resolve an incident.
    Resolve(Resolve),
    /// Show the timeline.
    Timeline(Target),
    /// Follow events live: of one incident, or of every incident matching the filters.
    Watch(Watch),
    /// The post-incident review of a resolved incident: show, export as Markdown, edit.
    #[command(subcommand)]
    Review(ReviewCmd),
    /// Action items from reviews: add, done, drop, list.
    #[command(subcommand)]
    Action(ActionCmd),
    /// Report for a team or the org over a period: per severity MTTA, time to mitigate, MTTR; adherence; drills apart.
    Report(Report),
    /// Game days: scenarios, starting a drill with its roles, role rotation.
    #[command(subcommand)]
    Drill(DrillCmd),
    /// Notification deliveries (of one incident, or all), or `deliveries retry ID` for a dead one.
    Deliveries(Deliveries),
    /// API tokens (admin scope): create one (its secret is shown once), list them, revoke one.
    #[command(subcommand)]
    Token(TokenCmd),
    /// The audit log (admin scope): every change and every denial, oldest first.
    Audit(Audit),
    /// Re-read the server's config file (admin scope), as SIGHUP does; a bad file keeps the old config.
    Reload,
    /// Print a shell completion script, e.g. `incidentctl completions bash > /etc/bash_completion.d/incidentctl`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `incidentctl man | man -l -`.
    Man,
}

#[derive(Debug, Args)]
pub struct Target {
    /// INC-42, 42 or the incident's id.
    pub incident: String,
}

#[derive(Debug, Args)]
pub struct Declare {
    /// What is broken, in a few words.
    pub title: String,
    /// Owning team (request field `team`) [default: INCIDENTD_TEAM, `team` in the config file, else the org's default team]
    #[arg(long, env = "INCIDENTD_TEAM")]
    pub team: Option<String>,
    /// Affected service (request field `services`); repeat for more.
    #[arg(long = "service", short = 's', value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Severity 1-4 (request field `severity`); leave out when unclear.
    #[arg(long, value_parser = parse_severity, value_name = "SEV")]
    pub sev: Option<pb::Severity>,
    /// Longer description (request field `summary`).
    #[arg(long)]
    pub summary: Option<String>,
    /// Incident commander (request field `commander`).
    #[arg(long, value_name = "PERSON")]
    pub commander: Option<String>,
    /// A game-day drill: never reaches customers or the status page.
    #[arg(long)]
    pub drill: bool,
}

#[derive(Debug, Args)]
pub struct List {
    /// Only this team's incidents.
    #[arg(long)]
    pub team: Option<String>,
    /// Only these statuses; repeat for more.
    #[arg(long, value_enum)]
    pub status: Vec<StatusArg>,
    /// Only these severities (1-4); repeat for more.
    #[arg(long, value_parser = parse_severity, value_name = "SEV")]
    pub sev: Vec<pb::Severity>,
    /// Resolved incidents too.
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Drills only.
    #[arg(long, conflicts_with = "no_drills")]
    pub drills: bool,
    /// No drills.
    #[arg(long)]
    pub no_drills: bool,
    /// Stop after this many incidents.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct Sev {
    /// INC-42, 42 or the incident's id.
    pub incident: String,
    /// 1, 2, 3 or 4 (also SEV2, sev-2).
    #[arg(value_parser = parse_severity)]
    pub severity: pb::Severity,
    /// Why (request field `reason`); recorded on the timeline.
    #[arg(long, short = 'r')]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Incident commander.
    #[value(alias = "ic")]
    Commander,
    /// Communications lead.
    #[value(alias = "comms-lead", alias = "comms_lead", alias = "cl")]
    Comms,
    /// Subject matter expert (needs --track when assigned).
    Sme,
}

impl RoleArg {
    pub fn proto(self) -> pb::Role {
        match self {
            RoleArg::Commander => pb::Role::Commander,
            RoleArg::Comms => pb::Role::CommsLead,
            RoleArg::Sme => pb::Role::Sme,
        }
    }
}

#[derive(Debug, Args)]
pub struct Assign {
    /// INC-42, 42 or the incident's id.
    pub incident: String,
    #[arg(value_enum)]
    pub role: RoleArg,
    pub person: String,
    /// SME only: what they investigate (request field `track`).
    #[arg(long, short = 't')]
    pub track: Option<String>,
}

#[derive(Debug, Args)]
pub struct Unassign {
    /// INC-42, 42 or the incident's id.
    pub incident: String,
    #[arg(value_enum)]
    pub role: RoleArg,
    pub person: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Investigating,
    Identified,
    Mitigating,
    Resolved,
}

impl StatusArg {
    pub fn proto(self) -> pb::Status {
        match self {
            StatusArg::Investigating => pb::Status::Investigating,
            StatusArg::Identified => pb::Status::Identified,
            StatusArg::Mitigating => pb::Status::Mitigating,
            StatusArg::Resolved => pb::Status::Resolved,
        }
    }
}

#[derive(Debug, Args)]
pub struct SetStatus {
    /// INC-42, 42 or the incident's id.
    pub incident: String,
    #[arg(value_enum)]
    pub status: StatusArg,
    /// Why, or what changed (request field `note`).
    #[arg(long, short = 'n')]
    pub note: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UpdateCmd {
    /// Internal status update: needs --theory or --next-steps.
    Internal(Internal),
    /// Customer-facing update (reaches the status page): needs --symptom.
    Customer(Customer),
    /// Executive update: needs --business-impact.
    Executive(Executive),
}

#[derive(Debug, Args)]
pub struct Internal {
    /// INC-42, 42 or the incident's id.
    pub incident: String,
    /// Current theory (request field `current_theory`).
    #[arg(long)]
    pub theory: Option<String>,
    /// Next steps (request field `next_steps`).
    #[arg(long)]
    pub next_steps: Option<String>,
    /// Impact (request field `impact`); default: the incident's.
    #[arg(long)]
    pub impact: Option<String>,
    /// Status line (request field `status_text`); default: the incident's status.
    #[arg(long)]
    pub status_text: Option<String>,
    #[command(flatten)]
    pub next: NextUpdate,
}

#[derive(Debug, Args)]
pub struct Customer {
    /// INC-42, 42 or the incident's id.
    pub incident: String,
    /// What customers see (request field `customer_symptom`).
    #[arg(long)]
    pub symptom: Option<String>,
    #[command(flatten)]
    pub next: NextUpdate,
}

#[derive(Debug, Args)]
pub struct Executive {
    /// INC-42, 42 or the incident's id.
    pub incident: String,
    /// Business impact (request field `business_impact`).
    #[arg(long)]
    pub business_impact: Option<String>,
    /// Estimated resolution (request field `estimated_resolution`); default "investigating".
    #[arg(long, visible_alias = "eta")]
    pub estimated_resolution: Option<String>,
    #[command(flatten)]
    pub next: NextUpdate,
}

#[derive(Debug, Args)]
pub struct NextUpdate {
    /// When the next update comes, e.g. 30m (request field `next_update_in`); default: the severity's cadence.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub next_update_in: Option<std::time::Duration>,
    /// Never prompt, even on a terminal.
    #[arg(long)]
    pub no_input: bool,
}

#[derive(Debug, Args)]
pub struct Entry {
    /// INC-42, 42 or the incident's id.
    pub incident: String,
    /// The text (request field `text`); several words are joined with spaces.
    #[arg(required = true, num_args = 1..)]
    pub text: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Resolve {
    /// INC-42, 42 or the incident's id.
    pub incident: String,
    /// Closing note (request field `note`).
    #[arg(long, short = 'n')]
    pub note: Option<String>,
}

#[derive(Debug, Args)]
pub struct Watch {
    /// One incident; all matching incidents when left out.
    pub incident: Option<String>,
    /// One incident: replay events after this version first (0 = from the start) [default: live only]
    #[arg(long, requires = "incident")]
    pub from_version: Option<u64>,
    /// Only this team's incidents.
    #[arg(long, conflicts_with = "incident")]
    pub team: Option<String>,
    /// Exit after this many events.
    #[arg(long)]
    pub count: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum ReviewCmd {
    /// Show the review: due date, generated timeline, sections, action items, blameless findings.
    Show(ReviewShow),
    /// Write review sections (prompts for them on a terminal when no section flag is given).
    Edit(ReviewEdit),
}

#[derive(Debug, Args)]
pub struct ReviewShow {
    /// INC-42, 42 or the incident's id.
    pub incident: String,
    /// Print the Markdown export instead.
    #[arg(long, short = 'm')]
    pub markdown: bool,
    /// Write the Markdown export to FILE (implies --markdown).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReviewEdit {
    /// INC-42, 42 or the incident's id.
    pub incident: String,
    /// What happened (request field `what_happened`).
    #[arg(long, value_name = "TEXT")]
    pub what_happened: Option<String>,
    /// Root causes (request field `root_causes`).
    #[arg(long, value_name = "TEXT")]
    pub root_causes: Option<String>,
    /// Contributing factors (request field `contributing_factors`).
    #[arg(long, value_name = "TEXT")]
    pub contributing: Option<String>,
    /// What went well (request field `went_well`).
    #[arg(long, value_name = "TEXT")]
    pub went_well: Option<String>,
    /// What to improve (request field `to_improve`).
    #[arg(long, value_name = "TEXT")]
    pub to_improve: Option<String>,
    /// Never prompt, even on a terminal.
    #[arg(long)]
    pub no_input: bool,
}

#[derive(Debug, Subcommand)]
pub enum ActionCmd {
    /// Add an action item to a resolved incident's review.
    Add(ActionAdd),
    /// Mark an action item done, e.g. `action done INC-42/1`.
    Done(ActionRef),
    /// Drop an action item, saying why.
    Drop(ActionDrop),
    /// List action items, soonest due first.
    #[command(visible_alias = "ls")]
    List(ActionList),
}

#[derive(Debug, Args)]
pub struct ActionAdd {
    /// INC-42, 42 or the incident's id.
    pub incident: String,
    /// What is to be done (request field `description`); several words are joined with spaces.
    #[arg(required = true, num_args = 1..)]
    pub description: Vec<String>,
    /// Who does it: a person of the org (request field `owner`).
    #[arg(long, value_name = "PERSON")]
    pub owner: String,
    /// Due date (request field `due_at`): 2026-12-31 (end of that day, UTC), 2026-12-31T17:00:00Z, or from now: 7d, 36h.
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub due: When,
}

#[derive(Debug, Args)]
pub struct ActionRef {
    /// The action item: INC-42/1 (incident, then the item's number).
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ActionDrop {
    /// The action item: INC-42/1 (incident, then the item's number).
    pub id: String,
    /// Why it is dropped (request field `reason`).
    #[arg(long, short = 'r')]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct ActionList {
    /// Only this team's items.
    #[arg(long)]
    pub team: Option<String>,
    /// Only this person's items.
    #[arg(long, value_name = "PERSON")]
    pub owner: Option<String>,
    /// Only overdue items.
    #[arg(long)]
    pub overdue: bool,
    /// Only open items.
    #[arg(long)]
    pub open: bool,
    /// Stop after this many items.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct Report {
    /// Only this team [default: the whole org].
    #[arg(long)]
    pub team: Option<String>,
    /// Start (request field `since`): 2026-11-01 (start of that day, UTC), a time, or back from now: 30d [default: the beginning].
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub since: Option<When>,
    /// End (request field `until`): 2026-11-30 (that day included), a time, or back from now: 7d [default: now].
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub until: Option<When>,
}

#[derive(Debug, Subcommand)]
pub enum DrillCmd {
    /// List the game-day scenarios (built-in and the server's scenario files).
    Scenarios,
    /// Start a drill: declares a drill incident with these roles and plays the scenario's script.
    Start(DrillStart),
    /// Per person of a team: how often they held each role; who never led; who should lead next.
    Rotation(Rotation),
    /// Put a drill on the calendar: reminded a day ahead, started at its time with the suggested commander.
    Schedule(DrillSchedule),
    /// The drill calendar (scheduled, started, cancelled drills).
    Calendar {
        /// Only this team's drills (request field `team`).
        #[arg(long)]
        team: Option<String>,
    },
    /// Cancel a scheduled drill.
    Cancel {
        /// The drill's id (see `drill calendar`).
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct DrillSchedule {
    /// Scenario id (see `drill scenarios`).
    pub scenario: String,
    /// Team that plays it (request field `team`) [default: INCIDENTD_TEAM, `team` in the config file]
    #[arg(long, env = "INCIDENTD_TEAM")]
    pub team: Option<String>,
    /// When (request field `at`): 2027-01-15T10:00:00Z, 2027-01-15, or from now: 14d [default: a quarter after the team's latest drill].
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub at: Option<When>,
    /// Book the next one a quarter later, every time.
    #[arg(long)]
    pub recurring: bool,
}

#[derive(Debug, Args)]
pub struct DrillStart {
    /// Scenario id (see `drill scenarios`).
    pub scenario: String,
    /// Team that plays it (request field `team`) [default: INCIDENTD_TEAM, `team` in the config file]
    #[arg(long, env = "INCIDENTD_TEAM")]
    pub team: Option<String>,
    /// Incident commander (request field `roles.commander`).
    #[arg(long, value_name = "PERSON")]
    pub commander: Option<String>,
    /// Communications lead (request field `roles.comms_lead`).
    #[arg(long, value_name = "PERSON")]
    pub comms: Option<String>,
    /// A subject matter expert and their track, e.g. `--sme "dave:database failover"`; repeat for more.
    #[arg(long, value_parser = parse_sme, value_name = "PERSON:TRACK")]
    pub sme: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct Rotation {
    /// The team (request field `team`) [default: INCIDENTD_TEAM, `team` in the config file]
    #[arg(long, env = "INCIDENTD_TEAM")]
    pub team: Option<String>,
    /// Since (request field `since`): a date, a time, or back from now: 180d [default: the last 90 days].
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub since: Option<When>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Deliveries {
    #[command(subcommand)]
    pub retry: Option<DeliveriesCmd>,
    /// INC-42, 42 or the incident's id [default: every incident].
    pub incident: Option<String>,
    /// Only deliveries in this state.
    #[arg(long, value_enum)]
    pub state: Option<DeliveryStateArg>,
    /// Stop after this many deliveries.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCmd {
    /// Put a dead delivery back in its destination's queue with a fresh retry budget.
    Retry {
        /// The delivery id as listed (`INC-42:7:payments-chat` or `<incident id>:7:payments-chat`).
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeliveryStateArg {
    Pending,
    Retrying,
    Delivered,
    Dead,
}

impl DeliveryStateArg {
    pub fn proto(self) -> pb::DeliveryState {
        match self {
            DeliveryStateArg::Pending => pb::DeliveryState::Pending,
            DeliveryStateArg::Retrying => pb::DeliveryState::Retrying,
            DeliveryStateArg::Delivered => pb::DeliveryState::Delivered,
            DeliveryStateArg::Dead => pb::DeliveryState::Dead,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token for a person or an integration; prints its secret, once.
    Create(TokenCreate),
    /// Every token the server accepts (from the config and the API), and the revoked ones.
    #[command(visible_alias = "ls")]
    List,
    /// Revoke a token (from the config or the API): refused from the next request on, across restarts.
    Revoke {
        /// The token's id (see `token list`).
        id: String,
    },
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("principal").required(true).args(["person", "integration"])))]
pub struct TokenCreate {
    /// The token's id (request field `id`): lowercase letters, digits and '-'.
    pub id: String,
    /// The person it acts as (request field `person`).
    #[arg(long, value_name = "PERSON")]
    pub person: Option<String>,
    /// Or the alert integration it authenticates (request field `integration`).
    #[arg(long, value_name = "INTEGRATION")]
    pub integration: Option<String>,
    /// What it may do (request field `scopes`), e.g. `--scope read,respond`.
    #[arg(
        long = "scope",
        value_enum,
        value_delimiter = ',',
        required = true,
        value_name = "SCOPE"
    )]
    pub scopes: Vec<ScopeArg>,
    /// Teams whose incidents it acts on (request field `teams`), e.g. `--team payments,search`, or '*' for all.
    #[arg(long = "team", value_delimiter = ',', required = true, value_name = "TEAM")]
    pub teams: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// Get, list, watch, reviews, reports.
    Read,
    /// Declare, acknowledge, timeline entries, updates, reviews, action items.
    Respond,
    /// Severity, roles, status, impact, resolve, component overrides, drills.
    Command,
    /// Everything: tokens, audit, reload, maintenance windows, delivery retries.
    Admin,
    /// Alert sources.
    Ingest,
}

impl ScopeArg {
    pub fn name(self) -> &'static str {
        match self {
            ScopeArg::Read => "read",
            ScopeArg::Respond => "respond",
            ScopeArg::Command => "command",
            ScopeArg::Admin => "admin",
            ScopeArg::Ingest => "ingest",
        }
    }
}

#[derive(Debug, Args)]
pub struct Audit {
    /// Only calls by this person or integration (request field `actor`).
    #[arg(long, value_name = "PERSON")]
    pub person: Option<String>,
    /// Only calls made with this token id (request field `token_id`; `--token` is the secret you call with).
    #[arg(long, value_name = "ID")]
    pub token_id: Option<String>,
    /// Only calls about this incident: INC-42, 42 or its id (request field `incident_id`).
    #[arg(long, value_name = "INCIDENT")]
    pub incident: Option<String>,
    /// Only this method, e.g. ResolveIncident (request field `method`).
    #[arg(long, value_name = "NAME")]
    pub method: Option<String>,
    /// Only denials (UNAUTHENTICATED, PERMISSION_DENIED).
    #[arg(long)]
    pub denied: bool,
    /// Start (request field `since`): 2026-11-01 (start of that day, UTC), a time, or back from now: 2h.
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub since: Option<When>,
    /// End (request field `until`): 2026-11-30 (that day included), a time, or back from now: 1h [default: now].
    #[arg(long, value_parser = parse_when, value_name = "WHEN")]
    pub until: Option<When>,
    /// Stop after this many records (the oldest first: narrow with --since for recent ones).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

/// `dave:database failover` → (person, track).
fn parse_sme(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((p, t)) if !p.trim().is_empty() && !t.trim().is_empty() => {
            Ok((p.trim().to_string(), t.trim().to_string()))
        }
        _ => Err(format!("{s:?} is not PERSON:TRACK, e.g. \"dave:database failover\"")),
    }
}

fn parse_when(s: &str) -> Result<When, String> {
    When::parse(s)
}

/// `1`, `sev1`, `SEV-1`, `sev_1` → SEV1.
pub fn parse_severity(s: &str) -> Result<pb::Severity, String> {
    let t = s.trim().to_ascii_lowercase();
    let digits = t.trim_start_matches("sev").trim_start_matches(['-', '_', ' ']);
    match digits {
        "1" => Ok(pb::Severity::Sev1),
        "2" => Ok(pb::Severity::Sev2),
        "3" => Ok(pb::Severity::Sev3),
        "4" => Ok(pb::Severity::Sev4),
        _ => Err(format!("{s:?} is not a severity (1, 2, 3 or 4)")),
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    incidentd_config::parse_duration(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn severities_parse_in_every_spelling() {
        for s in ["2", "sev2", "SEV2", "Sev-2", "sev_2", " SEV 2 "] {
            assert_eq!(parse_severity(s), Ok(pb::Severity::Sev2), "{s}");
        }
        for s in ["0", "5", "sev", "high", ""] {
            assert!(parse_severity(s).is_err(), "{s}");
        }
    }

    #[test]
    fn smes_are_person_colon_track() {
        assert_eq!(
            parse_sme("dave: db failover"),
            Ok(("dave".into(), "db failover".into()))
        );
        assert_eq!(parse_sme("dave:a:b"), Ok(("dave".into(), "a:b".into())));
        for s in ["dave", ":x", "dave:", " : "] {
            assert!(parse_sme(s).is_err(), "{s}");
        }
    }

    #[test]
    fn deliveries_take_an_incident_or_retry() {
        let cli = Cli::try_parse_from(["incidentctl", "deliveries", "INC-3", "--state", "dead"]).unwrap();
        let Cmd::Deliveries(d) = cli.cmd else { panic!() };
        assert_eq!(d.incident.as_deref(), Some("INC-3"));
        assert!(d.retry.is_none());
        let cli = Cli::try_parse_from(["incidentctl", "deliveries", "retry", "INC-3:4:chat"]).unwrap();
        let Cmd::Deliveries(d) = cli.cmd else { panic!() };
        assert!(matches!(d.retry, Some(DeliveriesCmd::Retry { id }) if id == "INC-3:4:chat"));
    }

    #[test]
    fn token_create_takes_lists_and_one_principal() {
        let cli = Cli::try_parse_from([
            "incidentctl",
            "token",
            "create",
            "bob-cli",
            "--person",
            "bob",
            "--scope",
            "read,respond",
            "--scope",
            "command",
            "--team",
            "payments,search",
        ])
        .unwrap();
        let Cmd::Token(TokenCmd::Create(t)) = cli.cmd else {
            panic!()
        };
        assert_eq!(t.scopes, [ScopeArg::Read, ScopeArg::Respond, ScopeArg::Command]);
        assert_eq!(t.teams, ["payments", "search"]);
        let base = ["incidentctl", "token", "create", "x", "--scope", "read", "--team", "*"];
        assert!(
            Cli::try_parse_from(base).is_err(),
            "a person or an integration is required"
        );
        let both = [&base[..], &["--person", "bob", "--integration", "am"]].concat();
        assert!(Cli::try_parse_from(both).is_err(), "not both");
        let bad = [
            "incidentctl",
            "token",
            "create",
            "x",
            "--person",
            "bob",
            "--scope",
            "root",
            "--team",
            "*",
        ];
        assert!(Cli::try_parse_from(bad).is_err(), "unknown scope");
    }
}

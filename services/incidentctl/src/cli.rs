//! The command line as clap types. Every flag that names a request field
//! says so in its help, so a server error naming the field maps back to it.

use clap::{Args, Parser, Subcommand, ValueEnum};
use incidentd_proto::v1 as pb;
use std::path::PathBuf;

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
    about = "Run an incident from the terminal: declare, acknowledge, assign roles, post updates, resolve.",
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
}

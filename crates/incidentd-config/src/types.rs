//! Small closed vocabularies used by the config file, each with the exact
//! spelling operators write (`as_str` / `FromStr` round-trip).

use std::fmt;
use std::str::FromStr;

/// A string did not name any variant of one of this crate's enums.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of {expected}")]
pub struct UnknownValue {
    /// What was being parsed, e.g. `"severity"`.
    pub what: &'static str,
    /// The rejected input.
    pub value: String,
    /// The accepted spellings, comma separated.
    pub expected: String,
}

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling used in the config file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        what: $what,
                        value: s.to_string(),
                        expected: [$($text),+].join(", "),
                    }),
                }
            }
        }
    };
}

string_enum! {
    /// Incident severity. `Sev1` is the most severe and sorts first.
    Severity, "severity" {
        /// Complete loss of a core service; all hands.
        Sev1 = "SEV1",
        /// Significant degradation of a core service or loss of a non-core one.
        Sev2 = "SEV2",
        /// Partial degradation, workaround exists.
        Sev3 = "SEV3",
        /// Minor, minimal impact.
        Sev4 = "SEV4",
    }
}

impl Severity {
    /// Position in `Policy::severity` (`Sev1` = 0 … `Sev4` = 3).
    pub fn index(self) -> usize {
        match self {
            Severity::Sev1 => 0,
            Severity::Sev2 => 1,
            Severity::Sev3 => 2,
            Severity::Sev4 => 3,
        }
    }
}

string_enum! {
    /// Incident status lifecycle, in order.
    Status, "status" {
        /// `INVESTIGATING`
        Investigating = "INVESTIGATING",
        /// `IDENTIFIED`
        Identified = "IDENTIFIED",
        /// `MITIGATING`
        Mitigating = "MITIGATING",
        /// `RESOLVED`
        Resolved = "RESOLVED",
    }
}

string_enum! {
    /// Data-loss assessment of an incident; ordered `None < Possible < Confirmed`.
    DataLoss, "data_loss" {
        /// `NONE`
        None = "NONE",
        /// `POSSIBLE`
        Possible = "POSSIBLE",
        /// `CONFIRMED`
        Confirmed = "CONFIRMED",
    }
}

string_enum! {
    /// API token scope. Each scope is independent; this crate implies nothing.
    Scope, "scope" {
        /// Read incidents, timelines, reports.
        Read = "read",
        /// Act as a responder (updates, findings, tracks).
        Respond = "respond",
        /// Incident command actions (roles, severity, status, resolve).
        Command = "command",
        /// Administrative actions.
        Admin = "admin",
        /// Push alerts (integrations).
        Ingest = "ingest",
    }
}

string_enum! {
    /// Kind of a `[[destinations]]` entry.
    DestinationKind, "destination kind" {
        /// Slack incoming webhook (`url`).
        Slack = "slack",
        /// Mattermost incoming webhook (`url`).
        Mattermost = "mattermost",
        /// Microsoft Teams incoming webhook (`url`).
        Teams = "teams",
        /// Generic JSON webhook (`url`, optional HMAC-SHA256 `secret`).
        Webhook = "webhook",
        /// Email via `[smtp]` (`to`).
        Email = "email",
        /// External status page API (`url`, `page_id`, `api_key`).
        StatusPage = "statuspage",
    }
}

impl DestinationKind {
    /// Slack, Mattermost or Teams: a chat webhook taking only `url`.
    pub fn is_chat(self) -> bool {
        matches!(
            self,
            DestinationKind::Slack | DestinationKind::Mattermost | DestinationKind::Teams
        )
    }
}

string_enum! {
    /// SMTP transport security.
    Tls, "tls mode" {
        /// Plain text (local relays, tests).
        None = "none",
        /// Plain connection upgraded with STARTTLS (typically port 587).
        StartTls = "starttls",
        /// TLS from the first byte (typically port 465).
        Implicit = "implicit",
    }
}

string_enum! {
    /// Service tier; decides what a SEV1/SEV2 means for it.
    Tier, "tier" {
        /// A core service.
        Core = "core",
        /// A non-core service.
        NonCore = "non-core",
    }
}

string_enum! {
    /// Alert source kind of an `[[integrations]]` entry.
    IntegrationKind, "integration kind" {
        /// Prometheus Alertmanager webhook receiver.
        Alertmanager = "alertmanager",
        /// PagerDuty Events v2 compatible endpoint.
        PagerDuty = "pagerduty",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), *s);
            assert_eq!(Severity::ALL[s.index()], *s);
        }
        for s in DestinationKind::ALL {
            assert_eq!(s.to_string().parse::<DestinationKind>().unwrap(), *s);
        }
        assert_eq!("non-core".parse::<Tier>().unwrap(), Tier::NonCore);
        let err = "SEV5".parse::<Severity>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown severity \"SEV5\"; expected one of SEV1, SEV2, SEV3, SEV4"
        );
        assert!(Severity::Sev1 < Severity::Sev4);
        assert!(DataLoss::Possible < DataLoss::Confirmed);
    }
}

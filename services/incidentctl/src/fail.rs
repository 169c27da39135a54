//! Everything that ends a command early, as one printable line and an exit
//! code (see `cli::EXIT_CODES`).

use tonic::Code;

pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_UNREACHABLE: u8 = 3;

#[derive(Debug)]
pub struct Failure {
    pub exit: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: EXIT_USAGE,
            message: message.into(),
        }
    }

    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            exit: EXIT_REFUSED,
            message: message.into(),
        }
    }

    pub fn unreachable(addr: &str, why: impl std::fmt::Display) -> Failure {
        Failure {
            exit: EXIT_UNREACHABLE,
            message: format!("cannot reach incidentd at {addr}: {why}"),
        }
    }

    /// A gRPC status from the server (or from the transport, for a dead connection).
    pub fn from_status(addr: &str, s: &tonic::Status) -> Failure {
        Failure::from_status_with(addr, s, &[])
    }

    /// Like `from_status`, with one command's own request field → flag pairs
    /// (looked up before the common ones).
    pub fn from_status_with(addr: &str, s: &tonic::Status, flags: &[(&str, &str)]) -> Failure {
        match s.code() {
            Code::Unavailable | Code::DeadlineExceeded => Failure::unreachable(addr, one_line(s.message())),
            // Made on this side from a broken connection (the server's own statuses carry no source).
            Code::Unknown if std::error::Error::source(s).is_some() => {
                Failure::unreachable(addr, one_line(s.message()))
            }
            code => Failure::refused(format!("{} ({code:?})", with_flag(&one_line(s.message()), flags))),
        }
    }
}

/// Server messages start with the request field (`current_theory: is
/// required`); name the flag that sets it too.
fn with_flag(msg: &str, own: &[(&str, &str)]) -> String {
    const FLAGS: [(&str, &str); 29] = [
        ("authorization", "--token"),
        ("current_theory", "--theory"),
        ("next_steps", "--next-steps"),
        ("customer_symptom", "--symptom"),
        ("business_impact", "--business-impact"),
        ("estimated_resolution", "--estimated-resolution"),
        ("next_update_in", "--next-update-in"),
        ("status_text", "--status-text"),
        ("services", "--service"),
        ("severity", "--sev"),
        ("commander", "--commander"),
        ("team", "--team"),
        ("track", "--track"),
        ("by", "--as"),
        ("what_happened", "--what-happened"),
        ("root_causes", "--root-causes"),
        ("contributing_factors", "--contributing"),
        ("went_well", "--went-well"),
        ("to_improve", "--to-improve"),
        ("owner", "--owner"),
        ("due_at", "--due"),
        ("reason", "--reason"),
        ("since", "--since"),
        ("until", "--until"),
        ("state", "--state"),
        ("roles.commander", "--commander"),
        ("roles.comms_lead", "--comms"),
        ("roles.smes.person", "--sme"),
        ("roles.smes.track", "--sme"),
    ];
    let field = msg.split(':').next().unwrap_or_default();
    match own.iter().chain(FLAGS.iter()).find(|(f, _)| *f == field) {
        Some((_, flag)) => format!("{msg} [{flag}]"),
        None => msg.to_string(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_refusals_name_field_flag_and_code() {
        let f = Failure::from_status("a", &tonic::Status::invalid_argument("current_theory: is required"));
        assert_eq!(f.exit, EXIT_REFUSED);
        assert_eq!(f.message, "current_theory: is required [--theory] (InvalidArgument)");
        let f = Failure::from_status("a", &tonic::Status::not_found("owner: unknown person \"mallory\""));
        assert_eq!(f.message, "owner: unknown person \"mallory\" [--owner] (NotFound)");
        let f = Failure::from_status("a", &tonic::Status::not_found("id: incident X not found"));
        assert_eq!(f.message, "id: incident X not found (NotFound)");
        let f = Failure::from_status(
            "a",
            &tonic::Status::unauthenticated("authorization: unknown or revoked token"),
        );
        assert_eq!(f.exit, EXIT_REFUSED);
        assert_eq!(
            f.message,
            "authorization: unknown or revoked token [--token] (Unauthenticated)"
        );
        // A command's own fields first: `person` is a flag of `token create`, not of `assign`.
        let unknown = tonic::Status::not_found("person: unknown person mallory");
        let f = Failure::from_status_with("a", &unknown, &[("person", "--person")]);
        assert_eq!(f.message, "person: unknown person mallory [--person] (NotFound)");
        let f = Failure::from_status("a", &unknown);
        assert_eq!(f.message, "person: unknown person mallory (NotFound)");
    }

    #[test]
    fn an_unavailable_server_is_unreachable() {
        let f = Failure::from_status("http://h:1", &tonic::Status::unavailable("shutting\ndown"));
        assert_eq!(f.exit, EXIT_UNREACHABLE);
        assert_eq!(f.message, "cannot reach incidentd at http://h:1: shutting down");
    }
}

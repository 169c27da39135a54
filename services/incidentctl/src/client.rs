//! The gRPC connection: the bearer token on every call, a deadline on every
//! unary call (watch streams have none), and incident names (INC-42, 42 or
//! a ULID) turned into ids.

use crate::fail::Failure;
use crate::settings::Settings;
use incidentd_proto::v1 as pb;
use incidentd_proto::v1::admin_service_client::AdminServiceClient;
use incidentd_proto::v1::drill_service_client::DrillServiceClient;
use incidentd_proto::v1::incident_service_client::IncidentServiceClient;
use incidentd_proto::v1::notification_service_client::NotificationServiceClient;
use incidentd_proto::v1::review_service_client::ReviewServiceClient;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A unary call that takes longer than this is reported as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Page size when looking an incident up by number.
const LOOKUP_PAGE: u32 = 500;

/// Adds `authorization: Bearer <token>` when a token is set.
#[derive(Clone)]
pub struct Auth(Option<MetadataValue<Ascii>>);

impl Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

type Svc = InterceptedService<Channel, Auth>;

/// One connection; a client per service over it.
pub struct Client {
    pub api: IncidentServiceClient<Svc>,
    pub review: ReviewServiceClient<Svc>,
    pub drill: DrillServiceClient<Svc>,
    pub notify: NotificationServiceClient<Svc>,
    pub admin: AdminServiceClient<Svc>,
    pub addr: String,
}

impl Client {
    pub async fn connect(settings: &Settings) -> Result<Client, Failure> {
        let addr = settings.addr.clone();
        let auth = match &settings.token {
            None => None,
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse::<MetadataValue<Ascii>>()
                    .map_err(|_| Failure::usage("token: must be printable ASCII [--token]"))?,
            ),
        };
        let endpoint = Endpoint::from_shared(addr.clone())
            .map_err(|e| Failure::usage(format!("addr: {addr:?} is not a URL: {e} [--addr]")))?
            .connect_timeout(CONNECT_TIMEOUT);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| Failure::unreachable(&addr, source_chain(&e)))?;
        let auth = Auth(auth);
        Ok(Client {
            api: IncidentServiceClient::with_interceptor(channel.clone(), auth.clone()),
            review: ReviewServiceClient::with_interceptor(channel.clone(), auth.clone()),
            drill: DrillServiceClient::with_interceptor(channel.clone(), auth.clone()),
            notify: NotificationServiceClient::with_interceptor(channel.clone(), auth.clone()),
            admin: AdminServiceClient::with_interceptor(channel, auth),
            addr,
        })
    }

    /// Turns a status into a failure naming this server.
    pub fn fail(&self, s: tonic::Status) -> Failure {
        Failure::from_status(&self.addr, &s)
    }

    /// Like `fail`, naming this command's own flags for the fields they set.
    pub fn fail_with(&self, s: tonic::Status, flags: &[(&str, &str)]) -> Failure {
        Failure::from_status_with(&self.addr, &s, flags)
    }

    /// The incident's id: a ULID as given, else found by its number.
    pub async fn resolve_id(&mut self, name: &str) -> Result<String, Failure> {
        let Some(number) = parse_number(name) else {
            if name.len() == 26 && name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Ok(name.to_ascii_uppercase());
            }
            return Err(Failure::usage(format!(
                "incident: {name:?} is not INC-<number>, a number or an incident id"
            )));
        };
        // Responders act on open incidents: look there first, then everywhere.
        for active_only in [true, false] {
            if let Some(id) = self.find_number(number, active_only).await? {
                return Ok(id);
            }
        }
        Err(Failure::refused(format!("incident: INC-{number} not found (NotFound)")))
    }

    /// `INC-42/3` (or `42/3`, `<id>/3`) → the action item id `<incident id>/3`.
    pub async fn resolve_action_item(&mut self, name: &str) -> Result<String, Failure> {
        let bad = || {
            Failure::usage(format!(
                "action item: {name:?} is not <incident>/<number>, e.g. INC-42/1"
            ))
        };
        let (incident, n) = name.trim().rsplit_once('/').ok_or_else(bad)?;
        let n: u32 = n.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
        Ok(format!("{}/{n}", self.resolve_id(incident).await?))
    }

    async fn find_number(&mut self, number: u64, active_only: bool) -> Result<Option<String>, Failure> {
        let mut token = String::new();
        loop {
            let page = self
                .api
                .list_incidents(unary(pb::ListIncidentsRequest {
                    active_only,
                    page_size: LOOKUP_PAGE,
                    page_token: token,
                    ..Default::default()
                }))
                .await
                .map_err(|s| self.fail(s))?
                .into_inner();
            if let Some(i) = page.incidents.iter().find(|i| i.number == number) {
                return Ok(Some(i.id.clone()));
            }
            if page.next_page_token.is_empty() {
                return Ok(None);
            }
            token = page.next_page_token;
        }
    }
}

/// A request with the unary deadline.
pub fn unary<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(CALL_TIMEOUT);
    r
}

/// `INC-42`, `inc-42`, `#42` or `42`.
fn parse_number(name: &str) -> Option<u64> {
    let t = name.trim();
    let digits = t
        .strip_prefix("INC-")
        .or_else(|| t.strip_prefix("inc-"))
        .or_else(|| t.strip_prefix('#'))
        .unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// "transport error: tcp connect error: Connection refused" in one line.
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_out_as_a_bearer_header() {
        let mut auth = Auth(Some("Bearer s3cret".parse().unwrap()));
        let req = auth.call(tonic::Request::new(())).unwrap();
        assert_eq!(req.metadata().get("authorization").unwrap(), "Bearer s3cret");
        let req = Auth(None).call(tonic::Request::new(())).unwrap();
        assert!(req.metadata().get("authorization").is_none());
    }

    #[test]
    fn incident_names() {
        assert_eq!(parse_number("INC-42"), Some(42));
        assert_eq!(parse_number("inc-7"), Some(7));
        assert_eq!(parse_number("#3"), Some(3));
        assert_eq!(parse_number("12"), Some(12));
        assert_eq!(parse_number("INC-"), None);
        assert_eq!(parse_number("01J0000000000000000000000A"), None);
    }
}

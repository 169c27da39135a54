//! Email adapter: SMTP with lettre (`[smtp]`: `tls = "none" | "starttls" |
//! "implicit"`, optional `username` / `password`).
//!
//! Every mail is `multipart/alternative` (text and HTML parts of the same
//! message). Threading: one incident is one thread. The declaration's mail
//! has `Message-ID: <{incident id}@{from domain}>`; every later mail has its
//! own `Message-ID: <{incident id}.{version}.{destination}@{domain}>` (the
//! idempotency key: a retry re-sends the same id, which mail systems
//! collapse) and `In-Reply-To` / `References` naming the declaration's id.
//! The subject stays `[INC-42] {title}` so clients that thread by subject
//! agree. `X-Incidentd-Delivery` carries the idempotency key.
//!
//! SMTP answers: 5xx (permanent) makes the delivery dead at once; 4xx,
//! connection and TLS failures are retried.

use crate::message::Message;
use crate::transport::{Job, SendError, SendFuture, SendOk, Transport};
use incidentd_config::{OrgConfig, Tls};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls as LettreTls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::sync::Arc;

pub struct Email {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Option<Mailbox>,
    domain: String,
    problem: Option<String>,
}

/// `X-Incidentd-Delivery: <idempotency key>`.
#[derive(Debug, Clone)]
struct DeliveryHeader(String);

impl Header for DeliveryHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Incidentd-Delivery")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(DeliveryHeader(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

impl Email {
    /// From the org's `[smtp]`; `extra_roots` are PEM certificates trusted
    /// besides the system's (a private CA; the tests' self-signed server).
    pub fn new(org: &Arc<OrgConfig>, extra_roots: &[Vec<u8>]) -> Email {
        let Some(smtp) = &org.smtp else {
            return Email {
                transport: None,
                from: None,
                domain: "incidentd".into(),
                problem: Some("no [smtp] section in the config".into()),
            };
        };
        let domain = smtp.from.rsplit('@').next().unwrap_or("incidentd").to_string();
        let from = smtp.from.parse::<Mailbox>().ok();
        let built = (|| -> Result<AsyncSmtpTransport<Tokio1Executor>, lettre::transport::smtp::Error> {
            let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone()).port(smtp.port);
            let params = || -> Result<TlsParameters, lettre::transport::smtp::Error> {
                let mut p = TlsParameters::builder(smtp.host.clone());
                for pem in extra_roots {
                    p = p.add_root_certificate(Certificate::from_pem(pem)?);
                }
                p.build_rustls()
            };
            b = match smtp.tls {
                Tls::None => b.tls(LettreTls::None),
                Tls::StartTls => b.tls(LettreTls::Required(params()?)),
                Tls::Implicit => b.tls(LettreTls::Wrapper(params()?)),
            };
            if let (Some(user), Some(pass)) = (&smtp.username, &smtp.password) {
                b = b.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
            }
            Ok(b.build())
        })();
        match (built, from) {
            (Ok(t), Some(from)) => Email {
                transport: Some(t),
                from: Some(from),
                domain,
                problem: None,
            },
            (Err(e), _) => Email {
                transport: None,
                from: None,
                domain,
                problem: Some(format!("smtp: {e}")),
            },
            (_, None) => Email {
                transport: None,
                from: None,
                domain,
                problem: Some(format!("smtp.from: {:?} is not a mail address", smtp.from)),
            },
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn html(m: &Message) -> String {
    let mut out = format!("<!doctype html>\n<html><body>\n<h2>{}</h2>\n", escape(&m.headline));
    if !m.body.is_empty() {
        out.push_str(&format!("<p style=\"white-space: pre-wrap\">{}</p>\n", escape(&m.body)));
    }
    out.push_str("<table>\n");
    for (k, v) in &m.fields {
        out.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
            escape(k),
            escape(v)
        ));
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

/// Thread ids: (this mail's Message-ID, the thread root it replies to).
pub fn thread_ids(m: &Message, destination: &str, domain: &str) -> (String, Option<String>) {
    let root = format!("<{}@{}>", m.incident_id, domain);
    if m.event == "declared" {
        return (root, None);
    }
    let dest: String = destination
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    (
        format!("<{}.{}.{}@{}>", m.incident_id, m.version, dest, domain),
        Some(root),
    )
}

pub fn subject(m: &Message) -> String {
    let drill = if m.drill { "[DRILL] " } else { "" };
    format!("{drill}[{}] {}", m.reference, m.title)
}

impl Transport for Email {
    fn send(&self, job: Job) -> SendFuture {
        let n = job.notification;
        let prepared = (|| {
            let (Some(transport), Some(from)) = (&self.transport, &self.from) else {
                return Err(SendError::permanent(
                    self.problem.clone().unwrap_or_else(|| "smtp is not configured".into()),
                ));
            };
            let (id, root) = thread_ids(&n.message, &n.destination, &self.domain);
            let mut b = lettre::Message::builder()
                .from(from.clone())
                .subject(subject(&n.message))
                .message_id(Some(id))
                .header(DeliveryHeader(n.key.clone()));
            if let Some(root) = root {
                b = b.in_reply_to(root.clone()).references(root);
            }
            if n.to.is_empty() {
                return Err(SendError::permanent(format!(
                    "destination {:?} has no recipients",
                    n.destination
                )));
            }
            for to in &n.to {
                let mbox = to
                    .parse::<Mailbox>()
                    .map_err(|e| SendError::permanent(format!("recipient {to:?}: {e}")))?;
                b = b.to(mbox);
            }
            let mail = b
                .multipart(MultiPart::alternative_plain_html(n.message.plain(), html(&n.message)))
                .map_err(|e| SendError::permanent(format!("cannot build the mail: {e}")))?;
            Ok((transport.clone(), mail))
        })();
        Box::pin(async move {
            let (transport, mail) = prepared?;
            match transport.send(mail).await {
                Ok(_) => Ok(SendOk::default()),
                Err(e) if e.is_permanent() => Err(SendError::permanent(format!("smtp: {e}"))),
                Err(e) => Err(SendError::transient(format!("smtp: {e}"))),
            }
        })
    }
}

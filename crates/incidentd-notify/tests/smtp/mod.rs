//! A small real SMTP server for the tests (RFC 5321 subset): EHLO,
//! STARTTLS (RFC 3207), implicit TLS, AUTH PLAIN / LOGIN (RFC 4954), MAIL,
//! RCPT, DATA, RSET, NOOP, QUIT. It records each accepted message.

use base64::Engine;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The CA that signed the server certificate (what clients trust).
pub const CA: &[u8] = include_bytes!("../fixtures/smtp-ca.pem");
const CERT: &[u8] = include_bytes!("../fixtures/smtp-cert.pem");
const KEY: &[u8] = include_bytes!("../fixtures/smtp-key.pem");

#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub tls: bool,
    pub auth: Option<String>,
    pub from: String,
    pub rcpt: Vec<String>,
    pub data: String,
}

impl Mail {
    /// A header of the message (unfolded), "" when absent.
    pub fn header(&self, name: &str) -> String {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    }
}

pub struct Server {
    pub port: u16,
    pub mails: mpsc::UnboundedReceiver<Mail>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

fn acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(CERT)
        .collect::<Result<_, _>>()
        .expect("cert");
    let key = PrivateKeyDer::from_pem_slice(KEY).expect("key");
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

/// `mode`: "none", "starttls" or "implicit".
pub async fn start(mode: &str) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, mails) = mpsc::unbounded_channel();
    let mode = mode.to_string();
    let tls = acceptor();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (tx, mode, tls) = (tx.clone(), mode.clone(), tls.clone());
            tokio::spawn(async move {
                let stream: Box<dyn Io> = if mode == "implicit" {
                    match tls.accept(tcp).await {
                        Ok(s) => Box::new(s),
                        Err(_) => return,
                    }
                } else {
                    Box::new(tcp)
                };
                let _ = session(stream, mode == "implicit", mode == "starttls", tls, tx).await;
            });
        }
    });
    Server { port, mails }
}

async fn session(
    stream: Box<dyn Io>,
    mut secure: bool,
    offer_starttls: bool,
    tls: tokio_rustls::TlsAcceptor,
    tx: mpsc::UnboundedSender<Mail>,
) -> std::io::Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut io = BufReader::new(stream);
    io.get_mut().write_all(b"220 localhost ESMTP test\r\n").await?;
    let mut mail = Mail::default();
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            let mut r = String::from("250-localhost\r\n");
            if offer_starttls && !secure {
                r.push_str("250-STARTTLS\r\n");
            }
            if secure {
                r.push_str("250-AUTH PLAIN LOGIN\r\n");
            }
            r.push_str("250 8BITMIME\r\n");
            r
        } else if upper == "STARTTLS" && offer_starttls && !secure {
            io.get_mut().write_all(b"220 ready for TLS\r\n").await?;
            let plain = io.into_inner();
            let s = tls.accept(plain).await?;
            io = BufReader::new(Box::new(s) as Box<dyn Io>);
            secure = true;
            continue;
        } else if upper.starts_with("AUTH PLAIN") {
            let arg = cmd.split_whitespace().nth(2).unwrap_or("").to_string();
            let decoded = b64.decode(arg).unwrap_or_default();
            let parts: Vec<String> = decoded
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            mail.auth = Some(format!(
                "{}:{}",
                parts.get(1).cloned().unwrap_or_default(),
                parts.get(2).cloned().unwrap_or_default()
            ));
            "235 2.7.0 accepted\r\n".into()
        } else if upper.starts_with("AUTH LOGIN") {
            io.get_mut().write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            line.clear();
            io.read_line(&mut line).await?;
            let user = String::from_utf8_lossy(&b64.decode(line.trim()).unwrap_or_default()).into_owned();
            io.get_mut().write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            line.clear();
            io.read_line(&mut line).await?;
            let pass = String::from_utf8_lossy(&b64.decode(line.trim()).unwrap_or_default()).into_owned();
            mail.auth = Some(format!("{user}:{pass}"));
            "235 2.7.0 accepted\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = addr(&cmd);
            "250 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            mail.rcpt.push(addr(&cmd));
            "250 ok\r\n".into()
        } else if upper == "DATA" {
            io.get_mut().write_all(b"354 end with .\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if io.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let done = Mail {
                tls: secure,
                auth: mail.auth.clone(),
                from: std::mem::take(&mut mail.from),
                rcpt: std::mem::take(&mut mail.rcpt),
                data,
            };
            let _ = tx.send(done);
            "250 2.0.0 queued\r\n".into()
        } else if upper == "RSET" || upper == "NOOP" {
            mail.from.clear();
            mail.rcpt.clear();
            "250 ok\r\n".into()
        } else if upper == "QUIT" {
            io.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            "502 not implemented\r\n".into()
        };
        io.get_mut().write_all(reply.as_bytes()).await?;
    }
}

fn addr(cmd: &str) -> String {
    let start = cmd.find('<').map(|i| i + 1).unwrap_or(0);
    let end = cmd[start..].find('>').map(|i| start + i).unwrap_or(cmd.len());
    cmd[start..end].to_string()
}

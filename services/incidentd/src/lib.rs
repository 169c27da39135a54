//! The incidentd server, assembled: load and validate the org config, bind
//! the listeners, serve HTTP at once (so `/readyz` answers "not ready"
//! during recovery), recover every incident from the store, then serve gRPC.
//! On shutdown: health NOT_SERVING, stop accepting, drain in-flight calls,
//! stop the actors, final store flush.

pub mod alerts;
pub mod org;
pub mod scenarios;
pub mod statuspage;
pub mod telemetry;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use incidentd_actors::{Handle, Options as ActorOptions};
use incidentd_config::OrgConfig;
use incidentd_gateway::{HttpState, RpcMetrics};
use incidentd_store::{Store, StoreConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(
    name = "incidentd",
    version,
    about = "Incident command service: gRPC + HTTP over a durable event log."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    /// Data directory (event log + sled snapshots); created if missing.
    #[arg(long, env = "INCIDENTD_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// gRPC listen address.
    #[arg(
        long,
        env = "INCIDENTD_GRPC_LISTEN",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    pub grpc_listen: SocketAddr,
    /// HTTP listen address (health, readiness, metrics).
    #[arg(long, env = "INCIDENTD_HTTP_LISTEN", default_value = "127.0.0.1:8080", global = true)]
    pub http_listen: SocketAddr,
    /// Org config file (TOML); the built-in demo org when absent.
    #[arg(long, env = "INCIDENTD_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Local development mode: no tokens; refuses non-loopback listen addresses.
    #[arg(long, env = "INCIDENTD_DEV", global = true)]
    pub dev: bool,
    /// Directory of game-day scenario files (`*.toml`), beside the built-in ones.
    #[arg(long, env = "INCIDENTD_SCENARIOS", global = true)]
    pub scenarios: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the server (the default).
    Serve,
    /// Print the built-in demo org config.
    DemoConfig,
    /// Online backup: copy the event log of --data-dir into DEST (an empty
    /// directory) while the server runs. Restore: start incidentd with
    /// `--data-dir DEST`; it rebuilds its indexes from the log.
    Backup {
        /// Directory for the copy; created if missing, must hold no store.
        dest: PathBuf,
    },
}

impl Cli {
    pub fn options(&self) -> Options {
        Options {
            data_dir: self.data_dir.clone(),
            grpc_listen: self.grpc_listen,
            http_listen: self.http_listen,
            dev: self.dev,
            config_path: self.config.clone(),
            scenarios: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub dev: bool,
    /// The org config file (reloaded on SIGHUP); `None`: the demo org.
    pub config_path: Option<PathBuf>,
    /// Game-day scenarios (built-in + files), loaded before binding.
    pub scenarios: Vec<incidentd_domain::drill::Scenario>,
}

/// Loads and validates the org config (or the demo org).
pub fn load_org(path: Option<&Path>) -> anyhow::Result<OrgConfig> {
    match path {
        Some(p) => OrgConfig::load(p).with_context(|| format!("config {}", p.display())),
        None => Ok(OrgConfig::demo()),
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// What `serve` reports once recovery is done and calls are taken.
#[derive(Clone)]
pub struct Ready {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub incidents: usize,
    pub live: usize,
    /// Store open (log scan) + rebuilding state and spawning actors.
    pub recovery: Duration,
    /// The store, for its statistics (benchmarks).
    pub store: Store,
}

/// Binds the listeners of `opts`, then serves until `shutdown` resolves.
pub async fn run(
    opts: Options,
    config: OrgConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if opts.dev && !(opts.grpc_listen.ip().is_loopback() && opts.http_listen.ip().is_loopback()) {
        bail!(
            "--dev (no tokens) only listens on loopback addresses; got {} and {}",
            opts.grpc_listen,
            opts.http_listen
        );
    }
    let http_listener = TcpListener::bind(opts.http_listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", opts.http_listen))?;
    let grpc_listener = TcpListener::bind(opts.grpc_listen)
        .await
        .with_context(|| format!("cannot listen for gRPC on {}", opts.grpc_listen))?;
    // Tests and scripts read these lines to find the ports.
    println!("incidentd http listening on {}", http_listener.local_addr()?);
    println!("incidentd grpc listening on {}", grpc_listener.local_addr()?);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Ready>();
    let announce = async move {
        if let Ok(r) = ready_rx.await {
            println!("incidentd ready ({} incidents, {} live)", r.incidents, r.live);
        }
    };
    if !opts.dev && config.tokens.is_empty() {
        bail!(
            "the org config has no [[tokens]]: nobody could call this server; add tokens (see deploy/README.md) or run with --dev (loopback only, no tokens)"
        );
    }
    let security = Security {
        dev: opts.dev,
        config_path: opts.config_path.clone(),
        scenarios: opts.scenarios.clone(),
    };
    let (result, ()) = tokio::join!(
        serve_secured(
            http_listener,
            grpc_listener,
            &opts.data_dir,
            org::Org::with_scenarios(config, opts.scenarios.clone()),
            shutdown,
            Some(ready_tx),
            security,
        ),
        announce
    );
    result
}

/// How callers are authenticated, and where a reload reads the config.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// `--dev`: no tokens (loopback only; `run` checks the addresses).
    pub dev: bool,
    /// `--config`: reloaded on SIGHUP and by `AdminService.ReloadConfig`.
    pub config_path: Option<PathBuf>,
    /// Scenario files loaded at start (kept across reloads).
    pub scenarios: Vec<incidentd_domain::drill::Scenario>,
}

/// Serves on already-bound listeners (the binary, benchmarks, tests).
pub async fn serve(
    http_listener: TcpListener,
    grpc_listener: TcpListener,
    data_dir: &Path,
    config: OrgConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: Option<tokio::sync::oneshot::Sender<Ready>>,
) -> anyhow::Result<()> {
    serve_with(
        http_listener,
        grpc_listener,
        data_dir,
        org::Org::new(config),
        shutdown,
        on_ready,
    )
    .await
}

/// `serve` with an org built by the caller (its scenario files loaded), in
/// `--dev` mode (in-process benchmarks and tests on loopback).
pub async fn serve_with(
    http_listener: TcpListener,
    grpc_listener: TcpListener,
    data_dir: &Path,
    org: org::Org,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: Option<tokio::sync::oneshot::Sender<Ready>>,
) -> anyhow::Result<()> {
    let security = Security {
        dev: true,
        ..Default::default()
    };
    serve_secured(
        http_listener,
        grpc_listener,
        data_dir,
        org,
        shutdown,
        on_ready,
        security,
    )
    .await
}

/// Serves with the given authentication mode.
pub async fn serve_secured(
    http_listener: TcpListener,
    grpc_listener: TcpListener,
    data_dir: &Path,
    org: org::Org,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: Option<tokio::sync::oneshot::Sender<Ready>>,
    security: Security,
) -> anyhow::Result<()> {
    let notify_org = Arc::new(org.config.clone());
    let org: Arc<org::Org> = Arc::new(org);
    let integrations = alerts::integrations(&org.config);
    let catalog = statuspage::catalog(&org.config);
    let http_addr = http_listener.local_addr()?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_state = HttpState {
        rpc: Arc::new(RpcMetrics::default()),
        ..Default::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The status page appears once recovery is done (503 until then).
    let page_slot: Arc<std::sync::OnceLock<incidentd_statuspage::StatusPage>> = Arc::default();
    let http = {
        let app = incidentd_gateway::router(http_state.clone())
            .merge(incidentd_statuspage::router(page_slot.clone(), stop_rx.clone()))
            .layer(incidentd_gateway::AuthLayer::deferred(http_state.auth.clone()));
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            // Webhook and status-page replies go out at once (no Nagle + delayed ACK stall).
            let listener = axum::serve::ListenerExt::tap_io(http_listener, |tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::warn!(error = %e, "cannot set TCP_NODELAY");
                }
            });
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        })
    };

    // Recovery: every live incident is back before we report ready.
    let dir = data_dir.to_path_buf();
    let (store, mut recovery) = tokio::task::spawn_blocking(move || {
        Store::open(StoreConfig {
            dir,
            snapshot_flush_every: Duration::from_secs(1),
        })
    })
    .await
    .context("store recovery panicked")?
    .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
    let log_bytes = recovery.log_bytes;
    // Maintenance windows share the log; the incident actors get only incidents.
    let maintenance = incidentd_statuspage::split_recovery(&mut recovery);
    let auth = {
        let (dir, config, dev) = (data_dir.to_path_buf(), notify_org.clone(), security.dev);
        tokio::task::spawn_blocking(move || incidentd_gateway::Auth::open(&dir, config, dev))
            .await
            .context("opening the token and audit logs panicked")?
            .context("cannot open the token and audit logs")?
    };
    let _ = http_state.auth.set(auth.clone());
    let (handle, recovered) = Handle::start(store.clone(), recovery, org.clone(), ActorOptions::default())
        .await
        .context("cannot start incident actors")?;
    let total = recovered.store + recovered.rebuild_and_spawn;
    tracing::info!(
        incidents = recovered.incidents,
        live = recovered.live,
        log_bytes,
        store_ms = recovered.store.as_millis() as u64,
        actors_ms = recovered.rebuild_and_spawn.as_millis() as u64,
        "recovered"
    );
    let _ = http_state.recovery_seconds.set(total.as_secs_f64());
    let _ = http_state.handle.set(handle.clone());
    // Notifications: catches up from the log before live events (issue 4).
    let notifier = incidentd_notify::Notifier::start(handle.clone(), notify_org, notify_options()?)
        .await
        .context("cannot start the notifier")?;
    let _ = http_state.notify.set(notifier.metrics().clone());
    // Alert ingestion: the dedup index is rebuilt from the recovered incidents before any alert is taken.
    let alert_ingest = incidentd_gateway::AlertIngest::new(
        incidentd_actors::Alerts::start(&handle)
            .await
            .context("cannot start alert ingestion")?,
        integrations,
    );
    let _ = http_state.alerts.set(alert_ingest.clone());
    // The status page loads beside the incident service, not before it:
    // readiness never waits for it (its HTTP paths answer 503, its RPCs
    // UNAVAILABLE, for the moment it takes).
    let page_start = {
        let (handle, slot) = (handle.clone(), page_slot.clone());
        tokio::spawn(async move {
            match incidentd_statuspage::StatusPage::start(handle, catalog, maintenance).await {
                Ok(page) => {
                    let _ = slot.set(page);
                }
                Err(e) => tracing::error!(error = %e, "status page did not start"),
            }
        })
    };

    let reloader = security.config_path.clone().map(|path| {
        reloader(
            path,
            security.scenarios.clone(),
            handle.clone(),
            auth.clone(),
            alert_ingest.clone(),
        )
    });
    let health = tonic_health::server::health_reporter();
    let reporter = health.0.clone();
    let grpc = {
        let stop = stop_rx.clone();
        let handle = handle.clone();
        let rpc = http_state.rpc.clone();
        let edges = incidentd_gateway::Edges {
            alerts: incidentd_gateway::AlertApi::new(alert_ingest.clone(), rpc.clone()),
            notifier: Some(notifier.clone()),
            statuspage: Some(incidentd_gateway::StatusPageApi::new(page_slot.clone(), rpc.clone())),
            auth: auth.clone(),
            reload: reloader.clone(),
        };
        tokio::spawn(async move {
            incidentd_gateway::serve_grpc_with(grpc_listener, handle, rpc, health, stop, edges).await
        })
    };
    let sighup = reloader.clone().map(|reload| tokio::spawn(reload_on_sighup(reload)));
    http_state.ready.store(true, Ordering::Release);
    if let Some(tx) = on_ready {
        let _ = tx.send(Ready {
            http: http_addr,
            grpc: grpc_addr,
            incidents: recovered.incidents,
            live: recovered.live,
            recovery: total,
            store: store.clone(),
        });
    }
    shutdown.await;
    tracing::info!("shutdown requested: draining");
    http_state.ready.store(false, Ordering::Release);
    incidentd_gateway::set_not_serving(&reporter).await;
    let _ = stop_tx.send(true);
    // Drain in-flight calls, but never hang shutdown on a client that will not leave.
    let grpc = tokio::time::timeout(Duration::from_secs(10), grpc);
    match grpc
        .await
        .unwrap_or_else(|_| Ok(Err("drain timed out after 10 s".into())))
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "grpc server error"),
        Err(e) => tracing::error!(error = %e, "grpc server task failed"),
    }
    let _ = http.await;
    if let Some(task) = sighup {
        task.abort();
    }
    page_start.abort();
    if let Some(page) = page_slot.get() {
        page.stop();
    }
    handle.shutdown().await;
    notifier.shutdown().await;
    auth.close();
    store.close().await.context("final store flush")?;
    tracing::info!("stopped");
    Ok(())
}

/// The config reload of SIGHUP and `AdminService.ReloadConfig`: the file is
/// read and validated first; a bad one changes nothing. What it swaps: the
/// org view of the actors (teams, people, services, policies, blame rules),
/// tokens and `[access]`, alert integrations. Notification destinations and
/// status page components are read at start (listed in `restart_needed`).
fn reloader(
    path: PathBuf,
    scenarios: Vec<incidentd_domain::drill::Scenario>,
    handle: Handle,
    auth: incidentd_gateway::Auth,
    alerts: incidentd_gateway::AlertIngest,
) -> incidentd_gateway::admin::Reloader {
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    Arc::new(move || {
        let (path, scenarios, handle, auth, alerts, lock) = (
            path.clone(),
            scenarios.clone(),
            handle.clone(),
            auth.clone(),
            alerts.clone(),
            lock.clone(),
        );
        Box::pin(async move {
            // One reload at a time: two concurrent ones could swap in different orders.
            let _one = lock.lock().await;
            let file = path.clone();
            let config = tokio::task::spawn_blocking(move || load_org(Some(&file)))
                .await
                .map_err(|e| format!("reading the config panicked: {e}"))?
                .map_err(|e| format!("{e:#}"))?;
            if !auth.is_dev() && config.tokens.is_empty() {
                return Err("the new config has no [[tokens]]: nobody could call this server".into());
            }
            let old = auth.config();
            let mut restart_needed = Vec::new();
            if old.destinations != config.destinations || old.smtp != config.smtp {
                restart_needed.push("destinations / smtp (notifier)".to_string());
            }
            if old.services != config.services || old.org.status_page_title != config.org.status_page_title {
                restart_needed.push("status page components and title".to_string());
            }
            let reloaded = incidentd_gateway::admin::Reloaded {
                org: config.org.name.clone(),
                teams: config.teams.len() as u32,
                people: config.people.len() as u32,
                tokens: config.tokens.len() as u32,
                restart_needed,
            };
            alerts.set_integrations(alerts::integrations(&config));
            let config = Arc::new(config);
            auth.set_config(config.clone());
            handle.set_org(Arc::new(org::Org::with_scenarios((*config).clone(), scenarios)));
            tracing::info!(path = %path.display(), org = %reloaded.org, "config reloaded");
            Ok(reloaded)
        })
    })
}

/// Reloads the config on every SIGHUP; a bad file is logged and changes nothing.
async fn reload_on_sighup(reload: incidentd_gateway::admin::Reloader) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload with AdminService.ReloadConfig");
            return;
        };
        while hup.recv().await.is_some() {
            match reload().await {
                Ok(r) => println!("incidentd config reloaded ({} teams, {} tokens)", r.teams, r.tokens),
                Err(e) => {
                    tracing::error!(error = %e, "config reload failed; the old config stays");
                    println!("incidentd config reload failed: {e}");
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reload;
    }
}

/// Notifier options: `INCIDENTD_SMTP_CA_FILE` adds a PEM root certificate
/// for SMTP TLS (a private CA or a test server); `INCIDENTD_NOTIFY_*` set
/// the retry policy (`incidentd_notify::policy::ENV_KNOBS`).
fn notify_options() -> anyhow::Result<incidentd_notify::Options> {
    let mut opts = incidentd_notify::Options::default();
    opts.settings = opts
        .settings
        .with_env(|k| std::env::var(k).ok())
        .map_err(anyhow::Error::msg)?;
    if let Some(path) = std::env::var_os("INCIDENTD_SMTP_CA_FILE") {
        match std::fs::read(&path) {
            Ok(pem) => opts.smtp_roots.push(pem),
            Err(e) => {
                tracing::error!(path = %Path::new(&path).display(), error = %e, "cannot read INCIDENTD_SMTP_CA_FILE")
            }
        }
    }
    Ok(opts)
}

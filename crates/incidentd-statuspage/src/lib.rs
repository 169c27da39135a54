//! The built-in public status page (issue 5): components, incidents and
//! maintenance windows as customers see them, served as HTML, Statuspage-
//! shaped JSON and Atom.
//!
//! Public by construction: `view.rs` copies only public facts out of an
//! incident (no title, summary, roster, timeline, internal or executive
//! text; drills never enter), and every renderer reads only the view.
//! Serving is decoupled from incident handling: `page.rs` re-renders on
//! change and readers get the last rendering from a `watch` channel, with
//! ETag / Last-Modified revalidation (`http.rs`).

pub mod atom;
pub mod html;
pub mod http;
pub mod json;
pub mod maintenance;
pub mod page;
pub mod render;
pub mod view;

pub use http::router;
pub use maintenance::{Maintenance, MaintenanceId, MaintenanceStatus, ScheduleRequest, UpdateRequest};
pub use render::{DocKind, Rendered};
pub use view::{Catalog, ComponentDef, ComponentState};

use incidentd_actors::{Error, Handle, Result};
use incidentd_domain::{Action, Command, ComponentStatus, DomainError, IncidentId};
use incidentd_store::{RecoveredIncident, Recovery};
use page::{PageArgs, PageMsg, StatusPageActor};
use ractor::{Actor, ActorRef, RpcReplyPort};
use std::sync::Arc;
use tokio::sync::{oneshot, watch};

/// Takes the maintenance aggregates out of the store's recovery, so that
/// only incidents are left for the incident actors.
pub fn split_recovery(recovery: &mut Recovery) -> Vec<RecoveredIncident> {
    let (maint, incidents) = std::mem::take(&mut recovery.incidents)
        .into_iter()
        .partition(|r| MaintenanceId::is_key(&r.incident));
    recovery.incidents = incidents;
    maint
}

/// The status page: its actor, and the last rendering for readers.
#[derive(Clone)]
pub struct StatusPage {
    actor: ActorRef<PageMsg>,
    rendered: watch::Receiver<Arc<Rendered>>,
    handle: Handle,
    catalog: Arc<Catalog>,
}

impl StatusPage {
    /// Loads the public view (incidents from the store, recovered
    /// maintenance windows), renders it once, and follows the incident feed.
    pub async fn start(handle: Handle, catalog: Catalog, maintenance: Vec<RecoveredIncident>) -> Result<StatusPage> {
        let (publish, rendered) = watch::channel(Arc::new(Rendered::empty()));
        let catalog = Arc::new(catalog);
        let args = PageArgs {
            handle: handle.clone(),
            catalog: catalog.clone(),
            maintenance,
            publish,
        };
        let (actor, _) = Actor::spawn(None, StatusPageActor, args)
            .await
            .map_err(|e| Error::Internal(format!("could not start the status page: {e}")))?;
        Ok(StatusPage {
            actor,
            rendered,
            handle,
            catalog,
        })
    }

    /// The current rendering (cheap: an `Arc` clone).
    pub fn rendered(&self) -> Arc<Rendered> {
        self.rendered.borrow().clone()
    }

    /// Changes of the rendering (live refresh, tests).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Rendered>> {
        self.rendered.clone()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub async fn components(&self) -> Result<Vec<ComponentState>> {
        self.ask(|reply| PageMsg::Components { reply }).await
    }

    /// The comms lead's override: a command on the incident (durable, on its
    /// timeline), then the component as the page now shows it.
    pub async fn set_component_status(
        &self,
        incident: IncidentId,
        service: String,
        status: ComponentStatus,
        by: Option<String>,
        access: incidentd_domain::Access,
        request_id: Option<String>,
    ) -> Result<ComponentState> {
        match self.catalog.is_component(&service) {
            Some(true) => {}
            Some(false) => {
                return Err(DomainError::precondition(
                    Some("service"),
                    format!("service {service:?} is not on the status page (status_page = false)"),
                )
                .into());
            }
            None => return Err(DomainError::not_found("service", format!("unknown service {service:?}")).into()),
        }
        let cmd = Command {
            access,
            by,
            action: Action::SetComponentStatus {
                service: service.clone(),
                status,
            },
        };
        let summary = self.handle.execute_incident(incident, cmd, request_id).await?;
        self.ask(|reply| PageMsg::Observe(Arc::new(summary), reply)).await?;
        self.components()
            .await?
            .into_iter()
            .find(|c| c.def.id == service)
            .ok_or_else(|| Error::Internal(format!("component {service} vanished")))
    }

    pub async fn schedule(&self, req: ScheduleRequest, request_id: Option<String>) -> Result<Maintenance> {
        self.ask(|reply| PageMsg::Schedule { req, request_id, reply }).await?
    }

    pub async fn update(&self, id: String, req: UpdateRequest, request_id: Option<String>) -> Result<Maintenance> {
        self.ask(|reply| PageMsg::Update {
            id,
            req,
            request_id,
            reply,
        })
        .await?
    }

    /// Every maintenance window (cancelled and completed included), by id.
    pub async fn maintenances(&self) -> Result<Vec<Maintenance>> {
        self.ask(|reply| PageMsg::ListMaintenance { reply }).await
    }

    /// Wall-clock now, on the incident actors' clock.
    pub fn now(&self) -> incidentd_domain::Timestamp {
        self.handle.clock().now()
    }

    pub fn stop(&self) {
        self.actor.stop(None);
    }

    async fn ask<T>(&self, make: impl FnOnce(RpcReplyPort<T>) -> PageMsg) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.actor
            .cast(make(RpcReplyPort::from(tx)))
            .map_err(|_| Error::ShuttingDown)?;
        rx.await
            .map_err(|_| Error::Internal("the status page dropped the call".into()))
    }
}

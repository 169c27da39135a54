//! Assembles the gRPC server: health, reflection (v1 and v1alpha) and the
//! incident service, served until the shutdown future completes, then
//! drained (in-flight calls finish).

use crate::admin::AdminApi;
use crate::alert_grpc::AlertApi;
use crate::drill::DrillApi;
use crate::grpc::IncidentApi;
use crate::metrics::RpcMetrics;
use crate::notify::NotificationApi;
use crate::review::ReviewApi;
use crate::statuspage_grpc::StatusPageApi;
use incidentd_actors::Handle;
use incidentd_proto::v1::admin_service_server::AdminServiceServer;
use incidentd_proto::v1::alert_service_server::AlertServiceServer;
use incidentd_proto::v1::drill_service_server::DrillServiceServer;
use incidentd_proto::v1::incident_service_server::IncidentServiceServer;
use incidentd_proto::v1::notification_service_server::NotificationServiceServer;
use incidentd_proto::v1::review_service_server::ReviewServiceServer;
use incidentd_proto::v1::status_page_service_server::StatusPageServiceServer;
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic_health::server::HealthReporter;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The services beside `IncidentService` and the authenticator in front of all.
pub struct Edges {
    pub alerts: AlertApi,
    pub notifier: Option<incidentd_notify::Notifier>,
    pub statuspage: Option<StatusPageApi>,
    pub auth: crate::auth::Auth,
    pub reload: Option<crate::admin::Reloader>,
}

/// The gRPC server: `IncidentService`, health, reflection, the `NotificationService` of a running notifier, the
/// `StatusPageService`, the `AdminService`, all behind the auth layer.
pub async fn serve_grpc_with(
    listener: TcpListener,
    handle: Handle,
    rpc: Arc<RpcMetrics>,
    health: (
        HealthReporter,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ),
    stop: tokio::sync::watch::Receiver<bool>,
    edges: Edges,
) -> Result<(), BoxError> {
    let Edges {
        alerts,
        notifier,
        statuspage,
        auth,
        reload,
    } = edges;
    let admin = AdminServiceServer::new(AdminApi::new(auth.clone(), rpc.clone(), reload));
    let notifications = notifier.map(|n| NotificationServiceServer::new(NotificationApi::new(n, rpc.clone())));
    let (reporter, health_service) = health;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(incidentd_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(incidentd_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let reviews = ReviewServiceServer::new(ReviewApi::new(handle.clone(), rpc.clone()));
    let drills = DrillServiceServer::new(DrillApi::new(handle.clone(), rpc.clone()));
    let api = IncidentServiceServer::new(IncidentApi::new(handle, rpc, stop.clone()));
    let mut stopped = stop;
    let shutdown = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    reporter.set_serving::<IncidentServiceServer<IncidentApi>>().await;
    reporter.set_serving::<AlertServiceServer<AlertApi>>().await;
    reporter.set_serving::<ReviewServiceServer<ReviewApi>>().await;
    reporter.set_serving::<DrillServiceServer<DrillApi>>().await;
    reporter.set_serving::<AdminServiceServer<AdminApi>>().await;
    if statuspage.is_some() {
        reporter.set_serving::<StatusPageServiceServer<StatusPageApi>>().await;
    }
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    // Replies go out at once: without TCP_NODELAY a reply written in two
    // segments waits for the peer's delayed ACK (40 ms on Linux).
    let incoming = tokio_stream::StreamExt::map(tokio_stream::wrappers::TcpListenerStream::new(listener), |conn| {
        conn.inspect(|s| {
            if let Err(e) = s.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
        })
    });
    tonic::transport::Server::builder()
        .layer(crate::auth::AuthLayer::new(auth))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(api)
        .add_service(AlertServiceServer::new(alerts))
        .add_service(reviews)
        .add_service(drills)
        .add_service(admin)
        .add_optional_service(notifications)
        .add_optional_service(statuspage.map(StatusPageServiceServer::new))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// Marks every service NOT_SERVING (first step of a graceful shutdown).
pub async fn set_not_serving(reporter: &HealthReporter) {
    reporter.set_not_serving::<IncidentServiceServer<IncidentApi>>().await;
    reporter.set_not_serving::<AlertServiceServer<AlertApi>>().await;
    reporter.set_not_serving::<ReviewServiceServer<ReviewApi>>().await;
    reporter.set_not_serving::<DrillServiceServer<DrillApi>>().await;
    reporter.set_not_serving::<AdminServiceServer<AdminApi>>().await;
    reporter
        .set_not_serving::<StatusPageServiceServer<StatusPageApi>>()
        .await;
    reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
}

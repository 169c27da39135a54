//! Traces arrive at a collector with the right parent/child links: the real
//! `incidentd` exports over OTLP/gRPC to an in-process trace receiver (the
//! collector stand-in), and one `AddTimelineEntry` shows up as
//! `rpc` → `incident.execute` → `store.append`, one trace, the incident id on
//! the spans.

use crate::support::{Server, TEST_CONFIG, write_config};
use incidentd_proto::v1::{self as pb};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default, Clone)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
    arrived: Arc<Notify>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = Vec::new();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| v.value.clone());
            assert_eq!(service, Some(Value::StringValue("incidentd".into())));
            for ss in rs.scope_spans {
                got.extend(ss.spans);
            }
        }
        self.spans.lock().expect("receiver lock").extend(got);
        self.arrived.notify_waiters();
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Value::StringValue(s)) => Some(s.clone()),
            Some(Value::IntValue(i)) => Some(i.to_string()),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_with_parent_child_links() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::default();
    let serving = receiver.clone();
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(serving))
            .serve_with_incoming(incoming)
            .await;
    });

    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), TEST_CONFIG);
    let endpoint = format!("http://{addr}");
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("RUST_LOG", "info")];
    let server = Server::start_with_env(&tmp.path().join("data"), &config, &env).await;
    let mut c = server.client().await;
    let inc = c
        .declare_incident(pb::DeclareIncidentRequest {
            title: "Traced".into(),
            team: "payments".into(),
            severity: pb::Severity::Sev4 as i32,
            by: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    c.add_timeline_entry(pb::AddTimelineEntryRequest {
        id: inc.id.clone(),
        kind: pb::EntryKind::Note as i32,
        text: "traced note".into(),
        author: "alice".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    // A clean stop flushes the exporter's batch.
    assert!(server.terminate().await.success());

    // Wait (bounded) until the spans of the entry's RPC are in.
    let find = |spans: &[Span]| {
        let rpc = spans
            .iter()
            .find(|s| s.name == "rpc" && attr(s, "rpc").as_deref() == Some("AddTimelineEntry"))?
            .clone();
        let exec = spans
            .iter()
            .find(|s| s.name == "incident.execute" && s.parent_span_id == rpc.span_id)?
            .clone();
        let append = spans
            .iter()
            .find(|s| s.name == "store.append" && s.parent_span_id == exec.span_id)?
            .clone();
        Some((rpc, exec, append))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (rpc, exec, append) = loop {
        let arrived = receiver.arrived.notified();
        if let Some(found) = find(&receiver.spans.lock().unwrap()) {
            break found;
        }
        if tokio::time::timeout_at(deadline, arrived).await.is_err() {
            let names: Vec<String> = receiver.spans.lock().unwrap().iter().map(|s| s.name.clone()).collect();
            panic!("spans rpc → incident.execute → store.append not found; got {names:?}");
        }
    };
    assert_eq!(exec.trace_id, rpc.trace_id, "one trace");
    assert_eq!(append.trace_id, rpc.trace_id, "one trace");
    assert_eq!(attr(&rpc, "incident_id").as_deref(), Some(inc.id.as_str()));
    assert_eq!(attr(&exec, "incident_id").as_deref(), Some(inc.id.as_str()));
    assert_eq!(attr(&exec, "command").as_deref(), Some("add_entry"));
    assert_eq!(attr(&append, "records").as_deref(), Some("1"));
    // Children sit inside their parents in time.
    assert!(exec.start_time_unix_nano >= rpc.start_time_unix_nano);
    assert!(append.end_time_unix_nano <= exec.end_time_unix_nano);

    // The declaration is traced the same way (through the supervisor).
    let spans = receiver.spans.lock().unwrap().clone();
    let declare = spans
        .iter()
        .find(|s| s.name == "rpc" && attr(s, "rpc").as_deref() == Some("DeclareIncident"))
        .expect("declare rpc span");
    assert!(
        spans
            .iter()
            .any(|s| s.name == "incident.execute" && s.parent_span_id == declare.span_id)
    );
}

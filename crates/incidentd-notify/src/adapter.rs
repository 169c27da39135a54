//! Adapter actors: one per destination kind (chat, webhook, email,
//! statuspage). Each owns its wire code (`Transport`: the HTTP client or
//! SMTP transports, reused across attempts) and runs every attempt in its
//! own task with a timeout, reporting the outcome to the hub. The hub
//! decides when to send (rate limits, backoff, circuit breakers); the
//! adapter only sends, so a slow destination never blocks another.

use crate::hub::HubMsg;
use crate::transport::{Job, SendError, Transport};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::sync::Arc;
use std::time::Duration;

pub enum AdapterMsg {
    Deliver { job: Job, hub: ActorRef<HubMsg> },
}

pub struct Adapter;

pub struct AdapterState {
    transport: Arc<dyn Transport>,
    timeout: Duration,
}

impl Actor for Adapter {
    type Msg = AdapterMsg;
    type State = AdapterState;
    type Arguments = (Arc<dyn Transport>, Duration);

    async fn pre_start(
        &self,
        _myself: ActorRef<AdapterMsg>,
        (transport, timeout): (Arc<dyn Transport>, Duration),
    ) -> Result<AdapterState, ActorProcessingErr> {
        Ok(AdapterState { transport, timeout })
    }

    async fn handle(
        &self,
        _myself: ActorRef<AdapterMsg>,
        msg: AdapterMsg,
        st: &mut AdapterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AdapterMsg::Deliver { job, hub } => {
                let key = job.notification.key.clone();
                let send = st.transport.send(job);
                let timeout = st.timeout;
                tokio::spawn(async move {
                    let result = match tokio::time::timeout(timeout, send).await {
                        Ok(r) => r,
                        Err(_) => Err(SendError::transient(format!(
                            "timed out after {} ms",
                            timeout.as_millis()
                        ))),
                    };
                    let _ = hub.cast(HubMsg::Outcome { key, result });
                });
            }
        }
        Ok(())
    }
}

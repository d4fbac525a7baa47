//! Web Push sender: RFC 8291 encryption and VAPID over one pooled HTTP client.

use std::sync::Arc;
use std::time::SystemTime;

use chrono::Utc;
use tokio::sync::Semaphore;

use super::outcome::{DeliveryOutcome, classify_transport_error, classify_webpush};
use super::{AlertPayload, ClientSettings, MessageOptions, ServiceResponse, SetupError};
use crate::config::{OriginPattern, PushConfig};
use crate::webpush::{VapidSigner, WebPushSubscription, build_request};

/// Sends alerts to browser push subscriptions.
#[derive(Debug)]
pub struct WebPushSender {
    client: reqwest::Client,
    signer: Arc<VapidSigner>,
    allow_insecure: bool,
    allowed_origins: Vec<OriginPattern>,
    in_flight: Semaphore,
}

impl WebPushSender {
    /// Builds the sender; the signer caches one VAPID token per push-service origin.
    pub fn new(config: &PushConfig, signer: VapidSigner) -> Result<Self, SetupError> {
        let client = super::build_client(&ClientSettings {
            allow_insecure: config.allow_insecure_endpoints,
            timeout: config.webpush.timeout(),
            http2_only: false,
        })?;
        Ok(Self {
            client,
            signer: Arc::new(signer),
            allow_insecure: config.allow_insecure_endpoints,
            allowed_origins: config.webpush.allowed_origins.clone(),
            in_flight: Semaphore::new(config.webpush.concurrency.max(1)),
        })
    }

    /// The VAPID signer (its public key is the browsers' `applicationServerKey`).
    pub fn signer(&self) -> &VapidSigner {
        &self.signer
    }

    /// Encrypts `payload` for `sub`, posts it, and classifies the push service's answer.
    pub async fn send(
        &self,
        sub: &WebPushSubscription,
        payload: &AlertPayload,
        opts: &MessageOptions,
    ) -> DeliveryOutcome {
        if let Err(reason) = super::check_destination(&sub.endpoint, self.allow_insecure) {
            return DeliveryOutcome::failed(reason);
        }
        // A device registered before `push.webpush.allowed_origins` changed is never posted to.
        if !self.allow_insecure
            && !self
                .allowed_origins
                .iter()
                .any(|o| o.matches(&sub.endpoint))
        {
            return DeliveryOutcome::failed(format!(
                "{} is not in push.webpush.allowed_origins",
                sub.endpoint.origin().ascii_serialization()
            ));
        }
        // Serialised once; cut (and serialised again) only when it would not fit one record.
        let size = |p: &AlertPayload| serde_json::to_vec(p).map_or(usize::MAX, |v| v.len());
        let plaintext = match serde_json::to_vec(payload) {
            Ok(bytes) if bytes.len() <= super::WEBPUSH_MAX_PLAINTEXT => bytes,
            Ok(_) => match serde_json::to_vec(&*payload.fitted(super::WEBPUSH_MAX_PLAINTEXT, size))
            {
                Ok(bytes) => bytes,
                Err(e) => return DeliveryOutcome::failed(format!("payload serialization: {e}")),
            },
            Err(e) => return DeliveryOutcome::failed(format!("payload serialization: {e}")),
        };
        let topic = opts.webpush_topic();
        let request = match build_request(
            sub,
            &plaintext,
            &self.signer,
            opts.ttl_seconds,
            opts.urgency,
            topic.as_deref(),
            Utc::now(),
        ) {
            Ok(request) => request,
            Err(e) => return DeliveryOutcome::failed(e.to_string()),
        };

        let Ok(_permit) = self.in_flight.acquire().await else {
            return DeliveryOutcome::retry("sender is shutting down");
        };
        let mut builder = self.client.post(request.endpoint);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        let response = match builder.body(request.body).send().await {
            Ok(response) => response,
            Err(e) => return classify_transport_error(&e),
        };
        let r = ServiceResponse::read(response).await;
        classify_webpush(
            r.status,
            r.retry_after.as_deref(),
            &r.body,
            SystemTime::now(),
        )
    }
}

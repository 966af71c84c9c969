//! Connects the wasm runtime to the rest of the host: requests guests send to
//! `<service>.stage.internal` are served in-process by the embedded services (no socket),
//! attributed to the invocation's tenant and app; credential injection per destination
//! lives here too (none yet for the built-in services, which trust the attribution).

use std::sync::Arc;

use axum::Router;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use tower::ServiceExt;

use crate::runtime::policy::Target;
use crate::runtime::{BoxFuture, Gateway, Identity};
use crate::services::ServiceCaller;

/// Largest answer an internal service may give a guest.
const MAX_INTERNAL_RESPONSE: usize = 16 * 1024 * 1024;

pub struct ServiceGateway {
    services: Router,
}

impl ServiceGateway {
    pub fn new(services: Router) -> Arc<ServiceGateway> {
        Arc::new(ServiceGateway { services })
    }
}

impl Gateway for ServiceGateway {
    fn internal(
        &self,
        service: &str,
        request: http::Request<Bytes>,
        identity: &Identity,
    ) -> BoxFuture<'static, Option<http::Response<Bytes>>> {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = format!("/{service}{path}").parse();
        let services = self.services.clone();
        let caller = ServiceCaller {
            tenant_id: identity.tenant_id.clone(),
            app_sid: identity.app_sid.clone(),
            actor_email: identity.actor_email.clone(),
        };
        Box::pin(async move {
            parts.uri = uri.ok()?;
            // A guest cannot claim to be someone else: the caller comes from the invocation.
            parts.extensions.insert(caller);
            let response =
                services.oneshot(http::Request::from_parts(parts, axum::body::Body::from(body))).await.ok()?;
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, MAX_INTERNAL_RESPONSE).await.ok()?;
            Some(http::Response::from_parts(parts, bytes))
        })
    }

    fn credentials(
        &self,
        _: &Target<'_>,
        _: &Identity,
    ) -> BoxFuture<'static, Result<Vec<(HeaderName, HeaderValue)>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

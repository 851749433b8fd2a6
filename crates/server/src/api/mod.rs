//! The HTTP API (axum) and its OpenAPI document (utoipa). Every write is
//! checked by role; anonymous callers get health, login, the OpenAPI
//! document and metrics only.
//!
//! One module per resource, each with its handlers, its request and answer
//! types and a `routes()` that lists them; [`router`] merges them (add a new
//! module's routes in `routes()` here, and a row in
//! `crates/server/tests/auth_matrix.rs`). Errors are [`ApiError`]: one
//! variant per status, `{"error": "..."}` as the body.

mod accounts;
mod caller;
mod devices;
mod error;
mod events;
mod forecast;
mod handover;
mod health;
mod ingest;
mod kpi;
mod plans;
mod proposals;
mod road;
mod stream;
mod whatif;

pub use caller::{Admin, Caller, Operator, STREAM_PATH};
pub use error::{ApiError, ApiResult, ErrorBody};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "zhilu cloud-control API", description = "Live ingest, events, proposals, devices and the audit log of one corridor."),
    modifiers(&BearerAuth),
    tags((name = "zhilu"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// Every resource's routes, merged: the one place a new router module is
/// added.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::routes())
        .merge(accounts::routes())
        .merge(ingest::routes())
        .merge(events::routes())
        .merge(handover::routes())
        .merge(proposals::routes())
        .merge(plans::routes())
        .merge(devices::routes())
        .merge(road::routes())
        .merge(forecast::routes())
        .merge(stream::routes())
        .merge(whatif::routes())
        .merge(kpi::routes())
}

/// The router with every route, and the OpenAPI document.
pub fn router(state: AppState) -> Router {
    let (router, doc) = routes().with_state(state.clone()).split_for_parts();
    let doc = Arc::new(doc.to_json().unwrap_or_else(|_| "{}".into()));
    let max_body = state.cfg.ingest.max_body_bytes;
    router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let d = doc.clone();
                async move { ([(CONTENT_TYPE, "application/json")], d.as_str().to_string()) }
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            Duration::from_secs_f64(state.cfg.server.body_timeout_s),
        ))
        .fallback(fallback)
}

/// Anything else: the console for pages, a JSON 404 for the API.
async fn fallback(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let p = uri.path();
    let api = p == "/api" || p.starts_with("/api/") || p == "/metrics";
    if !api
        && (method == axum::http::Method::GET || method == axum::http::Method::HEAD)
        && let Some(r) = crate::console::serve(&uri)
    {
        return r;
    }
    ApiError::NotFound("no such endpoint".into()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 200 answer's schema of `method path`, as JSON.
    fn ok_schema(doc: &serde_json::Value, method: &str, path: &str) -> serde_json::Value {
        doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
            .clone()
    }

    #[test]
    fn answers_are_typed_in_the_document() {
        let (_, doc) = routes().split_for_parts();
        let doc = serde_json::to_value(&doc).expect("the document is JSON");
        let typed = [
            ("get", "/api/events/{id}", "EventLife"),
            ("get", "/api/devices", "DeviceView"),
            ("get", "/api/proposals", "ProposalView"),
            ("post", "/api/proposals/{id}/approve", "ProposalView"),
            ("post", "/api/proposals/{id}/reject", "ProposalView"),
            ("post", "/api/proposals/{id}/edit", "ProposalView"),
            ("get", "/api/plans", "PlanView"),
            ("get", "/api/plans/{id}", "PlanView"),
            ("post", "/api/plans/{id}/approve", "PlanView"),
            ("post", "/api/plans/{id}/reject", "PlanView"),
            ("post", "/api/plans/{id}/edit", "PlanView"),
            ("get", "/api/actions", "ActionView"),
            ("get", "/api/audit", "AuditView"),
            ("get", "/api/quarantine", "QuarantineView"),
            ("get", "/api/timespace", "TimeSpace"),
            ("get", "/api/forecast", "ForecastSnapshot"),
            ("get", "/api/state", "StateView"),
            ("get", "/api/road", "RoadView"),
            ("get", "/api/vehicles", "VehiclesView"),
            ("get", "/api/users", "UserOut"),
            ("post", "/api/events/{id}/ack", "StepAnswer"),
            ("post", "/api/events/{id}/close", "StepAnswer"),
            ("get", "/api/handover", "HandoverNow"),
            ("post", "/api/handover/sign", "HandoverView"),
            ("post", "/api/handover/{id}/ack", "HandoverView"),
            ("get", "/api/kpi", "KpiView"),
            ("get", "/api/kpi/history", "KpiHistory"),
        ];
        for (method, path, name) in typed {
            let s = ok_schema(&doc, method, path);
            let r = s["$ref"].as_str().or(s["items"]["$ref"].as_str());
            assert_eq!(
                r,
                Some(format!("#/components/schemas/{name}").as_str()),
                "{method} {path}: {s}"
            );
            assert!(
                doc["components"]["schemas"][name]["properties"].is_object(),
                "{name} has its fields in the document"
            );
        }
    }
}

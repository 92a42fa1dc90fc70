//! Strom's HTTP listener (`strom broker --http HOST:PORT`):
//! - `GET /metrics`: Prometheus/OpenMetrics text ([`metrics`]);
//! - `GET /health`: 200 while the process serves HTTP;
//! - `GET /ready`: 200 once the broker serves Kafka clients, 503 before and while stopping;
//! - `GET /api/v1/...`: the JSON admin API ([`api`]), documented in `docs/http-api.md`.

pub mod api;
pub mod metrics;
mod process;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use strom_broker::state::BrokerState;
use tokio::net::TcpListener;

/// The OpenMetrics content type Prometheus negotiates for this format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn router(state: Arc<BrokerState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/api/v1/cluster", get(api::cluster))
        .route("/api/v1/brokers", get(api::brokers))
        .route("/api/v1/topics", get(api::topics))
        .route("/api/v1/topics/{name}", get(api::topic))
        .route("/api/v1/groups", get(api::groups))
        .route("/api/v1/groups/{id}", get(api::group))
        .with_state(state)
}

/// Serves HTTP on `listener` until `shutdown` completes.
pub async fn serve(
    state: Arc<BrokerState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics_handler(State(state): State<Arc<BrokerState>>) -> Response {
    match metrics::Snapshot::take(&state).await.render() {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot render metrics\n").into_response(),
    }
}

async fn ready(State(state): State<Arc<BrokerState>>) -> Response {
    if state.is_serving() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

//! The router: every route under `API_ROOT_PATH` and unprefixed, public and
//! protected groups, the fallbacks, the cross-cutting layers, and the OpenAPI
//! document collected from the handlers' annotations.

mod admin;
mod meta;
mod queues;
mod vcons;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, middleware};
use serde_json::json;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::{ApiState, auth};

/// Routes that need no main-token check here, and routes that need the main
/// token. (`/metrics` and `/stats/queue` check it themselves unless
/// `CONSERVER_PUBLIC_METRICS=1`; external-ingress checks its per-list key.)
fn groups() -> (OpenApiRouter<ApiState>, OpenApiRouter<ApiState>) {
    let public = OpenApiRouter::new()
        .routes(routes!(meta::health))
        .routes(routes!(meta::version))
        .routes(routes!(meta::metrics))
        .routes(routes!(queues::queue_depth))
        .routes(routes!(queues::external_ingress));
    let protected = OpenApiRouter::new()
        .routes(routes!(vcons::create_vcon, vcons::list_vcons))
        .routes(routes!(vcons::read_vcon, vcons::delete_vcon))
        .routes(routes!(vcons::read_many))
        .routes(routes!(vcons::search))
        .routes(routes!(queues::ingress))
        .routes(routes!(queues::egress))
        .routes(routes!(queues::egress_ack))
        .routes(routes!(queues::count))
        .routes(routes!(admin::read_config, admin::replace_config))
        .routes(routes!(admin::read_dlq))
        .routes(routes!(admin::reprocess_dlq))
        .routes(routes!(admin::index_vcons));
    (public, protected)
}

/// The OpenAPI document (also served at `/openapi.json`).
pub fn openapi(root_path: &str) -> OpenApi {
    let (public, protected) = groups();
    let mut api = public.into_openapi();
    api.merge(protected.into_openapi());
    api.info.title = "conserver".into();
    api.info.version = env!("CARGO_PKG_VERSION").into();
    api.info.description = Some(
        "vCon conserver API, compatible with the Python vcon-server. Every route is also served under the root path."
            .into(),
    );
    if !root_path.is_empty() {
        api.servers = Some(vec![utoipa::openapi::Server::new(root_path)]);
    }
    api
}

/// The whole API for `state`.
pub fn router(state: ApiState) -> Router {
    let (public, protected) = groups();
    let (public, _) = public.split_for_parts();
    let (protected, _) = protected.split_for_parts();
    let protected = protected.route_layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    let root = state.settings.root_path.trim_end_matches('/').to_string();
    let docs: Router<ApiState> = SwaggerUi::new("/docs").url("/openapi.json", openapi(&root)).into();
    let routes = public.merge(protected).merge(docs);
    let app = if root.is_empty() { routes } else { routes.clone().nest(&root, routes) };
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(middleware::from_fn(crate::middleware::path_rules))
        .layer(middleware::from_fn_with_state(state.clone(), crate::guards::browser_guard))
        .layer(middleware::from_fn_with_state(state.clone(), crate::middleware::version_headers))
        .layer(middleware::from_fn_with_state(state.clone(), crate::middleware::cors))
        .layer(middleware::from_fn(crate::request_span::request_span))
        .with_state(state)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))).into_response()
}

async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, Json(json!({"detail": "Method Not Allowed"}))).into_response()
}

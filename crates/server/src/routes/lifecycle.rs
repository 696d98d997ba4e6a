//! Data-subject endpoints: export everything about a user, erase a user, erasure status.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use strongroom_core::lifecycle::{ErasureReport, ErasureStatus, UserExport};

use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, Authenticated};
use crate::state::AppState;

type UserPath = ApiPath<(String, String)>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EraseQuery {
    /// Must repeat the user id.
    confirm: Option<String>,
}

pub(crate) async fn export(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user)): UserPath,
) -> Result<Json<UserExport>, ApiError> {
    app.run(move |v| v.export_user(&who, &ns, &user))
        .await
        .map(Json)
}

pub(crate) async fn erase(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user)): UserPath,
    ApiQuery(q): ApiQuery<EraseQuery>,
) -> Result<Json<ErasureReport>, ApiError> {
    let confirm = q.confirm.unwrap_or_default();
    app.run(move |v| v.erase_user(&who, &ns, &user, &confirm))
        .await
        .map(Json)
}

pub(crate) async fn erasure_status(
    State(app): State<AppState>,
    Authenticated(who): Authenticated,
    ApiPath((ns, user)): UserPath,
) -> Result<Json<ErasureStatus>, ApiError> {
    app.run(move |v| v.erasure_status(&who, &ns, &user))
        .await
        .map(Json)
}

//! The user API's router writes: create, delete, disable and enable
//! hotspot users and PPP secrets over the agent's shared session.
//!
//! Statuses come from the router's own lists, checked first with literal
//! `?name=` queries (name taken: 409; profile missing: 422; user missing:
//! 404), not from trap texts, which differ between RouterOS versions.
//! Each change is recorded as a `user_changed` event. The password in a
//! create request goes to the router and nowhere else: not into the
//! response, the event, the log, or an error message.

use serde_json::{Map, Value, json};

use super::Ctx;
use super::json::{Resp, error};
use crate::client::ClientError;
use crate::clock::Timestamp;
use crate::commands::{self, AddUser};
use crate::event::{EventKind, Service, UserAction, Via};
use crate::intent_channel::IntentMsg;
use crate::name::{Id, Name};
use crate::password::Password;
use crate::reconcile::IntentAction;
use crate::store::StoreError;
use hyper::StatusCode;

/// Why a write failed, as an HTTP response.
fn router_error(e: &ClientError, password: &str) -> Resp {
    let (status, msg) = match e {
        ClientError::NotConnected { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "router not connected".to_owned(),
        ),
        ClientError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, e.to_string()),
        ClientError::Trap { message, .. } => (
            StatusCode::BAD_GATEWAY,
            format!("router refused: {message}"),
        ),
        _ => (StatusCode::BAD_GATEWAY, e.to_string()),
    };
    // Belt and braces: no RouterOS message is known to echo a value, but
    // the password must never come back whatever the router says.
    let msg = if password.is_empty() {
        msg
    } else {
        msg.replace(password, "<redacted>")
    };
    error(status, &msg)
}

/// `.id`s of the items of `menu` whose `field` is exactly `value`
/// (queries are literal: no globs, no case folding).
async fn ids(
    ctx: &Ctx,
    menu: &str,
    field: &str,
    value: &[u8],
) -> Result<Vec<Vec<u8>>, ClientError> {
    let r = ctx
        .shared
        .router
        .execute(commands::find(menu, field, value))
        .await?;
    Ok(r.rows
        .iter()
        .filter_map(|a| a.get(".id").map(<[u8]>::to_vec))
        .collect())
}

/// Kicks every active session of `user`; returns how many.
async fn kick(ctx: &Ctx, service: Service, user: &Name) -> Result<usize, ClientError> {
    let ids = ids(
        ctx,
        commands::active(service),
        commands::active_user_field(service),
        user.as_bytes(),
    )
    .await?;
    let router = &ctx.shared.router;
    for id in &ids {
        // Its logout says `kicked`.
        if let Some(id) = Id::parse(id) {
            ctx.shared.kicks.add(service, id);
        }
        match router.execute(commands::kick(service, id)).await {
            // The session ended by itself meanwhile.
            Err(ClientError::Trap { .. }) => {}
            other => {
                other?;
            }
        }
    }
    Ok(ids.len())
}

/// The `user_changed` event of a delete, disable or enable.
fn changed(service: Service, user: &Name, action: UserAction) -> EventKind {
    EventKind::UserChanged {
        service,
        user: user.clone(),
        action,
        via: Via::Http,
    }
}

/// Records the change as an operator intent: with a central side, the
/// sync task commits the event with the override that keeps the next
/// sync from undoing it until central shows it (see
/// [`crate::reconcile::intent`]); without one, only the event. A failure
/// is logged, not returned: the router has changed already and the client
/// must hear so.
async fn record(ctx: &Ctx, service: Service, user: &Name, intent: IntentAction, event: EventKind) {
    let what = event.name();
    let result = match &ctx.shared.intents {
        Some(intents) => {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let msg = IntentMsg {
                service,
                user: user.clone(),
                action: intent,
                event,
                reply,
            };
            match intents.send(msg).await {
                Ok(()) => answer.await.unwrap_or(Err(StoreError::Closed)),
                Err(_) => Err(StoreError::Closed),
            }
        }
        // The store thread logs the committed event.
        None => ctx
            .shared
            .store
            .append(vec![(Timestamp::now(), event)])
            .await
            .map(|_| ()),
    };
    if let Err(e) = result {
        log::error!(
            "http: {what} {} {user}: cannot record the event: {e}",
            service.as_str()
        );
    }
}

/// The create request: `name` required, `password`, `profile`, `comment`
/// optional strings; anything else is a 400.
struct NewUser {
    name: String,
    password: String,
    profile: Option<String>,
    comment: Option<String>,
}

fn parse_new_user(body: &Value) -> Result<NewUser, String> {
    let Value::Object(map) = body else {
        return Err("the body must be a JSON object".to_owned());
    };
    if let Some(k) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "password" | "profile" | "comment"))
    {
        return Err(format!("unknown field {k:?}"));
    }
    let string = |map: &Map<String, Value>, k: &str| -> Result<Option<String>, String> {
        match map.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{k} must be a string")),
        }
    };
    let name = string(map, "name")?.unwrap_or_default();
    if name.is_empty() {
        return Err("name is required".to_owned());
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters".to_owned());
    }
    Ok(NewUser {
        name,
        password: string(map, "password")?.unwrap_or_default(),
        profile: string(map, "profile")?.filter(|p| !p.is_empty()),
        comment: string(map, "comment")?,
    })
}

/// `POST /api/mikrotik/users/{hotspot|pppoe}`.
pub(crate) async fn create(ctx: &Ctx, service: Service, body: Value) -> Resp {
    let new = match parse_new_user(&body) {
        Ok(n) => n,
        Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
    };
    drop(body);
    let Ok(_permit) = ctx.writes.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let pw = new.password.as_str();
    let profile_check = async {
        match &new.profile {
            Some(p) => ids(ctx, commands::profiles(service), "name", p.as_bytes())
                .await
                .map(|v| !v.is_empty()),
            None => Ok(true),
        }
    };
    let (existing, profile_ok) = tokio::join!(
        ids(ctx, commands::users(service), "name", new.name.as_bytes()),
        profile_check
    );
    match existing {
        Ok(v) if !v.is_empty() => {
            return error(StatusCode::CONFLICT, "a user with this name exists");
        }
        Ok(_) => {}
        Err(e) => return router_error(&e, pw),
    }
    match profile_ok {
        Ok(true) => {}
        Ok(false) => return error(StatusCode::UNPROCESSABLE_ENTITY, "unknown profile"),
        Err(e) => return router_error(&e, pw),
    }
    let cmd = commands::add_user(&AddUser {
        service,
        name: new.name.as_bytes(),
        password: Some(pw.as_bytes()),
        profile: new.profile.as_deref().map(str::as_bytes),
        comment: new.comment.as_deref().map(str::as_bytes),
        disabled: false,
    });
    let id = match ctx.shared.router.execute(cmd).await {
        Ok(r) => String::from_utf8_lossy(r.ret().unwrap_or_default()).into_owned(),
        Err(e) => return router_error(&e, pw),
    };
    let user = Name::new(&new.name);
    log::info!("http: created {} user {user} ({id})", service.as_str());
    let (profile, comment) = (
        Name::new(new.profile.as_deref().unwrap_or_default()),
        Name::new(new.comment.as_deref().unwrap_or_default()),
    );
    let password = Password(Some(Name::new(pw)));
    let event = EventKind::UserCreated {
        service,
        user: user.clone(),
        profile: profile.clone(),
        comment: comment.clone(),
        password: password.clone(),
        via: Via::Http,
        disabled: false,
    };
    let intent = IntentAction::Created {
        password,
        profile,
        comment,
    };
    record(ctx, service, &user, intent, event).await;
    super::json::json(
        StatusCode::CREATED,
        &json!({
            ".id": id,
            "name": new.name,
            "type": service.as_str(),
            "profile": new.profile,
            "comment": new.comment,
        }),
    )
}

fn done(service: Service, user: &Name, action: UserAction, kicked: usize) -> Resp {
    let mut m = Map::new();
    user.json_into(&mut m, "name");
    m.insert("type".into(), service.as_str().into());
    m.insert("action".into(), action.as_str().into());
    m.insert("kicked".into(), kicked.into());
    super::json::json(StatusCode::OK, &Value::Object(m))
}

/// The user's `.id`, or the response to send instead (404, or the error).
async fn find(ctx: &Ctx, service: Service, user: &Name) -> Result<Vec<u8>, Box<Resp>> {
    match ids(ctx, commands::users(service), "name", user.as_bytes()).await {
        Ok(v) => v
            .into_iter()
            .next()
            .ok_or_else(|| Box::new(error(StatusCode::NOT_FOUND, "no such user"))),
        Err(e) => Err(Box::new(router_error(&e, ""))),
    }
}

/// `DELETE /api/mikrotik/users/{hotspot|pppoe}/{name}`: removes the user
/// and ends its sessions (a removed user left online would keep browsing).
pub(crate) async fn delete(ctx: &Ctx, service: Service, user: Name) -> Resp {
    let Ok(_permit) = ctx.writes.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let id = match find(ctx, service, &user).await {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let router = &ctx.shared.router;
    if let Err(e) = router.execute(commands::remove_user(service, &id)).await {
        return router_error(&e, "");
    }
    let event = changed(service, &user, UserAction::Deleted);
    record(ctx, service, &user, IntentAction::Deleted, event).await;
    let kicked = match kick(ctx, service, &user).await {
        Ok(n) => n,
        Err(e) => {
            log::warn!("http: deleted {user}, but kicking its sessions failed: {e}");
            0
        }
    };
    log::info!("http: deleted {} user {user}", service.as_str());
    done(service, &user, UserAction::Deleted, kicked)
}

/// `POST /api/mikrotik/users/pppoe/{name}/{disable|enable}`; disabling
/// also ends the active session (RouterOS leaves it up otherwise).
pub(crate) async fn toggle_pppoe(ctx: &Ctx, user: Name, disable: bool) -> Resp {
    let Ok(_permit) = ctx.writes.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let service = Service::Pppoe;
    let id = match find(ctx, service, &user).await {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let action = if disable {
        UserAction::Disabled
    } else {
        UserAction::Enabled
    };
    if let Err(e) = ctx
        .shared
        .router
        .execute(commands::set_secret_enabled(&id, !disable))
        .await
    {
        return router_error(&e, "");
    }
    let intent = if disable {
        IntentAction::Suspended
    } else {
        IntentAction::Restored
    };
    record(ctx, service, &user, intent, changed(service, &user, action)).await;
    let kicked = if disable {
        match kick(ctx, service, &user).await {
            Ok(n) => n,
            Err(e) => return router_error(&e, ""),
        }
    } else {
        0
    };
    log::info!("http: {} pppoe secret {user}", action.as_str());
    done(service, &user, action, kicked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_validation() {
        let ok = parse_new_user(&json!({"name": "v1", "password": "p", "profile": "x"})).unwrap();
        assert_eq!((ok.name.as_str(), ok.password.as_str()), ("v1", "p"));
        assert!(parse_new_user(&json!({"password": "p"})).is_err());
        assert!(parse_new_user(&json!({"name": ""})).is_err());
        assert!(parse_new_user(&json!({"name": 5})).is_err());
        assert!(parse_new_user(&json!({"name": "a", "pasword": "x"})).is_err());
        assert!(parse_new_user(&json!(["name"])).is_err());
        assert!(parse_new_user(&json!({"name": "a\nb"})).is_err());
    }

    #[test]
    fn errors_never_echo_the_password() {
        let e = ClientError::Trap {
            command: "/ip/hotspot/user/add".into(),
            category: None,
            message: "bad value hunter2".into(),
        };
        let r = router_error(&e, "hunter2");
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        let body = format!("{:?}", r.body());
        assert!(!body.contains("hunter2"), "{body}");
    }
}

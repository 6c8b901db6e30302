//! The user side: log in as an ordinary user and manage their gateway keys
//! (`/api/v1/keys`, JWT only). Admins cannot mint keys for users on
//! observed upstream builds (docs/sub2api-contract.md §3.5), so self-service closure needs this.

use crate::client::{Auth, Call, Sub2apiClient};
use crate::error::{Error, Result};
use crate::wire::{ApiKey, LoginData};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::fmt;

const KEYS: &str = "/api/v1/keys";

/// Body of `POST /api/v1/keys`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewKey {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<i64>,
}

/// Body of `PUT /api/v1/keys/:id`; `None` fields are not sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyUpdate {
    pub name: Option<String>,
    pub group_id: Option<i64>,
    /// `active` | `inactive`.
    pub status: Option<String>,
}

impl KeyUpdate {
    fn to_body(&self) -> Value {
        let mut obj = Map::new();
        if let Some(v) = &self.name {
            obj.insert("name".into(), json!(v));
        }
        if let Some(v) = self.group_id {
            obj.insert("group_id".into(), json!(v));
        }
        if let Some(v) = &self.status {
            obj.insert("status".into(), json!(v));
        }
        Value::Object(obj)
    }
}

/// A logged-in user. Holds the JWT as a secret; `Debug` hides it.
#[derive(Clone)]
pub struct UserSession {
    client: Sub2apiClient,
    email: String,
    token: SecretString,
}

impl fmt::Debug for UserSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSession")
            .field("email", &self.email)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl Sub2apiClient {
    /// `POST /api/v1/auth/login {email, password}`: a session for the user's
    /// own endpoints. Never retried (a login is not a read).
    pub async fn login(&self, email: &str, password: &SecretString) -> Result<UserSession> {
        let call = Call::new(Method::POST, "/api/v1/auth/login", Auth::None)
            .json(json!({ "email": email, "password": password.expose_secret() }));
        let data: LoginData = self.typed(call, &[password]).await?;
        let token = data.access_token.ok_or_else(|| Error::Decode {
            status: 200,
            detail: "login answered without data.access_token".into(),
            body_excerpt: String::new(),
        })?;
        Ok(UserSession {
            client: self.clone(),
            email: email.to_owned(),
            token,
        })
    }
}

impl UserSession {
    /// The user this session belongs to.
    pub fn email(&self) -> &str {
        &self.email
    }

    fn call(&self, method: Method, path: String) -> Call<'_> {
        Call::new(method, path, Auth::Bearer(&self.token))
    }

    /// The user's keys, all pages (each carries the full key).
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>> {
        self.client
            .list_all_as(KEYS, &[], Auth::Bearer(&self.token))
            .await
    }

    /// One key of the user's, with the full key string.
    pub async fn get_key(&self, id: i64) -> Result<ApiKey> {
        self.client
            .typed(self.call(Method::GET, format!("{KEYS}/{id}")), &[])
            .await
    }

    /// Creates a key; the answer carries the full key. Never retried.
    pub async fn create_key(&self, key: &NewKey) -> Result<ApiKey> {
        let call = self
            .call(Method::POST, KEYS.to_owned())
            .json(serde_json::to_value(key).unwrap_or(Value::Null));
        self.client.typed(call, &[]).await
    }

    /// `PUT /api/v1/keys/:id` (e.g. rebind to a group). Never retried.
    pub async fn update_key(&self, id: i64, update: &KeyUpdate) -> Result<ApiKey> {
        let call = self
            .call(Method::PUT, format!("{KEYS}/{id}"))
            .json(update.to_body());
        self.client.typed(call, &[]).await
    }

    /// `DELETE /api/v1/keys/:id`.
    pub async fn delete_key(&self, id: i64) -> Result<()> {
        self.client
            .data(self.call(Method::DELETE, format!("{KEYS}/{id}")), &[])
            .await
            .map(|_| ())
    }
}

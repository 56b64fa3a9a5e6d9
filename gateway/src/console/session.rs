//! Sign-in URLs and browser sessions of the web console, in the gateway's
//! store (SQLite migration 0007; PostgreSQL: [`PG_SCHEMA`]) so a URL made
//! by one replica signs in at any other.
//!
//! A token is 32 random bytes (ring's system RNG), given out once in hex;
//! the store keeps its SHA-256 only. A sign-in token is redeemed by
//! deleting its row (`DELETE ... RETURNING`), so two browsers racing with
//! one URL cannot both get a session, on one replica or two.

use std::time::SystemTime;

use ring::rand::{SecureRandom as _, SystemRandom};
use sha2::{Digest as _, Sha256};
use xgate_tls::Identity;

use crate::store::{Store, StoreError, from_millis, millis, on_pool};

/// The PostgreSQL table (SQLite: migration 0007).
pub(crate) const PG_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash TEXT   NOT NULL PRIMARY KEY,
    grant_kind TEXT   NOT NULL,
    identity   TEXT   NOT NULL,
    csrf       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
)",
    "CREATE INDEX IF NOT EXISTS console_sessions_by_expiry ON console_sessions (expires_at)",
];

const SIGN_IN: &str = "sign-in";
const SESSION: &str = "session";

/// A fresh random token, 64 hex digits.
pub fn token() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Invalid("the system random generator failed".into()))?;
    Ok(hex::encode(bytes))
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub identity: Identity,
    /// Every form of the session carries it; a POST without it is refused.
    pub csrf: String,
    pub expires_at: SystemTime,
}

impl Store {
    /// Keeps a sign-in token for `identity` until `expires_at`; drops the
    /// expired rows of everyone while at it.
    pub async fn console_sign_in(
        &self,
        token: &str,
        identity: &Identity,
        now: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        self.console_grant(SIGN_IN, token, identity, "", now, expires_at)
            .await?;
        on_pool!(self, p => sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(millis(now))
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Spends a sign-in token: the identity it was made for, or `None`
    /// when it is unknown, used already or expired.
    pub async fn console_redeem(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<Option<Identity>, StoreError> {
        const SQL: &str = "DELETE FROM console_sessions WHERE token_hash = $1 AND grant_kind = $2
             RETURNING identity, expires_at";
        let row: Option<(String, i64)> = on_pool!(self, p => sqlx::query_as(SQL)
            .bind(token_hash(token))
            .bind(SIGN_IN)
            .fetch_optional(p)
            .await?);
        match row {
            Some((identity, expires_at)) if expires_at > millis(now) => {
                Ok(Some(identity.parse().map_err(|e| {
                    StoreError::Invalid(format!("console identity: {e}"))
                })?))
            }
            _ => Ok(None),
        }
    }

    /// Starts a browser session under `token` (the cookie's value).
    pub async fn console_start(
        &self,
        token: &str,
        session: &Session,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.console_grant(
            SESSION,
            token,
            &session.identity,
            &session.csrf,
            now,
            session.expires_at,
        )
        .await
    }

    /// The live session of a cookie's token; `None` for an unknown (forged)
    /// or expired one.
    pub async fn console_session(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<Option<Session>, StoreError> {
        const SQL: &str = "SELECT identity, csrf, expires_at FROM console_sessions
             WHERE token_hash = $1 AND grant_kind = $2 AND expires_at > $3";
        let row: Option<(String, String, i64)> = on_pool!(self, p => sqlx::query_as(SQL)
            .bind(token_hash(token))
            .bind(SESSION)
            .bind(millis(now))
            .fetch_optional(p)
            .await?);
        row.map(|(identity, csrf, expires_at)| {
            Ok(Session {
                identity: identity
                    .parse()
                    .map_err(|e| StoreError::Invalid(format!("console identity: {e}")))?,
                csrf,
                expires_at: from_millis(expires_at),
            })
        })
        .transpose()
    }

    /// Ends a session (sign-out).
    pub async fn console_end(&self, token: &str) -> Result<(), StoreError> {
        on_pool!(self, p => sqlx::query(
            "DELETE FROM console_sessions WHERE token_hash = $1 AND grant_kind = $2")
            .bind(token_hash(token))
            .bind(SESSION)
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }

    async fn console_grant(
        &self,
        kind: &str,
        token: &str,
        identity: &Identity,
        csrf: &str,
        now: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO console_sessions
             (token_hash, grant_kind, identity, csrf, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(token_hash(token))
            .bind(kind)
            .bind(identity.uri())
            .bind(csrf)
            .bind(millis(now))
            .bind(millis(expires_at))
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("gw.db")).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn a_sign_in_token_works_once_and_only_until_it_expires() {
        let (_dir, store) = store().await;
        let auditor = Identity::Auditor("a".into());
        let now = SystemTime::now();
        let once = token().unwrap();
        store
            .console_sign_in(&once, &auditor, now, now + Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            store.console_redeem(&once, now).await.unwrap(),
            Some(auditor.clone())
        );
        assert_eq!(
            store.console_redeem(&once, now).await.unwrap(),
            None,
            "reused"
        );

        let stale = token().unwrap();
        store
            .console_sign_in(&stale, &auditor, now, now + Duration::from_secs(60))
            .await
            .unwrap();
        let later = now + Duration::from_secs(61);
        assert_eq!(
            store.console_redeem(&stale, later).await.unwrap(),
            None,
            "stale"
        );
        assert_eq!(
            store.console_redeem("f00d", now).await.unwrap(),
            None,
            "unknown"
        );
    }

    #[tokio::test]
    async fn a_session_is_found_by_its_token_only_and_ends() {
        let (_dir, store) = store().await;
        let now = SystemTime::now();
        let cookie = token().unwrap();
        let session = Session {
            identity: Identity::Department("tax".into()),
            csrf: token().unwrap(),
            expires_at: now + Duration::from_secs(900),
        };
        store.console_start(&cookie, &session, now).await.unwrap();
        let found = store.console_session(&cookie, now).await.unwrap().unwrap();
        assert_eq!(found.identity, session.identity);
        assert_eq!(found.csrf, session.csrf);
        // A sign-in token is not a session, nor is a forged one.
        assert!(
            store
                .console_session(&token().unwrap(), now)
                .await
                .unwrap()
                .is_none()
        );
        let after = now + Duration::from_secs(901);
        assert!(
            store
                .console_session(&cookie, after)
                .await
                .unwrap()
                .is_none(),
            "expired"
        );
        store.console_end(&cookie).await.unwrap();
        assert!(
            store.console_session(&cookie, now).await.unwrap().is_none(),
            "signed out"
        );
        // The hash, never the token, is stored.
        assert_ne!(token_hash(&cookie), cookie);
    }
}

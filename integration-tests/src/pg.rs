//! A database of a test's own on the local PostgreSQL (127.0.0.1:5432, trust auth), owned by a
//! role of the same name so that privileges apply to what the gateway does; dropped at the end.

use anyhow::Context as _;
use sqlx::Connection as _;

const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database and its owner role, both named `name`.
pub struct PgDb {
    pub name: String,
}

async fn run(url: &str, statements: &[String]) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&mut conn)
            .await
            .with_context(|| format!("running `{sql}`"))?;
    }
    Ok(())
}

impl PgDb {
    /// A fresh database `<prefix>_<uuid>` owned by a role of that name.
    pub async fn create(prefix: &str) -> anyhow::Result<PgDb> {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        run(
            ADMIN,
            &[
                format!("CREATE ROLE {name} LOGIN"),
                format!("CREATE DATABASE {name} OWNER {name}"),
            ],
        )
        .await?;
        Ok(PgDb { name })
    }

    /// As the database's own (non-superuser) role.
    pub fn url(&self) -> String {
        format!("postgres://{0}@127.0.0.1:5432/{0}", self.name)
    }

    /// As the superuser, in this database.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// Runs `sql` as the superuser in this database.
    pub async fn admin(&self, sql: String) -> anyhow::Result<()> {
        run(&self.admin_url(), &[sql]).await
    }

    /// Runs `sql` as the superuser in the server's `postgres` database (for
    /// what cannot run inside this one, e.g. locking its role out).
    pub async fn server_admin(&self, sql: String) -> anyhow::Result<()> {
        run(ADMIN, &[sql]).await
    }

    /// Drops the database (closing its connections) and the role.
    pub async fn drop_db(self) -> anyhow::Result<()> {
        run(
            ADMIN,
            &[
                format!("DROP DATABASE {} WITH (FORCE)", self.name),
                format!("DROP ROLE {}", self.name),
            ],
        )
        .await
    }
}

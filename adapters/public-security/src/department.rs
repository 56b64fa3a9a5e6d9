//! The [`Department`] the SDK serves: lookups in the seeded database.

use std::path::Path;

use serde_json::Value;
use xgate_adapter_sdk::{Department, LookupError, Subject};
use xgate_synth::store::{Store, StoreError};

use crate::db;

/// The Public Security Bureau (公安局) behind its read-only database.
#[derive(Clone, Debug)]
pub struct PublicSecurity {
    store: Store,
}

impl PublicSecurity {
    /// Opens the seeded database at `path` read-only.
    pub async fn open(path: &Path) -> Result<PublicSecurity, StoreError> {
        Ok(PublicSecurity {
            store: db::open(path).await?,
        })
    }
}

impl Department for PublicSecurity {
    fn department(&self) -> &str {
        db::DEPARTMENT
    }

    fn record_types(&self) -> Vec<String> {
        self.store.record_types()
    }

    async fn lookup(
        &self,
        subject: &Subject,
        record_type: &str,
    ) -> Result<Vec<Value>, LookupError> {
        self.store
            .lookup(record_type, &subject.id)
            .await
            .map_err(|e| LookupError::Backend(e.to_string()))
    }
}

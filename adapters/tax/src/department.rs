//! The [`Department`] the SDK serves: lookups in the seeded database.

use std::path::Path;

use serde_json::Value;
use xgate_adapter_sdk::{Department, LookupError, Subject};
use xgate_synth::store::{Store, StoreError};

use crate::db;

/// The Taxation Bureau (税务局) behind its read-only database.
#[derive(Clone, Debug)]
pub struct Tax {
    store: Store,
}

impl Tax {
    /// Opens the seeded database at `path` read-only.
    pub async fn open(path: &Path) -> Result<Tax, StoreError> {
        Ok(Tax {
            store: db::open(path).await?,
        })
    }
}

impl Department for Tax {
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

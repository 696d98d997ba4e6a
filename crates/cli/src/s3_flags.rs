//! The S3 connection flags, shared by every command that reaches a folder-or-bucket location
//! (`serve --files` / `--erasure-ledger`, `backup`, `restore`).

use anyhow::{Context, Result};
use clap::Args;
use strongroom_objects::{BlobStore, ObjectLocation, S3Settings};
use zeroize::Zeroizing;

#[derive(Args, Clone)]
pub struct S3Args {
    /// S3: endpoint URL for non-AWS stores (default: AWS_ENDPOINT or AWS itself).
    #[arg(long = "s3-endpoint", env = "STRONGROOM_S3_ENDPOINT")]
    pub endpoint: Option<String>,
    /// S3: region (default: AWS_REGION / AWS_DEFAULT_REGION).
    #[arg(long = "s3-region", env = "STRONGROOM_S3_REGION")]
    pub region: Option<String>,
    /// S3: access key id (default: AWS_ACCESS_KEY_ID). The secret comes only from the
    /// environment: STRONGROOM_S3_SECRET_ACCESS_KEY or AWS_SECRET_ACCESS_KEY.
    #[arg(long = "s3-access-key-id", env = "STRONGROOM_S3_ACCESS_KEY_ID")]
    pub access_key_id: Option<String>,
    /// S3: allow a plain-http endpoint (a test server on loopback).
    #[arg(long = "s3-allow-http", env = "STRONGROOM_S3_ALLOW_HTTP")]
    pub allow_http: bool,
}

impl S3Args {
    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: std::env::var("STRONGROOM_S3_SECRET_ACCESS_KEY")
                .ok()
                .map(Zeroizing::new),
            allow_http: self.allow_http,
        }
    }

    /// Opens `location` (a folder, file:///PATH or s3://BUCKET/PREFIX); `what` names the flag
    /// in errors.
    pub fn open(&self, location: &str, what: &str) -> Result<BlobStore> {
        let parsed: ObjectLocation = location.parse().with_context(|| what.to_string())?;
        self.open_location(&parsed, what)
    }

    pub fn open_location(&self, location: &ObjectLocation, what: &str) -> Result<BlobStore> {
        BlobStore::open(location, &self.settings()).with_context(|| format!("opening {what}"))
    }
}

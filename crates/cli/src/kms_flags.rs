//! `serve`'s AWS KMS flags (auto-unseal): which key wraps a new root key, the region and an
//! endpoint override for KMS-compatible services. Credentials come from the standard AWS
//! environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`);
//! instance profiles and `~/.aws` files are not read.

use anyhow::{bail, Result};
use clap::Args;
use strongroom_core::seal::kms::{Kms, KmsSettings};
use zeroize::Zeroizing;

#[derive(Args)]
pub struct KmsArgs {
    /// Wrap the root key with this AWS KMS key (id, ARN or alias) instead of a key file: nodes
    /// then unseal by asking KMS at start (auto-unseal). On a new store a root key is made and
    /// wrapped; a store opened with its root key is wrapped from now on. A store already
    /// wrapped needs only the region and credentials.
    #[arg(long, env = "STRONGROOM_KMS_KEY_ID")]
    kms_key_id: Option<String>,
    /// The KMS region (default: AWS_REGION, then AWS_DEFAULT_REGION).
    #[arg(long, env = "STRONGROOM_KMS_REGION")]
    kms_region: Option<String>,
    /// A KMS-compatible endpoint instead of https://kms.REGION.amazonaws.com.
    #[arg(long, env = "STRONGROOM_KMS_ENDPOINT")]
    kms_endpoint: Option<String>,
}

impl KmsArgs {
    /// A KMS key was named on the command line.
    pub fn requested(&self) -> bool {
        self.kms_key_id.is_some()
    }

    /// The KMS client when one is asked for (`needed`: the store's root key is wrapped by KMS),
    /// or `None`.
    pub fn client(&self, needed: bool) -> Result<Option<Kms>> {
        if !needed && !self.requested() {
            return Ok(None);
        }
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let Some(region) = self
            .kms_region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
        else {
            bail!(
                "the root key is wrapped by AWS KMS: give the region (--kms-region or AWS_REGION)"
            );
        };
        let (Some(access_key_id), Some(secret)) =
            (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        else {
            bail!(
                "the root key is wrapped by AWS KMS: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (and AWS_SESSION_TOKEN for temporary credentials)"
            );
        };
        if let Some(endpoint) = &self.kms_endpoint {
            if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                bail!("--kms-endpoint must be an http:// or https:// URL");
            }
        }
        Ok(Some(Kms::new(KmsSettings {
            key_id: self.kms_key_id.clone(),
            region,
            endpoint: self.kms_endpoint.clone(),
            access_key_id,
            secret_access_key: Zeroizing::new(secret),
            session_token: env("AWS_SESSION_TOKEN").map(Zeroizing::new),
        })))
    }
}

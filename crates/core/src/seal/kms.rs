//! AWS KMS auto-unseal: the root key wrapped by a KMS key (`Encrypt` / `Decrypt` with an
//! encryption context), so a node opens unattended by asking KMS — and a stolen database,
//! disk or backup is useless without the KMS key's permissions too.
//!
//! Requests are AWS JSON 1.1 over the blocking HTTP client the core already has (ureq), signed
//! with SigV4 by the signer the S3 store uses (`strongroom_objects::aws_signing`): no AWS SDK,
//! no second HTTP stack. The endpoint can be overridden for KMS-compatible services (and for
//! tests against moto, which enforces the encryption context but not key state).
//!
//! Stored in `meta['root_key_kms']` (frozen format 1, JSON):
//! `{"format": 1, "key_id": "<as given>", "ciphertext": "<CiphertextBlob, base64>"}`.
//! The encryption context is `{"strongroom": "root-key"}`: KMS refuses to decrypt the blob
//! under any other context, so a ciphertext made for another purpose with the same KMS key
//! cannot be passed off as the root key.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use strongroom_crypto::{Key, Root};
use strongroom_objects::aws_signing::{self, AwsCredential, ToSign};
use zeroize::Zeroizing;

use crate::{CoreError, CoreResult};

/// Where the KMS-wrapped root key is kept (in the shared database, for every node).
pub const KMS_META: &str = "root_key_kms";
const FORMAT: u64 = 1;
const CONTEXT: (&str, &str) = ("strongroom", "root-key");
const TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach KMS. No `Debug`: it holds the AWS secret key.
pub struct KmsSettings {
    /// The KMS key (id, ARN or alias) that wraps a new root key; a wrapped root key names its
    /// own.
    pub key_id: Option<String>,
    pub region: String,
    /// `https://kms.<region>.amazonaws.com` unless overridden.
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
}

/// A KMS client for the root key.
pub struct Kms {
    key_id: Option<String>,
    region: String,
    endpoint: String,
    credential: AwsCredential,
    agent: ureq::Agent,
}

impl Drop for Kms {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.credential.secret_key.zeroize();
        if let Some(token) = self.credential.token.as_mut() {
            token.zeroize();
        }
    }
}

#[derive(Deserialize)]
struct Stored {
    format: u64,
    key_id: String,
    ciphertext: String,
}

#[derive(Deserialize)]
struct EncryptReply {
    #[serde(rename = "CiphertextBlob")]
    ciphertext_blob: String,
}

/// `Plaintext` holds the root key: zeroized when dropped.
#[derive(Deserialize)]
struct DecryptReply {
    #[serde(rename = "Plaintext")]
    plaintext: Zeroizing<String>,
}

#[derive(Deserialize)]
struct ErrorReply {
    #[serde(rename = "__type", default)]
    kind: String,
}

impl Kms {
    pub fn new(settings: KmsSettings) -> Self {
        let endpoint = settings
            .endpoint
            .unwrap_or_else(|| format!("https://kms.{}.amazonaws.com", settings.region));
        Self {
            key_id: settings.key_id,
            endpoint: format!("{}/", endpoint.trim_end_matches('/')),
            region: settings.region,
            credential: AwsCredential {
                key_id: settings.access_key_id,
                secret_key: settings.secret_access_key.to_string(),
                token: settings.session_token.map(|t| t.to_string()),
            },
            agent: ureq::AgentBuilder::new()
                .timeout(TIMEOUT)
                .redirects(0)
                .build(),
        }
    }

    /// Wraps `root` under the configured KMS key: what to store in [`KMS_META`].
    pub fn wrap(&self, root: &Key<Root>) -> CoreResult<Vec<u8>> {
        let key_id = self.key_id.clone().ok_or_else(|| CoreError::Invalid {
            field: "kms_key_id",
            rule: "is needed to wrap a root key under KMS".into(),
        })?;
        self.wrap_under(key_id, root)
    }

    /// Wraps `root` under the configured KMS key, else the one that wrapped `stored`.
    pub fn wrap_like(&self, stored: &[u8], root: &Key<Root>) -> CoreResult<Vec<u8>> {
        match &self.key_id {
            Some(key_id) => self.wrap_under(key_id.clone(), root),
            None => {
                let stored: Stored = serde_json::from_slice(stored)
                    .map_err(|_| CoreError::Integrity("the KMS-wrapped root key"))?;
                self.wrap_under(stored.key_id, root)
            }
        }
    }

    fn wrap_under(&self, key_id: String, root: &Key<Root>) -> CoreResult<Vec<u8>> {
        let body = Zeroizing::new(
            json!({
                "KeyId": key_id,
                "Plaintext": STANDARD.encode(root.expose_bytes()),
                "EncryptionContext": { CONTEXT.0: CONTEXT.1 },
            })
            .to_string(),
        );
        let reply: EncryptReply = self.call("TrentService.Encrypt", &body)?;
        Ok(
            json!({"format": FORMAT, "key_id": key_id, "ciphertext": reply.ciphertext_blob})
                .to_string()
                .into_bytes(),
        )
    }

    /// Asks KMS for the root key wrapped in `stored`.
    pub fn unwrap(&self, stored: &[u8]) -> CoreResult<Key<Root>> {
        let stored: Stored = serde_json::from_slice(stored)
            .map_err(|_| CoreError::Integrity("the KMS-wrapped root key"))?;
        if stored.format != FORMAT {
            return Err(CoreError::Integrity("the KMS-wrapped root key"));
        }
        let body = json!({
            "KeyId": stored.key_id,
            "CiphertextBlob": stored.ciphertext,
            "EncryptionContext": { CONTEXT.0: CONTEXT.1 },
        })
        .to_string();
        let reply: DecryptReply = self.call("TrentService.Decrypt", &body)?;
        let bytes = Zeroizing::new(
            STANDARD
                .decode(reply.plaintext.as_bytes())
                .map_err(|_| CoreError::Integrity("KMS's answer"))?,
        );
        Key::from_bytes(&bytes).map_err(|_| CoreError::Integrity("KMS's answer"))
    }

    fn call<T: for<'de> Deserialize<'de>>(&self, target: &str, body: &str) -> CoreResult<T> {
        let body_sha256 = strongroom_crypto::keyed_hash::sha256(&[body.as_bytes()]);
        let headers = aws_signing::signed_headers(
            &ToSign {
                method: "POST",
                url: &self.endpoint,
                headers: &[
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amz-target", target),
                ],
                body_sha256,
                service: "kms",
                region: &self.region,
            },
            &self.credential,
        )
        .map_err(|reason| CoreError::KeyService {
            transient: false,
            reason,
        })?;
        let mut request = self.agent.post(&self.endpoint);
        for (name, value) in &headers {
            request = request.set(name, value);
        }
        let unavailable = |reason: String| CoreError::KeyService {
            transient: true,
            reason,
        };
        match request.send_bytes(body.as_bytes()) {
            Ok(reply) => reply
                .into_json::<T>()
                .map_err(|_| unavailable("KMS answered something that is not its JSON".into())),
            Err(ureq::Error::Status(status, reply)) => {
                let kind = reply
                    .into_json::<ErrorReply>()
                    .map(|e| e.kind)
                    .unwrap_or_default();
                // `__type` may be prefixed with a namespace ("…#InvalidCiphertextException").
                let kind = kind.rsplit('#').next().unwrap_or_default().to_string();
                Err(refusal(status, &kind))
            }
            Err(ureq::Error::Transport(t)) => {
                Err(unavailable(format!("KMS is unreachable ({})", t.kind())))
            }
        }
    }
}

/// What a KMS error answer means for the root key.
fn refusal(status: u16, kind: &str) -> CoreError {
    match kind {
        // The blob or its context is not what was wrapped: the stored key was altered.
        "InvalidCiphertextException" | "IncorrectKeyException" => {
            CoreError::Integrity("the KMS-wrapped root key")
        }
        "ThrottlingException" | "KMSInternalException" | "DependencyTimeoutException" => {
            CoreError::KeyService {
                transient: true,
                reason: format!("KMS answered {kind}"),
            }
        }
        _ if status >= 500 => CoreError::KeyService {
            transient: true,
            reason: format!("KMS answered HTTP {status}"),
        },
        "" => CoreError::KeyService {
            transient: false,
            reason: format!("KMS refused with HTTP {status}"),
        },
        _ => CoreError::KeyService {
            transient: false,
            reason: format!("KMS refused: {kind}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_errors_mean_tampering_a_pause_or_a_refusal() {
        assert!(matches!(
            refusal(400, "InvalidCiphertextException"),
            CoreError::Integrity(_)
        ));
        assert!(matches!(
            refusal(400, "ThrottlingException"),
            CoreError::KeyService {
                transient: true,
                ..
            }
        ));
        assert!(matches!(
            refusal(503, ""),
            CoreError::KeyService {
                transient: true,
                ..
            }
        ));
        match refusal(400, "AccessDeniedException") {
            CoreError::KeyService { transient, reason } => {
                assert!(!transient);
                assert!(reason.contains("AccessDeniedException"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stored_blob_of_another_format_is_an_integrity_error() {
        let kms = Kms::new(KmsSettings {
            key_id: None,
            region: "us-east-1".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
            access_key_id: "a".into(),
            secret_access_key: Zeroizing::new("s".into()),
            session_token: None,
        });
        for blob in [
            &b"not json"[..],
            br#"{"format":2,"key_id":"k","ciphertext":"AA=="}"#,
        ] {
            assert!(matches!(kms.unwrap(blob), Err(CoreError::Integrity(_))));
        }
        assert!(matches!(
            kms.wrap(&Key::generate().unwrap()),
            Err(CoreError::Invalid {
                field: "kms_key_id",
                ..
            })
        ));
    }
}

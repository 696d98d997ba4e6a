//! Signed download links: an app hands its user a URL for one file without exposing its API
//! token. A link names the namespace, the file, an expiry, a random link id, whether it works
//! once, and its single purpose (`download`); the whole is authenticated with HMAC-SHA-256
//! under a key derived from the root key. Deleting the file or erasing its owner ends every
//! link to it; one-time links are remembered (by id) until they expire.
//!
//! ```text
//! token = "v1." ‖ base64url(payload JSON) ‖ "." ‖ base64url(HMAC(link key, "file-link/v1." ‖ payload part))
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use strongroom_crypto::keyed_hash::constant_time_eq;
use strongroom_crypto::{Index, Key, Root};

use super::{check_file_id, ByteRange, FileReader};
use crate::clock::rfc3339;
use crate::operation::Op;
use crate::vault::{At, Subject};
use crate::{CoreError, CoreResult, Principal, Vault};

const PURPOSE_DOWNLOAD: &str = "download";
const DEFAULT_TTL_SECS: u64 = 15 * 60;
const MAX_TTL_SECS: u64 = 7 * 24 * 3600;
/// Longest token accepted (a real one is ~250 characters).
const MAX_TOKEN_LEN: usize = 1024;

/// What a caller asks for when creating a link.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Seconds until the link expires: 1 to 604800 (7 days); 900 when absent.
    #[serde(default, deserialize_with = "crate::json::opt_u64")]
    pub expires_in_secs: Option<u64>,
    /// Whether the link works for one download only.
    #[serde(default)]
    pub one_time: bool,
}

/// A created link.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadLink {
    pub token: String,
    /// The path to append to the server's address: `/v1/links/<token>`.
    pub path: String,
    pub expires_at: String,
    pub one_time: bool,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct LinkClaims {
    ns: String,
    f: String,
    exp: i64,
    id: String,
    once: bool,
    p: String,
}

/// The MAC of a link's payload part under the root-derived link key. Frozen (pinned in
/// `format_vectors`): changing it invalidates every link handed out.
pub(crate) fn link_mac(root: &Key<Root>, body: &str) -> CoreResult<[u8; 32]> {
    let key: Key<Index> = root
        .derive("file-links")
        .map_err(|e| CoreError::Internal(e.to_string()))?;
    Ok(key.mac(format!("file-link/v1.{body}").as_bytes()))
}

/// Checks a link's signature, shape and purpose (the parser of a received link).
pub(crate) fn verify_link(root: &Key<Root>, token: &str) -> CoreResult<LinkClaims> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(CoreError::InvalidLink);
    }
    let rest = token.strip_prefix("v1.").ok_or(CoreError::InvalidLink)?;
    let (body, mac) = rest.split_once('.').ok_or(CoreError::InvalidLink)?;
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| CoreError::InvalidLink)?;
    let expected = link_mac(root, body)?;
    if !constant_time_eq(&mac, &expected) {
        return Err(CoreError::InvalidLink);
    }
    let payload = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CoreError::InvalidLink)?;
    let claims: LinkClaims =
        serde_json::from_slice(&payload).map_err(|_| CoreError::InvalidLink)?;
    if claims.p != PURPOSE_DOWNLOAD || check_file_id(&claims.f).is_err() {
        return Err(CoreError::InvalidLink);
    }
    Ok(claims)
}

impl Vault {
    /// The MAC of a token's payload part, the one definition shared by signing and checking.
    fn link_mac(&self, body: &str) -> CoreResult<[u8; 32]> {
        link_mac(self.keyring().root(), body)
    }

    /// Creates a download link for a user's file (needs `read`, which the link delegates).
    pub fn create_file_link(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        file_id: &str,
        request: LinkRequest,
    ) -> CoreResult<DownloadLink> {
        self.file_op(who, Op::FileLink, ns, user_id, file_id, |user| {
            let ttl = request.expires_in_secs.unwrap_or(DEFAULT_TTL_SECS);
            if !(1..=MAX_TTL_SECS).contains(&ttl) {
                return Err(CoreError::Invalid {
                    field: "expires_in_secs",
                    rule: format!("must be between 1 and {MAX_TTL_SECS} (7 days)"),
                });
            }
            let row = self.user_file(user, file_id)?;
            let exp = self.now_ms() + (ttl as i64) * 1000;
            let claims = LinkClaims {
                ns: ns.to_string(),
                f: row.file_id,
                exp,
                id: super::random_id()?,
                once: request.one_time,
                p: PURPOSE_DOWNLOAD.into(),
            };
            let payload =
                serde_json::to_vec(&claims).map_err(|e| CoreError::Internal(e.to_string()))?;
            let body = URL_SAFE_NO_PAD.encode(payload);
            let mac = self.link_mac(&body)?;
            let token = format!("v1.{body}.{}", URL_SAFE_NO_PAD.encode(mac));
            Ok(DownloadLink {
                path: format!("/v1/links/{token}"),
                token,
                expires_at: rfc3339(exp),
                one_time: request.one_time,
            })
        })
    }

    fn verify_link(&self, token: &str) -> CoreResult<LinkClaims> {
        verify_link(self.keyring().root(), token)
    }

    /// Opens the file a link names. No API token is involved: the link is the authority.
    pub fn open_file_link(&self, token: &str, range: Option<ByteRange>) -> CoreResult<FileReader> {
        let claims = self.verify_link(token);
        let (who, ns, file_id) = match &claims {
            Ok(c) => (format!("link:{}", c.id), c.ns.as_str(), c.f.as_str()),
            Err(_) => ("link:invalid".to_string(), "", ""),
        };
        let who = Principal::link(&who);
        let resolve = || {
            let claims = claims.as_ref().map_err(|_| CoreError::InvalidLink)?;
            let row = self.storage().get_file(&claims.ns, &claims.f)?;
            Ok(LinkedFile { row })
        };
        self.execute(
            &who,
            Op::FileReadLink,
            At::new(ns, file_id),
            resolve,
            |linked| {
                let claims = claims.as_ref().map_err(|_| CoreError::InvalidLink)?;
                if self.now_ms() >= claims.exp {
                    return Err(CoreError::LinkExpired);
                }
                let row = linked.row.as_ref().ok_or(CoreError::NotFound("file"))?;
                if claims.once && !self.storage().consume_link(&claims.id, claims.exp)? {
                    return Err(CoreError::LinkUsed);
                }
                self.file_reader(row, range, &who, Op::FileReadLink)
            },
        )
    }
}

/// The file a valid link names, if it still exists (its owner is audited).
struct LinkedFile {
    row: Option<strongroom_storage::FileRow>,
}

impl Subject for LinkedFile {
    fn audited_user(&self) -> &[u8] {
        self.row.as_ref().map_or(&[], |r| r.user_hash.as_slice())
    }
}

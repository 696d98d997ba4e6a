//! AWS Signature Version 4 for requests the core sends to other AWS services (KMS), made by
//! the same signer the S3 store uses (`object_store`'s), so one implementation signs every
//! AWS request Strongroom makes and no second AWS stack is pulled in.

use object_store::aws::AwsAuthorizer;
pub use object_store::aws::AwsCredential;
use object_store::client::HttpRequestBody;

/// One request to sign: the body is given by its SHA-256 only (it may hold key material,
/// which stays with the caller and is never copied here).
pub struct ToSign<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// Headers to send and sign (besides the ones signing adds).
    pub headers: &'a [(&'a str, &'a str)],
    pub body_sha256: [u8; 32],
    pub service: &'a str,
    pub region: &'a str,
}

/// The headers to send: the given ones plus `host`, `x-amz-date`, `x-amz-content-sha256`,
/// `x-amz-security-token` (with a session token) and `authorization`.
pub fn signed_headers(
    request: &ToSign<'_>,
    credential: &AwsCredential,
) -> Result<Vec<(String, String)>, String> {
    let mut builder = http::Request::builder()
        .method(request.method)
        .uri(request.url);
    for (name, value) in request.headers {
        builder = builder.header(*name, *value);
    }
    let mut http_request = builder
        .body(HttpRequestBody::empty())
        .map_err(|e| format!("the request cannot be signed: {e}"))?;
    AwsAuthorizer::new(credential, request.service, request.region)
        .authorize(&mut http_request, Some(&request.body_sha256));
    http_request
        .headers()
        .iter()
        .map(|(name, value)| {
            value
                .to_str()
                .map(|v| (name.as_str().to_string(), v.to_string()))
                .map_err(|_| "a signed header is not text".to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_with_a_scope_naming_the_service_and_region() {
        let credential = AwsCredential {
            key_id: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            token: Some("session".into()),
        };
        let headers = signed_headers(
            &ToSign {
                method: "POST",
                url: "http://127.0.0.1:9000/",
                headers: &[("x-amz-target", "TrentService.Decrypt")],
                body_sha256: [7; 32],
                service: "kms",
                region: "eu-west-1",
            },
            &credential,
        )
        .unwrap();
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let auth = get("authorization");
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
        assert!(auth.contains("/eu-west-1/kms/aws4_request"), "{auth}");
        assert!(auth.contains("x-amz-target"), "{auth}");
        assert!(!auth.contains("wJalr"), "the secret key is never sent");
        assert_eq!(get("x-amz-content-sha256"), hex::encode([7; 32]));
        assert_eq!(get("x-amz-security-token"), "session");
        assert_eq!(get("host"), "127.0.0.1:9000");
    }
}

//! moto's KMS for the tests: its endpoint (the S3 server the suite already runs serves KMS
//! too), a new KMS key, raw KMS calls, and AWS credentials whose secret is a marker to search
//! for.

use std::path::Path;

use serde_json::{json, Value};

use super::{Db, Server};

/// The AWS secret key the tests hand the server; it must never show up anywhere.
pub const SECRET: &str = "aws-secret-marker-9d2f61c0";

/// moto's endpoint (the S3 server the suite already runs also serves KMS).
pub fn moto() -> Option<String> {
    match std::env::var("STRONGROOM_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var("STRONGROOM_SKIP_S3").as_deref() == Ok("1") => None,
        _ => panic!(
            "STRONGROOM_TEST_S3_ENDPOINT is not set: run scripts/test (it starts moto, which serves KMS), or set STRONGROOM_SKIP_S3=1 to skip on purpose"
        ),
    }
}

/// One KMS call as a test tool would make it (moto does not check signatures).
pub fn kms_call(endpoint: &str, target: &str, body: &Value) -> Value {
    let r = ureq::post(&format!("{endpoint}/"))
        .set("content-type", "application/x-amz-json-1.1")
        .set("x-amz-target", &format!("TrentService.{target}"))
        .set(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261203/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00",
        )
        .send_string(&body.to_string())
        .unwrap_or_else(|e| panic!("KMS {target}: {e}"));
    r.into_json().unwrap()
}

pub fn new_kms_key(endpoint: &str) -> String {
    kms_call(
        endpoint,
        "CreateKey",
        &json!({"Description": "strongroom test"}),
    )["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn aws_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

/// Starts `db`'s server with `extra` flags, these AWS credentials and no root key in the
/// environment.
pub fn start_with_aws(db: &Db, data: &Path, extra: &[&str]) -> Result<Server, String> {
    let mut flags = db.flags();
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let env = aws_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::try_start(data, &flags, &env)
}

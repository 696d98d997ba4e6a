//! Where file objects live: `--files` parsed into a local folder, an S3 bucket and prefix, or
//! (for tests) memory.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::ObjectError;

/// The configured object location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectLocation {
    /// A local folder (created if missing).
    Local(PathBuf),
    /// An S3-compatible bucket, with an optional key prefix.
    S3 { bucket: String, prefix: String },
    /// Process memory; for tests only.
    Memory,
}

impl FromStr for ObjectLocation {
    type Err = ObjectError;

    /// `s3://bucket[/prefix]`, `file:///abs/path`, `memory:` or a plain path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                });
            if !valid_bucket {
                return Err(ObjectError::Config(format!(
                    "`{s}` does not name an S3 bucket (s3://bucket/prefix; 3-63 lowercase letters, digits, '-' or '.')"
                )));
            }
            let prefix = prefix.trim_matches('/').to_string();
            if prefix.split('/').any(|p| p == "." || p == "..") {
                return Err(ObjectError::Config(format!(
                    "the prefix of `{s}` may not contain `.` or `..`"
                )));
            }
            return Ok(Self::S3 {
                bucket: bucket.to_string(),
                prefix,
            });
        }
        if s == "memory:" {
            return Ok(Self::Memory);
        }
        let path = s.strip_prefix("file://").unwrap_or(s);
        if path.is_empty() {
            return Err(ObjectError::Config(
                "the files location is empty (a folder, file:///path or s3://bucket/prefix)".into(),
            ));
        }
        if s.contains("://") && !s.starts_with("file://") {
            return Err(ObjectError::Config(format!(
                "`{s}`: unsupported files location (a folder, file:///path or s3://bucket/prefix)"
            )));
        }
        Ok(Self::Local(PathBuf::from(path)))
    }
}

impl ObjectLocation {
    /// The location `sub` (a relative path of plain segments) inside this one.
    pub fn join(&self, sub: &str) -> Self {
        let sub = sub.trim_matches('/');
        match self {
            Self::Local(dir) => Self::Local(dir.join(sub)),
            Self::S3 { bucket, prefix } if prefix.is_empty() => Self::S3 {
                bucket: bucket.clone(),
                prefix: sub.to_string(),
            },
            Self::S3 { bucket, prefix } => Self::S3 {
                bucket: bucket.clone(),
                prefix: format!("{prefix}/{sub}"),
            },
            Self::Memory => Self::Memory,
        }
    }
}

impl fmt::Display for ObjectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(p) => write!(f, "file://{}", p.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Self::Memory => f.write_str("memory:"),
        }
    }
}

/// S3 connection settings. Anything left `None` comes from the standard `AWS_*` environment
/// variables (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, …).
#[derive(Clone, Default)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Zeroizing<String>>,
    /// Allow a plain-http endpoint (loopback test servers).
    pub allow_http: bool,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "s3://my-bucket/app/files/"
                .parse::<ObjectLocation>()
                .unwrap(),
            ObjectLocation::S3 {
                bucket: "my-bucket".into(),
                prefix: "app/files".into()
            }
        );
        assert_eq!(
            "s3://my-bucket".parse::<ObjectLocation>().unwrap(),
            ObjectLocation::S3 {
                bucket: "my-bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            "/var/lib/x".parse::<ObjectLocation>().unwrap(),
            ObjectLocation::Local("/var/lib/x".into())
        );
        assert_eq!(
            "file:///var/lib/x".parse::<ObjectLocation>().unwrap(),
            ObjectLocation::Local("/var/lib/x".into())
        );
        assert_eq!(
            "memory:".parse::<ObjectLocation>().unwrap(),
            ObjectLocation::Memory
        );
    }

    #[test]
    fn rejects_bad_locations_with_a_reason() {
        for bad in ["s3://", "s3://A_B", "s3://ok-bucket/../x", "gs://b/p", ""] {
            let err = bad.parse::<ObjectLocation>().unwrap_err().to_string();
            assert!(!err.is_empty(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret_key() {
        let s = S3Settings {
            secret_access_key: Some(Zeroizing::new("PLANTED-SECRET".into())),
            ..S3Settings::default()
        };
        assert!(!format!("{s:?}").contains("PLANTED-SECRET"));
    }
}

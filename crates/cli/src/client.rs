//! A small blocking HTTP client for the CLI commands. Server errors are shown as
//! `error: <code>: <message>` with a non-zero exit.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use serde_json::Value;

/// Where the server is and how to authenticate.
#[derive(Args, Clone)]
pub struct Connection {
    /// Server address.
    #[arg(
        long,
        env = "STRONGROOM_ADDR",
        default_value = "http://127.0.0.1:8470",
        global = true
    )]
    pub addr: String,
    /// API token (prefer the environment variable: flags show up in process lists).
    #[arg(long, env = "STRONGROOM_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// PEM CA certificate(s) to trust for an https address (instead of the public roots).
    #[arg(long, env = "STRONGROOM_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
}

pub struct Client {
    agent: ureq::Agent,
    transfers: ureq::Agent,
    base: String,
    token: String,
}

/// A TLS configuration trusting only the CA certificates in `path`.
fn trusting(path: &Path) -> Result<std::sync::Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading the CA file {}", path.display()))?
    {
        let cert =
            cert.with_context(|| format!("a certificate in {} does not parse", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("{} holds an unusable CA certificate", path.display()))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

impl Client {
    pub fn new(conn: &Connection) -> Result<Self> {
        let token = conn
            .token
            .clone()
            .ok_or_else(|| anyhow!("no API token: set STRONGROOM_TOKEN or pass --token"))?;
        Self::with_token(conn, token)
    }

    /// A client for the endpoints that take no token (unseal, seal status): it sends none.
    pub fn anonymous(conn: &Connection) -> Result<Self> {
        Self::with_token(conn, String::new())
    }

    fn with_token(conn: &Connection, token: String) -> Result<Self> {
        let tls = conn.ca_file.as_deref().map(trusting).transpose()?;
        let with_tls = |builder: ureq::AgentBuilder| match &tls {
            Some(config) => builder.tls_config(config.clone()),
            None => builder,
        };
        let agent = with_tls(ureq::AgentBuilder::new().timeout(Duration::from_secs(60))).build();
        let transfers = with_tls(
            ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout_read(Duration::from_secs(120))
                .timeout_write(Duration::from_secs(120)),
        )
        .build();
        Ok(Self {
            agent,
            transfers,
            base: conn.addr.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// Sends a request and returns the JSON answer (`Value::Null` for empty bodies).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.request(method, &url);
        if !self.token.is_empty() {
            request = request.set("Authorization", &format!("Bearer {}", self.token));
        }
        let response = match body {
            Some(b) => request.send_json(b.clone()),
            None => request.call(),
        };
        self.answer(response).and_then(read_json)
    }

    /// Streams `body` (of `len` bytes) as the request body and returns the JSON answer.
    /// A call with a JSON body given as bytes (for bodies holding key material, which the
    /// caller zeroizes).
    pub fn call_bytes(&self, method: &str, path: &str, body: &[u8]) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .agent
            .request(method, &url)
            .set("Content-Type", "application/json");
        if !self.token.is_empty() {
            request = request.set("Authorization", &format!("Bearer {}", self.token));
        }
        self.answer(request.send_bytes(body)).and_then(read_json)
    }

    pub fn send_stream(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        len: u64,
        body: impl std::io::Read,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let response = self
            .transfer_agent()
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Content-Type", content_type)
            .set("Content-Length", &len.to_string())
            .send(body);
        self.answer(response).and_then(read_json)
    }

    /// Sends a GET whose answer is a byte stream; returns the response to read from.
    pub fn get_stream(&self, path: &str, range: Option<&str>) -> Result<ureq::Response> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .transfer_agent()
            .get(&url)
            .set("Authorization", &format!("Bearer {}", self.token));
        if let Some(r) = range {
            request = request.set("Range", &format!("bytes={r}"));
        }
        self.answer(request.call())
    }

    /// An agent without an overall deadline (files may take long), but with stall timeouts.
    fn transfer_agent(&self) -> ureq::Agent {
        self.transfers.clone()
    }

    /// Turns an error status into `code: message`.
    fn answer(&self, response: Result<ureq::Response, ureq::Error>) -> Result<ureq::Response> {
        match response {
            Ok(resp) => Ok(resp),
            Err(ureq::Error::Status(status, resp)) => {
                let body = read_json(resp).unwrap_or(Value::Null);
                let code = body["error"]["code"]
                    .as_str()
                    .unwrap_or("http_error")
                    .to_string();
                let message = body["error"]["message"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("HTTP {status}"));
                Err(anyhow!("{code}: {message}"))
            }
            Err(ureq::Error::Transport(t)) => {
                Err(anyhow!("cannot reach the server at {}: {t}", self.base))
            }
        }
    }
}

fn read_json(resp: ureq::Response) -> Result<Value> {
    let text = resp.into_string().context("reading the response")?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).context("the server answered with invalid JSON")
}

/// Percent-encodes one path segment.
pub fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Saves a streamed answer to `path`. It is written beside it as `<path>.partial` and renamed
/// at the end, so a transfer that breaks off midway leaves nothing under either name. Returns
/// the bytes written; `what` names the transfer in errors.
pub fn save_to(response: ureq::Response, path: &Path, what: &str) -> Result<u64> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut out =
        File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let copied = std::io::copy(&mut response.into_reader(), &mut out).and_then(|n| {
        out.flush()?;
        Ok(n)
    });
    drop(out);
    match copied {
        Ok(n) => {
            std::fs::rename(&partial, path)
                .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(anyhow!("the {what} failed midway (nothing was kept): {e}"))
        }
    }
}

/// A list path with its page size and, when continuing, the previous page's cursor.
pub fn page_path(path: &str, limit: usize, cursor: Option<&str>) -> String {
    match cursor {
        Some(c) => format!("{path}?limit={limit}&cursor={}", segment(c)),
        None => format!("{path}?limit={limit}"),
    }
}

/// Prints a JSON answer, pretty.
pub fn print(value: &Value) -> Result<()> {
    if !value.is_null() {
        println!("{}", serde_json::to_string_pretty(value)?);
    }
    Ok(())
}

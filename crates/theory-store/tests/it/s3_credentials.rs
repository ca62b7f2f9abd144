//! The `s3` store with the credentials AWS users have — temporary keys with a session token, a
//! profile of the shared credentials file, the instance metadata service (`IMDSv2`) and web
//! identity (STS `AssumeRoleWithWebIdentity`) — against the real S3-compatible server (s3s-fs,
//! `SigV4` enforced). The metadata service and STS are local stand-ins speaking their protocols.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use theory_core::{ArtifactStore, EnvSnapshot, WorldPath};
use theory_store::{S3Config, S3Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::conformance::check_store;

const ACCESS: &str = "theory-test-access";
const SECRET: &str = "theory-test-secret";

/// The settings every case shares; `HOME` is a folder without `.aws/`.
fn base(home: &std::path::Path) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
        ("ARTIFACTS_BUCKET", "theory-test"),
        ("ARTIFACTS_REGION", "us-east-1"),
    ]
    .iter()
    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
    .chain([("HOME".to_owned(), home.display().to_string())])
    .collect()
}

fn store_with(home: &std::path::Path, extra: &[(&str, &str)]) -> S3Store {
    let mut pairs = base(home);
    pairs.extend(extra.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
    let env =
        EnvSnapshot::from_pairs(pairs.iter().map(|(name, value)| (name.as_str(), value.as_str())));
    S3Store::new(S3Config::from_env("s3", &env).expect("config")).expect("client")
}

fn target() -> WorldPath {
    format!(
        "/artifacts/credentials/{}-{}/x.txt",
        std::process::id(),
        theory_core::new_execution_id()
    )
    .parse()
    .unwrap()
}

async fn round_trip(store: &S3Store) {
    let path = target();
    store.put_bytes(&path, "text/plain", Bytes::from_static(b"keys")).await.expect("put");
    assert!(store.exists(&path).await.expect("head"));
    assert_eq!(store.size(&path).await.expect("size"), Some(4));
}

async fn server_is_up() {
    assert!(
        tokio::net::TcpStream::connect("127.0.0.1:9000").await.is_ok(),
        "no S3 server on 127.0.0.1:9000: start it with scripts/services/s3 start (scripts/test does)"
    );
}

#[tokio::test]
async fn temporary_keys_with_a_session_token_are_signed_with_it() {
    server_is_up().await;
    let home = tempfile::tempdir().unwrap();
    let store = store_with(
        home.path(),
        &[
            ("AWS_ACCESS_KEY_ID", ACCESS),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", "session-token-1"),
        ],
    );
    round_trip(&store).await;
}

#[tokio::test]
async fn a_profile_of_the_shared_credentials_file_is_used_and_named_when_refused() {
    server_is_up().await;
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!("[default]\naws_access_key_id = {ACCESS}\naws_secret_access_key = wrong\n\n[ci]\naws_access_key_id = {ACCESS}\naws_secret_access_key = {SECRET}\n"),
    )
    .unwrap();
    round_trip(&store_with(home.path(), &[("AWS_PROFILE", "ci")])).await;
    let refused = store_with(home.path(), &[]);
    let error = refused.check().await.expect_err("the default profile's secret is wrong");
    assert!(error.to_string().contains("profile [default]"), "{error}");
    assert!(!error.to_string().contains("wrong"), "{error}");
}

/// What the stand-in saw: request lines and headers, lower-cased.
type Seen = Arc<Mutex<Vec<String>>>;

/// A local server answering as the instance metadata service (`IMDSv2`) and STS do, with the
/// test server's keys as temporary credentials; over TLS when `tls` is given (STS is `https`).
async fn aws_standin(tls: Option<tokio_rustls::TlsAcceptor>) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let recorded = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let recorded = Arc::clone(&recorded);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(socket).await {
                            answer(stream, recorded).await;
                        }
                    }
                    None => answer(socket, recorded).await,
                }
            });
        }
    });
    (url, seen)
}

async fn answer(mut socket: impl AsyncReadExt + AsyncWriteExt + Unpin, recorded: Seen) {
    let mut request = Vec::new();
    let mut buffer = [0_u8; 4096];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
    }
    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
    let line = text.lines().next().unwrap_or_default().to_owned();
    recorded.lock().unwrap().push(text.clone());
    let authorized = text.contains("x-aws-ec2-metadata-token: imds-token");
    let (status, body) = if line.starts_with("put /latest/api/token") {
        ("200 OK", "imds-token".to_owned())
    } else if line.starts_with("get /latest/meta-data/iam/security-credentials/ ") && authorized {
        ("200 OK", "theory-role".to_owned())
    } else if line.starts_with("get /latest/meta-data/iam/security-credentials/theory-role")
        && authorized
    {
        (
            "200 OK",
            format!(
                r#"{{"Code":"Success","AccessKeyId":"{ACCESS}","SecretAccessKey":"{SECRET}","Token":"imds-session","Expiration":"2099-01-01T00:00:00Z"}}"#
            ),
        )
    } else if line.starts_with("post /?action=assumerolewithwebidentity")
        && text.contains("webidentitytoken=web-identity-token")
    {
        (
            "200 OK",
            format!(
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><SessionToken>sts-session</SessionToken><SecretAccessKey>{SECRET}</SecretAccessKey><AccessKeyId>{ACCESS}</AccessKeyId><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
            ),
        )
    } else {
        ("403 Forbidden", String::new())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

#[tokio::test]
async fn the_instance_metadata_service_gives_keys_when_nothing_else_does() {
    server_is_up().await;
    let home = tempfile::tempdir().unwrap();
    let (url, seen) = aws_standin(None).await;
    let store = store_with(home.path(), &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url)]);
    // The whole story, multipart uploads (completed with Theory's own signature) included.
    check_store(&store, &format!("/artifacts/credentials/imds-{}/", std::process::id())).await;
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().any(|request| request.starts_with("put /latest/api/token")), "{seen:?}");
    assert!(
        seen.iter().any(|request| request
            .starts_with("get /latest/meta-data/iam/security-credentials/theory-role")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn web_identity_is_exchanged_at_sts_for_keys() {
    server_is_up().await;
    let home = tempfile::tempdir().unwrap();
    let token = home.path().join("token");
    std::fs::write(&token, "web-identity-token").unwrap();
    let (acceptor, ca) = theory_conformance::tls::tls_acceptor();
    let ca_file = home.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let (url, seen) = aws_standin(Some(acceptor)).await;
    let store = store_with(
        home.path(),
        &[
            ("SSL_CERT_FILE", &ca_file.display().to_string()),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &token.display().to_string()),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/theory"),
            ("AWS_ENDPOINT_URL_STS", &url),
        ],
    );
    round_trip(&store).await;
    // A token STS refuses: the error says there are no credentials and how to give some.
    std::fs::write(&token, "expired-token").unwrap();
    let refused = store_with(
        home.path(),
        &[
            ("SSL_CERT_FILE", &ca_file.display().to_string()),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &token.display().to_string()),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/theory"),
            ("AWS_ENDPOINT_URL_STS", &url),
        ],
    );
    let error = refused.check().await.expect_err("STS refuses the token").to_string();
    assert!(error.contains("has no credentials") && error.contains("AWS_PROFILE"), "{error}");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|request| request
                .contains("rolearn=arn%3aaws%3aiam%3a%3a123456789012%3arole%2ftheory")),
        "{:?}",
        seen.lock().unwrap()
    );
}

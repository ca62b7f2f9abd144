//! `CompleteMultipartUpload` with `If-None-Match: *`: the create-if-absent end of a large upload.
//!
//! `object_store` completes multipart uploads unconditionally (its conditional completion is
//! internal), so this one request is made here: signed with `object_store`'s own `SigV4`
//! authorizer, sent to the URL `object_store` uses for the key (path style, the key
//! percent-encoded the same way), and read as S3 answers it — `412` when an object is there, and
//! an `<Error>` document that may come with a `200`.

use std::fmt::Write as _;

use bytes::Bytes;
use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::{HttpRequest, HttpRequestBody};
use object_store::multipart::PartId;
use object_store::path::Path as ObjectPath;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::s3_config::S3Config;

/// The characters of a key sent as they are, as `object_store` encodes paths: letters, digits,
/// `-._~` and `/`.
const KEY_ENCODE_SET: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/');

/// How a conditional completion ended.
#[derive(Debug)]
pub(crate) enum Completion {
    /// The object is there now.
    Created,
    /// An object was there already; the upload is still open (abort it).
    Exists,
}

/// The URL of a key, as `object_store` builds it (path style).
fn key_url(config: &S3Config, key: &ObjectPath) -> String {
    let bucket_endpoint = match &config.endpoint {
        Some(endpoint) => format!("{}/{}", endpoint.trim_end_matches('/'), config.bucket),
        None => format!("https://s3.{}.amazonaws.com/{}", config.region, config.bucket),
    };
    format!("{bucket_endpoint}/{}", utf8_percent_encode(key.as_ref(), KEY_ENCODE_SET))
}

/// The request body: the parts in order, their `ETag`s escaped for XML.
fn body(parts: &[PartId]) -> String {
    let mut body = String::from("<CompleteMultipartUpload>");
    for (index, part) in parts.iter().enumerate() {
        let e_tag = part
            .content_id
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;");
        let _ =
            write!(body, "<Part><PartNumber>{}</PartNumber><ETag>{e_tag}</ETag></Part>", index + 1);
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

/// Completes the upload `upload_id` of `key` unless an object is there.
pub(crate) async fn complete_if_absent(
    client: &reqwest::Client,
    config: &S3Config,
    credential: &AwsCredential,
    key: &ObjectPath,
    upload_id: &str,
    parts: &[PartId],
) -> Result<Completion, String> {
    let mut url = url::Url::parse(&key_url(config, key)).map_err(|error| error.to_string())?;
    url.query_pairs_mut().append_pair("uploadId", upload_id);
    let body = Bytes::from(body(parts));
    let mut request: HttpRequest = http::Request::builder()
        .method(http::Method::POST)
        .uri(url.as_str())
        .body(HttpRequestBody::from(body.clone()))
        .map_err(|error| error.to_string())?;
    AwsAuthorizer::new(credential, "s3", &config.region)
        .try_authorize(&mut request, None)
        .map_err(|error| error.to_string())?;
    let response = client
        .post(url)
        .headers(request.headers().clone())
        .header(http::header::IF_NONE_MATCH, "*")
        .body(body)
        .send()
        .await
        .map_err(|error| error.without_url().to_string())?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status == http::StatusCode::PRECONDITION_FAILED {
        return Ok(Completion::Exists);
    }
    // S3 may answer 200 and still report an error in the body.
    if !status.is_success() || text.contains("<Error>") {
        let code = text
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map_or("", |(code, _)| code);
        return Err(format!("completing the upload failed: HTTP {status} {code}"));
    }
    Ok(Completion::Created)
}

#[cfg(test)]
mod tests {
    use object_store::multipart::PartId;
    use object_store::path::Path as ObjectPath;

    use super::{body, key_url};
    use crate::s3_config::S3Config;

    #[test]
    fn urls_and_bodies_are_what_s3_expects() {
        let env = theory_core::EnvSnapshot::from_pairs([
            ("MINIO_STORAGE_ENDPOINT", "127.0.0.1:9000"),
            ("MINIO_STORAGE_ACCESS_KEY", "a"),
            ("MINIO_STORAGE_SECRET_KEY", "s"),
            ("ARTIFACTS_BUCKET", "bkt"),
        ]);
        let config = S3Config::from_env("minio", &env).unwrap();
        let key: ObjectPath = ["artifacts", "a b", "é+x.bin"].into_iter().collect();
        assert_eq!(
            key_url(&config, &key),
            // object_store keeps non-ASCII characters of a part percent-encoded in the key itself,
            // and encodes the key again for the URL: this request must name the very same key.
            "http://127.0.0.1:9000/bkt/artifacts/a%20b/%25C3%25A9%2Bx.bin"
        );
        let parts = [PartId { content_id: "\"e1\"".into() }, PartId { content_id: "e<2>".into() }];
        assert_eq!(
            body(&parts),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;e1&quot;</ETag></Part><Part><PartNumber>2</PartNumber><ETag>e&lt;2&gt;</ETag></Part></CompleteMultipartUpload>"
        );
    }
}

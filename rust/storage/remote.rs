//! Buckets of object stores (S3-compatible servers, GCS) and read-only HTTP servers as a
//! [`Store`], on the `object_store` crate. Its async calls run on a per-process tokio runtime
//! kept inside this module: callers (the chunk threads) block on them.
//!
//! Credentials are never arguments: they come from the environment as each cloud's tools read
//! them (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, the AWS shared
//! credentials and config files and `AWS_PROFILE`; `GOOGLE_APPLICATION_CREDENTIALS`, ...).
//! Requests are retried a bounded number of times within a bounded time.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig,
};

use super::{join_key, ByteRange, Fetched, Listing, Store, StoreOptions, Version};
use crate::error::{Error, Result};
use crate::per_process::PerProcess;

static RUNTIME: PerProcess<tokio::runtime::Runtime> = PerProcess::new();

/// Runs `future` to completion on this process's runtime.
fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    let runtime = RUNTIME.get_or_try_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bioimage_py-net")
            .enable_all()
            .build()
            .map_err(|e| Error::Resource(format!("cannot start the network runtime: {e}")))
    })?;
    Ok(runtime.block_on(future))
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Scheme {
    S3,
    Gcs,
    Http,
}

/// A bucket (and a prefix in it) of an object store, or a folder of an HTTP server.
pub struct RemoteStore {
    /// The root URL, without a trailing `/`.
    root: String,
    scheme: Scheme,
    /// The bucket (S3, GCS); for HTTP the base URL.
    bucket: String,
    /// The root's path inside the bucket.
    prefix: String,
    options: StoreOptions,
    /// The client, rebuilt in a forked child (its connections belong to the parent).
    client: PerProcess<Arc<dyn ObjectStore>>,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("root", &self.root)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn invalid_url(root: &str, reason: &str) -> Error {
    Error::InvalidArgument(format!("invalid store URL {root:?}: {reason}"))
}

/// The `endpoint_url` option, else `AWS_ENDPOINT_URL` (as boto3 and the AWS CLI read it).
fn s3_endpoint(options: &StoreOptions) -> Option<String> {
    options.endpoint_url.clone().or_else(|| {
        ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    })
}

impl RemoteStore {
    /// The store at `root` (`s3://bucket/prefix`, `gs://bucket/prefix`, `http(s)://...`).
    /// Nothing is requested yet: a missing bucket or an unreachable server fails the first
    /// read, naming the URL.
    pub fn open(root: &str, options: &StoreOptions) -> Result<Self> {
        let (scheme, rest) = if let Some(rest) = root.strip_prefix("s3://") {
            (Scheme::S3, rest)
        } else if let Some(rest) = root.strip_prefix("gs://") {
            (Scheme::Gcs, rest)
        } else {
            (Scheme::Http, root)
        };
        let rest = rest.trim_end_matches('/');
        let root = root.trim_end_matches('/').to_owned();
        let (bucket, prefix) = match scheme {
            Scheme::Http => {
                if options.region.is_some() || options.endpoint_url.is_some() {
                    return Err(invalid_url(
                        &root,
                        "endpoint_url and region apply to s3:// and gs:// URLs, not HTTP",
                    ));
                }
                (root.clone(), String::new())
            }
            _ => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(invalid_url(&root, "no bucket name"));
                }
                (bucket.to_owned(), prefix.trim_matches('/').to_owned())
            }
        };
        let store = RemoteStore {
            root,
            scheme,
            bucket,
            prefix,
            options: options.clone(),
            client: PerProcess::new(),
        };
        // Builds the client now so that bad options fail at open.
        store.client()?;
        Ok(store)
    }

    fn client(&self) -> Result<&Arc<dyn ObjectStore>> {
        self.client.get_or_try_init(|| self.build_client())
    }

    fn build_client(&self) -> Result<Arc<dyn ObjectStore>> {
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
        };
        let mut client_options = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(120))
            .with_pool_max_idle_per_host(64);
        let built: std::result::Result<Arc<dyn ObjectStore>, object_store::Error> =
            match self.scheme {
                Scheme::S3 => {
                    let mut builder = AmazonS3Builder::from_env().with_bucket_name(&self.bucket);
                    builder = aws_profile::apply(builder);
                    if let Some(endpoint) = s3_endpoint(&self.options) {
                        client_options =
                            client_options.with_allow_http(endpoint.starts_with("http://"));
                        // S3-compatible servers (MinIO, Ceph, moto) address buckets by path.
                        builder = builder
                            .with_endpoint(endpoint)
                            .with_virtual_hosted_style_request(false);
                    }
                    if let Some(region) = &self.options.region {
                        builder = builder.with_region(region);
                    }
                    builder
                        .with_skip_signature(self.options.anonymous)
                        .with_retry(retry)
                        .with_client_options(client_options)
                        .build()
                        .map(|s| Arc::new(s) as _)
                }
                Scheme::Gcs => {
                    let mut builder =
                        GoogleCloudStorageBuilder::from_env().with_bucket_name(&self.bucket);
                    if let Some(endpoint) = &self.options.endpoint_url {
                        client_options =
                            client_options.with_allow_http(endpoint.starts_with("http://"));
                        builder = builder.with_base_url(endpoint);
                    }
                    builder
                        .with_skip_signature(self.options.anonymous)
                        .with_retry(retry)
                        .with_client_options(client_options)
                        .build()
                        .map(|s| Arc::new(s) as _)
                }
                Scheme::Http => HttpBuilder::new()
                    .with_url(&self.bucket)
                    .with_retry(retry)
                    .with_client_options(
                        client_options.with_allow_http(self.bucket.starts_with("http://")),
                    )
                    .build()
                    .map(|s| Arc::new(s) as _),
            };
        built.map_err(|e| invalid_url(&self.root, &e.to_string()))
    }

    /// The object path of `key`, verbatim (`ObjectPath::from` would percent-encode `%`, `~`
    /// and non-ASCII characters into the key itself); keys it cannot hold verbatim (control
    /// characters) are encoded.
    fn path(&self, key: &str) -> ObjectPath {
        let key = join_key(&self.prefix, key);
        ObjectPath::parse(&key).unwrap_or_else(|_| ObjectPath::from(key))
    }

    /// The error for a failed request on `key`: its kind tells missing, denied and unreachable
    /// apart (Python's FileNotFoundError, PermissionError, ConnectionError).
    fn error(&self, key: &str, error: object_store::Error) -> Error {
        use std::io::ErrorKind;
        let kind = match &error {
            object_store::Error::NotFound { .. } => ErrorKind::NotFound,
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => ErrorKind::PermissionDenied,
            _ => connection_kind(&error).unwrap_or(ErrorKind::Other),
        };
        let message = if missing_bucket(&error) {
            format!("the bucket {:?} does not exist", self.bucket)
        } else {
            one_line(&error.to_string())
        };
        Error::io_at(self.url(key), std::io::Error::new(kind, message))
    }
}

impl RemoteStore {
    /// `range` of the whole value at `key`, for servers that answer no Range requests (Python's
    /// `http.server`): slower, never wrong.
    fn sliced_whole_value(
        &self,
        key: &str,
        range: ByteRange,
        expected: Option<&Version>,
    ) -> Result<Fetched> {
        let client = self.client()?;
        let path = self.path(key);
        let result = block_on(async {
            let result = client.get(&path).await?;
            let meta = result.meta.clone();
            Ok((result.bytes().await?, meta))
        })?;
        let (bytes, meta) = match result {
            Ok(fetched) => fetched,
            Err(object_store::Error::NotFound { .. }) => return Ok(Fetched::Missing),
            Err(e) => return Err(self.error(key, e)),
        };
        let version = version_of(&meta);
        if expected.is_some_and(|expected| *expected != version) {
            return Ok(Fetched::Changed);
        }
        let len = bytes.len() as u64;
        let range = range.resolve(len, || self.url(key))?;
        Ok(Fetched::Bytes {
            bytes: bytes[range.start as usize..range.end as usize].to_vec(),
            total_len: len,
            version,
        })
    }
}

/// A "not found" that means a missing bucket, not a missing key: an error, not an absent value.
fn missing_bucket(error: &object_store::Error) -> bool {
    matches!(error, object_store::Error::NotFound { .. })
        && error.to_string().contains("NoSuchBucket")
}

/// Whether a failed request never reached the server (refused, unresolvable, timed out).
fn connection_kind(error: &object_store::Error) -> Option<std::io::ErrorKind> {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(http) = current.downcast_ref::<HttpError>() {
            match http.kind() {
                HttpErrorKind::Connect => return Some(std::io::ErrorKind::ConnectionRefused),
                HttpErrorKind::Timeout => return Some(std::io::ErrorKind::TimedOut),
                _ => {}
            }
        }
        source = current.source();
    }
    None
}

/// Error texts of `object_store` span lines (server responses); messages stay on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn version_of(meta: &object_store::ObjectMeta) -> Version {
    match &meta.e_tag {
        Some(tag) => Version::ETag(tag.clone()),
        None => Version::Unversioned { len: meta.size },
    }
}

impl Store for RemoteStore {
    fn url(&self, key: &str) -> String {
        if key.is_empty() {
            self.root.clone()
        } else {
            format!("{}/{key}", self.root)
        }
    }

    fn read_only_reason(&self) -> Option<String> {
        (self.scheme == Scheme::Http).then(|| "HTTP(S) stores are read-only".to_string())
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn get(
        &self,
        key: &str,
        max_len: u64,
        too_long: &dyn Fn(u64) -> Error,
    ) -> Result<Option<Vec<u8>>> {
        let client = self.client()?;
        let path = self.path(key);
        let result = block_on(async {
            let result = client.get(&path).await?;
            // The length is known from the response's headers: a value beyond the bound is
            // refused before its body is read.
            if result.meta.size > max_len {
                return Ok(Err(result.meta.size));
            }
            result.bytes().await.map(Ok)
        })?;
        match result {
            Ok(Ok(bytes)) if bytes.len() as u64 > max_len => Err(too_long(bytes.len() as u64)),
            Ok(Ok(bytes)) => Ok(Some(Vec::from(bytes))),
            Ok(Err(len)) => Err(too_long(len)),
            Err(e) if missing_bucket(&e) => Err(self.error(key, e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn get_range(
        &self,
        key: &str,
        range: ByteRange,
        expected: Option<&Version>,
    ) -> Result<Fetched> {
        let client = self.client()?;
        let path = self.path(key);
        let options = GetOptions {
            range: Some(match range.clone() {
                ByteRange::Bounded(range) => GetRange::Bounded(range),
                ByteRange::Suffix(n) => GetRange::Suffix(n),
            }),
            if_match: match expected {
                Some(Version::ETag(tag)) => Some(tag.clone()),
                _ => None,
            },
            ..GetOptions::default()
        };
        let result = block_on(async {
            let result = client.get_opts(&path, options).await?;
            let meta = result.meta.clone();
            Ok((result.bytes().await?, meta))
        })?;
        match result {
            Ok((bytes, meta)) => {
                let version = version_of(&meta);
                if expected.is_some_and(|expected| *expected != version) {
                    return Ok(Fetched::Changed);
                }
                Ok(Fetched::Bytes {
                    bytes: Vec::from(bytes),
                    total_len: meta.size,
                    version,
                })
            }
            Err(e) if missing_bucket(&e) => Err(self.error(key, e)),
            Err(object_store::Error::NotFound { .. }) => Ok(Fetched::Missing),
            Err(object_store::Error::Precondition { .. }) => Ok(Fetched::Changed),
            Err(object_store::Error::NotSupported { .. }) => {
                self.sliced_whole_value(key, range, expected)
            }
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn exists(&self, key: &str) -> Result<bool> {
        let client = self.client()?;
        let path = self.path(key);
        match block_on(client.head(&path))? {
            Ok(_) => Ok(true),
            Err(e) if missing_bucket(&e) => Err(self.error(key, e)),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.check_writable(key)?;
        let client = self.client()?;
        let path = self.path(key);
        let payload = PutPayload::from(value.to_vec());
        match block_on(client.put(&path, payload))? {
            Ok(_) => Ok(()),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.check_writable(key)?;
        let client = self.client()?;
        let path = self.path(key);
        match block_on(client.delete(&path))? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn delete_prefix(&self, prefix: &str) -> Result<()> {
        use futures::{StreamExt, TryStreamExt};
        self.check_writable(prefix)?;
        let client = self.client()?;
        let path = self.path(prefix);
        let listed = if path.as_ref().is_empty() {
            None
        } else {
            Some(&path)
        };
        let result = block_on(async {
            let locations = client.list(listed).map_ok(|meta| meta.location).boxed();
            client
                .delete_stream(locations)
                .try_for_each(|_| async { Ok(()) })
                .await
        })?;
        match result {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(prefix, e)),
        }
    }

    fn list_dir(&self, prefix: &str) -> Result<Listing> {
        if self.scheme == Scheme::Http {
            return Err(Error::InvalidArgument(format!(
                "{}: an HTTP server cannot list its files; give the array's path",
                self.url(prefix)
            )));
        }
        let client = self.client()?;
        let path = self.path(prefix);
        let listed = if path.as_ref().is_empty() {
            None
        } else {
            Some(&path)
        };
        let result = match block_on(client.list_with_delimiter(listed))? {
            Ok(result) => result,
            Err(e) => return Err(self.error(prefix, e)),
        };
        let name = |p: &ObjectPath| p.filename().unwrap_or_default().to_owned();
        let mut listing = Listing {
            keys: result.objects.iter().map(|m| name(&m.location)).collect(),
            prefixes: result.common_prefixes.iter().map(name).collect(),
        };
        listing.keys.sort();
        listing.prefixes.sort();
        Ok(listing)
    }
}

/// Credentials and region of the AWS shared files (`~/.aws/credentials`, `~/.aws/config`,
/// `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`, profile `AWS_PROFILE` or `default`), as
/// boto3 reads them, for what the environment does not set (`object_store` reads only the
/// environment).
mod aws_profile {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use object_store::aws::AmazonS3Builder;

    fn home_file(variable: &str, default: &str) -> Option<PathBuf> {
        std::env::var_os(variable)
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(default)))
    }

    /// The `key = value` pairs of section `section` of an INI file.
    fn section(path: Option<PathBuf>, section: &str) -> HashMap<String, String> {
        let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
            return HashMap::new();
        };
        let mut inside = false;
        let mut values = HashMap::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                inside = name.trim() == section;
            } else if let (true, Some((key, value))) = (inside, line.split_once('=')) {
                values.insert(key.trim().to_lowercase(), value.trim().to_owned());
            }
        }
        values
    }

    pub(super) fn apply(mut builder: AmazonS3Builder) -> AmazonS3Builder {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_string());
        if !set("AWS_ACCESS_KEY_ID") {
            let credentials = section(
                home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
                &profile,
            );
            if let (Some(id), Some(secret)) = (
                credentials.get("aws_access_key_id"),
                credentials.get("aws_secret_access_key"),
            ) {
                builder = builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret);
                if let Some(token) = credentials.get("aws_session_token") {
                    builder = builder.with_token(token);
                }
            }
        }
        if !set("AWS_REGION") && !set("AWS_DEFAULT_REGION") {
            let name = if profile == "default" {
                profile.clone()
            } else {
                format!("profile {profile}")
            };
            let config = section(home_file("AWS_CONFIG_FILE", ".aws/config"), &name);
            if let Some(region) = config.get("region") {
                builder = builder.with_region(region);
            }
        }
        builder
    }
}

//! ACL credentials in the URL, and `rediss://` (TLS) against a real `redis-server`.

use std::process::{Command, Stdio};
use std::time::Duration;

use keel::StoreError;
use keel::store::{Acquire, RedisConfig, RedisStore, Store};
use keel_tests::RedisServer;

#[tokio::test]
async fn redis_acl_user_and_password_in_the_url() {
    let Some(server) = RedisServer::start("redis_acl_user_and_password_in_the_url") else { return };
    let reply = server.command("ACL SETUSER app on >s3cret ~keel-test:* &keel-test:* +@all");
    assert_eq!(reply.as_deref(), Some("+OK"));
    let url = |cred: &str| format!("redis://{cred}@127.0.0.1:{}", server.port());
    let config = RedisConfig::builder(url("app:s3cret")).key_prefix("keel-test").build().expect("config");
    let store = RedisStore::connect(config).await.expect("the ACL user connects");
    assert!(matches!(store.lease_acquire("L", "a", 1000, 0).await, Ok(Acquire::Granted { .. })));
    // The ACL only allows keys under the prefix: another prefix is refused, not applied.
    let other = RedisConfig::builder(url("app:s3cret")).key_prefix("elsewhere").build().expect("config");
    // `connect` checks the user's permissions on this prefix up front (redis_connect.rs); a lazy
    // store checks nothing and meets the refusal on its first call.
    let e = RedisStore::connect(other.clone()).await.expect_err("the ACL check at connect");
    assert!(matches!(e, StoreError::Misconfigured { .. }), "{e:?}");
    let other = RedisStore::connect_lazy(other).expect("lazy");
    let e = other.lease_acquire("L", "a", 1000, 0).await.expect_err("outside the ACL");
    assert!(matches!(e, StoreError::Refused { .. }), "{e:?}");

    let wrong = RedisConfig::builder(url("app:wrong")).key_prefix("keel-test").build().expect("config");
    let e = RedisStore::connect(wrong).await.expect_err("wrong password");
    assert_eq!(e.outcome(), keel::Outcome::NotApplied, "{e:?}");
    assert!(!e.to_string().contains("wrong"), "the password is not echoed: {e}");
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn redis_tls_url_connects() {
    let Some(probe) = RedisServer::start("redis_tls_url_connects") else { return };
    let dir = probe.dir().to_owned();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(matches!(made, Ok(s) if s.success()), "openssl could not make a test certificate");
    let tls_port = keel_tests::free_port().to_string();
    let (cert, key) = (cert.to_string_lossy().to_string(), key.to_string_lossy().to_string());
    let args = ["--tls-port", &tls_port, "--tls-cert-file", &cert, "--tls-key-file", &key, "--tls-auth-clients", "no"];
    let Some(_server) = RedisServer::start_with("redis_tls_url_connects", &args) else { return };
    // `#insecure`: the test certificate is self-signed.
    let url = format!("rediss://127.0.0.1:{tls_port}/#insecure");
    let config = RedisConfig::builder(url).connect_timeout(Duration::from_secs(2)).build().expect("config");
    let store = RedisStore::connect(config).await.expect("TLS connect");
    assert!(matches!(store.lease_acquire("L", "a", 1000, 0).await, Ok(Acquire::Granted { .. })));
    drop(probe);
}

//! `ticker-demo --listen` as a real process: the token from a file or the environment, TLS,
//! and credentials refused over TLS.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use tickertable::flight::{Client, ClientTls};
use tickertable::{Error, RemoteErrorKind};

/// A running `ticker-demo`, killed on drop.
struct Demo {
    child: Child,
    url: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ticker-demo --listen 127.0.0.1:0` with `args` (and `env`), and reads the URL it
/// prints.
fn demo(args: &[&str], env: &[(&str, &str)]) -> Demo {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ticker-demo"));
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--stats-every",
        "0",
        "--rate",
        "1000",
    ])
    .args(args)
    .env_remove("TICKERTABLE_TOKEN")
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("ticker-demo starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut demo = Demo {
        child,
        url: String::new(),
    };
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("ticker-demo's stdout");
        if let Some(rest) = line.split("serving Arrow Flight at ").nth(1) {
            rest.split_whitespace()
                .next()
                .unwrap_or("")
                .clone_into(&mut demo.url);
            break;
        }
    }
    assert!(!demo.url.is_empty(), "ticker-demo printed no URL");
    demo
}

struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "ticker-demo test CA");
    let ca = ca.self_signed(&ca_key).expect("CA");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("certificate");
    Pki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a test file");
    path.to_str().expect("utf-8 path").to_owned()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tt-demo-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn is_unauthenticated(e: &Error) -> bool {
    matches!(
        e,
        Error::Remote {
            kind: RemoteErrorKind::Unauthenticated,
            ..
        }
    )
}

#[test]
fn the_token_from_a_file_over_tls_and_nothing_without_it() {
    let dir = temp_dir("tls");
    let pki = pki();
    let token = write(&dir, "token", "s3cret-from-a-file\n");
    let cert = write(&dir, "cert.pem", &pki.cert);
    let key = write(&dir, "key.pem", &pki.key);
    let d = demo(
        &[
            "--token-file",
            &token,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        &[],
    );
    assert!(d.url.starts_with("grpc+tls://"), "{}", d.url);
    let url = d.url.replace("127.0.0.1", "localhost");
    let tls = ClientTls::default().with_ca(pki.ca.clone());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = Client::connect_tls(&url, &tls).await.expect("TLS connect");
        let mut good = client.clone().with_token("s3cret-from-a-file").unwrap();
        let names: Vec<String> = good
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert!(names.iter().any(|n| n == "trades"), "{names:?}");

        let mut none = client.clone();
        assert!(is_unauthenticated(&none.list().await.unwrap_err()));
        let mut wrong = client.with_token("s3cret-from-a-fil").unwrap();
        assert!(is_unauthenticated(&wrong.list().await.unwrap_err()));

        // Plain gRPC to a TLS server does not get through either.
        let plain = d.url.replace("grpc+tls://", "grpc://");
        let refused = match Client::connect(&plain).await {
            Ok(c) => c
                .with_token("s3cret-from-a-file")
                .unwrap()
                .list()
                .await
                .is_err(),
            Err(_) => true,
        };
        assert!(refused, "plain gRPC reached a TLS server");
    });
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_token_from_the_environment() {
    let d = demo(&[], &[("TICKERTABLE_TOKEN", "from-the-env")]);
    assert!(d.url.starts_with("grpc://"), "{}", d.url);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = Client::connect(&d.url).await.expect("connect");
        let mut none = client.clone();
        assert!(is_unauthenticated(&none.list().await.unwrap_err()));
        let mut good = client.with_token("from-the-env").unwrap();
        assert!(!good.list().await.unwrap().is_empty());
    });
}

#[test]
fn an_empty_token_file_is_refused_at_start() {
    let dir = temp_dir("empty");
    let token = write(&dir, "token", "\n");
    let out = Command::new(env!("CARGO_BIN_EXE_ticker-demo"))
        .args(["--listen", "127.0.0.1:0", "--token-file", &token])
        .env_remove("TICKERTABLE_TOKEN")
        .output()
        .expect("ticker-demo runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token file"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}

//! pyarrow's Flight client against a live server: `tests/pyarrow/flight_client.py` lists the
//! tables, reads a snapshot, follows a live stream for several cycles and puts batches.
//!
//! Needs `python3` with `pyarrow`. `.ci/run` installs it and sets
//! `TICKERTABLE_REQUIRE_PYARROW=1`, which makes a missing pyarrow a failure; elsewhere the test
//! says it was skipped.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tickertable::test_util::{trade_batch, trade_schema};
use tickertable::{Engine, PublisherOptions, TableKind};

fn pyarrow_available() -> bool {
    Command::new("python3")
        .args(["-c", "import pyarrow.flight"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn smoke() {
    assert!(std::path::Path::new("tests/pyarrow/flight_client.py").exists());
}

#[test]
fn pyarrow_lists_reads_follows_and_puts() {
    if !pyarrow_available() {
        assert!(
            std::env::var_os("TICKERTABLE_REQUIRE_PYARROW").is_none(),
            "pyarrow is required (TICKERTABLE_REQUIRE_PYARROW is set) but cannot be imported"
        );
        eprintln!("skipped: python3 with pyarrow is not installed");
        return;
    }
    let engine = Engine::builder()
        .period(Duration::from_millis(10))
        .build()
        .unwrap();
    let (_, static_pub) = engine
        .table_publisher(
            "static",
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    static_pub.add(trade_batch(0, 10)).unwrap();
    let (ticks, ticks_pub) = engine
        .table_publisher("ticks", trade_schema(), PublisherOptions::default())
        .unwrap();
    engine.ring_table("ticks_ring", &ticks, 100).unwrap();
    let (inbox, _) = engine
        .table_publisher(
            "inbox",
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    let server = engine
        .serve_flight_with(
            "127.0.0.1:0",
            tickertable::flight::FlightOptions::default().with_token("pytoken"),
        )
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut next = 0;
            while !stop.load(Ordering::Relaxed) {
                ticks_pub.add(trade_batch(next, 7)).unwrap();
                next += 7;
                std::thread::sleep(Duration::from_millis(3));
            }
        })
    };
    let out = Command::new("python3")
        .args(["tests/pyarrow/flight_client.py", &server.url(), "pytoken"])
        .args(cfg!(feature = "compression").then_some("compression"))
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pyarrow client failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("pyarrow flight client: ok"), "{stdout}");
    assert_eq!(
        inbox.num_rows(),
        9,
        "the good put and the streaming put's 3 batches landed, the bad one did not"
    );
}

#[test]
fn pyarrow_over_tls_with_the_basic_token_handshake() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    if !pyarrow_available() {
        assert!(
            std::env::var_os("TICKERTABLE_REQUIRE_PYARROW").is_none(),
            "pyarrow is required (TICKERTABLE_REQUIRE_PYARROW is set) but cannot be imported"
        );
        eprintln!("skipped: python3 with pyarrow is not installed");
        return;
    }
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: a leaf whose issuer equals its subject looks self-signed to OpenSSL.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tickertable test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tt-pyarrow-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let engine = tickertable::test_util::manual_engine();
    let (_, p) = engine
        .table_publisher(
            "t",
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .unwrap();
    p.add(trade_batch(0, 3)).unwrap();
    engine.run_cycle();
    let server = engine
        .serve_flight_with(
            "127.0.0.1:0",
            tickertable::flight::FlightOptions::default()
                .with_token("tls-token")
                .with_tls(tickertable::flight::ServerTls::new(
                    cert.pem(),
                    key.serialize_pem(),
                )),
        )
        .unwrap();
    let url = format!("grpc+tls://{}", server.local_addr());
    let out = Command::new("python3")
        .args(["tests/pyarrow/hardening.py", &url])
        .arg(&ca_file)
        .arg("tls-token")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pyarrow hardening failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("pyarrow hardening: ok"), "{stdout}");
}

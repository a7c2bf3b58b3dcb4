//! The Flight server against careless and hostile clients: bounded `DoPut`s, fair stream
//! shares, stalled readers ended, capped error messages, TLS (and mutual TLS) and the token in
//! every form. Real servers on loopback, real tonic and Flight clients.

use std::time::Duration;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{FlightDescriptor, Ticket};
use futures_util::StreamExt;
use tickertable::flight::{Client, ClientTls, FlightOptions, ServerTls, CODE_HEADER};
use tickertable::test_util::{manual_engine, trade_batch, trade_schema};
use tickertable::{Engine, ErrorCode, PublisherOptions, RemoteErrorKind, TableKind};

const HANG_GUARD: Duration = Duration::from_secs(30);

async fn raw(url: &str) -> FlightServiceClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(url.replace("grpc://", "http://"))
        .expect("loopback channel")
        .connect()
        .await
        .expect("loopback channel");
    FlightServiceClient::new(channel).max_decoding_message_size(256 << 20)
}

fn append(engine: &Engine, name: &str) -> tickertable::Table {
    engine
        .table_publisher(
            name,
            trade_schema(),
            PublisherOptions::default().with_kind(TableKind::Append),
        )
        .expect("new table")
        .0
}

fn code_of(status: &tonic::Status) -> Option<ErrorCode> {
    status
        .metadata()
        .get(CODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(ErrorCode::parse)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let engine = manual_engine();
    append(&engine, "t");
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    assert_eq!(
        client.publish("t", vec![trade_batch(0, 5)]).await.unwrap(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_do_put_is_refused_once_it_holds_its_limit_and_applies_nothing() {
    let engine = manual_engine();
    let table = append(&engine, "t");
    let server = engine
        .serve_flight_with(
            "127.0.0.1:0",
            FlightOptions::default().with_max_put_bytes(4 << 20),
        )
        .unwrap();
    let mut client = raw(&server.url()).await;
    // A client that keeps streaming 10k-row batches and never finishes the call.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let input = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(FlightDescriptor::new_path(vec!["t".into()])))
        .build(tokio_stream::wrappers::ReceiverStream::new(rx))
        .map(|r| r.unwrap());
    let feeder = tokio::spawn(async move {
        for i in 0..10_000u64 {
            if tx.send(Ok(trade_batch(i * 10_000, 10_000))).await.is_err() {
                return i;
            }
        }
        10_000
    });
    let result = tokio::time::timeout(HANG_GUARD, client.do_put(input))
        .await
        .unwrap();
    let status = match result {
        Err(s) => s,
        Ok(resp) => {
            let mut out = resp.into_inner();
            loop {
                match out.message().await {
                    Err(s) => break s,
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("an unbounded DoPut was accepted"),
                }
            }
        }
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("split"), "{}", status.message());
    let sent = tokio::time::timeout(HANG_GUARD, feeder)
        .await
        .unwrap()
        .unwrap();
    assert!(
        sent < 10_000,
        "the server read every batch of a call over its limit"
    );
    engine.run_cycle();
    assert_eq!(
        table.num_rows(),
        0,
        "nothing of the refused call was applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_larger_than_the_limit_is_resource_exhausted_with_a_hint() {
    let engine = manual_engine();
    append(&engine, "t");
    let server = engine
        .serve_flight_with(
            "127.0.0.1:0",
            FlightOptions::default().with_max_message_bytes(1 << 20),
        )
        .unwrap();
    let mut client = raw(&server.url()).await;
    // One 200k-row batch (about 6 MiB) in one message.
    let input = FlightDataEncoderBuilder::new()
        .with_max_flight_data_size(64 << 20)
        .with_flight_descriptor(Some(FlightDescriptor::new_path(vec!["t".into()])))
        .build(futures_util::stream::iter([Ok(trade_batch(0, 200_000))]))
        .map(|r| r.unwrap());
    let status = match client.do_put(input).await {
        Err(s) => s,
        Ok(resp) => resp.into_inner().message().await.unwrap_err(),
    };
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("split"), "{}", status.message());
    assert_eq!(code_of(&status), Some(ErrorCode::BatchTooLarge));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_at_its_share_of_streams_does_not_lock_out_another() {
    let engine = manual_engine();
    append(&engine, "t");
    let server = engine
        .serve_flight_with(
            "127.0.0.1:0",
            FlightOptions::default()
                .with_max_streams(8)
                .with_max_streams_per_peer(2),
        )
        .unwrap();
    let live = Ticket::new("tickertable:live:t");
    let snap = Ticket::new("tickertable:snapshot:t");
    let mut greedy = raw(&server.url()).await;
    let _a = greedy.do_get(live.clone()).await.unwrap();
    let _b = greedy.do_get(live.clone()).await.unwrap();
    let third = greedy.do_get(live.clone()).await.unwrap_err();
    assert_eq!(third.code(), tonic::Code::ResourceExhausted);
    assert!(third.message().contains("its share"), "{}", third.message());
    // The same connection still reads snapshots; another connection gets live streams too.
    let mut s = greedy.do_get(snap.clone()).await.unwrap().into_inner();
    while s.message().await.unwrap().is_some() {}
    let mut other = raw(&server.url()).await;
    let _c = other.do_get(live).await.unwrap();
    let mut s = other.do_get(snap).await.unwrap().into_inner();
    while s.message().await.unwrap().is_some() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_stream_whose_client_stopped_reading_is_ended_and_its_place_freed() {
    let engine = Engine::builder()
        .period(Duration::from_millis(5))
        .build()
        .unwrap();
    let (_, publisher) = engine
        .table_publisher("t", trade_schema(), PublisherOptions::default())
        .unwrap();
    let server = engine
        .serve_flight_with(
            "127.0.0.1:0",
            FlightOptions::default()
                .with_max_streams_per_peer(1)
                .with_stall_timeout(Duration::from_millis(200)),
        )
        .unwrap();
    let mut client = raw(&server.url()).await;
    let live = Ticket::new("tickertable:live:t");
    let mut idle = client.do_get(live.clone()).await.unwrap().into_inner();
    // Updates keep coming; the client never reads.
    let feeding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let feeder = {
        let feeding = feeding.clone();
        std::thread::spawn(move || {
            let mut at = 0;
            while feeding.load(std::sync::atomic::Ordering::Relaxed) {
                publisher.add(trade_batch(at, 20_000)).unwrap();
                at += 20_000;
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    // Its place is given back: the same connection can open a live stream again.
    let reopened = tokio::time::timeout(HANG_GUARD, async {
        loop {
            match client.do_get(live.clone()).await {
                Ok(s) => break s,
                Err(s) => assert_eq!(s.code(), tonic::Code::ResourceExhausted),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the stalled stream's place was never freed");
    drop(reopened);
    feeding.store(false, std::sync::atomic::Ordering::Relaxed);
    feeder.join().unwrap();
    // Reading the stalled stream now ends it with the reason, after what was in flight.
    let ended = tokio::time::timeout(HANG_GUARD, async {
        loop {
            match idle.message().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("a stalled stream ended as if the table had ended"),
                Err(s) => break s,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(ended.code(), tonic::Code::Unavailable);
    assert!(
        ended.message().contains("stopped reading"),
        "{}",
        ended.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_never_echo_a_whole_request_back() {
    let engine = manual_engine();
    let server = engine.serve_flight("127.0.0.1:0").unwrap();
    let mut client = Client::connect(&server.url()).await.unwrap();
    let long = "x".repeat(20_000);
    let err = client.table(&long).await.unwrap_err();
    match &err {
        tickertable::Error::Remote { kind, message, .. } => {
            assert_eq!(*kind, RemoteErrorKind::NotFound);
            assert!(
                message.len() <= tickertable::flight::MAX_STATUS_MESSAGE,
                "{}",
                message.len()
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.code(), ErrorCode::TableMissing);
}

/// A CA, and a server certificate and key for `localhost` signed by it, all PEM; and a
/// client certificate and key signed by the same CA.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn make_pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("test certificate");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("test certificate");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: a leaf whose issuer equals its subject looks self-signed to OpenSSL.
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tickertable test CA");
    let ca = ca_params.self_signed(&ca_key).expect("test certificate");
    let server_key = KeyPair::generate().expect("test certificate");
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("test certificate")
        .signed_by(&server_key, &ca, &ca_key)
        .expect("test certificate");
    let client_key = KeyPair::generate().expect("test certificate");
    let client = CertificateParams::new(vec!["client".to_owned()])
        .expect("test certificate")
        .signed_by(&client_key, &ca, &ca_key)
        .expect("test certificate");
    Pki {
        ca: ca.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client.pem(),
        client_key: client_key.serialize_pem(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_clients_that_trust_the_ca_and_refuses_plain_ones() {
    let pki = make_pki();
    let engine = manual_engine();
    append(&engine, "t");
    let server = engine
        .serve_flight_with(
            "127.0.0.1:0",
            FlightOptions::default()
                .with_tls(ServerTls::new(
                    pki.server_cert.clone(),
                    pki.server_key.clone(),
                ))
                .with_token("s3cret"),
        )
        .unwrap();
    let url = server.url();
    assert!(url.starts_with("grpc+tls://"), "{url}");
    let tls = ClientTls::default()
        .with_ca(pki.ca.clone())
        .with_domain("localhost");
    let mut client = Client::connect_tls(&url, &tls)
        .await
        .unwrap()
        .with_token("s3cret")
        .unwrap();
    assert_eq!(
        client.publish("t", vec![trade_batch(0, 3)]).await.unwrap(),
        3
    );
    engine.run_cycle();
    assert_eq!(client.snapshot("t").await.unwrap().num_rows(), 3);
    // Without the token, or with a wrong one, every call is refused over TLS as well.
    for token in [None, Some("wrong")] {
        let mut c = Client::connect_tls(&url, &tls).await.unwrap();
        if let Some(t) = token {
            c = c.with_token(t).unwrap();
        }
        assert_eq!(
            c.list().await.unwrap_err().code(),
            ErrorCode::Unauthenticated
        );
        assert_eq!(
            c.table("t").await.unwrap_err().code(),
            ErrorCode::Unauthenticated
        );
        assert_eq!(
            c.snapshot("t").await.unwrap_err().code(),
            ErrorCode::Unauthenticated
        );
        let put = c.publish("t", vec![trade_batch(0, 1)]).await.unwrap_err();
        assert_eq!(put.code(), ErrorCode::Unauthenticated);
    }
    // A plain-text client cannot talk to it.
    let plain = Client::connect(&format!("grpc://{}", server.local_addr())).await;
    let refused = match plain {
        Err(e) => e,
        Ok(mut c) => c.list().await.unwrap_err(),
    };
    assert!(
        matches!(refused, tickertable::Error::Remote { .. }),
        "{refused:?}"
    );
    // Nor can a client that does not trust the CA.
    let stranger_ca = make_pki().ca;
    let stranger = ClientTls::default()
        .with_ca(stranger_ca)
        .with_domain("localhost");
    let refused = match Client::connect_tls(&url, &stranger).await {
        Err(e) => e,
        Ok(mut c) => c.list().await.unwrap_err(),
    };
    assert_eq!(refused.code(), ErrorCode::Unavailable, "{refused:?}");
    // A grpc+tls URL without TLS settings is a clear error, not a silent plain connection.
    assert_eq!(
        Client::connect(&url).await.unwrap_err().code(),
        ErrorCode::InvalidOption
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_a_client_certificate_from_the_ca() {
    let pki = make_pki();
    let engine = manual_engine();
    append(&engine, "t");
    let server = engine
        .serve_flight_with(
            "127.0.0.1:0",
            FlightOptions::default().with_tls(
                ServerTls::new(pki.server_cert.clone(), pki.server_key.clone())
                    .with_client_ca(pki.ca.clone()),
            ),
        )
        .unwrap();
    let url = format!("grpc+tls://{}", server.local_addr());
    let anonymous = ClientTls::default()
        .with_ca(pki.ca.clone())
        .with_domain("localhost");
    let refused = match Client::connect_tls(&url, &anonymous).await {
        Err(e) => e,
        Ok(mut c) => c.list().await.unwrap_err(),
    };
    assert_eq!(refused.code(), ErrorCode::Unavailable, "{refused:?}");
    let known = anonymous.with_identity(pki.client_cert, pki.client_key);
    let mut client = Client::connect_tls(&url, &known).await.unwrap();
    assert_eq!(client.list().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basic_handshake_with_the_token_answers_with_the_bearer_header() {
    use base64::Engine as _;
    let dir = std::env::temp_dir().join(format!("tt-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, "fr0m-a-file\n").unwrap();
    let engine = manual_engine();
    append(&engine, "t");
    let server = engine
        .serve_flight_with(
            "127.0.0.1:0",
            FlightOptions::default().with_token_file(&file).unwrap(),
        )
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let mut client = raw(&server.url()).await;
    let basic = base64::engine::general_purpose::STANDARD.encode("user:fr0m-a-file");
    let mut req = tonic::Request::new(futures_util::stream::iter([
        arrow_flight::HandshakeRequest::default(),
    ]));
    req.metadata_mut()
        .insert("authorization", format!("Basic {basic}").parse().unwrap());
    let resp = client.handshake(req).await.unwrap();
    assert_eq!(
        resp.metadata()
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        "Bearer fr0m-a-file"
    );
    let wrong = base64::engine::general_purpose::STANDARD.encode("user:nope");
    let mut req = tonic::Request::new(futures_util::stream::iter([
        arrow_flight::HandshakeRequest::default(),
    ]));
    req.metadata_mut()
        .insert("authorization", format!("Basic {wrong}").parse().unwrap());
    assert_eq!(
        client.handshake(req).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let mut ok = Client::connect(&server.url())
        .await
        .unwrap()
        .with_token("fr0m-a-file")
        .unwrap();
    assert_eq!(ok.list().await.unwrap().len(), 1);
    assert!(FlightOptions::default()
        .with_token_file(std::env::temp_dir().join("no-such-token-file"))
        .is_err());
}

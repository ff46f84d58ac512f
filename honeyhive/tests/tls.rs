//! TLS failures that another attempt would meet again (a certificate
//! nobody trusts) are not retried, on any route, and say what to do; a
//! root given to the builder is trusted.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use honeyhive::{Client, Error, Event, Logger, LoggerConfig, Outcome};
use tokio::net::TcpListener;

const CERT: &[u8] = include_bytes!("fixtures/untrusted.cert.pem");
const KEY: &[u8] = include_bytes!("fixtures/untrusted.key.pem");

/// A loopback HTTPS server with a self-signed certificate for 127.0.0.1,
/// answering each request 200; counts the connections it accepted.
struct TlsServer {
    url: String,
    connections: Arc<AtomicUsize>,
}

async fn tls_server() -> TlsServer {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    #[allow(deprecated)] // ring, as the client has it (see client/builder.rs)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(CERT).unwrap()],
            PrivateKeyDer::from_pem_slice(KEY).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buffer = Vec::new();
                while support::http::read_request(&mut stream, &mut buffer)
                    .await
                    .is_some()
                {
                    let body = r#"{"event_id":"e","success":true}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    use tokio::io::AsyncWriteExt;
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    TlsServer { url, connections }
}

fn client(server: &TlsServer) -> honeyhive::ClientBuilder {
    Client::builder()
        .api_key("hh-tls-test-key")
        .base_url(&server.url)
}

#[tokio::test]
async fn an_untrusted_certificate_is_not_retried_and_says_what_to_do() {
    let server = tls_server().await;
    let client = client(&server).build().unwrap();
    let error = client
        .log_event("s", Event::tool("t"))
        .await
        .expect_err("nobody trusts that certificate");
    assert!(matches!(error, Error::Tls { .. }), "{error:#?}");
    assert!(!error.is_retryable());
    assert_eq!(error.attempts(), Some(1));
    let said = error.to_string();
    assert!(said.contains("certificate is not trusted"), "{said}");
    assert!(said.contains("SSL_CERT_FILE"), "{said}");
    assert!(said.contains("root_certificate_pem"), "{said}");
    assert!(!said.contains("hh-tls-test-key"), "{said}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);

    // The generated client, through the same retry loop: once too.
    let raw = client
        .raw()
        .log_event()
        .session_id("s")
        .body(Event::tool("t").into_api().unwrap())
        .send()
        .await;
    assert!(raw.is_err());
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_logger_hands_back_an_event_the_certificate_stops_after_one_attempt() {
    let server = tls_server().await;
    let client = client(&server).build().unwrap();
    let reasons = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&reasons);
    let logger = Logger::new(
        &client,
        LoggerConfig::default().with_outcomes(move |outcome: Outcome<'_>| {
            if let Outcome::DeadLetter(letter) = outcome {
                seen.lock().unwrap().push(letter.reason.clone());
            }
        }),
    )
    .unwrap();
    logger.log("s", Event::tool("t")).unwrap();
    let report = logger.shutdown(Duration::from_secs(20)).await;
    assert!(report.complete);
    assert_eq!(
        (report.stats.sent, report.stats.failed, report.stats.retried),
        (0, 1, 0)
    );
    let reasons = reasons.lock().unwrap();
    assert!(
        reasons[0].contains("certificate is not trusted"),
        "{reasons:?}"
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_root_given_to_the_builder_is_trusted() {
    let server = tls_server().await;
    let client = client(&server).root_certificate_pem(CERT).build().unwrap();
    let logged = client.log_event("s", Event::tool("t")).await.unwrap();
    assert_eq!(logged.event_id, "e");
    let refused = client_without_pem(&server);
    assert!(
        matches!(refused, Error::InvalidInput { ref field, .. } if field == "root_certificate_pem"),
        "{refused:?}"
    );
}

fn client_without_pem(server: &TlsServer) -> Error {
    client(server)
        .root_certificate_pem("not a certificate")
        .build()
        .unwrap_err()
}

#[tokio::test]
async fn a_large_body_meets_the_same_certificate_rules() {
    // Bodies from 64 KiB go through the client's own connections
    // (client/linger.rs): the same roots, the same refusal.
    let server = tls_server().await;
    let large = || Event::tool("t").inputs(serde_json::json!({"blob": "x".repeat(200 * 1024)}));
    let error = client(&server)
        .build()
        .unwrap()
        .log_event("s", large())
        .await
        .expect_err("nobody trusts that certificate");
    assert!(matches!(error, Error::Tls { .. }), "{error:#?}");
    assert_eq!(error.attempts(), Some(1));
    let said = error.to_string();
    assert!(said.contains("certificate is not trusted"), "{said}");
    assert!(!said.contains("hh-tls-test-key"), "{said}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);

    let trusted = client(&server).root_certificate_pem(CERT).build().unwrap();
    for _ in 0..2 {
        let logged = trusted.log_event("s", large()).await.unwrap();
        assert_eq!((logged.event_id.as_str(), logged.attempts), ("e", 1));
    }
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        2,
        "the second large body reuses the connection"
    );
}

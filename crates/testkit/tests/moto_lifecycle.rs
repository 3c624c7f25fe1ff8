//! The moto server starts on 127.0.0.1, serves the real SDK, and is gone once dropped.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use testkit::{s3_client, sdk_config, unique_name, MotoServer};

#[tokio::test]
async fn moto_serves_s3_on_loopback_and_stops_when_dropped() {
    let moto = MotoServer::start().expect("moto starts (run `make venv` first)");
    assert!(moto.endpoint().starts_with("http://127.0.0.1:"));
    let pid = moto.pid();

    let s3 = s3_client(&sdk_config(moto.endpoint()).await);
    let bucket = unique_name("lifecycle");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket created");
    s3.put_object()
        .bucket(&bucket)
        .key("a b+c.wav")
        .body(b"RIFF".to_vec().into())
        .send()
        .await
        .expect("object stored");
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .expect("listed");
    assert_eq!(listed.contents().len(), 1);
    assert_eq!(listed.contents()[0].key(), Some("a b+c.wav"));

    let port = moto.port();
    drop(moto);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "moto process {pid} still exists after drop"
    );
    // Nothing listens on the port any more (bounded poll; the kernel frees it at once).
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "port {port} still accepts connections"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

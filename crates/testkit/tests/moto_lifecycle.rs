//! The moto server starts on 127.0.0.1, serves the real SDK, and is gone once dropped.

use std::net::TcpStream;
use std::time::Duration;

use testkit::wait::until_blocking;
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
    until_blocking(
        &format!("port {port} to refuse connections"),
        Duration::from_secs(5),
        || {
            Ok(TcpStream::connect(("127.0.0.1", port))
                .is_err()
                .then_some(()))
        },
    )
    .expect("port freed");
}

#[test]
fn moto_exits_when_its_parent_goes_away() {
    // What a crashed or interrupted parent leaves behind is a closed stdin pipe: moto must
    // notice and exit on its own.
    let root = testkit::workspace_root();
    let mut child = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tools/moto/serve.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("moto starts (run `make venv` first)");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
        .expect("READY line");
    assert!(line.starts_with("READY "), "{line:?}");
    drop(child.stdin.take());
    let status = until_blocking(
        "moto to exit once its stdin closed",
        Duration::from_secs(10),
        || Ok(child.try_wait()?),
    )
    .expect("moto exits");
    assert!(status.success(), "moto exited with {status}");
}

//! Hostile request frames against a broker that may not reserve much memory.
//!
//! The broker runs in a child process (this test binary again, in [`broker_child`]) whose
//! address space is capped with `RLIMIT_AS`. A count or length read from the wire that reached
//! an allocation unchecked would ask for gigabytes (2^31 elements of tens of bytes, a 4 GiB
//! string): under the cap the allocator fails and the process aborts, whatever the kernel's
//! overcommit setting. The parent sends such frames for every served API and version, each as
//! the first request of a fresh connection, and size prefixes announcing large frames that never
//! come, then checks that the broker is alive and serves normal requests.
mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use bytes::{BufMut, BytesMut};
use common::{Conn, TestBroker};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, MetadataRequest};
use strom_broker::handlers::SUPPORTED_APIS;

/// Set in the child's environment to the address-space cap in bytes.
const CHILD_ENV: &str = "STROM_HOSTILE_BYTES_CHILD_AS_BYTES";
/// The line the child prints once its broker listens.
const LISTENING: &str = "hostile-bytes-broker-listening-on=";

/// The address-space cap of the broker. A healthy broker serving these requests peaks at about
/// 0.6 GiB of virtual memory (measured from `VmPeak`, which the test prints: thread stacks and
/// the allocator's arenas); the cap leaves room for more threads, and is far below what a wire
/// count can ask for (2^31 elements of a 40-byte struct are 80 GiB; the largest compact string
/// is 4 GiB).
const ADDRESS_SPACE_BYTES: u64 = 3 << 29;

/// Not a test on its own: the broker process of [`hostile_frames_cannot_exhaust_memory`]. It
/// returns at once unless that test started it.
#[test]
fn broker_child() {
    let Ok(limit) = std::env::var(CHILD_ENV) else {
        return;
    };
    let limit: u64 = limit.parse().expect("address-space cap in bytes");
    let cap = rustix::process::Rlimit {
        current: Some(limit),
        maximum: Some(limit),
    };
    rustix::process::setrlimit(rustix::process::Resource::As, cap).expect("setrlimit(AS)");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let broker = TestBroker::start().await;
        println!("{LISTENING}{}", broker.addr);
        // Serve until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut chunk = [0u8; 64];
            while matches!(std::io::stdin().read(&mut chunk), Ok(n) if n > 0) {}
        })
        .await
        .expect("stdin reader");
        broker.stop().await;
    });
}

/// Kills the child broker if the test fails before stopping it.
struct ChildBroker(Child);

impl Drop for ChildBroker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_child() -> (ChildBroker, std::net::SocketAddr) {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "broker_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, ADDRESS_SPACE_BYTES.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the broker process");
    let stdout = child.stdout.take().expect("child stdout");
    let child = ChildBroker(child);
    // The harness prints its own lines first, and its "test broker_child ... " on the line the
    // broker's address is printed on. The reader keeps draining the output afterwards: the
    // child's harness fails if its stdout is closed under it.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((_, addr)) = line.split_once(LISTENING) {
                let _ = sender.send(addr.trim().to_string());
            }
        }
    });
    let addr = receiver
        .recv()
        .expect("the broker process exited before listening");
    (child, addr.parse().expect("listen address"))
}

/// A request header for `api_key` at `version`: no client id, no tagged fields.
fn header(api_key: ApiKey, version: i16) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_i16(api_key as i16);
    body.put_i16(version);
    body.put_i32(7);
    body.put_i16(-1);
    if api_key.request_header_version(version) >= 2 {
        body.put_u8(0);
    }
    body
}

fn frame(api_key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let mut frame = header(api_key, version);
    frame.put_slice(body);
    frame.to_vec()
}

/// Bodies whose first count or length is as large as its encoding allows, for every served API
/// and version, plus hand-made ones whose huge count is nested or follows valid fields.
fn hostile_frames() -> Vec<(String, Vec<u8>)> {
    let mut frames = Vec::new();
    for (api_key, versions) in SUPPORTED_APIS {
        for version in versions.min..=versions.max {
            let flexible = api_key.request_header_version(version) >= 2;
            // Every int32 reads 2^31 - 1 and every int16 32767; in a flexible body every
            // varint reads 2^32 - 1.
            let body: Vec<u8> = if flexible {
                [0xff, 0xff, 0xff, 0xff, 0x0f].repeat(8)
            } else {
                [0x7f, 0xff, 0xff, 0xff].repeat(8)
            };
            frames.push((
                format!("{api_key:?} v{version}"),
                frame(*api_key, version, &body),
            ));
        }
    }
    let mut produce = BytesMut::new();
    produce.put_i16(-1); // no transactional id
    produce.put_i16(1); // acks
    produce.put_i32(30_000);
    produce.put_i32(1); // one topic
    produce.put_i16(1);
    produce.put_u8(b't');
    produce.put_i32(1); // one partition
    produce.put_i32(0);
    produce.put_i32(i32::MAX); // records length
    frames.push((
        "Produce v7 records length".into(),
        frame(ApiKey::Produce, 7, &produce),
    ));
    let mut produce = BytesMut::new();
    produce.put_u8(0); // null transactional id
    produce.put_i16(1);
    produce.put_i32(30_000);
    produce.put_u8(2); // one topic
    produce.put_u8(2);
    produce.put_u8(b't');
    produce.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // partitions
    frames.push((
        "Produce v9 partitions".into(),
        frame(ApiKey::Produce, 9, &produce),
    ));
    // ApiVersions v3: a client software name of 2^28 bytes.
    frames.push((
        "ApiVersions v3 software name".into(),
        frame(
            ApiKey::ApiVersions,
            3,
            &[0x80, 0x80, 0x80, 0x80, 0x01, b'x'],
        ),
    ));
    // JoinGroup v5: group, session and rebalance timeouts, member, no instance id, protocol
    // type, then 2^31 - 1 protocols.
    let mut join = BytesMut::new();
    join.put_i16(1);
    join.put_u8(b'g');
    join.put_i32(10_000);
    join.put_i32(300_000);
    join.put_i16(0);
    join.put_i16(-1);
    join.put_i16(8);
    join.put_slice(b"consumer");
    join.put_i32(i32::MAX);
    frames.push((
        "JoinGroup v5 protocols".into(),
        frame(ApiKey::JoinGroup, 5, &join),
    ));
    frames
}

/// Sends the frame as the first request of a new connection: the broker must answer it or close
/// the connection.
async fn send_first(addr: std::net::SocketAddr, frame: &[u8]) {
    let mut conn = Conn::connect(addr).await;
    // Either outcome is fine; reading returns once the broker has done one of them, and panics
    // after the I/O timeout if it did neither.
    let _answered = conn.round_trip(frame).await;
}

fn peak_virtual_memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmPeak:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn hostile_frames_cannot_exhaust_memory() {
    let (mut child, addr) = start_child();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let frames = hostile_frames();
    runtime.block_on(async {
        for (name, frame) in &frames {
            send_first(addr, frame).await;
            if let Some(status) = child.0.try_wait().expect("child status") {
                panic!("the broker died ({status}) on {name}: {frame:02x?}");
            }
        }
        // Connections that announce frames of nearly `socket.request.max.bytes` (100 MiB) and
        // send a few bytes of them: together they announce more than the cap.
        let mut announced = Vec::new();
        for _ in 0..20 {
            let mut conn = Conn::connect(addr).await;
            let mut partial = BytesMut::new();
            partial.put_i32((100 << 20) - 1);
            partial.put_slice(&header(ApiKey::Produce, 9));
            conn.write_raw(&partial).await;
            announced.push(conn);
        }
        let mut conn = Conn::connect(addr).await;
        assert_eq!(
            conn.send(0, ApiVersionsRequest::default()).await.error_code,
            0
        );
        drop(announced);
        if let Some(status) = child.0.try_wait().expect("child status") {
            panic!("the broker died ({status}) on frames announced and not sent");
        }

        // A hostile frame after a normal request on the same connection.
        let mut conn = Conn::connect(addr).await;
        conn.send(0, ApiVersionsRequest::default()).await;
        let _answered = conn.round_trip(&frames[0].1).await;

        let mut conn = Conn::connect(addr).await;
        let versions = conn.send(0, ApiVersionsRequest::default()).await;
        assert_eq!(versions.error_code, 0);
        let metadata = conn.send(12, MetadataRequest::default()).await;
        assert!(metadata.brokers.len() == 1, "{metadata:?}");
    });
    assert!(
        child.0.try_wait().expect("child status").is_none(),
        "the broker is alive"
    );
    let peak = peak_virtual_memory_kib(child.0.id());
    println!(
        "{} hostile frames; broker VmPeak {peak:?} KiB under a cap of {} KiB",
        frames.len(),
        ADDRESS_SPACE_BYTES >> 10
    );
    // Closing stdin stops the broker cleanly.
    drop(child.0.stdin.take());
    let status = child.0.wait().expect("child exit");
    assert!(status.success(), "the broker process exited with {status}");
}

//! The HTTP gateway over a real socket: signed uploads by authorized workers only, verified
//! downloads, and every refusal with its status and reason.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;

use alloy_primitives::{Address, B256};
mod limits;

use xiebao_results::gateway::{self, Authorize, CID_HEADER, SIGNATURE_HEADER, upload_hash};
use xiebao_results::{ResultStore, cid_of};
use xiebao_types::crypto::SecretKey;

/// A blocking HTTP/1.1 exchange: (status, body).
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("HTTP response");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split_whitespace().nth(1).expect("status").parse().expect("number");
    let mut body = response[split + 4..].to_vec();
    if head.to_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").expect("chunk size");
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 4 + size..];
    }
}

/// Headers, body, expected status, expected reason.
type Case<'a> = (Vec<(&'a str, String)>, &'a [u8], u16, &'a str);

fn signature(key: &SecretKey, task: &B256, bytes: &[u8]) -> String {
    key.eth_sign(&upload_hash(task, &cid_of(bytes))).to_string()
}

/// The headers of an upload of `bytes` for `task` signed by `key`: signature and address.
pub(crate) fn signed(key: &SecretKey, task: &B256, bytes: &[u8]) -> Vec<(&'static str, String)> {
    vec![(SIGNATURE_HEADER, signature(key, task, bytes)), (CID_HEADER, cid_of(bytes))]
}

#[test]
fn authorized_uploads_are_stored_and_everything_else_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(ResultStore::open(dir.path()).unwrap());
    let task = B256::repeat_byte(0x7a);
    let worker = SecretKey::from_label("worker");
    let stranger = SecretKey::from_label("stranger");
    let allowed = worker.address();
    // The node's rule in miniature: only `worker` contributed to `task`.
    let authorize: Authorize = Arc::new(move |t: B256, w: Address, _| {
        Box::pin(async move { Ok(t == task && w == allowed) })
    });
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(gateway::serve(listener, store.clone(), authorize));

    let result = b"frame 17 rendered".to_vec();
    let path = format!("/v1/results/{task}");
    let (status, body) = http(addr, "PUT", &path, &signed(&worker, &task, &result), &result);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let cid = cid_of(&result);
    assert_eq!(answer["cid"], cid);
    assert_eq!(
        answer["worker"].as_str().unwrap().to_lowercase(),
        allowed.to_string().to_lowercase()
    );
    let (status, body) = http(addr, "GET", &format!("/v1/results/{cid}"), &[], b"");
    assert_eq!((status, body), (200, result.clone()));

    // A stranger's upload, a signature over another address, none, bytes that are not the
    // announced ones, an unknown or malformed address: refused with the status and the
    // reason; nothing is stored.
    let other = b"a forged frame".to_vec();
    let announced = b"what the worker signed".to_vec();
    let cases: Vec<Case> = vec![
        (signed(&stranger, &task, &other), &other, 403, "may not upload"),
        (
            vec![
                (SIGNATURE_HEADER, signature(&worker, &task, &result)),
                (CID_HEADER, cid_of(&other)),
            ],
            &other,
            403,
            "may not upload",
        ),
        (signed(&worker, &task, &announced), &other, 400, "not to the announced address"),
        (vec![], &other, 401, "missing header"),
        (
            vec![(SIGNATURE_HEADER, signature(&worker, &task, &other))],
            &other,
            400,
            "missing header x-xiebao-cid",
        ),
        (
            vec![
                (SIGNATURE_HEADER, signature(&worker, &task, &other)),
                (CID_HEADER, "bafy-nonsense".into()),
            ],
            &other,
            400,
            "is not a result address",
        ),
        (vec![(SIGNATURE_HEADER, "zz".into())], &other, 400, "not hex"),
        (
            vec![(SIGNATURE_HEADER, "0x1234".into()), (CID_HEADER, cid_of(&other))],
            &other,
            401,
            "does not recover",
        ),
    ];
    for (headers, body, expected, reason) in cases {
        let (status, answer) = http(addr, "PUT", &path, &headers, body);
        let answer = String::from_utf8_lossy(&answer);
        assert_eq!(status, expected, "{answer}");
        assert!(answer.contains(reason), "{answer}");
    }
    assert!(!store.contains(&cid_of(&other)));
    assert!(!store.contains(&cid_of(&announced)));
    // Nothing half-received is left in the store's directory either.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let (status, answer) = http(addr, "PUT", "/v1/results/not-a-task", &[], b"x");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&answer));
    let (status, _) =
        http(addr, "GET", &format!("/v1/results/{}", cid_of(b"never uploaded")), &[], b"");
    assert_eq!(status, 404);
    let (status, answer) = http(addr, "GET", "/v1/results/bafy-nonsense", &[], b"");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&answer).contains("is not a result address"));
}

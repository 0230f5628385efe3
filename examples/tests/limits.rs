//! The example binaries bound slow clients with their default limits (10 s to send a request
//! header): a slowloris connection to each example server and to `pop_gateway` is closed by the
//! server once the header read timeout runs out, and an honest client is served meanwhile.

use std::time::Duration;

use tower_pop_test_support::slow::{honest_get, slow_header};

use crate::server::{SERVERS, Server};

/// One slow connection (a header byte every 2 s) per binary, all at once: each closed after 10 s
/// give or take, while `/health` answers 200 at once.
#[tokio::test]
async fn slow_clients_are_cut_by_every_example_binary() {
    let upstream = "http://127.0.0.1:9";
    let mut servers = Vec::new();
    for name in SERVERS {
        servers.push((name, Server::start(name, &[]).await));
    }
    servers.push((
        "pop_gateway",
        Server::start("pop_gateway", &["--upstream", upstream]).await,
    ));
    let slow: Vec<_> = servers
        .iter()
        .map(|(name, server)| {
            let addr = server.addr;
            (
                *name,
                tokio::spawn(slow_header(addr, Duration::from_secs(2))),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (name, server) in &servers {
        let (status, took) = honest_get(server.addr, "/health").await;
        assert_eq!(status, 200, "{name}");
        assert!(took < Duration::from_secs(1), "{name}: {took:?}");
    }
    for (name, client) in slow {
        let open = client
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: never closed"));
        assert!(
            (Duration::from_secs(9)..Duration::from_secs(14)).contains(&open),
            "{name}: open for {open:?}"
        );
    }
}

//! Abuse limits: votes are rate limited per client, buckets have no window edges to burst
//! across, and only trusted proxies may say who the client is.

use std::time::Duration;

use serde_json::json;

use crate::common;

/// Status of `POST path` with `x-forwarded-for: xff` when given.
async fn post_as(http: &str, path: &str, xff: Option<&str>) -> u16 {
    let body = if path.ends_with("/vote") {
        json!({"winner": "tie"})
    } else if path.ends_with("/rating") {
        json!({"rating": "upvote"})
    } else {
        json!({"mode": "anonymous"})
    };
    let mut req = reqwest::Client::new()
        .post(format!("{http}{path}"))
        .json(&body);
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn votes_are_rate_limited_per_client() {
    let c = common::bin().spawn_controller(&["--vote-rate-limit", "3"]);
    // Unknown battles: refused, but every attempt takes a token.
    for _ in 0..3 {
        assert_eq!(post_as(&c.http, "/api/battles/b_x/vote", None).await, 404);
    }
    let r = reqwest::Client::new()
        .post(format!("{}/api/battles/b_x/vote", c.http))
        .json(&json!({"winner": "tie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    // Ratings share the vote bucket; the generation limit is a bucket of its own.
    assert_eq!(post_as(&c.http, "/api/chats/c_x/rating", None).await, 429);
    assert_eq!(post_as(&c.http, "/api/battles", None).await, 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_burst_on_each_side_of_a_window_edge_is_refused() {
    // Three per two seconds: a fixed window let three through just before an edge and three
    // more just after it.
    let c = common::bin().spawn_controller(&["--rate-limit", "3", "--rate-window-s", "2"]);
    let now_ms = arena_ratings::clock::unix_ms();
    let to_edge = 2000 - now_ms % 2000;
    if to_edge < 400 {
        tokio::time::sleep(Duration::from_millis(to_edge + 100)).await;
    }
    let to_edge = 2000 - arena_ratings::clock::unix_ms() % 2000;
    tokio::time::sleep(Duration::from_millis(to_edge.saturating_sub(250))).await;
    let mut allowed = 0;
    for _ in 0..3 {
        allowed += u32::from(post_as(&c.http, "/api/battles", None).await != 429);
    }
    let to_edge = 2000 - arena_ratings::clock::unix_ms() % 2000;
    tokio::time::sleep(Duration::from_millis(to_edge + 50)).await;
    for _ in 0..3 {
        allowed += u32::from(post_as(&c.http, "/api/battles", None).await != 429);
    }
    // About 300 ms passed: the bucket refilled at most one token.
    assert!(allowed <= 4, "{allowed} of 6 let through across the edge");
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_forwarded_for_hops_do_not_make_new_clients() {
    // Behind a trusted proxy (this test, on 127.0.0.1) the client is the hop the proxy
    // appended; whatever the client wrote to its left is ignored.
    let behind = common::bin().spawn_controller(&[
        "--rate-limit",
        "2",
        "--rate-window-s",
        "3600",
        "--trusted-proxies",
        "127.0.0.1,10.0.0.0/8",
    ]);
    let mut statuses = Vec::new();
    for i in 0..4 {
        let xff = format!("6.6.6.{i}, 203.0.113.7, 10.1.1.1");
        statuses.push(post_as(&behind.http, "/api/battles", Some(&xff)).await);
    }
    assert_eq!(statuses, [503, 503, 429, 429]);
    // A different real client still gets through.
    let other = post_as(&behind.http, "/api/battles", Some("203.0.113.8")).await;
    assert_eq!(other, 503);

    // Without trusted proxies the header is ignored altogether.
    let direct = common::bin().spawn_controller(&["--rate-limit", "2", "--rate-window-s", "3600"]);
    let mut statuses = Vec::new();
    for i in 0..3 {
        let xff = format!("198.51.100.{i}");
        statuses.push(post_as(&direct.http, "/api/battles", Some(&xff)).await);
    }
    assert_eq!(statuses, [503, 503, 429]);
}

use super::*;

fn info(id: &str, model: &str) -> WorkerInfo {
    WorkerInfo {
        id: id.into(),
        address: "http://127.0.0.1:1".into(),
        models: vec![model.into()],
        context_length: 2048,
        max_concurrency: 4,
    }
}

#[tokio::test]
async fn register_heartbeat_fail_and_expire() {
    let r = Registry::new(Duration::from_millis(50));
    r.register(info("a", "m")).unwrap();
    r.register(info("b", "m")).unwrap();
    assert_eq!(r.candidates("m").len(), 2);
    assert!(r.candidates("other").is_empty());
    r.mark_failed("a");
    assert_eq!(r.candidates("m").len(), 1);
    assert!(r.heartbeat("a", 3));
    let c = r.candidates("m");
    assert_eq!(c.len(), 2);
    assert!(c.iter().any(|c| c.id == "a" && c.load == 3));
    assert!(!r.heartbeat("zzz", 0));
    std::thread::sleep(Duration::from_millis(80));
    assert!(
        r.candidates("m").is_empty(),
        "expired workers leave dispatch"
    );
    assert_eq!(r.expire().len(), 2);
    assert!(r.models().is_empty());
}

#[tokio::test]
async fn in_flight_guards_count_load() {
    let r = Registry::new(Duration::from_secs(5));
    r.register(info("a", "m")).unwrap();
    let c = r.candidates("m").remove(0);
    let g1 = c.start();
    let g2 = c.start();
    assert_eq!(r.candidates("m")[0].load, 2);
    drop((g1, g2));
    assert_eq!(r.candidates("m")[0].load, 0);
}

#[tokio::test]
async fn sync_adds_refreshes_and_drops() {
    let a = Registry::new(Duration::from_secs(5));
    let b = Registry::new(Duration::from_secs(5));
    a.register(info("w1", "m")).unwrap();
    a.heartbeat("w1", 4);
    let rec = a.record("w1").unwrap();
    assert_eq!(rec.queue_length, 4);
    b.sync_from(std::slice::from_ref(&rec));
    let c = b.candidates("m");
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].load, 4);
    // A stale record does not overwrite a newer local heartbeat.
    b.heartbeat("w1", 1);
    let stale = WorkerRecord {
        heartbeat_unix_ms: rec.heartbeat_unix_ms - 10_000,
        queue_length: 9,
        ..rec.clone()
    };
    b.sync_from(&[stale]);
    assert_eq!(b.candidates("m")[0].load, 1);
    b.sync_from(&[]);
    assert!(b.models().is_empty());
}

#[tokio::test]
async fn an_open_breaker_takes_a_worker_out_of_dispatch_until_it_closes() {
    let opened = IntCounter::new("opened", "breakers opened").unwrap();
    let settings = BreakerSettings {
        failures: 2,
        cool_down: Duration::from_secs(600),
        max_cool_down: Duration::from_secs(600),
    };
    let r = Registry::new(Duration::from_secs(5)).with_breaker(settings, opened.clone());
    r.register(info("a", "m")).unwrap();
    r.register(info("b", "m")).unwrap();
    let a = || r.candidates("m").into_iter().find(|c| c.id == "a").unwrap();
    let mut g = a().start();
    g.failed();
    g.succeeded(); // ignored: one verdict per request
    drop(g);
    assert_eq!(opened.get(), 0);
    a().start().failed();
    assert_eq!(opened.get(), 1);
    for _ in 0..50 {
        let c = r.pick("m", super::super::dispatch::Policy::ShortestQueue, &[]);
        assert_eq!(c.unwrap().id, "b", "an open worker is never picked");
    }
    assert_eq!(r.paused("m"), 1);
    assert!(r.heartbeat("a", 0), "heartbeats do not close a breaker");
    r.register(info("a", "m")).unwrap();
    assert_eq!(r.paused("m"), 1, "nor does registering again");
    let view = r.snapshot();
    assert_eq!(view[0].circuit, Circuit::Open);
    assert!(!view[0].healthy);
    assert_eq!(view[1].circuit, Circuit::Closed);
    assert!(view[1].healthy);
    let json = serde_json::to_value(&view[0]).unwrap();
    assert_eq!(json["circuit"], "open");
    // A success (a call sent before it opened) closes it.
    a().start().succeeded();
    assert_eq!(r.paused("m"), 0);
    assert_eq!(r.snapshot()[0].circuit, Circuit::Closed);
    assert_eq!(r.snapshot()[0].in_flight, 0, "guards dropped");
}

#[test]
fn bad_addresses_are_refused() {
    let r = Registry::new(Duration::from_secs(1));
    let mut i = info("a", "m");
    i.address = "not a url".into();
    assert!(r.register(i).is_err());
}

//! Feature `metrics`: every decision is counted once, with the documented names and labels,
//! through whatever recorder the application installed (here a capturing one, thread-local).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use tower::ServiceBuilder;
use tower::{Service, ServiceExt, service_fn};
use tower_pop::{PopRequest, RequirePopLayer, RoutePolicy};

use crate::support::*;

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

/// Counters and histograms by `name{label=value,...}`.
#[derive(Default)]
struct Captured {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
}

fn series(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Captured {
    fn counters(&self) -> BTreeMap<String, u64> {
        let counters = self.counters.lock().unwrap();
        counters
            .iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::SeqCst)))
            .collect()
    }

    fn timings(&self) -> Vec<f64> {
        let histograms = self.histograms.lock().unwrap();
        assert_eq!(
            histograms.keys().collect::<Vec<_>>(),
            ["tower_pop_verify_seconds{}"]
        );
        histograms
            .values()
            .next()
            .unwrap()
            .0
            .lock()
            .unwrap()
            .clone()
    }
}

impl Recorder for Captured {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap();
        Counter::from_arc(Arc::clone(counters.entry(series(key)).or_default()))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut histograms = self.histograms.lock().unwrap();
        Histogram::from_arc(Arc::clone(histograms.entry(series(key)).or_default()))
    }
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test]
async fn each_decision_is_counted_once_by_binding_or_kind() {
    let recorder = Captured::default();
    let _local = metrics::set_default_local_recorder(&recorder);
    let f = Fixture::new();
    let token = f.token();
    let proof = f.proof(&token);
    assert_eq!(f.dpop(&token, &proof).await.status(), 200);
    // The same proof again, then no credentials at all.
    assert_eq!(f.dpop(&token, &proof).await.status(), 401);
    assert_eq!(f.send(req("GET", PATH, &[], &[])).await.status(), 401);
    assert_eq!(
        recorder.counters(),
        counts(&[
            ("tower_pop_requests_accepted_total{binding=dpop}", 1),
            (
                "tower_pop_requests_refused_total{kind=missing_credentials}",
                1
            ),
            ("tower_pop_requests_refused_total{kind=replayed}", 1),
        ])
    );
    let timings = recorder.timings();
    assert_eq!(timings.len(), 3);
    assert!(
        timings.iter().all(|s| (0.0..10.0).contains(s)),
        "{timings:?}"
    );
}

#[tokio::test]
async fn anonymous_requests_count_as_accepted_and_a_second_layer_counts_nothing() {
    let recorder = Captured::default();
    let _local = metrics::set_default_local_recorder(&recorder);
    let f = Fixture::new();
    let outcome = f
        .verifier
        .decide(
            &PopRequest::new("GET", PATH),
            &RoutePolicy::new().allow_anonymous(),
        )
        .await;
    assert!(matches!(outcome, tower_pop::Outcome::Anonymous(_)));

    // The same verifier wrapped twice: the inner layer reuses the outer one's decision.
    let mut twice = ServiceBuilder::new()
        .layer(RequirePopLayer::new(Arc::clone(&f.verifier)))
        .layer(RequirePopLayer::new(Arc::clone(&f.verifier)))
        .service(service_fn(|_: http::Request<String>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        }));
    let token = f.token();
    let request = req(
        "GET",
        PATH,
        &[&format!("DPoP {token}")],
        &[&f.proof(&token)],
    );
    let response = twice.ready().await.unwrap().call(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        recorder.counters(),
        counts(&[
            ("tower_pop_requests_accepted_total{binding=anonymous}", 1),
            ("tower_pop_requests_accepted_total{binding=dpop}", 1),
        ])
    );
    assert_eq!(recorder.timings().len(), 2);
}

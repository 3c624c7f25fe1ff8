//! Random query strings on every route never get a 5xx, and never make an unbounded
//! number of DynamoDB requests: each call's requests are counted on the wire.

use lambda_http::http::StatusCode;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use cochl_aws::dynamo::read::MAX_QUERY_REQUESTS;
use cochl_aws::dynamo::DynamoStore;
use testkit::faults::FaultInjector;

use crate::seed::{self, request, send};

/// Requests one call may make: the bounded queries of a listing, plus the read of the
/// jobs behind a page and the file's own job.
const MAX_REQUESTS_PER_CALL: u64 = MAX_QUERY_REQUESTS as u64 + 2;

/// Characters legal in a URI's query, `%` included, so escapes may be malformed.
fn query_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[A-Za-z0-9._~!$&'()*+,;=:@/?%-]{0,80}").expect("regex")
}

/// Name=value pairs mixing known names, odd names and odd values.
fn query_pairs() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("uri".to_string()),
        Just("status".to_string()),
        Just("since".to_string()),
        Just("until".to_string()),
        Just("min_probability".to_string()),
        Just("limit".to_string()),
        Just("cursor".to_string()),
        proptest::string::string_regex("[a-z_%0-9]{0,8}").expect("regex"),
    ];
    let value = prop_oneof![
        Just("s3%3A%2F%2Faudio-bucket%2Fincoming%2Fstreet%2012s.wav".to_string()),
        Just("FAILED".to_string()),
        Just("2026-11-24T00:00:00Z".to_string()),
        Just("0.5".to_string()),
        Just("1".to_string()),
        Just("100".to_string()),
        Just("eyJ2IjoxfQ".to_string()),
        Just("%F0%9F%8E%B5".to_string()),
        proptest::string::string_regex("[A-Za-z0-9._~+%-]{0,24}").expect("regex"),
    ];
    proptest::collection::vec((name, value), 0..6).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/files".to_string()),
        Just("/jobs".to_string()),
        Just("/tags/Siren/files".to_string()),
        proptest::string::string_regex("[A-Za-z0-9_%. -]{0,20}")
            .expect("regex")
            .prop_map(|name| format!("/tags/{}/files", name.replace(' ', "%20"))),
    ]
}

#[test]
fn random_query_strings_never_give_a_5xx() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The seeded table, read through a client that counts its requests on the wire (an
    // injector without rules injects nothing).
    let counter = FaultInjector::new(Vec::new(), 0);
    let store = runtime.block_on(async {
        let seeded = seed::store().await;
        let config = counter.wrap(&testkit::shared_sdk_config().await);
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), seeded.table())
    });
    let requests = || -> u64 { counter.counts().values().map(|c| c.calls).sum() };
    let mut runner = TestRunner::new(Config::with_cases(64));
    let strategy = (
        path(),
        prop_oneof![query_text(), query_pairs()],
        prop_oneof![Just("GET"), Just("POST")],
    );
    runner
        .run(&strategy, |(path, query, method)| {
            let target = format!("{path}?{query}");
            let Ok(uri) = target.parse::<lambda_http::http::Uri>() else {
                return Ok(()); // Not a request a client could send.
            };
            let before = requests();
            let reply = runtime.block_on(send(&store, request(method, &uri.to_string())));
            let made = requests() - before;
            prop_assert!(
                made <= MAX_REQUESTS_PER_CALL,
                "{method} {target}: {made} DynamoDB requests"
            );
            prop_assert!(
                reply.status < StatusCode::INTERNAL_SERVER_ERROR,
                "{method} {target}: {reply:?}"
            );
            prop_assert_eq!(reply.content_type.as_deref(), Some("application/json"));
            Ok(())
        })
        .expect("no 5xx");
}

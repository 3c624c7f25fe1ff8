//! Admission control's slots against moto with the real SDK: the transactions' conditions
//! hold on the wire, and concurrent takers never get more slots than the limit.

use std::collections::HashSet;

use cochl_aws::dynamo::provision::create_table;
use cochl_aws::dynamo::{DynamoStore, SlotGrant};
use cochl_core::inference_id::InferenceId;
use futures_util::future::join_all;

async fn store() -> DynamoStore {
    let client = aws_sdk_dynamodb::Client::new(&testkit::shared_sdk_config().await);
    let table = testkit::unique_name("slots");
    create_table(&client, &table).await.expect("table created");
    DynamoStore::new(client, table)
}

fn id(n: usize) -> InferenceId {
    InferenceId::parse(&format!("cochl-slot-{n}")).expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_are_taken_up_to_the_limit_once_per_inference_and_given_back_once() {
    let store = store().await;
    assert_eq!(store.in_flight().await.expect("count"), 0);
    for n in 0..3 {
        let grant = store
            .acquire_slot(&id(n), 3, i64::MAX)
            .await
            .expect("acquire");
        assert_eq!(grant, SlotGrant::Acquired, "slot {n}");
    }
    assert_eq!(
        store
            .acquire_slot(&id(0), 3, i64::MAX)
            .await
            .expect("again"),
        SlotGrant::AlreadyHeld
    );
    assert_eq!(
        store.acquire_slot(&id(3), 3, i64::MAX).await.expect("full"),
        SlotGrant::Full { in_flight: 3 }
    );
    assert_eq!(store.in_flight().await.expect("count"), 3);
    assert!(store.release_slot(&id(1)).await.expect("release"));
    assert!(
        !store.release_slot(&id(1)).await.expect("twice"),
        "given back once"
    );
    assert!(!store.release_slot(&id(9)).await.expect("never taken"));
    assert_eq!(store.in_flight().await.expect("count"), 2);
    assert_eq!(
        store.acquire_slot(&id(3), 3, i64::MAX).await.expect("room"),
        SlotGrant::Acquired
    );
    assert_eq!(store.in_flight().await.expect("count"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_takers_never_get_more_slots_than_the_limit() {
    const TAKERS: usize = 300;
    let store = store().await;
    let limit = 10;
    let grants = join_all((0..TAKERS).map(|n| {
        let store = store.clone();
        async move { (n, store.acquire_slot(&id(n), limit, i64::MAX).await) }
    }))
    .await;
    let acquired: HashSet<usize> = grants
        .iter()
        .filter(|(_, grant)| matches!(grant, Ok(SlotGrant::Acquired)))
        .map(|(n, _)| *n)
        .collect();
    for (n, grant) in &grants {
        assert!(
            matches!(grant, Ok(SlotGrant::Acquired) | Ok(SlotGrant::Full { .. })),
            "taker {n}: {grant:?}"
        );
    }
    assert_eq!(acquired.len(), limit as usize, "{grants:?}");
    assert_eq!(store.in_flight().await.expect("count"), u64::from(limit));
    // Concurrent givers, two per slot: each slot comes back exactly once.
    let twice = acquired.iter().chain(acquired.iter()).copied();
    let released = join_all(twice.map(|n| {
        let store = store.clone();
        async move { store.release_slot(&id(n)).await.expect("release") }
    }))
    .await;
    assert_eq!(released.iter().filter(|r| **r).count(), limit as usize);
    assert_eq!(store.in_flight().await.expect("count"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_slots_past_their_lease_are_reported_leaked() {
    let store = store().await;
    store.acquire_slot(&id(1), 5, 100).await.expect("old");
    store
        .acquire_slot(&id(2), 5, 10_000)
        .await
        .expect("current");
    let leaked = store.expired_slots(5_000, 10).await.expect("query");
    assert_eq!(leaked, vec![id(1)]);
}

use super::*;
use std::sync::{Arc, Barrier};

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("boltstream.db")).unwrap();
    (dir, store)
}

#[test]
fn migrates_an_empty_database_and_reopens_idempotently() {
    let (dir, store) = temp_store();
    assert_eq!(store.schema_version().unwrap(), migrations::LATEST);
    store.add_user("alice", false).unwrap();
    drop(store);
    let again = Store::open(&dir.path().join("boltstream.db")).unwrap();
    assert_eq!(again.schema_version().unwrap(), migrations::LATEST);
    assert_eq!(again.list_users().unwrap().len(), 1);
}

#[test]
fn refuses_a_database_from_the_future() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("boltstream.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

#[test]
fn keys_are_stored_hashed_only() {
    let (_dir, store) = temp_store();
    let (_, key) = store.add_user("alice", false).unwrap();
    let stored: String = store
        .with(|c| Ok(c.query_row("SELECT key_hash FROM streams", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(stored, key::storage_hash(&key));
    assert_ne!(stored, key);
}

#[test]
fn user_rules() {
    let (_dir, store) = temp_store();
    store.add_user("Alice", true).unwrap();
    assert!(matches!(
        store.add_user("alice", false),
        Err(StoreError::UserExists(_))
    ));
    assert!(matches!(
        store.add_user("a!", false),
        Err(StoreError::InvalidUsername(_))
    ));
    assert!(matches!(
        store.set_banned("nobody", true),
        Err(StoreError::UnknownUser(_))
    ));
    assert!(matches!(
        store.rotate_key("nobody"),
        Err(StoreError::UnknownUser(_))
    ));
    let users = store.list_users().unwrap();
    assert_eq!(users[0].username, "alice");
    assert!(users[0].is_admin);
}

#[test]
fn publish_lifecycle() {
    let (_dir, store) = temp_store();
    let (alice, key) = store.add_user("alice", false).unwrap();
    assert_eq!(
        store.begin_publish("live_nonsense").unwrap(),
        PublishDecision::Refused(PublishRefusal::UnknownKey)
    );
    let (user, id) = store.begin_publish(&key).unwrap().accepted().unwrap();
    assert_eq!(user, alice);
    assert_eq!(
        store.begin_publish(&key).unwrap(),
        PublishDecision::Refused(PublishRefusal::AlreadyLive)
    );
    assert_eq!(store.live_streams().unwrap().len(), 1);
    store.end_publish(&alice, PublishId(id.0 ^ 1)).unwrap();
    assert_eq!(
        store.live_streams().unwrap().len(),
        1,
        "a stale end must not end a live publish"
    );
    store.end_publish(&alice, id).unwrap();
    assert!(store.live_streams().unwrap().is_empty());
    assert!(store.begin_publish(&key).unwrap().accepted().is_some());
}

#[test]
fn banned_and_rotated_keys_are_refused() {
    let (_dir, store) = temp_store();
    let (_, key) = store.add_user("alice", false).unwrap();
    store.set_banned("alice", true).unwrap();
    assert_eq!(
        store.begin_publish(&key).unwrap(),
        PublishDecision::Refused(PublishRefusal::Banned)
    );
    store.set_banned("ALICE", false).unwrap();
    let new_key = store.rotate_key("alice").unwrap();
    assert_eq!(
        store.begin_publish(&key).unwrap(),
        PublishDecision::Refused(PublishRefusal::UnknownKey)
    );
    assert!(store.begin_publish(&new_key).unwrap().accepted().is_some());
}

fn flagged(store: &Store) -> Vec<(String, PublishId)> {
    let mut drop: Vec<_> = (store.live_publishes().unwrap().into_iter())
        .filter(|p| p.drop_requested)
        .map(|p| (p.username, p.publish_id))
        .collect();
    drop.sort_by(|a, b| a.0.cmp(&b.0));
    drop
}

#[test]
fn ban_and_stop_requests_are_seen_by_the_server() {
    let (_dir, store) = temp_store();
    let (_, key) = store.add_user("alice", false).unwrap();
    let (_, bob_key) = store.add_user("bob", false).unwrap();
    let (alice, id) = store.begin_publish(&key).unwrap().accepted().unwrap();
    let (_, bob_id) = store.begin_publish(&bob_key).unwrap().accepted().unwrap();
    assert_eq!(store.live_publishes().unwrap().len(), 2);
    assert!(flagged(&store).is_empty());
    store.set_banned("alice", true).unwrap();
    assert!(store.request_stop("bob").unwrap());
    assert_eq!(
        flagged(&store),
        vec![("alice".to_string(), id), ("bob".to_string(), bob_id)]
    );
    store.end_publish(&alice, id).unwrap();
    assert!(!store.request_stop("alice").unwrap(), "not live any more");
}

#[test]
fn rotating_a_key_takes_its_publish_offline_so_the_new_key_goes_live_at_once() {
    let (_dir, store) = temp_store();
    let (_, key) = store.add_user("alice", false).unwrap();
    let (alice, old_id) = store.begin_publish(&key).unwrap().accepted().unwrap();
    let new_key = store.rotate_key("alice").unwrap();
    assert!(
        store.live_publishes().unwrap().is_empty(),
        "the thief's publish is no longer the live one"
    );
    let (_, new_id) = store.begin_publish(&new_key).unwrap().accepted().unwrap();
    // The old connection's late clean-up cannot take the owner's publish offline.
    store.end_publish(&alice, old_id).unwrap();
    let live = store.live_publishes().unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].publish_id, new_id);
}

#[test]
fn crash_reset_takes_everything_offline() {
    let (_dir, store) = temp_store();
    let (_, a) = store.add_user("alice", false).unwrap();
    let (_, b) = store.add_user("bob", false).unwrap();
    store.begin_publish(&a).unwrap().accepted().unwrap();
    store.begin_publish(&b).unwrap().accepted().unwrap();
    assert_eq!(store.reset_live().unwrap(), 2);
    assert!(store.live_streams().unwrap().is_empty());
    assert!(store.begin_publish(&a).unwrap().accepted().is_some());
}

#[test]
fn concurrent_go_live_has_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("boltstream.db");
    let (_, key) = Store::open(&path)
        .unwrap()
        .add_user("alice", false)
        .unwrap();
    for _round in 0..20 {
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (path, key, barrier) = (path.clone(), key.clone(), barrier.clone());
                std::thread::spawn(move || {
                    // Separate connections, as separate processes or tasks would have.
                    let store = Store::open(&path).unwrap();
                    barrier.wait();
                    store.begin_publish(&key).unwrap()
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<_> = (results.iter())
            .filter(|r| matches!(r, PublishDecision::Accepted(..)))
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        assert!(results
            .iter()
            .filter(|r| !matches!(r, PublishDecision::Accepted(..)))
            .all(|r| *r == PublishDecision::Refused(PublishRefusal::AlreadyLive)));
        let PublishDecision::Accepted(user, id) = winners[0] else {
            unreachable!("filtered")
        };
        Store::open(&path).unwrap().end_publish(user, *id).unwrap();
    }
}

#[test]
fn stats_round_trip() {
    let (_dir, store) = temp_store();
    let (_, key) = store.add_user("alice", false).unwrap();
    let (_, id) = store.begin_publish(&key).unwrap().accepted().unwrap();
    let stats = StreamStats {
        video_codec: "h264".into(),
        audio_codec: "aac".into(),
        width: 1280,
        height: 720,
        fps: 30.0,
        bitrate_kbps: 2500,
    };
    store.record_stats(id, &stats).unwrap();
    assert_eq!(store.live_streams().unwrap()[0].stats, stats);
    assert_eq!(store.live_stream("alice").unwrap().unwrap().stats, stats);
    assert_eq!(store.live_stream("bob").unwrap(), None);
}

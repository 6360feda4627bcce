use super::testdb::{node, on_both, TestDb};
use super::*;
use db::args;
use std::sync::{Arc, Barrier};

/// The node the single-node tests publish on: its lease outlasts any test.
fn here() -> NodeClaim {
    node("here", 600_000)
}

fn flagged(store: &Store, on: &NodeClaim) -> Vec<(String, PublishId)> {
    let mut drop: Vec<_> = (store.live_publishes(on).unwrap().into_iter())
        .filter(|p| p.drop_requested)
        .map(|p| (p.username, p.publish_id))
        .collect();
    drop.sort_by(|a, b| a.0.cmp(&b.0));
    drop
}

#[test]
fn refuses_a_sqlite_database_from_the_future() {
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
fn refuses_a_postgres_database_from_the_future() {
    let db = TestDb::postgres();
    let Database::Postgres(url) = db.database() else {
        unreachable!()
    };
    let mut client = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
    client
        .batch_execute(
            "CREATE TABLE boltstream_schema (version BIGINT NOT NULL);
             INSERT INTO boltstream_schema VALUES (99);",
        )
        .unwrap();
    assert!(matches!(
        Store::connect_postgres(url),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

#[test]
fn a_bad_postgres_url_is_a_clear_error_that_does_not_repeat_it() {
    let err = Store::connect_postgres("postgres://u:s3cret@127.0.0.1:1/db?sslmode=bogus")
        .err()
        .unwrap()
        .to_string();
    assert!(!err.contains("s3cret"), "{err}");
    let err = Store::connect_postgres("postgres://u:s3cret@127.0.0.1:1/db")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("database error"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

on_both! {
    fn migrates_an_empty_database_and_reopens_idempotently(db: &TestDb) {
        let store = db.open();
        let first = store.schema_version().unwrap();
        assert!(first >= 1);
        store.add_user("alice", false).unwrap();
        drop(store);
        let again = db.open();
        assert_eq!(again.schema_version().unwrap(), first);
        assert_eq!(again.list_users().unwrap().len(), 1);
    }

    fn nodes_opening_a_new_database_at_once_migrate_it_once(db: &TestDb) {
        let barrier = Arc::new(Barrier::new(4));
        let versions: Vec<i64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let barrier = Arc::clone(&barrier);
                    s.spawn(move || {
                        barrier.wait();
                        db.open().schema_version().unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(versions.windows(2).all(|w| w[0] == w[1]), "{versions:?}");
    }

    fn keys_are_stored_hashed_only(db: &TestDb) {
        let store = db.open();
        let (_, key) = store.add_user("alice", false).unwrap();
        let stored: String = store
            .with(|c| c.query_one("SELECT key_hash FROM streams", args![], |r| r.get(0)))
            .unwrap();
        assert_eq!(stored, key::storage_hash(&key));
        assert_ne!(stored, key);
    }

    fn user_rules(db: &TestDb) {
        let store = db.open();
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

    fn publish_lifecycle(db: &TestDb) {
        let store = db.open();
        let (alice, key) = store.add_user("alice", false).unwrap();
        assert_eq!(
            store.begin_publish("live_nonsense", &here()).unwrap(),
            PublishDecision::Refused(PublishRefusal::UnknownKey)
        );
        let (user, id) = store.begin_publish(&key, &here()).unwrap().accepted().unwrap();
        assert_eq!(user, alice);
        assert_eq!(
            store.begin_publish(&key, &here()).unwrap(),
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
        assert!(store.begin_publish(&key, &here()).unwrap().accepted().is_some());
    }

    fn banned_and_rotated_keys_are_refused(db: &TestDb) {
        let store = db.open();
        let (_, key) = store.add_user("alice", false).unwrap();
        store.set_banned("alice", true).unwrap();
        assert_eq!(
            store.begin_publish(&key, &here()).unwrap(),
            PublishDecision::Refused(PublishRefusal::Banned)
        );
        store.set_banned("ALICE", false).unwrap();
        let new_key = store.rotate_key("alice").unwrap();
        assert_eq!(
            store.begin_publish(&key, &here()).unwrap(),
            PublishDecision::Refused(PublishRefusal::UnknownKey)
        );
        assert!(store.begin_publish(&new_key, &here()).unwrap().accepted().is_some());
    }

    fn ban_and_stop_requests_are_seen_by_the_server(db: &TestDb) {
        let store = db.open();
        let (_, key) = store.add_user("alice", false).unwrap();
        let (_, bob_key) = store.add_user("bob", false).unwrap();
        let (alice, id) = store.begin_publish(&key, &here()).unwrap().accepted().unwrap();
        let (_, bob_id) = store.begin_publish(&bob_key, &here()).unwrap().accepted().unwrap();
        assert_eq!(store.live_publishes(&here()).unwrap().len(), 2);
        assert!(flagged(&store, &here()).is_empty());
        store.set_banned("alice", true).unwrap();
        assert!(store.request_stop("bob").unwrap());
        assert_eq!(
            flagged(&store, &here()),
            vec![("alice".to_string(), id), ("bob".to_string(), bob_id)]
        );
        store.end_publish(&alice, id).unwrap();
        assert!(!store.request_stop("alice").unwrap(), "not live any more");
    }

    fn rotating_a_key_takes_its_publish_offline_so_the_new_key_goes_live_at_once(db: &TestDb) {
        let store = db.open();
        let (_, key) = store.add_user("alice", false).unwrap();
        let (alice, old_id) = store.begin_publish(&key, &here()).unwrap().accepted().unwrap();
        let new_key = store.rotate_key("alice").unwrap();
        assert!(
            store.live_publishes(&here()).unwrap().is_empty(),
            "the thief's publish is no longer the live one"
        );
        let (_, new_id) = store.begin_publish(&new_key, &here()).unwrap().accepted().unwrap();
        // The old connection's late clean-up cannot take the owner's publish offline.
        store.end_publish(&alice, old_id).unwrap();
        let live = store.live_publishes(&here()).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].publish_id, new_id);
    }

    fn a_restarting_node_takes_offline_only_its_own_streams(db: &TestDb) {
        let store = db.open();
        let (_, a) = store.add_user("alice", false).unwrap();
        let (_, b) = store.add_user("bob", false).unwrap();
        let (_, c) = store.add_user("carol", false).unwrap();
        let (one, two) = (node("one", 600_000), node("two", 600_000));
        store.begin_publish(&a, &one).unwrap().accepted().unwrap();
        store.begin_publish(&b, &one).unwrap().accepted().unwrap();
        store.begin_publish(&c, &two).unwrap().accepted().unwrap();
        assert_eq!(store.reset_live("one").unwrap(), 2);
        let live: Vec<_> = store.live_streams().unwrap().into_iter().map(|r| r.username).collect();
        assert_eq!(live, vec!["carol".to_string()]);
        assert!(store.begin_publish(&a, &two).unwrap().accepted().is_some());
    }

    fn concurrent_go_live_has_exactly_one_winner(db: &TestDb) {
        let (_, key) = db.open().add_user("alice", false).unwrap();
        for _round in 0..20 {
            let barrier = Arc::new(Barrier::new(8));
            let results: Vec<PublishDecision> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|i| {
                        let (key, barrier) = (key.clone(), barrier.clone());
                        s.spawn(move || {
                            // Separate connections, as separate processes or nodes would have.
                            let store = db.open();
                            barrier.wait();
                            store.begin_publish(&key, &node(&format!("n{}", i % 2), 600_000)).unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
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
            db.open().end_publish(user, *id).unwrap();
        }
    }

    fn stats_round_trip(db: &TestDb) {
        let store = db.open();
        let (_, key) = store.add_user("alice", false).unwrap();
        let (user, id) = store.begin_publish(&key, &here()).unwrap().accepted().unwrap();
        let stats = StreamStats {
            video_codec: "h264".into(),
            audio_codec: "aac".into(),
            width: 1280,
            height: 720,
            fps: 30.0,
            bitrate_kbps: 2500,
            playable: true,
            thumbnail: Some(7),
        };
        store.record_stats(id, &stats).unwrap();
        assert_eq!(store.live_streams().unwrap()[0].stats, stats);
        assert_eq!(store.live_stream("alice").unwrap().unwrap().stats, stats);
        assert_eq!(store.live_stream("bob").unwrap(), None);
        // The next publish starts with nothing of the last one's: no picture that is gone.
        store.end_publish(&user, id).unwrap();
        assert!(store.begin_publish(&key, &here()).unwrap().accepted().is_some());
        let fresh = store.live_stream("alice").unwrap().unwrap().stats;
        assert_eq!(fresh, StreamStats::default());
    }

    fn a_claim_holds_while_renewed_and_lapses_when_its_node_stops(db: &TestDb) {
        let (on_a, on_b) = (db.open(), db.open());
        let (_, key) = on_a.add_user("alice", false).unwrap();
        let (a, b) = (node("a", 400), node("b", 400));
        let (_, id) = on_a.begin_publish(&key, &a).unwrap().accepted().unwrap();
        assert_eq!(
            on_b.holder("alice").unwrap(),
            Some(Holder {
                node_id: "a".to_string(),
                url: a.url.clone()
            })
        );
        // Renewed (as the drop watch does), the claim outlives its lease many times over.
        for _ in 0..8 {
            std::thread::sleep(Duration::from_millis(100));
            let held = on_a.live_publishes(&a).unwrap();
            assert_eq!(held.len(), 1);
            assert!(!held[0].drop_requested);
            assert_eq!(
                on_b.begin_publish(&key, &b).unwrap(),
                PublishDecision::Refused(PublishRefusal::AlreadyLive),
                "a second publish anywhere is refused while the claim lives"
            );
        }
        assert!(on_b.live_publishes(&b).unwrap().is_empty(), "b holds nothing");
        // Node a stops renewing (it died): within the lease the stream is offline everywhere.
        std::thread::sleep(Duration::from_millis(500));
        assert!(on_b.live_streams().unwrap().is_empty());
        assert_eq!(on_b.live_stream("alice").unwrap(), None);
        assert_eq!(on_b.holder("alice").unwrap(), None);
        // A lapsed claim is not revived by a late renewal: node a is told to drop it.
        let late = on_a.live_publishes(&a).unwrap();
        assert_eq!(late.len(), 1);
        assert!(late[0].drop_requested, "{late:?}");
        assert_eq!(on_b.live_streams().unwrap().len(), 0);
        // The publisher reconnects through the front and lands on b.
        let (_, id_b) = on_b.begin_publish(&key, &b).unwrap().accepted().unwrap();
        assert_ne!(id, id_b);
        assert_eq!(on_a.holder("alice").unwrap().unwrap().node_id, "b");
        assert!(on_a.live_publishes(&a).unwrap().is_empty(), "a's publish is gone");
        // a's late clean-up of its old publish cannot end b's.
        on_a.end_publish(&Username::parse("alice").unwrap(), id).unwrap();
        assert_eq!(on_b.live_publishes(&b).unwrap().len(), 1);
    }

    fn a_ban_or_key_rotation_on_one_node_reaches_the_node_holding_the_publish(db: &TestDb) {
        let (on_a, on_b) = (db.open(), db.open());
        let (_, alice_key) = on_a.add_user("alice", false).unwrap();
        let (_, bob_key) = on_a.add_user("bob", false).unwrap();
        let b = node("b", 600_000);
        let (_, alice_id) = on_b.begin_publish(&alice_key, &b).unwrap().accepted().unwrap();
        let (_, bob_id) = on_b.begin_publish(&bob_key, &b).unwrap().accepted().unwrap();
        on_a.set_banned("alice", true).unwrap();
        assert_eq!(flagged(&on_b, &b), vec![("alice".to_string(), alice_id)]);
        on_a.rotate_key("bob").unwrap();
        let held = on_b.live_publishes(&b).unwrap();
        assert!(
            held.iter().all(|p| p.publish_id != bob_id),
            "bob's publish is no longer the live one: {held:?}"
        );
    }

    fn the_recordings_index_lists_every_nodes_recordings_and_marks_deletions(db: &TestDb) {
        use crate::record::RecordingInfo;
        let store = db.open();
        store.add_user("alice", false).unwrap();
        let (a, b) = (node("a", 1000), node("b", 1000));
        let info = |id: u64, private: bool| RecordingInfo {
            id,
            title: "a title".into(),
            duration_ms: 4000,
            bytes: 100,
            ended_ms: 5,
            thumbnail: !private,
            private,
        };
        let alice = |id: u64, private: bool| ("alice".to_string(), info(id, private));
        store.index_recordings(&a, &[alice(1, false)]).unwrap();
        let ghost = ("ghost".to_string(), info(3, false));
        store.index_recordings(&b, &[alice(2, true), ghost]).unwrap();
        assert_eq!(
            store.indexed_recordings("alice").unwrap(),
            vec![info(2, true), info(1, false)],
            "every node's, newest first; an unknown channel's skipped"
        );
        let holder = store.recording_holder("alice", 2).unwrap().unwrap();
        assert_eq!((holder.node_id.as_str(), holder.url), ("b", b.url.clone()));
        // Re-indexing the same recording is an update, not a second row.
        store.index_recordings(&b, &[alice(2, true)]).unwrap();
        assert_eq!(store.indexed_recordings("alice").unwrap().len(), 2);

        assert!(store.mark_recording_deleted("alice", 2).unwrap());
        assert!(!store.mark_recording_deleted("alice", 9).unwrap());
        assert!(!store.mark_recording_deleted("nobody", 1).unwrap());
        assert_eq!(store.indexed_recordings("alice").unwrap(), vec![info(1, false)]);
        assert_eq!(store.recording_holder("alice", 2).unwrap(), None);
        assert_eq!(
            store.deleted_recordings("b").unwrap(),
            vec![("alice".to_string(), 2)]
        );
        assert!(store.deleted_recordings("a").unwrap().is_empty());
        store
            .unindex_recordings("b", &[("alice".to_string(), 2)], false)
            .unwrap();
        assert!(store.deleted_recordings("b").unwrap().is_empty());

        store.index_recordings(&b, &[alice(4, false)]).unwrap();
        store.unindex_recordings("b", &[], true).unwrap();
        assert_eq!(
            store.indexed_recordings("alice").unwrap(),
            vec![info(1, false)],
            "a node starting afresh clears only its own rows"
        );
    }

    fn viewers_count_once_across_nodes_and_expire(db: &TestDb) {
        let (on_a, on_b) = (db.open(), db.open());
        on_a.add_user("alice", false).unwrap();
        on_a.add_user("bob", false).unwrap();
        let beat = |viewer: &str, channel: &str| (viewer.to_string(), channel.to_string());
        on_a.record_viewers(&[beat("v1", "alice"), beat("v2", "alice")], 1_000)
            .unwrap();
        // v1's next heartbeat reached b; v3 watches bob; a made-up channel counts nobody.
        on_b.record_viewers(&[beat("v1", "alice"), beat("v3", "bob"), beat("v4", "ghost")], 2_000)
            .unwrap();
        let mut counts = on_a.viewer_counts(0).unwrap();
        counts.sort();
        assert_eq!(counts, vec![("alice".to_string(), 2), ("bob".to_string(), 1)]);
        // v1 moved to bob: counted there only.
        on_b.record_viewers(&[beat("v1", "bob")], 3_000).unwrap();
        let mut counts = on_b.viewer_counts(0).unwrap();
        counts.sort();
        assert_eq!(counts, vec![("alice".to_string(), 1), ("bob".to_string(), 2)]);
        // Not seen since 2 500: v2 (1 000) and v3 (2 000) are forgotten.
        assert_eq!(
            on_a.viewer_counts(2_500).unwrap(),
            vec![("bob".to_string(), 1)]
        );
    }
}

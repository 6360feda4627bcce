//! Does a router cost the live-media hot path? The same real origin (`origin::serve` over a real
//! `HlsOutput` holding a packaged 2.5 Mb/s stream) reached two ways, measured in the same run:
//!
//! - `plain`: what the server does — `shared`'s classifier, then a match on the route.
//! - `axum`: an axum `Router` route `/live/{user}/{file}` in front of the same classifier and
//!   origin, its response boxed into axum's body, as the website's responses are.
//!
//! Each is measured in process (the dispatch and the handler, no socket) and over loopback HTTP/1.1
//! keep-alive with a hyper client (what an edge's request costs), for a playlist (small: the
//! router's share is largest) and a segment.
//!
//! `cargo bench -p boltstream-ingest --bench live_dispatch`

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::routing::get;
use axum::Router;
use boltstream_hls::synthetic;
use boltstream_ingest::config::Settings;
use boltstream_ingest::hls::HlsOutput;
use boltstream_ingest::live::SinkFactory;
use boltstream_ingest::origin;
use boltstream_ingest::respond::Resp;
use boltstream_shared::route::{classify, Route};
use boltstream_shared::username::Username;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Either, Empty};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

struct Live {
    hls: Arc<HlsOutput>,
    settings: Arc<Settings>,
    playback: boltstream_ingest::playback::PlaybackSecrets,
    thumbs: Arc<boltstream_ingest::thumbs::Thumbnails>,
    nodes: boltstream_ingest::nodes::Nodes,
}

/// The plain dispatch: classify, match.
async fn plain<B>(live: &Live, req: Request<B>) -> Resp {
    let route = classify(req.uri().path().as_bytes());
    match route {
        Route::LivePlaylist { .. } | Route::LiveSegment { .. } => {
            origin::serve(
                &live.hls,
                &live.thumbs,
                &live.playback,
                &live.nodes,
                &live.settings.policy,
                &route,
                &req,
            )
            .await
        }
        _ => unreachable!("the bench asks only for live media"),
    }
}

/// The body is dropped first: axum's body is not `Sync`, so a handler future holding the request
/// by reference across an await would not be `Send`.
async fn via_router(State(live): State<Arc<Live>>, req: Request) -> Resp {
    let (head, _) = req.into_parts();
    plain(&live, Request::from_parts(head, ())).await
}

fn router(live: Arc<Live>) -> Router {
    Router::new()
        .route("/live/{user}/{file}", get(via_router))
        .with_state(live)
}

/// A live channel with a packaged window: 12 s of synthetic media through the real sink.
fn live_channel(rt: &Runtime, dir: &std::path::Path) -> (Arc<Live>, String) {
    let settings = Arc::new(Settings {
        data: dir.to_path_buf(),
        hls_window_in_memory: true,
        ..Settings::default()
    });
    let hls = rt
        .block_on(async {
            HlsOutput::start(
                &settings,
                [7; 16],
                CancellationToken::new(),
                &TaskTracker::new(),
            )
        })
        .expect("HLS output");
    let user = Username::parse("alice").expect("valid name");
    let mut sink = hls.open(&user, &boltstream_ingest::live::PublishSpec::default());
    for (i, media) in synthetic::stream(12).into_iter().enumerate() {
        sink.push(media, 1_700_000_000_000 + i as i64)
            .expect("valid media");
    }
    rt.block_on(hls.flush());
    let playlist = hls.playlist(&user).expect("a segment closed");
    let text = String::from_utf8(playlist.body.to_vec()).expect("text");
    let segment = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .expect("a segment listed")
        .to_string();
    std::mem::forget(sink);
    let playback = Default::default();
    (
        Arc::new(Live {
            hls,
            settings,
            playback,
            thumbs: boltstream_ingest::thumbs::Thumbnails::start(Duration::ZERO, 1).unwrap(),
            nodes: boltstream_ingest::nodes::Nodes::new(
                Arc::new(boltstream_ingest::store::Store::open_in_memory().unwrap()),
                "local".into(),
                1 << 20,
            ),
        }),
        segment,
    )
}

/// Serves `live` on a loopback port, plain or through the router.
async fn serve(live: Arc<Live>, with_router: bool) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(Arc::clone(&live));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (live, app) = (Arc::clone(&live), app.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let (live, app) = (Arc::clone(&live), app.clone());
                    async move {
                        let response = if with_router {
                            let Ok(r) = app.oneshot(req).await;
                            r.map(Either::Right)
                        } else {
                            plain(&live, req).await.map(Either::Left)
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    addr
}

/// `iters` GETs of `path` on one keep-alive connection; returns the time they took.
async fn fetch(addr: std::net::SocketAddr, path: &str, iters: u64) -> Duration {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let start = Instant::now();
    for _ in 0..iters {
        let req = hyper::Request::get(path)
            .header("host", "bench")
            .body(Empty::<bytes::Bytes>::new())
            .expect("request");
        send.ready().await.expect("connection ready");
        let response = send.send_request(req).await.expect("response");
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.expect("body");
        black_box(body.to_bytes().len());
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (live, segment) = live_channel(&rt, dir.path());
    let app = router(Arc::clone(&live));
    let paths = [
        ("playlist", "/live/alice/index.m3u8".to_string()),
        ("segment", format!("/live/alice/{segment}")),
    ];

    for (what, path) in &paths {
        let mut group = c.benchmark_group(format!("in_process_{what}"));
        group.bench_function("plain", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let req = Request::get(path.as_str()).body(()).expect("request");
                        black_box(plain(&live, req).await);
                    }
                    start.elapsed()
                })
            })
        });
        group.bench_function("axum", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let req = Request::get(path.as_str())
                            .body(axum::body::Body::empty())
                            .expect("request");
                        let Ok(r) = app.clone().oneshot(req).await;
                        black_box(r);
                    }
                    start.elapsed()
                })
            })
        });
        group.finish();
    }

    let plain_addr = rt.block_on(serve(Arc::clone(&live), false));
    let axum_addr = rt.block_on(serve(Arc::clone(&live), true));
    for (what, path) in &paths {
        let mut group = c.benchmark_group(format!("loopback_{what}"));
        for (name, addr) in [("plain", plain_addr), ("axum", axum_addr)] {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| rt.block_on(fetch(addr, path, iters)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

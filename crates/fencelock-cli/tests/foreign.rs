//! `status` and a busy `run` on a key held by a program that is not
//! fencelock, on every store: held, by "not fencelock".

use fencelock_testbed::fixture::Fixture;

mod common;

use common::{fixture, json, output, text, BACKENDS};

/// Holds `key` the way a program that is not fencelock would, on this
/// fixture's store; dropping it lets go.
enum Foreign {
    Redis,
    Zk { _session: zookeeper_client::Client },
    Etcd,
    File { _flock: std::fs::File },
}

async fn hold_foreign(f: &Fixture, key: &str, dir: &std::path::Path) -> Foreign {
    let ep = || f.endpoints()[0];
    match f.backend() {
        "redis" => {
            let client = redis::Client::open(format!("redis://{}", ep())).unwrap();
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            let () = redis::cmd("SET")
                .arg(format!("fencelock:{{{key}}}:lock"))
                .arg("held-by-a-shell-script")
                .query_async(&mut c)
                .await
                .unwrap();
            Foreign::Redis
        }
        "zookeeper" => {
            use zookeeper_client as zk;
            let lock = fencelock::zookeeper::ZkLock::connect(&f.url())
                .await
                .unwrap();
            let parent = lock.lock_path(key);
            let client = zk::Client::connect(&ep().to_string()).await.unwrap();
            let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
            let mut path = String::new();
            for part in parent.trim_start_matches('/').split('/') {
                path.push('/');
                path.push_str(part);
                match client.create(&path, &[], &persistent).await {
                    Ok(_) | Err(zk::Error::NodeExists) => {}
                    Err(e) => panic!("{path}: {e}"),
                }
            }
            // Curator's unprotected lock node: `lock-<sequence>`.
            let mode = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
            client
                .create(&format!("{parent}/lock-"), b"", &mode)
                .await
                .unwrap();
            Foreign::Zk { _session: client }
        }
        "etcd" => {
            let lock = fencelock::etcd::EtcdLock::connect(&f.url()).await.unwrap();
            let prefix = lock.inspect(key).await.unwrap().etcd_prefix;
            let mut c = etcd_client::Client::connect([format!("http://{}", ep())], None)
                .await
                .unwrap();
            // `etcdctl lock` and Go's concurrency.Mutex write an empty value.
            c.put(format!("{prefix}694d7f3a"), "", None).await.unwrap();
            Foreign::Etcd
        }
        "file" => {
            let path = dir.join("keys").join(format!("{key}.lock"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let file = std::fs::File::create(&path).unwrap();
            file.try_lock().unwrap(); // flock(1) on it, no fencelock record
            Foreign::File { _flock: file }
        }
        other => panic!("no foreign holder for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_busy_show_a_holder_that_is_not_fencelock() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let f = match *backend {
            "file" => Fixture::file().unwrap(),
            b => fixture(b).await,
        };
        let url = if *backend == "file" {
            format!("file://{}", dir.path().display())
        } else {
            f.url()
        };
        let _held = hold_foreign(&f, "foreign", dir.path()).await;
        let out = output(&url, &["run", "--wait", "0", "foreign", "--", "true"]).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(75), "{backend}: {err}");
        assert!(err.contains("held by not fencelock"), "{backend}: {err}");
        let out = output(&url, &["status", "foreign"]).await;
        let line = text(&out.stdout);
        assert!(
            line.starts_with("foreign: held by not fencelock"),
            "{backend}: {line}"
        );
        let out = output(&url, &["--json", "status", "foreign"]).await;
        let v = json(&out.stdout);
        assert_eq!(v["held"], true, "{backend}: {v}");
        assert_eq!(v["holders"][0]["foreign"], true, "{backend}: {v}");
        let out = output(&url, &["--json", "list", "foreign"]).await;
        assert_eq!(
            json(&out.stdout).as_array().map(Vec::len),
            Some(1),
            "{backend}"
        );
    }
}

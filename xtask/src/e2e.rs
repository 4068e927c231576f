//! `cargo xtask e2e`: end-to-end tests against a real Elasticsearch.
//!
//! The cluster comes from, in order: `ES_URL` when set; otherwise the Elasticsearch distribution
//! Elastic publishes on Maven Central (`org.elasticsearch.distribution.integ-test-zip:elasticsearch`,
//! fetched with `mvn`, cached in `~/.m2`), unpacked under `target/e2e`, started single-node on a
//! free loopback port as an unprivileged user (Elasticsearch refuses to run as root) with a
//! JDK 21+, security off, a small heap. (A Docker engine is not used yet: none runs here.)
//! The tests get the cluster as `ES_URL`; the cluster is stopped and its data removed at the end,
//! also when the tests fail.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::run_command;

/// The newest 9.x integ-test-zip that Maven Central serves (9.5.5 and 9.6.x did not resolve on
/// 2026-12-03).
const ES_VERSION: &str = "9.5.4";
const ES_USER: &str = "ti-es";
const STARTUP_LIMIT: Duration = Duration::from_secs(180);

pub(crate) fn run() -> anyhow::Result<()> {
    if let Ok(url) = std::env::var("ES_URL") {
        eprintln!("xtask e2e: using the cluster at ES_URL");
        return run_tests(&url);
    }
    let cluster = LocalCluster::start()?;
    let result = run_tests(&cluster.url);
    cluster.stop();
    result
}

fn run_tests(url: &str) -> anyhow::Result<()> {
    run_command(
        Command::new("cargo")
            .args([
                "test",
                "-p",
                "ti-anomali",
                "--features",
                "e2e",
                "--test",
                "serve_es",
                "--",
                "--test-threads=1",
            ])
            .env("ES_URL", url),
    )?;
    run_command(
        Command::new("cargo")
            .args([
                "test",
                "-p",
                "integration-tests",
                "--features",
                "e2e",
                "--test",
                "e2e",
                "--",
                "--test-threads=1",
            ])
            .env("ES_URL", url),
    )
}

struct LocalCluster {
    child: Child,
    url: String,
    /// This run's data and logs, removed at the end.
    run_dir: PathBuf,
}

impl LocalCluster {
    fn start() -> anyhow::Result<Self> {
        let zip = fetch_distribution()?;
        // Outside the checkout: the unprivileged user must reach it whatever folder CI clones
        // into (a checkout under /root would be out of its reach).
        let work = std::env::temp_dir().join("ti-anomali-e2e");
        let home = work.join(format!("elasticsearch-{ES_VERSION}"));
        if !home.join("bin").join("elasticsearch").exists() {
            std::fs::create_dir_all(&work).context("cannot create the e2e folder")?;
            unpack(&zip, &work)?;
        }
        // Data and logs per run, so two runs never share a cluster's files.
        let run_dir = work.join(format!("run-{}", std::process::id()));
        let data = run_dir.join("data");
        let logs = run_dir.join("logs");
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data)?;
        std::fs::create_dir_all(&logs)?;
        let java_home = find_jdk()?;
        let port = free_port()?;
        let transport = free_port()?;
        let as_root = is_root();
        if as_root {
            ensure_user()?;
            run_command(Command::new("chown").args(["-R", ES_USER]).arg(&work))?;
        }
        let mut command = if as_root {
            let mut command = Command::new("runuser");
            command.args(["-u", ES_USER, "--"]);
            command.arg(home.join("bin").join("elasticsearch"));
            command
        } else {
            Command::new(home.join("bin").join("elasticsearch"))
        };
        command
            .args([
                "-E",
                "discovery.type=single-node",
                "-E",
                "network.host=127.0.0.1",
            ])
            .args([
                "-E",
                &format!("http.port={port}"),
                "-E",
                &format!("transport.port={transport}"),
            ])
            .args(["-E", "xpack.security.enabled=false"])
            .arg("-E")
            .arg(format!("path.data={}", data.display()))
            .arg("-E")
            .arg(format!("path.logs={}", logs.display()))
            .env("ES_JAVA_HOME", &java_home)
            .env("ES_JAVA_OPTS", "-Xms512m -Xmx512m")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        eprintln!(
            "xtask e2e: starting Elasticsearch {ES_VERSION} on 127.0.0.1:{port} (JDK {})",
            java_home.display()
        );
        let child = command.spawn().context("cannot start Elasticsearch")?;
        let cluster = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            run_dir,
        };
        if let Err(error) = cluster.wait_until_ready() {
            let log = std::fs::read_to_string(logs.join("elasticsearch.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            cluster.stop();
            bail!(
                "{error:#}\nlast lines of the Elasticsearch log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(cluster)
    }

    fn wait_until_ready(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        let health = format!(
            "{}/_cluster/health?wait_for_status=yellow&timeout=5s",
            self.url
        );
        while started.elapsed() < STARTUP_LIMIT {
            let answer = Command::new("curl")
                .args(["-s", "-f", "--max-time", "10", &health])
                .output();
            if let Ok(answer) = answer
                && answer.status.success()
            {
                eprintln!(
                    "xtask e2e: cluster ready in {:.0} s",
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        bail!(
            "Elasticsearch was not ready within {} s",
            STARTUP_LIMIT.as_secs()
        )
    }

    fn stop(mut self) {
        // SIGTERM lets Elasticsearch shut down cleanly; SIGKILL if it does not within 30 s.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The runuser child may leave the JVM behind: stop whatever runs as the test user.
        if is_root() {
            let _ = Command::new("pkill")
                .args(["-KILL", "-u", ES_USER])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// Unpacks with `unzip`, or with Python's zipfile (then restoring the scripts' execute bits).
fn unpack(zip: &Path, into: &Path) -> anyhow::Result<()> {
    let unzipped = Command::new("unzip")
        .args(["-q", "-o"])
        .arg(zip)
        .arg("-d")
        .arg(into)
        .status();
    if unzipped.is_ok_and(|s| s.success()) {
        return Ok(());
    }
    run_command(
        Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(zip)
            .arg(into),
    )
    .context("cannot unpack the distribution (neither unzip nor python3 worked)")?;
    let bin = into.join(format!("elasticsearch-{ES_VERSION}")).join("bin");
    run_command(Command::new("chmod").arg("-R").arg("a+x").arg(&bin))
}

/// The distribution zip, from `~/.m2` or fetched from Maven Central with `mvn`.
fn fetch_distribution() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set")?;
    let zip = home
        .join(".m2/repository/org/elasticsearch/distribution/integ-test-zip/elasticsearch")
        .join(ES_VERSION)
        .join(format!("elasticsearch-{ES_VERSION}.zip"));
    if !zip.exists() {
        let artifact =
            format!("org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ES_VERSION}:zip");
        eprintln!("xtask e2e: fetching {artifact} from Maven Central");
        run_command(
            Command::new("mvn")
                .args(["-q", "-B", "dependency:get", "-Dtransitive=false"])
                .arg(format!("-Dartifact={artifact}")),
        )
        .context("mvn could not fetch the Elasticsearch distribution (is Maven installed?)")?;
    }
    if !zip.exists() {
        bail!("mvn reported success but {} is missing", zip.display());
    }
    Ok(zip)
}

/// A JDK 21 or newer: `ES_JAVA_HOME`, else the newest under /usr/lib/jvm.
fn find_jdk() -> anyhow::Result<PathBuf> {
    if let Some(home) = std::env::var_os("ES_JAVA_HOME") {
        return Ok(PathBuf::from(home));
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/jvm")
        .context("no /usr/lib/jvm: install a JDK 21+ or set ES_JAVA_HOME")?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("bin").join("java").exists() && !path.is_symlink())
        .filter_map(|path| {
            let name = path.file_name()?.to_string_lossy().into_owned();
            let version = name
                .split(|c: char| !c.is_ascii_digit())
                .find(|part| !part.is_empty())?
                .parse()
                .ok()?;
            Some((version, path))
        })
        .filter(|(version, _)| *version >= 21 && *version < 100)
        .collect();
    candidates.sort();
    candidates
        .pop()
        .map(|(_, path)| path)
        .context("no JDK 21+ under /usr/lib/jvm: install one or set ES_JAVA_HOME")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn ensure_user() -> anyhow::Result<()> {
    let exists = Command::new("id")
        .arg(ES_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success();
    if !exists {
        run_command(Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            ES_USER,
        ]))?;
    }
    Ok(())
}

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
        eprintln!("xtask e2e: using the cluster at ES_URL (tests that restart it are skipped)");
        return run_tests(&url, None);
    }
    let cluster = LocalCluster::start()?;
    let result = run_tests(&cluster.url, Some(&cluster.restart_script));
    cluster.stop();
    result
}

/// Runs `work` with a cluster's URL: `ES_URL` when set, else a cluster started (and stopped)
/// here.
pub(crate) fn with_cluster(work: impl FnOnce(&str) -> anyhow::Result<()>) -> anyhow::Result<()> {
    if let Ok(url) = std::env::var("ES_URL") {
        return work(&url);
    }
    let cluster = LocalCluster::start()?;
    let result = work(&cluster.url);
    cluster.stop();
    result
}

/// `cargo xtask es [--minutes N]`: a cluster for development, as e2e starts it, kept for N
/// minutes (default 60) or until this process is stopped with Ctrl-C (then stop it by the pid
/// in its run folder's `elasticsearch.pid`). Prints its URL.
pub(crate) fn dev_cluster(minutes: u64) -> anyhow::Result<()> {
    let cluster = LocalCluster::start()?;
    eprintln!(
        "xtask es: ES_URL={} (restart script: {}); kept for {minutes} min",
        cluster.url,
        cluster.restart_script.display()
    );
    let work = std::env::temp_dir().join("ti-anomali-e2e");
    std::fs::write(work.join("dev-url"), &cluster.url)?;
    std::thread::sleep(Duration::from_secs(minutes.saturating_mul(60)));
    cluster.stop();
    Ok(())
}

fn run_tests(url: &str, restart_script: Option<&Path>) -> anyhow::Result<()> {
    // (package, test target): the binary as users run it, then the crates together, then the
    // index layout (the latest index upgrade and self-managed source retention).
    let suites = [
        ("ti-anomali", "serve_es"),
        ("ti-anomali", "agent_es"),
        ("integration-tests", "e2e"),
        ("integration-tests", "e2e_layout"),
    ];
    for (package, test) in suites {
        let mut command = Command::new("cargo");
        command
            .args(["test", "-p", package, "--features", "e2e", "--test", test])
            .args(["--", "--test-threads=1"])
            .env("ES_URL", url);
        match restart_script {
            Some(script) => {
                command.env("TI_E2E_ES_RESTART", script);
            }
            // Restarting needs the cluster this task started.
            None => {
                command.args(["--skip", "restart"]);
            }
        }
        run_command(&mut command)?;
    }
    Ok(())
}

struct LocalCluster {
    child: Child,
    url: String,
    /// This run's data and logs, removed at the end.
    run_dir: PathBuf,
    /// Elasticsearch writes its process id here (also after a restart by the tests).
    pid_file: PathBuf,
    /// `restart.sh [seconds]`: stops the cluster, waits, starts it again on the same port and
    /// data, and returns once it is ready; for the tests of an outage.
    restart_script: PathBuf,
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
        let pid_file = run_dir.join("elasticsearch.pid");
        let _ = std::fs::remove_dir_all(&run_dir);
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
        let mut argv: Vec<String> = Vec::new();
        if as_root {
            argv.extend(["runuser", "-u", ES_USER, "--"].map(str::to_owned));
        }
        argv.push(home.join("bin").join("elasticsearch").display().to_string());
        argv.extend(
            [
                "discovery.type=single-node".to_owned(),
                "network.host=127.0.0.1".to_owned(),
                format!("http.port={port}"),
                format!("transport.port={transport}"),
                "xpack.security.enabled=false".to_owned(),
                format!("path.data={}", data.display()),
                format!("path.logs={}", logs.display()),
            ]
            .into_iter()
            .flat_map(|setting| ["-E".to_owned(), setting]),
        );
        argv.extend(["-p".to_owned(), pid_file.display().to_string()]);
        let url = format!("http://127.0.0.1:{port}");
        let restart_script = run_dir.join("restart.sh");
        std::fs::write(
            &restart_script,
            restart_script_text(&argv, &java_home, &pid_file, &url),
        )?;
        run_command(Command::new("chmod").arg("a+x").arg(&restart_script))?;

        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env("ES_JAVA_HOME", &java_home)
            .env("ES_JAVA_OPTS", ES_JAVA_OPTS)
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
            url,
            run_dir,
            pid_file,
            restart_script,
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
        // SIGTERM lets Elasticsearch shut down cleanly; SIGKILL if it does not within 30 s. The
        // process may be a later one than our child, started by the restart script.
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = Command::new("kill").args(["-TERM", pid.trim()]).status();
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let child_done = matches!(self.child.try_wait(), Ok(Some(_)));
            let pid_done = std::fs::read_to_string(&self.pid_file).map_or(true, |pid| {
                !Command::new("kill")
                    .args(["-0", pid.trim()])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            });
            if child_done && pid_done {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
        // Only this run's cluster, by its pid file: another cluster of the same user (a
        // development one, a parallel run) stays up.
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

const ES_JAVA_OPTS: &str = "-Xms512m -Xmx512m";

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A script that stops the cluster (by its pid file), sleeps `$1` seconds, starts it again
/// detached with the same arguments, and waits until it answers (at most 180 s).
fn restart_script_text(argv: &[String], java_home: &Path, pid_file: &Path, url: &str) -> String {
    let command: Vec<String> = argv.iter().map(|word| shell_quote(word)).collect();
    format!(
        r#"#!/bin/sh
# Written by cargo xtask e2e: stops this run's Elasticsearch, waits $1 seconds, starts it again.
pid=$(cat {pid_file})
kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL "$pid" 2>/dev/null
sleep "${{1:-0}}"
ES_JAVA_HOME={java_home} ES_JAVA_OPTS={opts} setsid {command} -d </dev/null >/dev/null 2>&1
i=0
while [ $i -lt 1800 ]; do
  curl -s -f --max-time 5 '{url}/_cluster/health?wait_for_status=yellow&timeout=1s' >/dev/null && exit 0
  sleep 0.1; i=$((i+1))
done
echo "elasticsearch did not come back within 180 s" >&2
exit 1
"#,
        pid_file = shell_quote(&pid_file.display().to_string()),
        java_home = shell_quote(&java_home.display().to_string()),
        opts = shell_quote(ES_JAVA_OPTS),
        command = command.join(" "),
    )
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

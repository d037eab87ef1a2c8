//! Checkpoints: every so many steps the trained weights, the optimizer's moments and where
//! the run stands go to `OUT/checkpoint/`, so that a run killed halfway resumes where it was
//! by running the same command again.
//!
//! The weights go to a file named by the step and `state.json`, which names that file, is
//! replaced last (write, then rename): a kill at any moment leaves the previous checkpoint
//! whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::optim::AdamW;

/// The layout of `state.json` this version writes and reads.
pub const FORMAT: u32 = 1;

/// Where a run stands, besides its tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// Layout of this file.
    pub format: u32,
    /// Optimizer steps done.
    pub step: usize,
    /// Tokens trained on so far.
    pub tokens: usize,
    /// Seconds spent training so far.
    pub train_seconds: f64,
    /// The held-out loss of the starting model.
    pub eval_loss_before: Option<f64>,
    /// The tensors' file in the checkpoint folder.
    pub tensors: String,
    /// What the run was started with; resuming needs the same.
    pub fingerprint: serde_json::Value,
}

/// The checkpoint folder of the output folder `out`.
pub fn dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    write(&partial)?;
    std::fs::rename(&partial, path).map_err(|e| TrainError::io(path, e))
}

/// Saves `vars` and the optimizer's moments with `state`, then drops older tensor files.
pub fn save(out: &Path, state: &State, vars: &[(String, Var)], adam: &AdamW) -> Result<()> {
    let dir = dir(out);
    std::fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for (i, (name, var)) in vars.iter().enumerate() {
        tensors.insert(format!("param/{name}"), var.as_tensor().clone());
        let shape = var.shape();
        let moment = |m: &[f32]| Tensor::from_slice(m, shape, &Device::Cpu);
        tensors.insert(format!("m/{name}"), moment(&adam.m[i])?);
        tensors.insert(format!("v/{name}"), moment(&adam.v[i])?);
    }
    write_atomic(&dir.join(&state.tensors), |p| {
        Ok(candle_core::safetensors::save(&tensors, p)?)
    })?;
    let text = serde_json::to_string_pretty(state)
        .map_err(|e| TrainError::Data(format!("checkpoint state: {e}")))?;
    write_atomic(&dir.join("state.json"), |p| {
        std::fs::write(p, text).map_err(|e| TrainError::io(p, e))
    })?;
    let entries = std::fs::read_dir(&dir).map_err(|e| TrainError::io(&dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".safetensors") && name != state.tensors {
            // A stale file only costs disk; failing the run over it would cost the run.
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// The file name of the tensors saved at `step`.
pub fn tensors_file(step: usize) -> String {
    format!("step-{step:07}.safetensors")
}

/// Loads the checkpoint in `out` into `vars` and `adam` when there is one; refuses one made
/// with another `fingerprint`, saying which setting differs.
pub fn load(
    out: &Path,
    fingerprint: &serde_json::Value,
    vars: &[(String, Var)],
    adam: &mut AdamW,
) -> Result<Option<State>> {
    let path = dir(out).join("state.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TrainError::io(&path, e)),
    };
    let state: State = serde_json::from_str(&text).map_err(|e| {
        TrainError::Data(format!(
            "{}: not a checkpoint ({e}); run with --fresh to start over",
            path.display()
        ))
    })?;
    if state.format != FORMAT {
        return Err(TrainError::Data(format!(
            "{}: checkpoint format {} (this version reads {FORMAT}); run with --fresh",
            path.display(),
            state.format
        )));
    }
    if let Some(diff) = difference(&state.fingerprint, fingerprint) {
        return Err(TrainError::Options(format!(
            "{} holds a run with other settings ({diff}): run the same command to resume it, \
             or add --fresh to start over",
            dir(out).display()
        )));
    }
    let file = dir(out).join(&state.tensors);
    let tensors = candle_core::safetensors::load(&file, &Device::Cpu)?;
    for (i, (name, var)) in vars.iter().enumerate() {
        let get = |kind: &str| {
            tensors.get(&format!("{kind}/{name}")).ok_or_else(|| {
                TrainError::Data(format!("{}: no {kind} for '{name}'", file.display()))
            })
        };
        var.set(&get("param")?.to_dtype(var.dtype())?)?;
        let moment = |kind: &str| -> Result<Vec<f32>> {
            let t = get(kind)?;
            if t.shape() != var.shape() {
                return Err(TrainError::Data(format!(
                    "{}: {kind} of '{name}' has the wrong shape",
                    file.display()
                )));
            }
            Ok(t.to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1()?)
        };
        adam.m[i] = moment("m")?;
        adam.v[i] = moment("v")?;
    }
    adam.t = state.step;
    Ok(Some(state))
}

/// Removes the checkpoint of `out` (the run finished, or starts over).
pub fn remove(out: &Path) -> Result<()> {
    let dir = dir(out);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TrainError::io(&dir, e)),
        _ => Ok(()),
    }
}

/// The first setting whose value differs between two fingerprints, as "key: a there, b now".
fn difference(saved: &serde_json::Value, now: &serde_json::Value) -> Option<String> {
    let (Some(saved), Some(now)) = (saved.as_object(), now.as_object()) else {
        return (saved != now).then(|| "unreadable settings".to_string());
    };
    let mut keys: Vec<&String> = saved.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().find_map(|k| {
        let (a, b) = (saved.get(k), now.get(k));
        (a != b).then(|| {
            let show = |v: Option<&serde_json::Value>| v.map_or("none".into(), |v| v.to_string());
            format!("{k}: {} there, {} now", show(a), show(b))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_differing_setting_is_named() {
        let a = json!({"lr": 2e-5, "epochs": 3, "data_sha256": "ab"});
        assert_eq!(difference(&a, &a), None);
        let b = json!({"lr": 1e-4, "epochs": 3, "data_sha256": "ab"});
        assert_eq!(
            difference(&a, &b).as_deref(),
            Some("lr: 0.00002 there, 0.0001 now")
        );
        let c = json!({"lr": 2e-5, "epochs": 3});
        assert_eq!(
            difference(&a, &c).as_deref(),
            Some("data_sha256: \"ab\" there, none now")
        );
    }
}

//! Every weight gets its gradient, and it is the right one: backpropagation through the
//! training forward against central finite differences, in f64 on a tiny model.

use arena_train::mask::Example;
use arena_train::model::{TrainModel, Tuning};
use arena_worker::model::loader::dense::load_dense;
use arena_worker::tiny::write_tiny_hf;
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};

fn example() -> Example {
    let ids = vec![5, 17, 42, 3, 99, 7, 64, 12, 1, 30];
    // The first tokens are the "prompt"; the loss counts the rest.
    let supervised = (0..ids.len()).map(|i| i >= 4).collect();
    Example { ids, supervised }
}

fn loss(model: &TrainModel, ex: &Example) -> f64 {
    let (l, _) = model.loss_sum(ex).unwrap();
    l.to_scalar::<f64>().unwrap()
}

#[test]
fn every_weight_gets_the_gradient_finite_differences_give() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_hf(dir.path(), DType::F32, 11).unwrap();
    let dense = load_dense(dir.path(), &Device::Cpu).unwrap();
    let model = TrainModel::from_dense(&dense, DType::F64).unwrap();
    check_every_gradient(&model);
}

#[test]
fn every_lora_adapter_gets_its_gradient_through_the_frozen_projections() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_hf(dir.path(), DType::F32, 12).unwrap();
    let dense = load_dense(dir.path(), &Device::Cpu).unwrap();
    let tuning = Tuning::Lora {
        rank: 2,
        alpha: 4.0,
    };
    let model = TrainModel::new(&dense, DType::F64, tuning, 3).unwrap();
    let layers = dense.cfg.num_layers;
    assert_eq!(model.vars().len(), layers * 7 * 2, "A and B per projection");
    // B starts at zero, which leaves A without a gradient: one step first, so both have one.
    let (l, _) = model.loss_sum(&example()).unwrap();
    let grads = l.backward().unwrap();
    for (name, var) in model.vars() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        var.set(&(var.as_tensor() - (g * 0.5).unwrap()).unwrap())
            .unwrap();
    }
    check_every_gradient(&model);
}

/// Backpropagation's gradient of each of `model`'s trainable weights against central
/// differences at three sampled entries.
fn check_every_gradient(model: &TrainModel) {
    let ex = example();
    let (l, n) = model.loss_sum(&ex).unwrap();
    assert_eq!(n, 6);
    let grads = l.backward().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let eps = 1e-5;
    for (name, var) in model.vars() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"))
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        assert!(g.iter().any(|x| *x != 0.0), "{name}: gradient all zero");
        let original = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let shape = var.as_tensor().shape().clone();
        // The embedding's rows of tokens not in the example have no gradient: sample those
        // that are, elsewhere anywhere.
        let candidates: Vec<usize> = if name.contains("embed_tokens") {
            let h = shape.dims()[1];
            ex.ids
                .iter()
                .flat_map(|&t| (0..h).map(move |c| t as usize * h + c))
                .collect()
        } else {
            (0..original.len()).collect()
        };
        for _ in 0..3 {
            let i = candidates[rng.random_range(0..candidates.len())];
            let at = |delta: f64| {
                let mut w = original.clone();
                w[i] += delta;
                var.set(&Tensor::from_vec(w, shape.clone(), &Device::Cpu).unwrap())
                    .unwrap();
                loss(model, &ex)
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            var.set(&Tensor::from_vec(original.clone(), shape.clone(), &Device::Cpu).unwrap())
                .unwrap();
            let analytic = g[i];
            let tol = 1e-6 + 1e-4 * numeric.abs().max(analytic.abs());
            assert!(
                (numeric - analytic).abs() < tol,
                "{name}[{i}]: backprop {analytic}, finite differences {numeric}"
            );
        }
    }
}

//! Data-parallel policy updates on burn's own collective engine (burn-collective, burn 0.21's
//! backend-agnostic all-reduce: a local server thread, one peer thread per worker).
//!
//! Each worker gets its own copy of the model, the optimizer state and the batch on its device,
//! runs its share of the micro-batches ([`super::update::policy_update_on`]: micro-batch i on
//! worker i mod W), and all workers sum their gradients and measurements before every optimizer
//! step, so all take the same step; worker 0's model and optimizer state carry on. The same global
//! batch therefore gives the same update on 1 worker and on W (up to float summation order).
//!
//! What this does not do (burn 0.21): multi-node training (burn-collective's global level needs a
//! separate orchestrator, and its reduce/broadcast are single-node only), NCCL (burn's
//! `distributed` feature is wired into autodiff but untested here: no multi-GPU machine exercised
//! it), and splitting the rollouts (generation runs on worker 0's device).

use burn::collective::{CollectiveConfig, PeerId, finish_collective, register};
use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;

use super::batch::RlBatch;
use super::update::{Peer, UpdateConfig, UpdateStats, policy_update, policy_update_on};
use crate::model::Transformer;
use crate::optim::AdamW;

/// [`policy_update`] over `devices` (one worker per entry; one entry: no collective).
pub fn update_on_workers<AB: AutodiffBackend>(
    model: Transformer<AB>,
    opt: &mut AdamW<AB::InnerBackend>,
    batch: &RlBatch<AB::InnerBackend>,
    advantages: &[f64],
    reference: Option<&Transformer<AB::InnerBackend>>,
    cfg: &UpdateConfig,
    devices: &[AB::Device],
) -> (Transformer<AB>, UpdateStats) {
    if devices.len() <= 1 {
        return policy_update(model, opt, batch, advantages, reference, cfg);
    }
    let workers = devices.len();
    // each worker's own copies, made here and moved into its thread
    let jobs: Vec<_> = devices
        .iter()
        .map(|d| {
            let inner = d.clone(); // the autodiff backend's device is its inner backend's
            (
                d.clone(),
                model.clone().fork(d),
                opt.to_device(&inner),
                batch.to_device(&inner),
                reference.map(|r| r.clone().fork(&inner)),
            )
        })
        .collect();
    let mut results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .into_iter()
            .enumerate()
            .map(|(id, (device, m, mut o, b, r))| {
                s.spawn(move || {
                    let peer = PeerId::from(id as u32);
                    let config = CollectiveConfig::default().with_num_devices(workers);
                    register::<AB::InnerBackend>(peer, device, config)
                        .unwrap_or_else(|e| panic!("worker {id}: collective registration failed: {e:?}"));
                    let me = Peer { id, count: workers };
                    let (m, stats) = policy_update_on(m, &mut o, &b, advantages, r.as_ref(), cfg, me);
                    finish_collective::<AB::InnerBackend>(peer)
                        .unwrap_or_else(|e| panic!("worker {id}: leaving the collective failed: {e:?}"));
                    (m, o, stats)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a data-parallel worker panicked"))
            .collect()
    });
    let (m, o, stats) = results.swap_remove(0);
    *opt = o;
    (m, stats)
}

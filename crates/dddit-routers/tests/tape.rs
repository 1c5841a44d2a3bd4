//! Replaying a router's recorded host reads (what lets a forward be captured in a CUDA graph,
//! `dddit_core::routing::tape`) gives exactly the eager forward, for every router; and the
//! routers said to decide from the timestep alone record the same reads for any input.

use burn::prelude::*;
use burn::tensor::Distribution;
use dddit_core::dit::DiTConfig;
use dddit_core::routing::{tape, Mode};
use dddit_core::testing::{device, seeded};
use dddit_routers::fixtures::cases;
use dddit_routers::ForwardOptions;

#[test]
fn replayed_reads_reproduce_every_router_and_timestep_decisions_ignore_the_input() {
    let dev = device();
    let _g = seeded(&dev, 3);
    let mut m = DiTConfig::preset("DiT-T/4", 16, 1).unwrap();
    m.num_classes = 10;
    let b = 2;
    let x = Tensor::<4>::random([b, 1, 16, 16], Distribution::Normal(0.0, 1.0), &dev);
    let other = Tensor::<4>::random([b, 1, 16, 16], Distribution::Normal(0.0, 1.0), &dev);
    let y = Tensor::<1, Int>::from_ints([1, 4], &dev);
    let mut read_something = vec![];
    for case in cases(&m, &dev, None) {
        let ts = vec![case.steps[0]; b];
        let t = Tensor::<1>::from_floats(ts.iter().map(|&v| v as f32).collect::<Vec<_>>().as_slice(), &dev);
        let opts = ForwardOptions::new(&ts, Mode::Eval);
        let run = |x: &Tensor<4>| case.model.forward(x.clone(), t.clone(), y.clone(), &opts);
        let (eager, reads) = tape::record(|| run(&x));
        let replayed = tape::replay(&reads, || run(&x)).unwrap_or_else(|e| panic!("{}: {e}", case.label));
        let diff = (eager.out.clone() - replayed.out).abs().max().into_scalar::<f32>();
        assert_eq!(diff, 0.0, "{}: the replayed forward differs", case.label);
        assert_eq!(eager.flops, replayed.flops, "{}: the replayed forward reports other FLOPs", case.label);
        if !reads.is_empty() {
            read_something.push(case.router);
        }
        // Decisions from the timestep (and label) alone: the same reads for another input.
        if ["dense", "dynamic-width", "depth-budget", "timestep-gate"].contains(&case.router) {
            let (_, other_reads) = tape::record(|| run(&other));
            assert_eq!(reads, other_reads, "{}: the decision changed with the input", case.label);
        }
    }
    // The test means something: the routers that read their decision on the host were recorded.
    for r in ["dynamic-width", "depth-budget", "topk", "token-skip"] {
        assert!(read_something.contains(&r), "{r} recorded no host read: {read_something:?}");
    }
}

//! [`FusedBackend`] on burn's autodiff backend: each forward runs on the inner backend and is
//! registered with one handwritten backward, itself a [`FusedBackend`] op of the inner backend
//! (ATen's fused `*_backward` kernels on LibTorch, a short closed form elsewhere).

use super::ops::FusedBackend;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::FloatTensor;
use burn::backend::Backend;

/// Registers a gradient for a parent when it is tracked.
macro_rules! give {
    ($grads:expr, $node:expr, $grad:expr) => {
        if let Some(node) = $node {
            $grads.register::<B>(node.id, $grad);
        }
    };
}

#[derive(Debug)]
struct AttentionBackward;

impl<B: Backend + FusedBackend> Backward<B, 3> for AttentionBackward {
    /// q, k, v, the output, the four saved tensors and the scale.
    #[allow(clippy::type_complexity)]
    type State = ([FloatTensor<B>; 8], f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nq, nk, nv] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let ([q, k, v, out, s0, s1, s2, s3], scale) = ops.state;
        let (dq, dk, dv) = B::fused_attention_backward(grad, q, k, v, out, s0, s1, s2, s3, scale);
        give!(grads, nq, dq);
        give!(grads, nk, dk);
        give!(grads, nv, dv);
    }
}

#[derive(Debug)]
struct LnModulateBackward;

impl<B: Backend + FusedBackend> Backward<B, 3> for LnModulateBackward {
    /// x, scale, LN(x), mean, rstd.
    type State = [FloatTensor<B>; 5];

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, nshift, nscale] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let [x, scale, y, mean, rstd] = ops.state;
        let (dx, dshift, dscale) = B::fused_ln_modulate_backward(grad, x, scale, y, mean, rstd);
        give!(grads, nx, dx);
        give!(grads, nshift, dshift);
        give!(grads, nscale, dscale);
    }
}

#[derive(Debug)]
struct LayerNormBackward;

impl<B: Backend + FusedBackend> Backward<B, 1> for LayerNormBackward {
    /// x, LN(x), mean, rstd.
    type State = [FloatTensor<B>; 4];

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let [x, out, mean, rstd] = ops.state;
        give!(grads, nx, B::fused_layer_norm_backward(grad, x, out, mean, rstd));
    }
}

#[derive(Debug)]
struct GeluBackward;

impl<B: Backend + FusedBackend> Backward<B, 1> for GeluBackward {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        give!(grads, nx, B::fused_gelu_tanh_backward(grad, ops.state));
    }
}

#[derive(Debug)]
struct SoftmaxBackward;

impl<B: Backend + FusedBackend> Backward<B, 1> for SoftmaxBackward {
    type State = (FloatTensor<B>, usize, bool);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (y, dim, log) = ops.state;
        give!(grads, nx, B::fused_softmax_backward(grad, y, dim, log));
    }
}

#[derive(Debug)]
struct LinearBackward;

impl<B: Backend + FusedBackend> Backward<B, 3> for LinearBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, bool, bool);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, nw, nb] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x, w, has_bias, mixed) = ops.state;
        let (dx, dw, db) = B::fused_linear_backward(grad, x, w, has_bias, mixed);
        give!(grads, nx, dx);
        give!(grads, nw, dw);
        if has_bias {
            give!(grads, nb, db);
        }
    }
}

#[derive(Debug)]
struct GatedResidualBackward;

impl<B: Backend + FusedBackend> Backward<B, 3> for GatedResidualBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, na, ngate] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (a, gate) = ops.state;
        let (da, dgate) = B::fused_gated_residual_backward(grad.clone(), a, gate);
        give!(grads, nx, grad);
        give!(grads, na, da);
        give!(grads, ngate, dgate);
    }
}

impl<B: Backend + FusedBackend, C: CheckpointStrategy> FusedBackend for Autodiff<B, C> {
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scale: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let out = match AttentionBackward.prepare::<C>([q.node(), k.node(), v.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (qp, kp, vp) = (q.into_primitive(), k.into_primitive(), v.into_primitive());
                let (out, s0, s1, s2, s3) = B::fused_attention(qp.clone(), kp.clone(), vp.clone(), scale);
                prep.finish(([qp, kp, vp, out.clone(), s0, s1, s2, s3], scale), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::fused_attention(q.into_primitive(), k.into_primitive(), v.into_primitive(), scale).0)
            }
        };
        (out.clone(), out.clone(), out.clone(), out.clone(), out)
    }

    fn fused_ln_modulate(
        x: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        eps: f64,
        lowp_out: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let out = match LnModulateBackward
            .prepare::<C>([x.node(), shift.node(), scale.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (xp, sp) = (x.into_primitive(), scale.into_primitive());
                let (out, y, mean, rstd) =
                    B::fused_ln_modulate(xp.clone(), shift.into_primitive(), sp.clone(), eps, lowp_out);
                prep.finish([xp, sp, y, mean, rstd], out)
            }
            OpsKind::UnTracked(prep) => prep.finish(
                B::fused_ln_modulate(x.into_primitive(), shift.into_primitive(), scale.into_primitive(), eps, lowp_out)
                    .0,
            ),
        };
        (out.clone(), out.clone(), out.clone(), out)
    }

    fn fused_layer_norm(x: FloatTensor<Self>, eps: f64) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let out = match LayerNormBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let xp = x.into_primitive();
                let (out, mean, rstd) = B::fused_layer_norm(xp.clone(), eps);
                prep.finish([xp, out.clone(), mean, rstd], out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_layer_norm(x.into_primitive(), eps).0),
        };
        (out.clone(), out.clone(), out)
    }

    fn fused_gelu_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match GeluBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let xp = x.into_primitive();
                prep.finish(xp.clone(), B::fused_gelu_tanh(xp))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_gelu_tanh(x.into_primitive())),
        }
    }

    fn fused_softmax(x: FloatTensor<Self>, dim: usize, log: bool) -> FloatTensor<Self> {
        match SoftmaxBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = B::fused_softmax(x.into_primitive(), dim, log);
                prep.finish((y.clone(), dim, log), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_softmax(x.into_primitive(), dim, log)),
        }
    }

    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        has_bias: bool,
        mixed: bool,
        lowp_out: bool,
    ) -> FloatTensor<Self> {
        // Without a bias, `b` is a stand-in (the weight) and its parent gets no gradient.
        let prep = LinearBackward.prepare::<C>([x.node(), w.node(), b.node()]).compute_bound().stateful();
        match prep {
            OpsKind::Tracked(prep) => {
                let (xp, wp) = (x.into_primitive(), w.into_primitive());
                let out = B::fused_linear(xp.clone(), wp.clone(), b.into_primitive(), has_bias, mixed, lowp_out);
                prep.finish((xp, wp, has_bias, mixed), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_linear(
                x.into_primitive(),
                w.into_primitive(),
                b.into_primitive(),
                has_bias,
                mixed,
                lowp_out,
            )),
        }
    }

    fn fused_gated_residual(x: FloatTensor<Self>, a: FloatTensor<Self>, gate: FloatTensor<Self>) -> FloatTensor<Self> {
        match GatedResidualBackward.prepare::<C>([x.node(), a.node(), gate.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (ap, gp) = (a.into_primitive(), gate.into_primitive());
                let out = B::fused_gated_residual(x.into_primitive(), ap.clone(), gp.clone());
                prep.finish((ap, gp), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::fused_gated_residual(x.into_primitive(), a.into_primitive(), gate.into_primitive()))
            }
        }
    }
}

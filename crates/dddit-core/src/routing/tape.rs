//! Host reads of routing decisions, recorded and replayed: one CUDA graph per decision.
//!
//! A router that reads its decision on the host (masks, per-sample depths, expert counts) cannot
//! be captured in a CUDA graph: a device-to-host copy is refused during capture. But when the
//! decision does not change between calls — `dynamic-width` decides from the timestep alone,
//! `depth-budget` from timestep and label — the forward of one sampling step is the same kernel
//! sequence every time. [`record`] runs a forward eagerly and keeps every value its router read
//! through [`read_f32`] / [`read_i64`]; [`replay`] runs it again handing those values back without
//! touching the device, which is what a capture needs. The graph is valid for every input whose
//! decision equals the recorded one; the caller checks that (`dddit bench --graph-steps`
//! compares the tapes of two different inputs).
//!
//! Routers read the host through these two functions (`dddit_routers::common::to_host`);
//! outside [`record`] / [`replay`] they are plain reads.

use burn::prelude::*;
use std::cell::RefCell;
use std::collections::VecDeque;

/// One recorded host read.
#[derive(Clone, Debug, PartialEq)]
pub enum Read {
    /// A float tensor's values.
    F32(Vec<f32>),
    /// An int tensor's values.
    I64(Vec<i64>),
}

/// The host reads of one call, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tape {
    /// The values read, in the order they were read.
    pub reads: Vec<Read>,
}

impl Tape {
    /// How many reads the call made.
    pub fn len(&self) -> usize {
        self.reads.len()
    }

    /// Whether the call read nothing.
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty()
    }
}

enum State {
    Record(Vec<Read>),
    Replay(VecDeque<Read>),
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Restores the thread's tape state when a scope ends, panics included.
struct Scope(Option<State>);

impl Drop for Scope {
    fn drop(&mut self) {
        let prev = self.0.take();
        STATE.with(|s| *s.borrow_mut() = prev);
    }
}

fn enter(state: State) -> Scope {
    Scope(STATE.with(|s| s.borrow_mut().replace(state)))
}

/// Runs `f`, recording every host read of a routing decision it makes.
pub fn record<R>(f: impl FnOnce() -> R) -> (R, Tape) {
    let scope = enter(State::Record(Vec::new()));
    let r = f();
    let state = STATE.with(|s| s.borrow_mut().take());
    drop(scope);
    let reads = match state {
        Some(State::Record(v)) => v,
        _ => unreachable!("the record scope is this function's"),
    };
    (r, Tape { reads })
}

/// Runs `f`, answering its host reads from `tape` instead of the device. A read of another
/// length or kind than recorded, or one more than recorded, panics (inside a graph capture the
/// panic ends the capture with that message); reads left over are an error.
pub fn replay<R>(tape: &Tape, f: impl FnOnce() -> R) -> Result<R, String> {
    let scope = enter(State::Replay(tape.reads.iter().cloned().collect()));
    let r = f();
    let left = STATE.with(|s| match &*s.borrow() {
        Some(State::Replay(q)) => q.len(),
        _ => 0,
    });
    drop(scope);
    if left > 0 {
        return Err(format!("the replayed call made {left} host read(s) fewer than the recorded one"));
    }
    Ok(r)
}

fn next(kind: &str, len: usize) -> Option<Read> {
    STATE.with(|s| match &mut *s.borrow_mut() {
        Some(State::Replay(q)) => {
            let r = q.pop_front().unwrap_or_else(|| panic!("tape replay: an unrecorded {kind} host read"));
            let got = match &r {
                Read::F32(v) if kind == "f32" => v.len(),
                Read::I64(v) if kind == "i64" => v.len(),
                _ => panic!("tape replay: a {kind} read where another kind was recorded"),
            };
            assert_eq!(got, len, "tape replay: a {kind} read of {len} values where {got} were recorded");
            Some(r)
        }
        _ => None,
    })
}

fn keep(read: Read) {
    STATE.with(|s| {
        if let Some(State::Record(v)) = &mut *s.borrow_mut() {
            v.push(read);
        }
    })
}

/// The values of a float tensor on the host (a device sync), or the recorded ones under [`replay`].
pub fn read_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    if let Some(Read::F32(v)) = next("f32", t.shape().num_elements()) {
        return v;
    }
    let v = t.into_data().convert::<f32>().try_to_vec::<f32>().expect("float data");
    keep(Read::F32(v.clone()));
    v
}

/// The values of an int tensor on the host (a device sync), or the recorded ones under [`replay`].
pub fn read_i64<const D: usize>(t: Tensor<D, Int>) -> Vec<i64> {
    if let Some(Read::I64(v)) = next("i64", t.shape().num_elements()) {
        return v;
    }
    let v = t.into_data().convert::<i64>().try_to_vec::<i64>().expect("int data");
    keep(Read::I64(v.clone()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::device;

    #[test]
    fn replay_answers_without_reading_the_tensor() {
        let dev = device();
        let a = Tensor::<1>::from_floats([1.0, 2.0], &dev);
        let (sum, tape) = record(|| read_f32(a.clone()).iter().sum::<f32>());
        assert_eq!((sum, tape.len()), (3.0, 1));
        // Other values on the device, the recorded ones come back.
        let b = Tensor::<1>::from_floats([5.0, 7.0], &dev);
        assert_eq!(replay(&tape, || read_f32(b.clone())).unwrap(), vec![1.0, 2.0]);
        // Outside a scope, a plain read.
        assert_eq!(read_f32(b), vec![5.0, 7.0]);
    }

    #[test]
    fn int_reads_and_nesting_restore_the_outer_state() {
        let dev = device();
        let i = Tensor::<1, Int>::from_ints([3, 4, 5], &dev);
        let (_, outer) = record(|| {
            let _ = read_i64(i.clone());
            let (_, inner) = record(|| read_f32(Tensor::<1>::ones([2], &dev)));
            assert_eq!(inner.len(), 1);
            let _ = read_i64(i.clone());
        });
        assert_eq!(outer.reads, vec![Read::I64(vec![3, 4, 5]), Read::I64(vec![3, 4, 5])]);
    }

    #[test]
    fn a_replay_that_differs_from_the_record_is_refused() {
        let dev = device();
        let (_, tape) = record(|| read_f32(Tensor::<1>::ones([2], &dev)));
        let wrong_len = std::panic::catch_unwind(|| replay(&tape, || read_f32(Tensor::<1>::ones([3], &device()))));
        assert!(wrong_len.is_err());
        let wrong_kind =
            std::panic::catch_unwind(|| replay(&tape, || read_i64(Tensor::<1, Int>::ones([2], &device()))));
        assert!(wrong_kind.is_err());
        let too_few = replay(&tape, || ()).unwrap_err();
        assert!(too_few.contains("1 host read(s) fewer"), "{too_few}");
        // The panics left no tape behind: a plain read again.
        assert_eq!(read_f32(Tensor::<1>::ones([1], &dev)), vec![1.0]);
    }
}

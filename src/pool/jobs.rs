//! Jobs and chunks: how a call becomes encoded chunks in the pending queue, and how chunk
//! outcomes become the caller's result (an `AsyncResult`, or an `imap` iterator).

use super::chunk::{Chunk, Delivery, Job, Sink};
use super::manager::{complete, dispatch};
use super::options::PoolOptions;
use super::result::{AsyncResult, ChunkMsg, IMapIter, Slot};
use super::state::{RunState, Shared};
use super::{Pool, PoolError, TaskValue};
use crate::process::call::CallToken;
use std::sync::mpsc;

/// The most bytes a map's result vector is sized for at its start (it grows past that).
const PRESIZE_MAX_BYTES: usize = 1 << 27;

/// Why a map failed whose input iterator stated an exact length it did not keep.
const WRONG_LENGTH: &str = "the input iterator yielded a different number of items than the exact length it stated";

/// Python's default `chunksize` for the map family: `ceil(len / (4 * processes))`.
pub(super) fn default_chunksize(len: usize, processes: usize) -> usize {
    if len == 0 {
        return 1;
    }
    len.div_ceil(4 * processes).max(1)
}

/// Runs a user callback on the manager thread. A panic in it is reported on stderr and goes no
/// further (as Python reports an exception in a callback and carries on): unwinding would end
/// the manager thread, and with it every pending result would wait forever.
pub(super) fn run_callback(f: impl FnOnce()) {
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let msg = crate::process::panics::payload_text(&*p);
        eprintln!("multiproc: a pool callback panicked (ignored; the result is still delivered): {msg}");
    }
}

pub(super) fn decode_chunk<R: TaskValue>(r: Result<Vec<u8>, PoolError>) -> Result<Vec<R>, PoolError> {
    r.and_then(|bytes| crate::codec::decode::<Vec<R>>(&bytes).map_err(PoolError::local_codec))
}

impl Pool {
    /// Queues the chunks of a new job whose outcome goes to `sink`: `n` chunks of `size` items
    /// over `len` items in all.
    ///
    /// Chunks are taken from `chunks` one at a time and dispatched at once, so workers start on
    /// the first chunk while the caller is still encoding the rest (encoding a million
    /// integers takes milliseconds, which workers need not spend idle). A chunk that
    /// fails to encode fails the job through `sink`, like a failed task; chunks already sent
    /// still run, and their results are dropped.
    ///
    /// `limit` is the call's time limit per task (`None`: the pool's).
    fn submit(
        &self,
        call: CallToken,
        shape: (usize, usize, usize),
        chunks: impl IntoIterator<Item = Result<Vec<u8>, PoolError>>,
        sink: Sink,
        limit: Option<std::time::Duration>,
    ) -> Result<(), PoolError> {
        submit_to(&self.shared, call, shape, chunks, sink, limit, BadChunk::EndsJob)
    }

    /// The shape of a job over `items` (`(chunks, chunk size, items)`; `chunksize` `None`:
    /// Python's default rule) and the lazily encoded chunks.
    pub(super) fn chunks<'a, A: TaskValue>(
        &self,
        items: &'a [A],
        chunksize: Option<usize>,
    ) -> ((usize, usize, usize), impl Iterator<Item = Result<Vec<u8>, PoolError>> + 'a) {
        let size = chunksize.unwrap_or_else(|| default_chunksize(items.len(), self.processes())).max(1);
        let encoded = items.chunks(size).map(|c| crate::codec::encode(c).map_err(PoolError::local_codec));
        ((items.len().div_ceil(size), size, items.len()), encoded)
    }

    /// The shape of a map or imap job over `items` and its chunks, encoded one at a time as
    /// they are queued. An iterator that states its exact length (a range; a vector's, a slice's or a
    /// map's iterator) is read chunk by chunk through one reused buffer, so no list of every
    /// input is built: for a large map that list was the call's largest allocation, freed
    /// before the results were, and the allocator gave both back to the kernel, so that each
    /// call faulted in their pages afresh. Any other iterator is collected first, as Python
    /// does: its length sets the chunk size.
    ///
    /// The stated length is the iterator's word, and a wrong one fails the job with
    /// `InvalidArgument` as soon as it shows: at the first chunk that comes out short, or when
    /// an item is left after the last (that one item is taken from the iterator and dropped).
    /// Nothing is sized from it: the buffer reserves room for at most 2^16 items at a time, so
    /// it grows with the items that actually come, never with the claim.
    pub(super) fn streamed_chunks<A: TaskValue>(
        &self,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
    ) -> ((usize, usize, usize), impl Iterator<Item = Result<Vec<u8>, PoolError>>) {
        let mut items = items.into_iter().fuse();
        let listed: Vec<A> = match items.size_hint() {
            (lo, Some(hi)) if lo == hi && lo > 0 => Vec::new(),
            _ => items.by_ref().collect(),
        };
        // Once collected, `items` is spent and states 0.
        let len = listed.len() + items.size_hint().0;
        let size = chunksize.unwrap_or_else(|| default_chunksize(len, self.processes())).max(1);
        let n = len.div_ceil(size);
        let mut source = listed.into_iter().chain(items);
        let mut buf: Vec<A> = Vec::new();
        let mut made = 0;
        let encoded = std::iter::from_fn(move || {
            if made == n {
                return None;
            }
            let want = size.min(len - made * size);
            made += 1;
            buf.clear();
            // `extend` reserves what the iterator claims once the buffer is full: room for
            // each step is reserved first, so it never is, and no claim sizes anything.
            let mut left = want;
            while left > 0 {
                let step = left.min(1 << 16);
                buf.reserve(step);
                let before = buf.len();
                buf.extend(source.by_ref().take(step));
                let got = buf.len() - before;
                left -= got;
                if got < step {
                    break;
                }
            }
            if buf.len() < want || (made == n && source.next().is_some()) {
                return Some(Err(PoolError::InvalidArgument(WRONG_LENGTH)));
            }
            Some(crate::codec::encode(&buf).map_err(PoolError::local_codec))
        });
        ((n, size, len), encoded)
    }

    /// A map-family job whose chunks' results are concatenated in input order.
    pub(super) fn map_job<A: TaskValue, R: TaskValue>(
        &self,
        call: CallToken,
        items: impl IntoIterator<Item = A>,
        options: PoolOptions<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>, PoolError> {
        let PoolOptions { chunksize, time_limit: limit, callback, error_callback } = options;
        let (shape, chunks) = self.streamed_chunks(items, chunksize);
        let n = shape.0;
        let slot = Slot::new();
        let out = slot.clone();
        // Results in input order: a chunk's results that arrive in turn are appended at once
        // (their vector freed for the next chunk's), ones that arrive early wait in `early`.
        // Sized once (one result per item; untouched until results arrive), not grown by
        // doubling; the length is an iterator's word, so a huge one only starts the vector
        // (at 128 MiB).
        let mut all: Vec<R> = Vec::with_capacity(shape.2.min(PRESIZE_MAX_BYTES / std::mem::size_of::<R>().max(1)));
        let mut next = 0;
        let mut early: std::collections::BTreeMap<usize, Vec<R>> = std::collections::BTreeMap::new();
        let mut left = n;
        let mut failed = false;
        let mut callback = callback;
        let mut error_callback = error_callback;
        let sink: Sink = Box::new(move |d| {
            if failed {
                return;
            }
            let r = match d {
                Delivery::Chunk(index, r) => decode_chunk::<R>(r).map(|v| (index, v)),
                Delivery::JobFailed(e) => Err(e),
            };
            match r {
                Ok((index, v)) => {
                    if index == next {
                        all.extend(v);
                        next += 1;
                        while let Some(p) = early.remove(&next) {
                            all.extend(p);
                            next += 1;
                        }
                    } else {
                        early.insert(index, v);
                    }
                    left = left.saturating_sub(1);
                    if left == 0 || n == 0 {
                        for p in std::mem::take(&mut early).into_values() {
                            all.extend(p);
                        }
                        let all = std::mem::take(&mut all);
                        if let Some(mut cb) = callback.take() {
                            run_callback(|| cb(&all));
                        }
                        out.fill(Ok(all));
                    }
                }
                Err(e) => {
                    failed = true;
                    if let Some(mut cb) = error_callback.take() {
                        run_callback(|| cb(&e));
                    }
                    out.fill(Err(e));
                }
            }
        });
        self.submit(call, shape, chunks, sink, limit)?;
        Ok(AsyncResult::new(slot))
    }

    /// An `imap` job (chunks of `options.chunksize`, default 1): each chunk's results go to
    /// the iterator as they arrive.
    pub(super) fn imap_job<A: TaskValue, R: TaskValue>(
        &self,
        call: CallToken,
        items: impl IntoIterator<Item = A>,
        ordered: bool,
        options: PoolOptions<R>,
    ) -> Result<IMapIter<R>, PoolError> {
        let PoolOptions { chunksize, time_limit: limit, mut callback, mut error_callback } = options;
        let (shape, chunks) = self.streamed_chunks(items, Some(chunksize.unwrap_or(1)));
        let (tx, rx) = mpsc::channel::<ChunkMsg<R>>();
        let sink: Sink = Box::new(move |d| {
            let msg = match d {
                Delivery::Chunk(index, r) => ChunkMsg::Chunk(index, decode_chunk::<R>(r)),
                Delivery::JobFailed(e) => ChunkMsg::JobFailed(e),
            };
            match &msg {
                ChunkMsg::Chunk(_, Ok(items)) => {
                    if let Some(cb) = callback.as_mut() {
                        for item in items {
                            run_callback(|| cb(item));
                        }
                    }
                }
                ChunkMsg::Chunk(_, Err(e)) | ChunkMsg::JobFailed(e) => {
                    if let Some(cb) = error_callback.as_mut() {
                        run_callback(|| cb(e));
                    }
                }
            }
            let _ = tx.send(msg);
        });
        if shape.0 == 0 {
            return Ok(IMapIter::new(rx, 0, ordered));
        }
        // As Python's `imap`: an item that cannot be encoded fails its own chunk, and the
        // iteration goes on past it.
        submit_to(&self.shared, call, shape, chunks, sink, limit, BadChunk::FailsChunk)?;
        Ok(IMapIter::new(rx, shape.0, ordered))
    }

    /// A one-item job (`apply_async`).
    pub(super) fn single<A: TaskValue, R: TaskValue>(
        &self,
        call: CallToken,
        arg: A,
        options: PoolOptions<R>,
    ) -> Result<AsyncResult<R>, PoolError> {
        let PoolOptions { time_limit: limit, callback, error_callback, .. } = options;
        let args = crate::codec::encode(std::slice::from_ref(&arg)).map_err(PoolError::local_codec)?;
        let slot = Slot::new();
        let out = slot.clone();
        let mut callback = callback;
        let mut error_callback = error_callback;
        let sink: Sink = Box::new(move |d| {
            let r = match d {
                Delivery::Chunk(_, r) => r,
                Delivery::JobFailed(e) => Err(e),
            };
            let decoded = decode_chunk::<R>(r)
                .and_then(|mut v| v.pop().ok_or(PoolError::local_codec(crate::codec::CodecError::invalid(true))));
            match &decoded {
                Ok(v) => {
                    if let Some(mut cb) = callback.take() {
                        run_callback(|| cb(v))
                    }
                }
                Err(e) => {
                    if let Some(mut cb) = error_callback.take() {
                        run_callback(|| cb(e))
                    }
                }
            }
            out.fill(decoded);
        });
        self.submit(call, (1, 1, 1), [Ok(args)], sink, limit)?;
        Ok(AsyncResult::new(slot))
    }
}

/// What a chunk that cannot be queued (its items cannot be encoded) does to its job.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum BadChunk {
    /// The whole job fails (`map`, whose one result that failure decides).
    EndsJob,
    /// That chunk fails and the rest go on (`imap`: the iterator yields the failure in the
    /// chunk's place). A wrong stated length still ends the job: the chunks after it are
    /// not the ones announced.
    FailsChunk,
}

/// [`Pool::submit`] on the pool's shared state, for callers that hold only that (an
/// [`Outcomes`](super::Outcomes) iterator re-running a failed chunk's items one by one), and
/// for those that choose what a chunk that cannot be queued does (`bad`).
pub(super) fn submit_to(
    shared: &Shared,
    call: CallToken,
    (n, size, len): (usize, usize, usize),
    chunks: impl IntoIterator<Item = Result<Vec<u8>, PoolError>>,
    sink: Sink,
    limit: Option<std::time::Duration>,
    bad: BadChunk,
) -> Result<(), PoolError> {
    let limit = limit.or(shared.config.time_limit);
    let job = {
        let mut st = shared.lock();
        match &st.run {
            RunState::Running => {}
            RunState::Broken(e) => return Err(PoolError::InitializerFailed(e.clone())),
            RunState::Closed | RunState::Terminated => return Err(PoolError::NotRunning),
        }
        let job = st.next_job;
        st.next_job += 1;
        if n == 0 {
            drop(st);
            let mut sink = sink;
            sink(Delivery::Chunk(0, crate::codec::encode(&Vec::<()>::new()).map_err(PoolError::local_codec)));
            return Ok(());
        }
        st.jobs.insert(job, Job::new(n, sink));
        job
    };
    // Reading the chunks runs the caller's code (its iterator, its values' `Serialize`): if
    // that panics, the job (with chunks queued, and more announced) is taken out on the way
    // out, or the pool would wait for it for ever.
    let abandon = Abandon { shared, job };
    // Chunks that could not be encoded (`BadChunk::FailsChunk`): completed once the job is
    // fully queued, so that their `error_callback` (which runs on this thread) may `join`,
    // which waits for this job, whose later chunks only this thread can queue. Until then the
    // job counts them as outstanding, so no other delivery of it can be its last.
    let mut bad_chunks: Vec<(usize, PoolError)> = Vec::new();
    let mut chunks = chunks.into_iter();
    for index in 0..n {
        let next =
            chunks.next().unwrap_or_else(|| Err(PoolError::local_codec(crate::codec::CodecError::invalid(false))));
        let mut st = shared.lock();
        if !st.jobs.contains_key(&job) {
            break; // terminated meanwhile: the job has its outcome already
        }
        match next {
            Ok(args) => {
                let first_item = index * size;
                let items = size.min(len.saturating_sub(first_item)).max(1);
                let limit = limit.map(|l| l.saturating_mul(u32::try_from(items).unwrap_or(u32::MAX)));
                st.pending.push_back(Chunk { job, index, first_item, items, call, args, limit });
                dispatch(shared, &mut st);
            }
            Err(e) if bad == BadChunk::FailsChunk && !matches!(e, PoolError::InvalidArgument(_)) => {
                bad_chunks.push((index, e));
            }
            Err(e) => {
                // The chunks that failed before it are reported first, in order.
                for (i, e) in bad_chunks.drain(..) {
                    complete(&mut st, job, i, Err(e));
                }
                // The whole job ends here, chunks already sent included (their results find
                // no job). For a job of several chunks that is the job's failure, so that an
                // `imap` does not wait in order for chunks that will never report; a job of
                // one chunk is that chunk. Delivered once the lock is let go (a callback may
                // call into the pool).
                if let Some(j) = take_out(&mut st, job) {
                    let d = if n == 1 { Delivery::Chunk(index, Err(e)) } else { Delivery::JobFailed(e) };
                    let handoff = j.handoff(d, true);
                    st.handoffs.push(handoff);
                }
                break;
            }
        }
    }
    std::mem::forget(abandon);
    if !bad_chunks.is_empty() {
        let mut st = shared.lock();
        for (i, e) in bad_chunks {
            complete(&mut st, job, i, Err(e));
        }
    }
    Ok(())
}

/// Takes job `job` out of the pool: its queued chunks are dropped, and results of those
/// already sent find no job and are dropped too.
fn take_out(st: &mut super::state::State, job: u64) -> Option<Job> {
    st.pending.retain(|c| c.job != job);
    st.jobs.remove(&job)
}

/// Takes a job out of the pool ([`take_out`]) if its submission unwinds (see [`submit_to`]).
/// Forgotten once the submission ends.
struct Abandon<'a> {
    shared: &'a Shared,
    job: u64,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        drop(take_out(&mut self.shared.lock(), self.job));
        // The manager tells `join` the pool is idle on its next round.
        self.shared.bell.ring();
    }
}

/// Jobs whose types the caller does not know: the manager's pool proxy.
impl Pool {
    /// `call`, which checks under `from`, tagged with this pool's key.
    pub(crate) fn retag(&self, from: &crate::process::call::CallKey, call: &CallToken) -> Option<CallToken> {
        call.retag(from, &self.shared.key)
    }

    /// Runs pre-encoded chunks (`chunksize` items each, `items` in all) through `call` and
    /// returns each chunk's encoded results, in order; waits for all of them.
    pub(crate) fn run_encoded(
        &self,
        call: CallToken,
        chunks: Vec<Vec<u8>>,
        chunksize: usize,
        items: usize,
    ) -> Result<Vec<Vec<u8>>, PoolError> {
        let n = chunks.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let slot = Slot::new();
        let out = slot.clone();
        let mut parts: Vec<Option<Vec<u8>>> = vec![None; n];
        let (mut left, mut failed) = (n, false);
        let sink: Sink = Box::new(move |d| {
            if failed {
                return;
            }
            let r = match d {
                Delivery::Chunk(index, r) => r.map(|bytes| (index, bytes)),
                Delivery::JobFailed(e) => Err(e),
            };
            match r {
                Ok((index, bytes)) => {
                    if let Some(p) = parts.get_mut(index) {
                        *p = Some(bytes);
                    }
                    left = left.saturating_sub(1);
                    if left == 0 {
                        out.fill(Ok(parts.drain(..).flatten().collect()));
                    }
                }
                Err(e) => {
                    failed = true;
                    out.fill(Err(e));
                }
            }
        });
        self.submit(call, (n, chunksize.max(1), items), chunks.into_iter().map(Ok), sink, None)?;
        AsyncResult::new(slot).into_value()
    }
}

#[cfg(test)]
mod tests {
    use super::default_chunksize;

    #[test]
    fn pythons_chunksize_rule() {
        // divmod(len, 4 * processes), rounded up.
        assert_eq!(default_chunksize(0, 4), 1);
        assert_eq!(default_chunksize(10, 4), 1);
        assert_eq!(default_chunksize(8500, 5), 425);
        assert_eq!(default_chunksize(8501, 5), 426);
    }
}

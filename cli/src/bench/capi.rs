//! Rows through the C ABI (`include/multiproc.h`), each against its Rust row as baseline:
//!
//! * `capi.pipe.rt.64B.spin`: `pipe.rt.64B.spin` with both ends driven by `mp_conn_send` /
//!   `mp_conn_recv` (both spinning, `MP_WAIT_SPIN`), baseline `pipe.rt.64B.spin`;
//! * `capi.queue.rt.64B`: `queue.rt.64B` through `mp_queue_put` / `mp_queue_get`, baseline
//!   `queue.rt.64B`.
//!
//! The functions are the ones `libmultiproc` exports, called through their `extern "C"`
//! entry points from another crate (no inlining across the boundary, as from C); what a C
//! caller pays beyond the Rust call (the handle check, the status, the panic guard, the copy
//! out of the scratch buffer) is what these rows measure.

use super::{Ctx, Driver, Placement, Row, Unit};
use crate::raw::Child;
use multiproc_capi::*;
use std::ffi::{c_void, CStr};
use std::io;
use std::ptr;

const CROSS: Placement = Placement::Cross;
const FREE: Placement = Placement::Free;
const SAME: Placement = Placement::Same;

pub(crate) fn rows() -> Vec<Row> {
    vec![
        Row::new("capi.pipe.rt.64B.spin", Unit::Ns, &[CROSS, FREE], Some("pipe.rt.64B.spin"), pipe_rt_spin),
        Row::new("capi.queue.rt.64B", Unit::Ns, &[SAME, CROSS], Some("queue.rt.64B"), queue_rt),
    ]
}

/// A status as an error, with this thread's message.
fn check(st: mp_status) -> io::Result<()> {
    if st == mp_status::MP_OK {
        return Ok(());
    }
    // SAFETY: mp_last_error returns a NUL-terminated string owned by this thread, valid
    // until its next failing call; it is copied at once.
    let msg = unsafe { CStr::from_ptr(mp_last_error()) }.to_string_lossy().into_owned();
    Err(io::Error::other(format!("{st:?}: {msg}")))
}

struct PipeRt {
    conn: *mut mp_conn,
    buf: [u8; 64],
    _child: Child,
}

impl Drop for PipeRt {
    fn drop(&mut self) {
        // SAFETY: a live handle from mp_pipe_new, freed once, here.
        unsafe { mp_conn_free(self.conn) };
    }
}

fn pipe_rt_spin(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    let (mut a, mut b) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: both out-pointers are valid for a write.
    check(unsafe { mp_pipe_new(true, &mut a, &mut b) })?;
    // SAFETY: `a` and `b` are live handles from mp_pipe_new.
    unsafe {
        check(mp_conn_set_wait(a, MP_WAIT_SPIN))?;
        check(mp_conn_set_wait(b, MP_WAIT_SPIN))?;
    }
    let child = Child::spawn(super::child_mask(p, ctx), move || {
        let mut buf = [0u8; 64];
        let mut len = 0usize;
        loop {
            // SAFETY: `b` is a live handle (forked with it); `buf` and `len` are valid.
            let st = unsafe { mp_conn_recv(b, buf.as_mut_ptr().cast(), buf.len(), &mut len, MP_FOREVER) };
            if st != mp_status::MP_OK {
                return 0;
            }
            // SAFETY: as above; `len` bytes of `buf` were written.
            if unsafe { mp_conn_send(b, buf.as_ptr().cast(), len, MP_FOREVER) } != mp_status::MP_OK {
                return 1;
            }
        }
    });
    // The parent's copy of the child's end goes now, so the child sees the parent leave.
    // SAFETY: `b` is live here and not used by the parent again.
    unsafe { mp_conn_free(b) };
    Ok(Box::new(PipeRt { conn: a, buf: [7; 64], _child: child? }))
}

impl Driver for PipeRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        let mut len = 0usize;
        for _ in 0..n {
            // SAFETY: a live handle; `buf` is valid for 64 bytes each way; `len` for a write.
            unsafe {
                check(mp_conn_send(self.conn, self.buf.as_ptr().cast::<c_void>(), self.buf.len(), MP_FOREVER))?;
                check(mp_conn_recv(self.conn, self.buf.as_mut_ptr().cast(), self.buf.len(), &mut len, MP_FOREVER))?;
            }
        }
        Ok(())
    }
}

struct QueueRt {
    to: *mut mp_queue,
    from: *mut mp_queue,
    msg: [u8; 64],
    _child: Child,
}

impl Drop for QueueRt {
    fn drop(&mut self) {
        // SAFETY: live handles from mp_queue_new, freed once, here.
        unsafe {
            mp_queue_free(self.to);
            mp_queue_free(self.from);
        }
    }
}

fn queue_rt(ctx: &Ctx, p: Placement) -> io::Result<Box<dyn Driver>> {
    let (mut to, mut from) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: the out-pointers are valid for a write.
    unsafe {
        check(mp_queue_new(0, 1 << 20, &mut to))?;
        check(mp_queue_new(0, 1 << 20, &mut from))?;
    }
    let child = Child::spawn(super::child_mask(p, ctx), move || {
        let mut m = [0u8; 64];
        let mut len = 0usize;
        loop {
            // SAFETY: live handles (forked with them); `m` and `len` are valid.
            unsafe {
                if mp_queue_get(to, m.as_mut_ptr().cast(), m.len(), &mut len, MP_FOREVER) != mp_status::MP_OK {
                    return 1;
                }
                if mp_queue_put(from, m.as_ptr().cast(), len, MP_FOREVER) != mp_status::MP_OK {
                    return 1;
                }
            }
        }
    })?;
    Ok(Box::new(QueueRt { to, from, msg: [3; 64], _child: child }))
}

impl Driver for QueueRt {
    fn run(&mut self, n: u64) -> io::Result<()> {
        let mut len = 0usize;
        for _ in 0..n {
            // SAFETY: live handles; `msg` is valid for 64 bytes each way; `len` for a write.
            unsafe {
                check(mp_queue_put(self.to, self.msg.as_ptr().cast(), self.msg.len(), MP_FOREVER))?;
                check(mp_queue_get(self.from, self.msg.as_mut_ptr().cast(), self.msg.len(), &mut len, MP_FOREVER))?;
            }
        }
        Ok(())
    }
}
